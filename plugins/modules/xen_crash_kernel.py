#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xen_crash_kernel
short_description: Load, unload or reload the crash kernel into the Xen hypervisor, idempotently
version_added: "0.1.0"
description:
  - On a Xen PV dom0 the crash kernel belongs to the B(hypervisor). kexec-tools built with
    libxenctrl detects the PV dom0 and sends C(kexec -p) to Xen through hypercalls; this module
    drives it with C(kexec -p <kernel> --initrd=<initrd> --append=<append>) and C(kexec -p -u).
  - Defaults that work on Debian and Ubuntu. The running kernel C(/boot/vmlinuz-<release>);
    kdump-tools' crash initrd C(/var/lib/kdump/initrd.img-<release>) when present, else
    C(/boot/initrd.img-<release>); and a command line B(derived) from the host. That line gets
    C(root=) and friends from dom0's C(/proc/cmdline) and the console from Xen's C(com1=)/C(com2=)
    settings (C(com1=115200,8n1) becomes C(console=ttyS0,115200), Xen's C(console=vga) becomes
    C(console=tty0)). Then C(irqpoll nr_cpus=1 reset_devices), the capture unit
    (C(systemd.unit=kdump-tools-dump.service) when kdump-tools is installed) and O(extra_append).
    dom0's C(console=hvc0) and C(earlyprintk=xen) hang a crash kernel and are never copied.
  - Pre-flight before any load. The kernel's header (bzImage setup header or ELF program headers)
    and the initrd size are checked against Xen's crash region (C(kexec --print-ckr-size)). The
    module refuses, with the numbers, when the region is smaller than what the sizing model
    (the one M(xenkdump.fleet.xen_crash_region) plans with, calibrated on real Xen) needs for this
    kernel C(init_size), this initrd and this host's RAM, or, with O(min_free_mb), when kernel
    C(init_size) + initrd + 1 MiB purgatory leaves less than that of the region free.
  - Idempotence without trusting C(kexec -S -p). On Xen that status is the slot-position bit which
    toggles on every load B(and) every unload. The module keeps a record of what it did since
    this boot under C(/run/xenkdump/crash-kernel.json) (paths, sha256 of kernel and initrd, append,
    boot id, argv, number of load/unload hypercalls). It derives "loaded" from that record and
    cross-checks the status bit by parity. A mismatch means another tool (for example kdump-tools)
    loaded or unloaded behind its back; the module warns, sets RV(mismatch), and loads (or
    unloads) again.
  - Unchanged inputs report C(changed=false); a different kernel, initrd (by content) or append
    reloads.
  - Check mode predicts the same C(changed) and RV(argv) and runs only read-only commands
    (C(kexec --version), C(kexec -S -p), C(kexec --print-ckr-size), C(xl info)).
  - On a host that is not a PV dom0, O(target=auto) changes nothing and returns RV(skipped);
    O(target=hypervisor) fails and says why.
author: xenkdump.fleet developers (@xenkdump)
options:
  state:
    description:
      - V(loaded) loads the crash kernel unless this boot's record shows the same kernel, initrd
        and append already loaded (and the status bit agrees).
      - V(unloaded) unloads it unless the record shows nothing loaded. Without a record of this
        boot it unloads once, because on Xen nothing else can prove that nothing is loaded.
      - V(reloaded) always loads (one hypercall replaces the image).
    type: str
    choices: [loaded, unloaded, reloaded]
    default: loaded
  target:
    description:
      - V(hypervisor) requires a Xen PV dom0 and fails on any other host, saying why (there
        C(kexec -p) would load into the running Linux kernel).
      - V(auto) means the hypervisor on a PV dom0 and does nothing elsewhere.
    type: str
    choices: [auto, hypervisor]
    default: auto
  kernel:
    description:
      - Crash kernel image (bzImage or ELF vmlinux). Default C(/boot/vmlinuz-<running release>).
    type: path
  initrd:
    description:
      - Crash initrd. Default kdump-tools' C(/var/lib/kdump/initrd.img-<release>) when it exists,
        else C(/boot/initrd.img-<release>). An empty string loads no initrd.
    type: path
  append:
    description:
      - The whole crash kernel command line, used instead of the derived one. It is still
        refused when it contains C(console=hvc*), C(earlyprintk=xen) or C(xencons=).
    type: str
  extra_append:
    description:
      - Tokens added to the derived (or given) command line. A key given here replaces the
        derived token with the same key (C(console=) replaces all derived consoles).
    type: str
  capture_unit:
    description:
      - systemd unit the crash kernel boots into to save the dump, added as C(systemd.unit=<unit>).
      - Default C(kdump-tools-dump.service) when kdump-tools' unit file exists, else none.
        An empty string adds none.
    type: str
  min_free_mb:
    description:
      - MiB of the Xen crash region that must stay free after the kernel, initrd and purgatory
        are placed. Xen's region is all the RAM the crash kernel gets, and it needs memory for
        its page tables, the unpacked initramfs, udev and makedumpfile.
      - Left out, the region must instead be at least the sizing model's need for these images
        on this host (C(required_mb) of M(xenkdump.fleet.xen_crash_region) with dump target
        C(local); 128 MiB on the lab, where the crash kernel was measured to need exactly that).
        Give it only to replace the model with a figure a fire drill has proven.
    type: int
  record_path:
    description:
      - Where the loader record lives. M(xenkdump.fleet.xen_facts) reads the default; change it
        only for tests.
    type: path
    default: /run/xenkdump/crash-kernel.json
attributes:
  check_mode:
    support: full
    description: Runs only read-only kexec and xl commands and predicts C(changed) and RV(argv).
  diff_mode:
    support: none
    description: The change is hypervisor state, not a file; RV(before) and RV(after) describe it.
notes:
  - Needs root (C(become=true)) on the dom0.
  - Two outside changes defeat the parity check, because they leave the bit where it was. One is
    an even number of foreign loads/unloads since the last run. The other is a foreign load that
    replaced ours with a different image. Use O(state=reloaded) after running other kexec tools,
    and prove the whole chain with the fire drill playbook.
  - Every error code (C(XK4xx), C(XK5xx)) is explained in the collection's C(docs/troubleshooting.md).
seealso:
  - module: xenkdump.fleet.xen_facts
  - module: xenkdump.fleet.xen_crash_region
requirements:
  - kexec-tools built with libxenctrl (Debian and Ubuntu's is) on a Xen PV dom0.
  - A crash region reserved by Xen (C(crashkernel=) on the B(Xen) command line).
"""

EXAMPLES = r"""
- name: Load the crash kernel into Xen with the derived defaults
  xenkdump.fleet.xen_crash_kernel:
    state: loaded
  become: true

- name: Load with an explicit initrd and an extra option
  xenkdump.fleet.xen_crash_kernel:
    initrd: /boot/initrd.img-6.1.0-56-amd64
    extra_append: nousb
    target: hypervisor
  become: true

- name: Unload it
  xenkdump.fleet.xen_crash_kernel:
    state: unloaded
  become: true

- name: Predict what would run
  xenkdump.fleet.xen_crash_kernel:
  check_mode: true
  register: crash
  become: true

- name: Show the kexec command and how much of the region is used
  ansible.builtin.debug:
    msg: "{{ crash.argv | join(' ') }} ({{ crash.fit.used_mb }} of {{ crash.fit.available_mb }} MiB)"
"""

RETURN = r"""
state:
  description: The requested state.
  type: str
  returned: always
  sample: loaded
target:
  description: Where the image goes, V(hypervisor), or V(none) on a host that is not a PV dom0.
  type: str
  returned: always
  sample: hypervisor
skipped:
  description: True when O(target=auto) found no PV dom0 and did nothing.
  type: bool
  returned: when not a PV dom0
  sample: true
action:
  description: What was (or in check mode would be) done, V(none), V(load) or V(unload).
  type: str
  returned: always
  sample: load
reason:
  description: Why that action.
  type: str
  returned: always
  sample: "inputs changed since the last load: append"
changed_inputs:
  description: Record fields that differ from the wanted ones, when that caused a reload.
  type: list
  elements: str
  returned: when inputs changed
  sample: [append]
argv:
  description: The kexec command run (or that check mode would run); empty when nothing runs.
  type: list
  elements: str
  returned: always
  sample: [/usr/sbin/kexec, -p, /boot/vmlinuz-6.1.0-56-amd64, --initrd=/boot/initrd.img-6.1.0-56-amd64,
           "--append=root=/dev/vda ro console=ttyS0,115200 irqpoll nr_cpus=1 reset_devices systemd.unit=kdump-tools-dump.service"]
append:
  description: The crash kernel command line (for O(state=loaded) and O(state=reloaded)).
  type: str
  returned: when loading
  sample: root=/dev/vda ro console=ttyS0,115200 irqpoll nr_cpus=1 reset_devices systemd.unit=kdump-tools-dump.service
initrd_source:
  description: Why the default initrd was chosen.
  type: str
  returned: when O(initrd) was not given and loading
  sample: "kdump-tools' crash initrd"
image:
  description:
    - Facts about the kernel (format, boot protocol, C(init_size), relocatable, x86_64) and the
      initrd, with sizes and sha256.
  type: dict
  returned: when loading
  sample: {kernel: {format: bzImage, boot_protocol: "2.15", init_size: 49000448, relocatable: true, x86_64: true},
           kernel_sha256: "5e1f...", kernel_size: 8141504, initrd: /boot/initrd.img-6.1.0-56-amd64,
           initrd_sha256: "9a2b...", initrd_size: 31457280}
fit:
  description:
    - How the image fits Xen's crash region, in MiB. C(required_mb) is the least region that fits;
      C(rule) says where it comes from (C(model), or C(min_free_mb) when that option was given).
  type: dict
  returned: when loading
  sample: {used_mb: 71.5, available_mb: 144.0, free_mb: 72.5, min_free_mb: 56.5, required_mb: 128.0,
           rule: model, kernel_mb: 63.6, initrd_mb: 6.9, purgatory_mb: 1.0, fits: true}
before:
  description:
    - Load state before the task. C(before.loaded) comes from this boot's record (null without
      one). C(before.status_bit) is the raw C(kexec -S -p) exit status, a slot bit on Xen.
      C(before.consistent) says whether the record's parity agrees with it.
  type: dict
  returned: on a PV dom0
  sample: {loaded: null, source: status-bit, status_bit: 0, consistent: null, record: null, expected_bit: null,
           note: no record at /run/xenkdump/crash-kernel.json}
after:
  description: Load state after the task (in check mode a prediction, C(after.source=prediction)).
  type: dict
  returned: on a PV dom0
  sample: {loaded: true, source: record, status_bit: 1, consistent: true, expected_bit: 1}
mismatch:
  description: True when the status bit disagreed with the record (another tool touched the image).
  type: bool
  returned: always
  sample: false
mismatch_detail:
  description: What disagreed, when RV(mismatch) is true.
  type: str
  returned: when mismatch
  sample: "kexec -S -p says 0 but our record predicts 1 after 1 load/unload hypercalls: another tool ..."
kexec:
  description: kexec-tools facts (path, version, Xen support and how it was decided).
  type: dict
  returned: on a PV dom0
  sample: {present: true, path: /usr/sbin/kexec, version: 2.0.25, xen_support: true,
           xen_support_source: ELF DT_NEEDED libxenctrl.so.4.17, package: kexec-tools}
record_path:
  description: Where the loader record is kept.
  type: str
  returned: always
  sample: /run/xenkdump/crash-kernel.json
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xenkdump.fleet.plugins.module_utils import errors, hostio, kexec


def record_writer(module, host):
    """Write the loader record atomically: temp file in the same directory + atomic_move."""

    def write(path, text):
        path = host.p(path)
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        fd, tmp = tempfile.mkstemp(prefix=".crash-kernel.", dir=directory)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.chmod(tmp, 0o644)
            module.atomic_move(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    return write


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="loaded", choices=["loaded", "unloaded", "reloaded"]),
            target=dict(type="str", default="auto", choices=["auto", "hypervisor"]),
            kernel=dict(type="path"),
            initrd=dict(type="path"),
            append=dict(type="str"),
            extra_append=dict(type="str"),
            capture_unit=dict(type="str"),
            min_free_mb=dict(type="int"),
            record_path=dict(type="path", default=kexec.RECORD_PATH),
        ),
        supports_check_mode=True,
    )
    if module.params["min_free_mb"] is not None and module.params["min_free_mb"] < 0:
        module.fail_json(msg="min_free_mb must be 0 or more, got %d." % module.params["min_free_mb"])
    host = hostio.host_from_module(module)
    try:
        result = kexec.converge(host, module.params, module.check_mode, record_writer(module, host))
    except errors.XenKdumpError as exc:
        errors.fail_json_from(module, exc)
        return
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if result.get("mismatch"):
        result["mismatch_detail"] = (result.get("before") or {}).get("note")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
