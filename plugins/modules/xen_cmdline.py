#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xen_cmdline
short_description: Set or remove an option on the Xen hypervisor command line
version_added: "0.1.0"
description:
  - Puts an option such as C(crashkernel=256M<4G) or C(dom0_mem=2G) on the B(Xen) command line,
    never on dom0's Linux line, wherever the host's bootloader keeps it, or removes it again.
  - "GRUB (Debian, Ubuntu, openSUSE, RHEL): edits C(GRUB_CMDLINE_XEN_DEFAULT) (or C(GRUB_CMDLINE_XEN))
    in C(/etc/default/grub) and every C(/etc/default/grub.d/*.cfg), in the order grub-mkconfig
    sources them. The assignment that decides the final value is edited in place; comments,
    quoting style, other options and C($VAR) references are kept. Files the module cannot follow
    safely (command substitution, conditionals or C(&&) lists that assign the variable, C(+=),
    unbalanced quotes, here-documents, C(source)/C(eval)) are refused with the file and line, and
    left untouched. Linux variables (C(GRUB_CMDLINE_LINUX*)) are never touched."
  - "EFI C(xen.cfg): edits C(options=) of the section that C([global] default=) names
    (or the sections chosen with O(section))."
  - "XCP-ng / Citrix Hypervisor: drives C(/opt/xensource/libexec/xen-cmdline)
    (C(--list-xen), C(--set-xen), C(--delete-xen))."
  - An option given several times on the Xen line is collapsed to one; O(state=absent) removes
    every occurrence.
  - The change takes effect at the next boot. For GRUB the caller must run RV(regenerate)
    (C(update-grub) or C(grub2-mkconfig -o ...)) when C(changed) is true.
author: xenkdump.fleet developers (@xenkdump)
options:
  option:
    description: Name of the Xen option, for example C(crashkernel), C(dom0_mem) or C(noreboot).
    type: str
    required: true
  value:
    description:
      - Value of the option. Omit it for a flag such as C(noreboot).
      - Must not contain whitespace, double quotes or control characters.
      - Give it exactly as Xen must receive it (V(256M<4G)). The module adds GRUB's escaping itself
        (every character but letters, digits and C(_.,:=/@%+-) gets a backslash, so C($) is not expanded at
        boot and GRUB's lexer yields the value unchanged). A backslash, or a value that starts with
        C(<option>=) (C(crashkernel=crashkernel=...)), is refused with error XK300; for xen.cfg a C(#)
        too (Xen's EFI loader reads it as the start of a comment).
    type: str
  state:
    description: Whether the option must be on the Xen line exactly once, or not at all.
    type: str
    choices: [present, absent]
    default: present
  bootloader:
    description:
      - Where the Xen command line lives. V(auto) detects it like RV(bootloader) of
        M(xenkdump.fleet.xen_facts) does (xen-cmdline, then an EFI xen.cfg when the host booted
        via EFI, then C(/etc/default/grub)).
      - With O(path) set and V(auto), a file with a C([section]) header is taken as xen.cfg and a
        file named C(xen-cmdline) as the XCP-ng tool.
    type: str
    choices: [auto, grub, xen_cfg, xen_cmdline]
    default: auto
  path:
    description:
      - The file to edit instead of the detected one. For GRUB the main default file
        (C(/etc/default/grub)); its C(.d/*.cfg) snippets are read and edited too.
        For xen_cmdline the path of the tool.
    type: path
  variable:
    description:
      - GRUB variable that holds the option. Debian's C(20_linux_xen) passes
        C(GRUB_CMDLINE_XEN) to every Xen entry and C(GRUB_CMDLINE_XEN_DEFAULT) in addition to
        the default (non-recovery) entries, so C(crashkernel=) goes to
        C(GRUB_CMDLINE_XEN_DEFAULT) by default. Occurrences in the other variable are removed.
    type: str
    choices: [GRUB_CMDLINE_XEN_DEFAULT, GRUB_CMDLINE_XEN]
    default: GRUB_CMDLINE_XEN_DEFAULT
  section:
    description:
      - xen.cfg only. Omit it to edit the section C([global] default=) names (the one Xen boots),
        V(all) for every section except C([global]), or a section name.
    type: str
  distro_family:
    description:
      - Debian, Suse, RedHat or XCP-ng; picks the GRUB regenerate command. Read from
        C(/etc/os-release) when omitted.
    type: str
  backup:
    description: Keep a timestamped copy of every file before changing it.
    type: bool
    default: false
notes:
  - Check mode computes the result, the diff and the commands, and writes nothing.
  - A symlinked file (C(/etc/default/grub), a C(grub.d) snippet, C(xen.cfg)) stays a symlink - its target is
    edited, as M(ansible.builtin.lineinfile) and M(ansible.builtin.template) do. Writes are atomic (a temp file
    beside the target, the old mode, owner and SELinux context, a rename); when several files change every temp
    file is made first, so an unwritable directory or an immutable file (error XK012) leaves all of them as
    they were.
  - Only regular files are read. A FIFO, a device (or a symlink to C(/dev/zero)) is refused with error XK010,
    a file over 256 KiB with XK011, before anything is read from it; an unreadable one (a symlink loop) with XK013.
  - xen.cfg is read as Xen's EFI loader (C(xen/common/efi/boot.c)) reads it - only the first C([section]) of a
    name and the first C([global]) count, C([xen) without C(]) starts no section, a control character ends a
    line, C(#) starts a comment anywhere; a file with a NUL or another control character is refused (XK304).
  - Supports diff mode.
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
seealso:
  - module: xenkdump.fleet.xen_facts
"""

EXAMPLES = r"""
- name: Reserve the Xen crash region below 4 GiB
  xenkdump.fleet.xen_cmdline:
    option: crashkernel
    value: 256M<4G
  register: xen_line

- name: Regenerate grub.cfg when the Xen line changed
  ansible.builtin.command:
    argv: "{{ xen_line.regenerate }}"
  when: xen_line.changed and xen_line.regenerate | length > 0

- name: Keep Xen from rebooting on panic (a flag, no value), on every entry
  xenkdump.fleet.xen_cmdline:
    option: noreboot
    variable: GRUB_CMDLINE_XEN

- name: Remove dom0_mem from an EFI xen.cfg, in every section
  xenkdump.fleet.xen_cmdline:
    option: dom0_mem
    state: absent
    bootloader: xen_cfg
    path: /boot/efi/EFI/xen/xen.cfg
    section: all
"""

RETURN = r"""
cmdline:
  description:
    - "The Xen command line after the change (in check mode: as it would be). For GRUB it is
      what the default entry gets, C(${GRUB_CMDLINE_XEN} ${GRUB_CMDLINE_XEN_DEFAULT}) as the
      sourced files compute it, GRUB escapes removed; for xen.cfg the C(options=) of the default
      section; for xen-cmdline what C(--list-xen) reports."
  returned: always
  type: str
  sample: "dom0_mem=1024M,max:1024M crashkernel=256M<4G"
cmdline_before:
  description: The Xen command line before the change.
  returned: always
  type: str
  sample: "dom0_mem=1024M,max:1024M"
file:
  description: The file that holds (or held) the option; the xen-cmdline tool for XCP-ng.
  returned: always
  type: str
  sample: /etc/default/grub
files_changed:
  description: Every file whose content changed (or would change in check mode).
  returned: always
  type: list
  elements: str
  sample: ["/etc/default/grub"]
backup_file:
  description: Backup of RV(file) when O(backup=true) and it changed.
  returned: when a backup was made
  type: str
  sample: /etc/default/grub.12345.2026-01-01@10:00:00~
backup_files:
  description: Backup of every changed file, by file.
  returned: when a backup was made
  type: dict
  sample: {"/etc/default/grub": "/etc/default/grub.12345.2026-01-01@10:00:00~"}
regenerate:
  description:
    - argv to run after a change so the bootloader picks it up (C(update-grub) or
      C(grub2-mkconfig -o /boot/grub2/grub.cfg)); empty for xen.cfg and xen-cmdline.
  returned: always
  type: list
  elements: str
  sample: ["update-grub"]
commands:
  description: xen-cmdline calls made (or that would be made in check mode).
  returned: always
  type: list
  elements: list
  sample: [["/opt/xensource/libexec/xen-cmdline", "--set-xen", "crashkernel=256M<4G"]]
notes:
  description: What the module noticed and worked around, e.g. a xen.cfg section given twice (Xen reads the first).
  returned: always
  type: list
  elements: str
  sample: ["/boot/efi/EFI/xen/xen.cfg: section [xen] appears again at line 9; Xen reads only the first (line 4)"]
bootloader:
  description: Where the Xen line is kept (C(grub), C(xen_cfg), C(xen_cmdline)) and why.
  returned: always
  type: dict
  sample: {"kind": "grub", "path": "/etc/default/grub", "reason": "/etc/default/grub exists"}
diff:
  description:
    - A list. First the effective Xen command line before/after, then one
      entry per changed file with its path in the headers.
  returned: always
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.xenkdump.fleet.plugins.module_utils import cmdline, errors, hostio


def _distro_family(host):
    text = host.read("/etc/os-release") or ""
    ids = []
    for line in text.splitlines():
        if line.startswith(("ID=", "ID_LIKE=")):
            ids.extend(line.split("=", 1)[1].strip().strip("\"'").lower().split())
    for known, family in (("xcp-ng", "XCP-ng"), ("xenenterprise", "XCP-ng"),
                          ("debian", "Debian"), ("ubuntu", "Debian"),
                          ("suse", "Suse"), ("opensuse", "Suse"),
                          ("rhel", "RedHat"), ("fedora", "RedHat"), ("centos", "RedHat")):
        if known in ids:
            return family
    return "unknown"


def _resolve(module, host):
    params = module.params
    family = params["distro_family"] or _distro_family(host)
    kind = params["bootloader"]
    path = params["path"]
    detected = None
    if kind == "auto" and path is None:
        detected = cmdline.detect_bootloader(host, family)
        kind = detected["kind"]
        path = detected["path"]
        if kind == "unknown":
            raise cmdline.BootloaderUnknownError("Cannot find the Xen command line: %s."
                                                 % detected["reason"])
    elif kind == "auto":
        if os.path.basename(path) == "xen-cmdline":
            kind = "xen_cmdline"
        else:
            text = cmdline.read_text(host, path)
            if text is None:
                raise cmdline.ConfigFileMissingError("%s does not exist." % path, file=path)
            kind = "xen_cfg" if any(line.strip().startswith("[") for line in
                                    text.splitlines()) else "grub"
    if path is None:
        path = {"grub": cmdline.GRUB_DEFAULT, "xen_cmdline": cmdline.XEN_CMDLINE_TOOL}.get(kind)
        if kind == "xen_cfg":
            cfgs = cmdline.efi_xen_cfgs(host)
            if not cfgs:
                raise cmdline.ConfigFileMissingError(
                    "bootloader=xen_cfg but no %s/*/xen.cfg exists." % cmdline.EFI_DIR)
            path = cfgs[0]
    reason = detected["reason"] if detected else "bootloader=%s, path=%s given" % (
        params["bootloader"], path)
    regenerate = cmdline.grub_regenerate(host, family) if kind == "grub" else []
    return {"kind": kind, "path": path, "reason": reason, "regenerate": regenerate}


def _selinux_prepare(module):
    """Give the temp file the SELinux context of the file it replaces (what atomic_move does)."""
    if not module.selinux_enabled():
        return None

    def prepare(tmp, target):
        module.set_context_if_different(tmp, module.selinux_context(target), False)
    return prepare


def main():
    module = AnsibleModule(
        argument_spec=dict(
            option=dict(type="str", required=True),
            value=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            bootloader=dict(type="str", default="auto",
                            choices=["auto", "grub", "xen_cfg", "xen_cmdline"]),
            path=dict(type="path"),
            variable=dict(type="str", default="GRUB_CMDLINE_XEN_DEFAULT",
                          choices=["GRUB_CMDLINE_XEN_DEFAULT", "GRUB_CMDLINE_XEN"]),
            section=dict(type="str"),
            distro_family=dict(type="str"),
            backup=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    host = hostio.host_from_module(module)
    try:
        where = _resolve(module, host)
        kind, path = where["kind"], where["path"]
        value = params["value"] if params["state"] == "present" else None
        if kind == "grub":
            files = cmdline.read_grub_files(host, path)
            plan = cmdline.plan_grub_edit(files, params["option"], value, params["state"],
                                          params["variable"])
        elif kind == "xen_cfg":
            text = cmdline.read_text(host, path)
            if text is None:
                raise cmdline.ConfigFileMissingError("%s does not exist." % path, file=path)
            plan = cmdline.plan_xen_cfg_edit(path, text, params["option"], value,
                                             params["state"], params["section"])
        else:
            plan = cmdline.plan_xen_cmdline_tool(host, params["option"], value,
                                                 params["state"], tool=path)
        result = dict(changed=plan.changed, cmdline=plan.after_cmdline,
                      cmdline_before=plan.before_cmdline, file=plan.file or path,
                      files_changed=plan.changed_files(), regenerate=where["regenerate"],
                      commands=plan.commands, notes=plan.notes,
                      bootloader=dict(kind=kind, path=path, reason=where["reason"]))
        if plan.changed and not module.check_mode:
            backups = {}
            staged = []
            try:
                # every temp file first: when one file cannot be written, none is replaced
                for fname in plan.changed_files():
                    staged.append(hostio.stage_write(
                        fname, to_bytes(plan.new_texts[fname], errors="surrogate_or_strict"),
                        prepare=_selinux_prepare(module)))
                if params["backup"]:
                    for fname in plan.changed_files():
                        backups[fname] = hostio.backup_copy(fname)
                while staged:
                    hostio.commit_write(staged.pop(0))
            finally:
                for item in staged:
                    hostio.discard_write(item.tmp)
            if plan.commands:
                result["cmdline"] = cmdline.run_xen_cmdline_tool(host, plan.commands, tool=path)
            if backups:
                result["backup_files"] = backups
                result["backup_file"] = backups.get(result["file"], next(iter(backups.values())))
        # diff is always returned; Ansible shows it with --diff
        diff = [dict(before=plan.before_cmdline + "\n", after=result["cmdline"] + "\n",
                     before_header="Xen command line (%s)" % kind,
                     after_header="Xen command line (%s)" % kind)]
        for fname in plan.changed_files():
            diff.append(dict(before=plan.old_texts[fname], after=plan.new_texts[fname],
                             before_header=fname, after_header=fname))
        result["diff"] = diff
    except errors.XenKdumpError as exc:
        errors.fail_json_from(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
