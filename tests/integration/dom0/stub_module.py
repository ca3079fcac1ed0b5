# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test stand-in for the collection's modules, used ONLY to drive the kdump role down its dom0
path on a machine without Xen (tests/integration/test_role_dom0_wiring.py). It answers with
the documented return shapes (docs/architecture.md, the modules' RETURN) from a scenario file;
the real modules are tested on their own in tests/unit."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible.module_utils.basic import AnsibleModule, _load_params


def main():
    params = _load_params()
    spec = dict((key, dict(type="raw")) for key in params if not key.startswith("_ansible"))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    with open(os.environ["XENKDUMP_STUB_SCENARIO"]) as handle:
        scenario = json.load(handle)
    name = module._name.split(".")[-1]
    with open(os.environ["XENKDUMP_STUB_LOG"], "a") as log:
        log.write(json.dumps({"module": name, "params": module.params, "check_mode": module.check_mode}) + "\n")
    answer = scenario[name]
    if isinstance(answer, dict) and answer.get("failed"):
        module.fail_json(**{k: v for k, v in answer.items() if k != "failed"})
    module.exit_json(**answer)


if __name__ == "__main__":
    main()
