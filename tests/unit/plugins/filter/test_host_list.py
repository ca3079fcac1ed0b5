# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.xenkdump.fleet.plugins.filter.host_list import FilterModule, host_list


@pytest.mark.parametrize("value,expected", [
    (None, []),
    ("", []),
    ("host1", ["host1"]),
    ("host2, host1 host1", ["host1", "host2"]),
    (" a ,, b ,", ["a", "b"]),
    (["b", "a", "a"], ["a", "b"]),
    (["a,b", "c"], ["a", "b", "c"]),
    ([], []),
])
def test_host_list(value, expected):
    assert host_list(value) == expected


@pytest.mark.parametrize("value", [3, {"a": 1}, ["a", 3]])
def test_host_list_rejects(value):
    with pytest.raises(AnsibleFilterError):
        host_list(value)


def test_registered():
    assert FilterModule().filters()["host_list"] is host_list
