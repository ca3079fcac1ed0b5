# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""capture_plan filter: MAKEDUMP_ARGS, dump size bound and room check from xen_facts' facts.

The logic is pure (``module_utils/capture.py``, ``plan_from_facts``); the kdump role calls this
on the controller with the facts ``xen_facts`` just gathered, so planning the capture side costs
no module run on the host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.xenkdump.fleet.plugins.module_utils import capture
from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError


def capture_plan(facts, mode="auto", makedump_args="", xen_syms="", xen_syms_present=False,
                 room_check="refuse", num_dumps=0, dump_target="local", ignore_known_issues=None):
    """{capture, estimate, room, known_issues, refusals} for the host of these xen_facts facts."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError("capture_plan: expected the xen_facts dictionary (ansible_facts.xenkdump), got %s"
                                 % type(facts).__name__)
    ignore = ignore_known_issues if ignore_known_issues is not None else []
    if isinstance(ignore, (str, bytes)) or not isinstance(ignore, (list, tuple)):
        raise AnsibleFilterError("capture_plan: ignore_known_issues must be a list of ids, got %r" % (ignore,))
    try:
        present = boolean(xen_syms_present, strict=True)
    except TypeError:
        raise AnsibleFilterError("capture_plan: xen_syms_present must be a boolean, got %r" % (xen_syms_present,))
    if room_check is False or (isinstance(room_check, str) and room_check.lower() in ("false", "no")):
        room_check = "off"        # a bare YAML off is the boolean false
    try:
        dumps = int(num_dumps)
    except (TypeError, ValueError):
        raise AnsibleFilterError("capture_plan: num_dumps must be an integer, got %r" % (num_dumps,))
    try:
        return capture.plan_from_facts(
            dict(facts), mode=to_text(mode), makedump_args=to_text(makedump_args or ""),
            xen_syms=to_text(xen_syms or ""), xen_syms_present=present, room_check=to_text(room_check),
            num_dumps=dumps, dump_target=to_text(dump_target), ignore_known_issues=[to_text(i) for i in ignore])
    except XenKdumpError as exc:
        raise AnsibleFilterError("capture_plan: %s" % exc.message)


class FilterModule(object):
    def filters(self):
        return {"capture_plan": capture_plan}
