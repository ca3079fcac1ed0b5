# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""makedump_args_problems filter: what is wrong with a MAKEDUMP_ARGS string on this kind of host.

One rule (``module_utils/capture.py``, ``args_problems``) for the kdump role's plan, its
verification (``verify.j2``) and the audit report (``audit-row.j2``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.xenkdump.fleet.plugins.module_utils import capture


def makedump_args_problems(args, is_dom0=True, compressors=None):
    """List of problems (empty: none) with MAKEDUMP_ARGS ``args`` (None or "" = unset)."""
    try:
        dom0 = boolean(is_dom0, strict=True)
    except TypeError:
        raise AnsibleFilterError("makedump_args_problems: is_dom0 must be a boolean, got %r" % (is_dom0,))
    if compressors is not None and not isinstance(compressors, dict):
        raise AnsibleFilterError("makedump_args_problems: compressors must be the makedumpfile.compressors "
                                 "fact (a dict), got %r" % (compressors,))
    text = None if args is None else to_text(args)
    return capture.args_problems(text, is_dom0=dom0, compressors=compressors)


class FilterModule(object):
    def filters(self):
        return {"makedump_args_problems": makedump_args_problems}
