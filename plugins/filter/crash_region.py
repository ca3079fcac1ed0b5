# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""crash_region filter: plan the Xen crash region from xen_facts' facts, on the controller.

The planner is pure (``module_utils/crashkernel.py``); the module ``xen_crash_region`` runs it
on the host after reading the host's facts.  When those facts were just gathered by
``xen_facts`` (as the kdump role does), this filter gives the same answer without another
module run on the host (docs/performance.md, rollout cost).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel
from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError


def crash_region(facts, size="auto", below_4g=True, headroom_mb=0, headroom_pct=10.0, dump_target="local"):
    """xen_crash_region's result (plan, inputs_source, image_sizes) from a xen_facts dictionary."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError("crash_region: expected the xen_facts dictionary (ansible_facts.xenkdump), got %s"
                                 % type(facts).__name__)
    if dump_target not in crashkernel.DUMP_TARGETS:
        raise AnsibleFilterError("crash_region: dump_target must be one of %s, got %r"
                                 % (", ".join(crashkernel.DUMP_TARGETS), dump_target))
    try:
        result = crashkernel.plan_from_facts(
            dict(facts), size=str(size), below_4g=_bool(below_4g, "below_4g"),
            headroom_mb=_int(headroom_mb, "headroom_mb"), headroom_pct=_float(headroom_pct, "headroom_pct"),
            dump_target=dump_target)
    except XenKdumpError as exc:
        raise AnsibleFilterError("crash_region: %s" % exc.message)
    out = result.as_dict()
    images = facts.get("crash_images") or {}
    out["inputs_source"] = "facts"
    out["image_sizes"] = {"kernel": images.get("kernel"), "initrd": images.get("initrd"),
                          "notes": list(images.get("notes") or [])}
    return out


def _bool(value, name):
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise AnsibleFilterError("crash_region: %s must be a boolean, got %r" % (name, value))


def _int(value, name):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("crash_region: %s must be an integer, got %r" % (name, value))


def _float(value, name):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("crash_region: %s must be a number, got %r" % (name, value))


class FilterModule(object):
    def filters(self):
        return {"crash_region": crash_region}
