#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xen_facts
short_description: Gather facts about the Xen hypervisor, dom0 and the Xen crash region
version_added: "0.1.0"
description:
  - Gathers, in one round trip and without changing anything, what the rest of
    C(xenkdump.fleet) needs to know about a Xen host.
  - Whether the host runs under Xen, whether it is the control domain (dom0), and the
    guest type (C(PV), C(PVH), C(HVM) or C(none)), with the source that decided it
    (C(/sys/hypervisor/guest_type), C(/proc/xen/capabilities),
    C(/sys/hypervisor/properties/features), DMI).
  - From C(xl info), C(xl list) and C(xl dmesg) on a dom0, the Xen version, the Xen
    command line (raw, tokenised and as options), the B(host) total and free memory, dom0's
    memory, the guests (C(domains)), the number of physical CPUs, and the highest RAM page
    frame from Xen's boot-time e820 map (C(max_pfn)).
  - C(makedumpfile -v) (version, compressors it was built with) and the free space and old dumps
    of O(dump_path), for the C(xenkdump.fleet.capture_plan) filter.
  - Versions with a known capture-breaking bug (C(known_issues)).
  - The crash region Xen reserved (size and start) from Xen's boot-time C(Kdump:) line and
    from C(kexec --print-ckr-size), saying which source answered. When the Xen console ring
    has rotated (no boot banner left in C(xl dmesg)) the result says so and what to do.
  - Whether kexec-tools is installed and built with Xen support, and whether a crash kernel
    is loaded in the hypervisor (from the loader record of
    M(xenkdump.fleet.xen_crash_kernel); on Xen C(kexec -S -p) is a slot-parity bit, not a
    "loaded" flag).
  - dom0's kernel command line and any C(crashkernel=) on it (useless on a PV dom0), the
    distribution family, and where the bootloader keeps the Xen command line.
  - On a host that is not a Xen dom0 (bare metal, another hypervisor, a Xen domU) the module
    does not fail; it reports C(is_dom0=false) with a C(reason), unless O(require_dom0=true).
  - Missing C(xl) or kexec-tools are reported in C(problems) with the package to install.
    C(xl) failing on a dom0, or output that cannot be parsed, fails the task with an error
    code (C(XK1xx)) and the fix.
  - Only reads files and runs C(xl info), C(xl list), C(xl dmesg), C(kexec --version),
    C(kexec --print-ckr-size), C(kexec -S -p) and C(makedumpfile -v); runs no Xen command on a
    non-dom0.
author: xenkdump.fleet developers (@xenkdump)
options:
  require_dom0:
    description:
      - Fail (error code C(XK102)) when the host is not a Xen dom0, instead of reporting it.
    type: bool
    default: false
  dump_path:
    description:
      - Local directory where dumps are written (kdump-tools' C(KDUMP_COREDIR)). Its filesystem's
        free space and the dump directories already in it are returned in C(dump_target); when it
        does not exist yet, the free space of its nearest existing parent.
    type: path
    default: /var/crash
attributes:
  check_mode:
    support: full
    description: The module never changes anything; check mode runs the same read-only gathering.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  facts:
    support: full
    description: Sets C(ansible_facts.xenkdump).
notes:
  - Needs root (C(become=true)) on a dom0 for C(xl) and C(kexec) to reach the hypervisor.
  - The same dictionary is returned twice, as C(ansible_facts.xenkdump) (so later tasks can use
    C(ansible_facts.xenkdump.is_dom0)) and as the top-level key C(xen) (for C(register)).
  - Every error code is explained in the collection's C(docs/troubleshooting.md).
seealso:
  - module: xenkdump.fleet.xen_crash_region
  - module: xenkdump.fleet.xen_crash_kernel
requirements:
  - On a dom0, the Xen tools (C(xl)) and kexec-tools built with libxenctrl.
"""

EXAMPLES = r"""
- name: Learn about the Xen host
  xenkdump.fleet.xen_facts:
  become: true

- name: Show the Xen crash region
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts.xenkdump.crash_region.size_mb }} MiB at
      {{ ansible_facts.xenkdump.crash_region.start_hex }}
      (from {{ ansible_facts.xenkdump.crash_region.source }})

- name: Stop here unless this is a dom0
  xenkdump.fleet.xen_facts:
    require_dom0: true
  become: true

- name: Register the result instead of reading facts
  xenkdump.fleet.xen_facts:
  become: true
  register: xf

- name: Warn about problems (missing tools, no crash region, dom0 crashkernel=)
  ansible.builtin.debug:
    msg: "{{ xf.xen.problems }}"
  when: xf.xen.problems | length > 0
"""

RETURN = r"""
xen:
  description:
    - All facts, the same dictionary as C(ansible_facts.xenkdump).
    - Sub-keys are described below; on a non-dom0 the Xen-side values are C(null).
  returned: success
  type: dict
  contains:
    is_xen:
      description: Running under Xen at all (as dom0 or as a guest).
      type: bool
      returned: always
      sample: true
    is_dom0:
      description: This is the Xen control domain (C(control_d) in C(/proc/xen/capabilities)).
      type: bool
      returned: always
      sample: true
    guest_type:
      description: How this kernel runs on Xen.
      type: str
      returned: always
      choices: [PV, PVH, HVM, none]
      sample: PV
    guest_type_source:
      description: The file or hint that decided C(guest_type), with the reasoning.
      type: str
      returned: always
      sample: /sys/hypervisor/guest_type
    reason:
      description: Why this is not a dom0; empty on a dom0.
      type: str
      returned: always
      sample: "not running under Xen: /sys/hypervisor/type absent, no /proc/xen; no hypervisor CPU flag: bare metal"
    xen_version:
      description: Hypervisor version from C(xl info) (or C(/sys/hypervisor/version) without xl).
      type: str
      returned: always
      sample: 4.17.7
    xen_commandline:
      description: The Xen command line Xen booted with (C(xl info) xen_commandline).
      type: str
      returned: always
      sample: console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M crashkernel=256M@64M noreboot
    xen_cmdline_tokens:
      description: C(xen_commandline) split into tokens.
      type: list
      elements: str
      returned: always
      sample: [console=com1, crashkernel=256M@64M, noreboot]
    xen_cmdline_options:
      description: Option name to value (C(null) for a flag); the last occurrence wins.
      type: dict
      returned: always
      sample: {console: com1, crashkernel: 256M@64M, noreboot: null}
    host_memory_mb:
      description: Host RAM in MiB (C(xl info) total_memory; the whole host, not dom0).
      type: int
      returned: always
      sample: 3071
    host_free_memory_mb:
      description: Host RAM not given to any domain, MiB (C(xl info) free_memory).
      type: int
      returned: always
      sample: 1758
    dom0_memory_mb:
      description: dom0's memory in MiB (the Domain-0 row of C(xl list)).
      type: int
      returned: always
      sample: 1024
    domains:
      description:
        - The guests (every C(xl list) row but Domain-0), running, blocked, paused or dying; C(null)
          when not a dom0 or without C(xl).
      type: list
      elements: dict
      returned: always
      sample: [{name: web01, domid: 1, mem_mb: 4096, vcpus: 2, state: "-b----"}]
    max_pfn:
      description:
        - Page frames up to the end of the highest usable RAM range of Xen's boot-time e820 map
          (C(Xen-e820 RAM map) in C(xl dmesg)), which is the size of makedumpfile's Xen bitmaps. C(null) when
          the console ring no longer holds the map.
      type: int
      returned: always
      sample: 1310720
    highest_ram_address:
      description: The last byte of usable RAM in the same map; C(null) when unknown.
      type: int
      returned: always
      sample: 5368709119
    makedumpfile:
      description:
        - makedumpfile on this host, from C(makedumpfile -v). C(compressors) says which of zlib
          (C(-c), always built in), lzo (C(-l)), snappy (C(-p)), zstd (C(-z)) it has; all C(null)
          and C(known=false) with C(reason) when it is absent or its output was not understood.
      type: dict
      returned: always
      sample:
        present: true
        path: /usr/bin/makedumpfile
        version: 1.7.2
        compressors: {zlib: true, lzo: true, snappy: false, zstd: false}
        known: true
        reason: ""
    dump_target:
      description:
        - Where local dumps go (O(dump_path)), whether it exists, the filesystem's C(free_bytes)
          (available to unprivileged users, f_bavail) and C(total_bytes), measured on
          C(statvfs_path) (the path or its nearest existing parent), and the dump directories
          already there, by name (at most 200, C(dumps_truncated) when there are more; C(bytes)
          counts the regular files directly inside each), C(error) when something could not be read.
      type: dict
      returned: always
      sample:
        path: /var/crash
        exists: true
        statvfs_path: /var/crash
        free_bytes: 2516582400
        total_bytes: 4156556288
        dumps: [{name: "202611261412", bytes: 176005632, files: 1, mtime: 1795960320}]
        dumps_count: 1
        dumps_truncated: false
        error: ""
    known_issues:
      description:
        - Known capture-breaking bugs of the versions on this dom0 (Xen, kexec-tools), from the
          collection's table; empty when none. The kdump role refuses such a host unless the id is
          in C(xenkdump_ignore_known_issues).
      type: list
      elements: dict
      returned: always
      sample:
        - id: xen-4.21-kexec-parked-cpus
          component: xen
          version: 4.21.1-pre
          affected: [4.21.0, 4.21.1]
          fixed_in: [4.21.2, 4.22.0]
          summary: "Xen takes a #GP entering the crash kernel when CPUs are parked ..."
          fix: update the hypervisor to Xen 4.21.2 or 4.22.0 (or later) and reboot into it
    nr_cpus:
      description: Physical CPUs (C(xl info) nr_cpus).
      type: int
      returned: always
      sample: 2
    crash_region:
      description: The crash region Xen reserved at boot.
      type: dict
      returned: always
      contains:
        reserved:
          description: A region is reserved; C(null) when it cannot be told.
          type: bool
          sample: true
        size_bytes:
          description: Size in bytes.
          type: int
          sample: 268435456
        size_mb:
          description: Size in MiB.
          type: int
          sample: 256
        start:
          description: Physical start address; C(null) when only kexec answered.
          type: int
          sample: 67108864
        start_hex:
          description: C(start) in hex.
          type: str
          sample: "0x4000000"
        source:
          description: Which source answered.
          type: str
          choices: [xl dmesg, kexec --print-ckr-size, xl dmesg+kexec, none]
          sample: xl dmesg+kexec
        note:
          description: What went wrong or is missing and what to do (console ring rotated, Xen's
            C(Kdump DISABLED) line, a crashkernel= that reserved nothing).
          type: str
          sample: ""
        console_rotated:
          description: The Xen console ring no longer holds the boot banner (C(null) without xl dmesg).
          type: bool
          sample: false
        kdump_line:
          description: Xen's C(Kdump:) line as printed, or C(null).
          type: str
          sample: "(XEN) Kdump: 256MB (262144kB) at 0x4000000"
        warnings:
          description: Xen's C(crashkernel:) parse warnings from C(xl dmesg).
          type: list
          elements: str
          sample: []
    kexec:
      description: kexec-tools on this host.
      type: dict
      returned: always
      sample: {present: true, path: /sbin/kexec, version: 2.0.25, xen_support: true, package: kexec-tools}
    xl:
      description: The xl tool on this host and the package that provides it on this distribution.
      type: dict
      returned: always
      sample: {present: true, path: /usr/sbin/xl, package: xen-utils-common}
    crash_kernel:
      description:
        - Whether a crash kernel is loaded in the hypervisor. C(loaded) comes from the loader
          record of this boot (C(source=record)); without one it is C(null). C(status_bit) is the
          raw C(kexec -S -p) exit status, which on Xen toggles on every load and unload.
      type: dict
      returned: always
      sample: {loaded: null, source: status-bit, status_bit: 0, consistent: null, record: null}
    crash_images:
      description:
        - On a dom0, what the crash region's sizing needs about the crash kernel, read for the
          C(crash_region) filter and M(xenkdump.fleet.xen_crash_region). The running release's
          image C(kernel) and its bzImage C(kernel_init_size), kdump-tools' crash C(initrd) and its
          C(initrd_size). A value that cannot be read is C(null) (the sizing model's estimate is
          used) and C(notes) says why.
      type: dict
      returned: always
      sample:
        kernel: /boot/vmlinuz-6.1.0-56-amd64
        kernel_init_size: 66682880
        initrd: /var/lib/kdump/initrd.img-6.1.0-56-amd64
        initrd_size: 7216519
        notes: []
    dom0_cmdline:
      description: dom0's kernel command line (C(/proc/cmdline)).
      type: str
      returned: always
      sample: root=/dev/vda ro console=hvc0
    dom0_crashkernel:
      description: C(crashkernel=) on dom0's line, which a PV dom0 kernel ignores; C(null) when absent.
      type: str
      returned: always
      sample: null
    distro_family:
      description: Distribution family from C(/etc/os-release).
      type: str
      returned: always
      choices: [Debian, Suse, RedHat, XCP-ng, unknown]
      sample: Debian
    bootloader:
      description: Where the Xen command line is kept (C(kind) is grub, xen_cfg, xen_cmdline or unknown).
      type: dict
      returned: always
      sample: {kind: grub, path: /etc/default/grub, regenerate: [update-grub], files: [/etc/default/grub], reason: /etc/default/grub exists}
    evidence:
      description: The raw values read while detecting Xen, by source.
      type: dict
      returned: always
      sample: {/sys/hypervisor/type: xen, /proc/xen/capabilities: control_d}
    problems:
      description: Things that stop kdump from working here, each with the fix (empty when none).
      type: list
      elements: str
      returned: always
      sample: ["kexec-tools is not installed: install package kexec-tools"]
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: success
  type: complex
  contains:
    xenkdump:
      description: The same dictionary as RV(xen).
      type: dict
      returned: success
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xenkdump.fleet.plugins.module_utils import errors, hostio, xen


def main():
    module = AnsibleModule(
        argument_spec=dict(require_dom0=dict(type="bool", default=False),
                           dump_path=dict(type="path", default="/var/crash")),
        supports_check_mode=True,
    )
    host = hostio.host_from_module(module)
    try:
        facts = xen.gather(host, dump_path=module.params["dump_path"])
        if module.params["require_dom0"]:
            xen.require_dom0(facts)
    except errors.XenKdumpError as exc:
        errors.fail_json_from(module, exc)
        return
    module.exit_json(changed=False, xen=facts, ansible_facts={"xenkdump": facts})


if __name__ == "__main__":
    main()
