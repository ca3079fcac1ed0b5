# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_list filter: normalise a host list given as a list or a comma/space separated string."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def host_list(value):
    """Sorted, de-duplicated host names from a list or a "a, b c" string; [] for None/""."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.replace(",", " ").split()
    elif isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if not isinstance(item, str):
                raise AnsibleFilterError("host_list: every host name must be a string, got %r" % (item,))
            items.extend(item.replace(",", " ").split())
    else:
        raise AnsibleFilterError("host_list: expected a list or a comma separated string, got %s" % type(value).__name__)
    return sorted(set(i.strip() for i in items if i.strip()))


class FilterModule(object):
    def filters(self):
        return {"host_list": host_list}
