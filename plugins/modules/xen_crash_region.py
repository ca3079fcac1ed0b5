#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xen_crash_region
short_description: Size the Xen crash region for a host, check the reservation and say what to change
version_added: "0.1.0"
description:
  - Read-only planner. Turns host facts and a sizing policy into the C(crashkernel=) value the
    B(Xen) command line should carry on this host, what Xen would reserve for it, whether the
    current reservation is right, and the exact command-line change in the shape
    M(xenkdump.fleet.xen_cmdline) takes (C(option), C(value), C(state)).
  - Uses Xen's own C(crashkernel=) grammar and selection rules (C(xen/common/kexec.c)), not
    Linux's. A C(<start>-<end>:<size>) range is chosen by the B(host) RAM (C(xl info)
    C(total_memory)), start inclusive, end exclusive, first match wins.
  - The size comes from one sizing model (kernel C(init_size), initrd, purgatory, crash kernel
    runtime, capture userspace per dump target, and makedumpfile's bitmap, which grows with host
    RAM on Xen). See C(docs/sizing.md) in the collection for every figure and its source.
  - Xen has no default 4 GiB limit for the region. With O(below_4g=true) (the default) the
    recommendation carries C(,below=4G) (plain size) or C(<4G) (range list; Xen 4.17 ignores
    C(,below=) after a range list).
  - Each input defaults to the live host's facts (the same gathering as
    M(xenkdump.fleet.xen_facts)). When O(total_memory_mb), O(nr_cpus) and O(xen_commandline)
    are all given, nothing is read from the host, so the module runs anywhere, for example on
    the controller with C(delegate_to=localhost).
  - Never changes anything; C(changed) is always false.
author: xenkdump.fleet developers (@xenkdump)
options:
  size:
    description:
      - C(auto) to size the region with the sizing model, or an explicit Xen C(crashkernel=)
        value (for example C(512M), C(384M,below=4G), C(0-64G:256M,64G-:512M<4G)), which is
        validated and given the below-4 GiB placement when O(below_4g=true) and it has none.
    type: str
    default: auto
  below_4g:
    description:
      - Require the region to end below 4 GiB. Values that do not guarantee it get the verdict
        C(wrong_placement); explicit O(size) values that contradict it fail with C(XK211).
    type: bool
    default: true
  headroom_mb:
    description:
      - MiB added to the model's need before rounding up the recommendation.
    type: int
    default: 0
  headroom_pct:
    description:
      - Percent added to the model's need before rounding up the recommendation.
    type: float
    default: 10.0
  dump_target:
    description:
      - Where the capture kernel writes the dump; network targets need more capture memory.
    type: str
    choices: [local, nfs, ssh]
    default: local
  total_memory_mb:
    description:
      - The host's total RAM in MiB as C(xl info) C(total_memory) reports it (the B(host), not
        dom0). Defaults to the live host's value.
    type: int
  nr_cpus:
    description:
      - Physical CPUs (C(xl info) C(nr_cpus)). Defaults to the live host's value.
    type: int
  xen_commandline:
    description:
      - The Xen command line (C(xl info) C(xen_commandline)). An empty string means "no
        options". Defaults to the live host's value.
    type: str
  dom0_cmdline:
    description:
      - dom0's kernel command line (C(/proc/cmdline)), used to spot a C(crashkernel=) put on the
        wrong line. Defaults to the live host's value when facts are gathered, else unknown.
    type: str
  reserved_mb:
    description:
      - MiB Xen actually reserved this boot (Xen's C(Kdump:) line or C(kexec --print-ckr-size)).
        Defaults to the live host's value when facts are gathered, else unknown.
    type: int
  kernel_init_size:
    description:
      - The crash kernel's C(init_size) in bytes (bzImage setup header, offset C(0x260)).
      - When the module reads the host itself (some of O(total_memory_mb), O(nr_cpus),
        O(xen_commandline) left out) and this is left out, it is read from the running kernel's
        image C(/boot/vmlinuz-<release>); when that cannot be read, the figure of a Debian 12 6.1
        kernel (66682880) is used. See RV(image_sizes).
    type: int
  initrd_size:
    description:
      - The crash kernel's initrd size in bytes.
      - Read on the host like O(kernel_init_size), from kdump-tools' crash initrd
        C(/var/lib/kdump/initrd.img-<release>); when there is none yet (kdump-tools not installed),
        the model's estimate for such an initrd is used (docs/sizing.md).
    type: int
attributes:
  check_mode:
    support: full
    description: The module only computes; check mode runs the same computation.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
notes:
  - Gathering live facts needs root (C(become=true)) on the dom0 for C(xl) and C(kexec).
  - The verdict C(too_large) means more than twice the need and more than the need plus
    256 MiB.
  - A value with C(<) must be escaped (C(\\<)) in GRUB configuration files; prefer plain
    sizes with C(,below=).
seealso:
  - module: xenkdump.fleet.xen_facts
  - module: xenkdump.fleet.xen_cmdline
"""

EXAMPLES = r"""
- name: Plan the crash region of a dom0 from its live facts
  xenkdump.fleet.xen_crash_region:
  become: true
  register: crash_plan

- name: Apply the planned Xen command-line change
  xenkdump.fleet.xen_cmdline:
    option: "{{ crash_plan.change.option }}"
    value: "{{ crash_plan.change.value }}"
    state: present
  become: true
  when: crash_plan.change.state == 'present'

- name: Plan on the controller from facts gathered earlier, touching no hypervisor
  xenkdump.fleet.xen_crash_region:
    total_memory_mb: "{{ ansible_facts.xenkdump.host_memory_mb }}"
    nr_cpus: "{{ ansible_facts.xenkdump.nr_cpus }}"
    xen_commandline: "{{ ansible_facts.xenkdump.xen_commandline }}"
    dom0_cmdline: "{{ ansible_facts.xenkdump.dom0_cmdline }}"
    reserved_mb: "{{ ansible_facts.xenkdump.crash_region.size_mb }}"
    dump_target: nfs
  delegate_to: localhost

- name: Ask for an explicit size instead of the model's
  xenkdump.fleet.xen_crash_region:
    size: 512M
    total_memory_mb: 262144
    nr_cpus: 64
    xen_commandline: "console=com1 dom0_mem=4G,max:4G"
  delegate_to: localhost
"""

RETURN = r"""
recommended:
  description: The crashkernel= value (Xen grammar, without C(crashkernel=)) the Xen command line
    should carry. The current value when that one is fine.
  type: str
  returned: success
  sample: "256M,below=4G"
recommended_size_mb:
  description: MiB Xen would reserve on this host for RV(recommended).
  type: int
  returned: success
  sample: 256
current:
  description: The crashkernel= value on the Xen command line now (the last one when repeated), or null.
  type: str
  returned: success
  sample: "256M@64M"
current_size_mb:
  description: MiB Xen would reserve on this host for RV(current); null when there is none or it is invalid.
  type: int
  returned: success
  sample: 256
current_error:
  description: Why RV(current) is not a valid Xen value, or null.
  type: str
  returned: success
reserved_mb:
  description: MiB Xen actually reserved this boot, or null when unknown.
  type: int
  returned: success
  sample: 256
required_mb:
  description: MiB the sizing model says the region must hold on this host.
  type: int
  returned: success
  sample: 225
verdict:
  description:
    - C(ok), C(missing) (no crashkernel= on the Xen line), C(too_small), C(too_large),
      C(wrong_placement) (not kept below 4 GiB while O(below_4g=true)), or
      C(on_dom0_cmdline_only) (crashkernel= only on dom0's line, which a PV dom0 ignores).
  type: str
  returned: success
  sample: ok
reboot_required:
  description: True when the Xen command line must change, or when what Xen reserved this boot
    differs from what the (new) line asks for.
  type: bool
  returned: success
  sample: false
change:
  description: The Xen command-line change, in the shape M(xenkdump.fleet.xen_cmdline) takes.
  type: dict
  returned: success
  contains:
    option:
      description: Always C(crashkernel).
      type: str
    value:
      description: The value to set (RV(recommended)).
      type: str
    state:
      description: C(present) when the line must change, C(unchanged) when it is right already.
      type: str
  sample: {"option": "crashkernel", "value": "256M,below=4G", "state": "present"}
reasons:
  description: Why, in sentences a person can read.
  type: list
  elements: str
  returned: success
sizing:
  description: The sizing model's figures for this host (components in MiB, inputs used).
  type: dict
  returned: success
inputs_source:
  description: C(explicit) when every needed input was given, C(facts) when live facts filled some.
  type: str
  returned: success
  sample: explicit
image_sizes:
  description:
    - With RV(inputs_source=facts), the crash kernel image and crash initrd the sizes were read from
      (null when not read) and notes on what could not be read; null otherwise.
  type: dict
  returned: success
  sample: {"kernel": "/boot/vmlinuz-6.1.0-56-amd64", "initrd": "/var/lib/kdump/initrd.img-6.1.0-56-amd64", "notes": []}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel, errors, hostio

NEEDED = ("total_memory_mb", "nr_cpus", "xen_commandline")


def _live_facts(module):
    """The xen_facts dictionary of this host, or a clear XK212 when it cannot be had."""
    missing = [name for name in NEEDED if module.params[name] is None]
    try:
        from ansible_collections.xenkdump.fleet.plugins.module_utils import xen
    except ImportError as exc:  # pragma: no cover - only when the collection is broken
        raise crashkernel.PlanInputsMissing(
            "Missing %s and the host facts module cannot be loaded (%s)." % (", ".join(missing), exc))
    facts = xen.gather(hostio.host_from_module(module))
    if not facts.get("is_dom0"):
        raise crashkernel.PlanInputsMissing(
            "Missing %s, and this host is not a Xen dom0 (%s) so they cannot be read from it."
            % (", ".join(missing), facts.get("reason") or "not running under Xen"),
            missing=missing)
    return facts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            size=dict(type="str", default="auto"),
            below_4g=dict(type="bool", default=True),
            headroom_mb=dict(type="int", default=0),
            headroom_pct=dict(type="float", default=10.0),
            dump_target=dict(type="str", default="local", choices=["local", "nfs", "ssh"]),
            total_memory_mb=dict(type="int"),
            nr_cpus=dict(type="int"),
            xen_commandline=dict(type="str"),
            dom0_cmdline=dict(type="str"),
            reserved_mb=dict(type="int"),
            kernel_init_size=dict(type="int"),
            initrd_size=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    policy = dict(size=p["size"], below_4g=p["below_4g"], dump_target=p["dump_target"],
                  kernel_init_size=p["kernel_init_size"], initrd_size=p["initrd_size"],
                  headroom_pct=p["headroom_pct"], headroom_mb=p["headroom_mb"])
    source = "explicit"
    image_sizes = None
    try:
        if any(p[name] is None for name in NEEDED):
            # The live facts, with every input given as an option in their place; the same
            # planner as the crash_region filter (crashkernel.plan_from_facts).
            facts = dict(_live_facts(module))
            source = "facts"
            for option, key in (("total_memory_mb", "host_memory_mb"), ("nr_cpus", "nr_cpus"),
                                ("xen_commandline", "xen_commandline"), ("dom0_cmdline", "dom0_cmdline")):
                if p[option] is not None:
                    facts[key] = p[option]
            if p["reserved_mb"] is not None:  # a given size comes without a start
                facts["crash_region"] = {"size_mb": p["reserved_mb"], "start": None}
            sizes = facts.get("crash_images") or {}
            image_sizes = {"kernel": sizes.get("kernel"), "initrd": sizes.get("initrd"), "notes": sizes.get("notes") or []}
            result = crashkernel.plan_from_facts(facts, **policy)
        else:
            result = crashkernel.plan(
                total_memory_mb=p["total_memory_mb"], nr_cpus=p["nr_cpus"], xen_commandline=p["xen_commandline"],
                dom0_cmdline=p["dom0_cmdline"], reserved_mb_now=p["reserved_mb"], **policy)
    except errors.XenKdumpError as exc:
        errors.fail_json_from(module, exc)
        return
    out = result.as_dict()
    module.exit_json(changed=False, inputs_source=source, image_sizes=image_sizes, **out)


if __name__ == "__main__":
    main()
