# -*- coding: utf-8 -*-
"""Run a module's real main() in-process, as Ansible would, and return (exit code, result JSON)."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args


def run_module(capsys, main, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            main()
    return exc.value.code, json.loads(capsys.readouterr().out)
