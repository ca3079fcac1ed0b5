#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: config_state
short_description: Read, in one round trip, how the files, packages and units the kdump role manages stand
version_added: "0.1.0"
description:
  - Compares files (sha256 of the wanted content, mode, owner, group) and directories with the
    host, lists missing packages (C(dpkg-query) or C(rpm -q)), reads debconf answers
    (C(debconf-show)) and the state of systemd units (C(systemctl show)), all in one module run.
  - Read-only; never reports C(changed). The C(xenkdump.fleet.kdump) role renders what it
    manages on the controller, calls this once, and runs its writing tasks only for what
    differs, so a converged host costs one round trip here instead of one or two per file
    (figures in docs/performance.md).
  - The comparison is exact, never a remembered stamp; a file edited by hand shows as drifted.
author: xenkdump.fleet developers (@xenkdump)
options:
  files:
    description:
      - Files as they should be. Each has C(path) and either C(content) (its sha256 is
        compared) or C(sha256), and optionally C(mode) (octal string), C(owner), C(group).
    type: list
    elements: dict
    default: []
  directories:
    description: Directories as they should be (C(path), optional C(mode), C(owner), C(group)).
    type: list
    elements: dict
    default: []
  packages:
    description: Package names that should be installed.
    type: list
    elements: str
    default: []
  pkg_mgr:
    description: How to ask for installed packages. C(apt) and C(dpkg) use C(dpkg-query); the others C(rpm -q).
    type: str
    default: apt
    choices: [apt, dpkg, zypper, dnf, yum, rpm]
  debconf:
    description: Debconf answers (C(name) = package, C(question), C(value)) to compare.
    type: list
    elements: dict
    default: []
  units:
    description: systemd units whose C(UnitFileState) and C(ActiveState) to report.
    type: list
    elements: str
    default: []
  lines:
    description:
      - Lines that should be in a file, judged as M(ansible.builtin.lineinfile) with
        O(ansible.builtin.lineinfile#module:state=present) would judge them. Each has C(path),
        C(line) and optionally C(regexp) (the last line matching it must equal C(line); with no
        match, C(line) must be in the file).
      - A missing file is reported as drifted with the reason C(missing).
    type: list
    elements: dict
    default: []
extends_documentation_fragment:
  - xenkdump.fleet.read_only
notes:
  - Error code C(XK601) (bad input) is in docs/troubleshooting.md.
"""

EXAMPLES = r"""
- name: What differs from what the role wants
  xenkdump.fleet.config_state:
    files:
      - path: /etc/default/kdump-tools
        content: "{{ lookup('ansible.builtin.template', 'kdump-tools.j2') }}"
        mode: "0644"
        owner: root
        group: root
    directories:
      - path: /var/crash
        mode: "0755"
    packages: [kexec-tools, kdump-tools, makedumpfile]
    pkg_mgr: apt
    units: [xenkdump-load.service]
    lines:
      - path: /etc/default/kexec
        regexp: "^LOAD_KEXEC="
        line: LOAD_KEXEC=false
  register: state

- name: Write the file only when it differs
  ansible.builtin.copy:
    content: "{{ lookup('ansible.builtin.template', 'kdump-tools.j2') }}"
    dest: /etc/default/kdump-tools
    mode: "0644"
  when: state.files['/etc/default/kdump-tools'].drift
"""

RETURN = r"""
files:
  description: Per path, C(exists), C(drift), C(reasons) (C(missing), C(content differs), C(mode is 0600, wanted 0644), ...), C(sha256), C(wanted_sha256).
  returned: always
  type: dict
directories:
  description: Per path, C(exists), C(drift), C(reasons).
  returned: always
  type: dict
packages:
  description: C(installed), C(missing) (lists of names) and the C(tool) used.
  returned: always
  type: dict
debconf:
  description: Per question, C(current), C(wanted), C(drift).
  returned: always
  type: dict
debconf_drift:
  description: Whether any debconf answer differs.
  returned: always
  type: bool
units:
  description: Per unit, C(unit_file_state) and C(active_state) as systemd reports them.
  returned: always
  type: dict
lines:
  description: Per path of O(lines), C(exists), C(drift) and C(reasons) (C(missing), C(wants 'LOAD_KEXEC=false' (now 'LOAD_KEXEC=true'))).
  returned: always
  type: dict
drifted_paths:
  description: Files, directories and files of O(lines) that differ, sorted.
  returned: always
  type: list
  elements: str
drift:
  description: Whether anything (file, directory, line, package, debconf answer) differs.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xenkdump.fleet.plugins.module_utils import errors
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import host_from_module
from ansible_collections.xenkdump.fleet.plugins.module_utils.state import read_state


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", default=[]),
            directories=dict(type="list", elements="dict", default=[]),
            packages=dict(type="list", elements="str", default=[]),
            pkg_mgr=dict(type="str", default="apt", choices=["apt", "dpkg", "zypper", "dnf", "yum", "rpm"]),
            debconf=dict(type="list", elements="dict", default=[]),
            units=dict(type="list", elements="str", default=[]),
            lines=dict(type="list", elements="dict", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = read_state(host_from_module(module), files=p["files"], directories=p["directories"],
                            packages=p["packages"], pkg_mgr=p["pkg_mgr"], debconf=p["debconf"],
                            units=p["units"], lines=p["lines"])
    except errors.XenKdumpError as exc:
        errors.fail_json_from(module, exc, changed=False)
        return
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
