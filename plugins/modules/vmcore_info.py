#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vmcore_info
short_description: Verify a captured crash dump (Xen or Linux) from its headers, without reading it all
version_added: "0.1.0"
description:
  - Tells whether a crash dump is a real, complete dump, and what it contains, reading only
    headers, notes and, for makedumpfile's formats, the two page bitmaps - never page data (an
    ELF core costs a few KiB even for a host with hundreds of GiB; a kdump-compressed or
    flattened dump adds max_mapnr/8 bytes per bitmap, 160 KiB for a 3 GiB host, 16 MiB for
    512 GiB, read 1 MiB at a time; the count is returned as RV(bytes_read)).
  - O(path) is a dump file or a crash directory. For a directory the newest file (by
    modification time) matching O(patterns) and not O(exclude) is chosen, looking in the
    directory and its immediate subdirectories, so C(/var/crash) finds kdump-tools'
    C(/var/crash/<timestamp>/dump.<timestamp>); C(dmesg.*) files are skipped.
  - Recognises ELF cores (C(/proc/vmcore), C(makedumpfile -E)), makedumpfile's
    kdump-compressed format (C(KDUMP   ) signature), and its flattened format (C(makedumpfile)
    signature; what kdump-tools writes). A flattened file is followed header by header
    without reading the data blocks, and the kdump-compressed or ELF file it rebuilds into is
    checked as well.
  - Flags empty files (a 0-byte dump, as kdump-tools writes when makedumpfile fails on Xen),
    truncated files (shorter than their program headers, disk_dump_header, sub header or page
    descriptors claim, or a flattened stream without its end marker), dumps makedumpfile marked
    incomplete, and files that are not crash dumps.
  - For a Xen hypervisor dump it reports the Xen version from C(XEN_ELFNOTE_CRASH_INFO),
    the number of CPUs (C(CORE)/C(NT_PRSTATUS) notes), the number of C(XEN_ELFNOTE_CRASH_REGS)
    notes and the C(VMCOREINFO_XEN) keys; for a Linux dump C(OSRELEASE) and C(CRASHTIME) from
    C(VMCOREINFO); for a kdump-compressed dump the header facts (CPUs, block size, utsname,
    dump level, compression).
  - Says what the dump holds (RV(contents)) - for a kdump-compressed or flattened dump the pages
    present in the host's memory (1st bitmap) and the pages written (2nd bitmap), the dump level
    and whether Xen domain (domU) pages were left out (C(makedumpfile -X)); for an ELF core the
    memory its PT_LOADs cover against the bytes the file holds.
  - Fails the task when the dump is not valid (error code C(XK512), with every problem in the
    message and the whole report in the result), unless O(fail_on_invalid=false).
  - Read-only. Never changes anything; check mode does exactly the same.
author: xenkdump.fleet developers (@xenkdump)
options:
  path:
    description:
      - A dump file (for example C(/proc/vmcore) in the crash kernel, or
        C(/var/crash/202611261152/dump.202611261152)) or a crash directory such as C(/var/crash).
      - A symlink is followed. Anything but a regular file (a FIFO, a device such as C(/dev/zero), a socket)
        is refused with error XK010 before a byte is read, so the task can neither block nor read without end.
    type: path
    required: true
  expect:
    description:
      - What the dump must be. V(xen) adds a problem when no Xen note is found (a dom0 crash
        captured instead of a hypervisor crash, or a capture that lost the notes);
        V(linux) when the dump is a Xen hypervisor dump.
    type: str
    choices: [any, xen, linux]
    default: any
  fail_on_invalid:
    description:
      - Fail the task when the dump is not valid. With V(false) the module only reports
        (RV(valid), RV(problems)).
    type: bool
    default: true
  patterns:
    description:
      - Shell-style file name patterns of dump files, used only when O(path) is a directory.
    type: list
    elements: str
    default: ["dump*", "vmcore*", "*.vmcore", "*.core", "*.kdump"]
  exclude:
    description:
      - File name patterns never taken as dumps (used only when O(path) is a directory).
    type: list
    elements: str
    default: ["*dmesg*", "*.txt", "*.log"]
extends_documentation_fragment:
  - xenkdump.fleet.read_only
notes:
  - Needs C(pyelftools) on the managed host for ELF cores (Debian C(python3-pyelftools)).
  - Reading C(/proc/vmcore) or C(/var/crash) needs root (C(become=true)).
  - Reads are bounded by the headers, not by what they claim - all PT_NOTE segments together are read at
    most once and up to 8 MiB, and a flattened stream stops at a data block of size 0 (a zero-filled tail
    is reported as corrupt, not walked).
  - C(XEN_ELFNOTE_CRASH_INFO) holds the Xen major and minor version as numbers but the extra
    version, changeset and compiler only as physical-address pointers into Xen's memory. In an
    ELF core the module follows them into the PT_LOAD that holds them (128 bytes each); when
    that memory is not in the file (or in a kdump-compressed dump, where it is compressed) only
    major.minor is reported and RV(xen.version_note) says why.
  - Every error code is explained in the collection's C(docs/troubleshooting.md).
seealso:
  - module: xenkdump.fleet.xen_facts
  - module: xenkdump.fleet.xen_crash_kernel
requirements:
  - pyelftools (for ELF cores)
"""

EXAMPLES = r"""
- name: Verify the newest dump kdump-tools saved
  xenkdump.fleet.vmcore_info:
    path: /var/crash
    expect: xen
  become: true
  register: dump

- name: Show what it is
  ansible.builtin.debug:
    msg: >-
      {{ dump.path }}: Xen {{ dump.xen.full_version }}, {{ dump.nr_cpus }} CPUs,
      {{ dump.size }} bytes ({{ dump.bytes_read }} bytes read to verify it)

- name: Show what the dump holds
  ansible.builtin.debug:
    msg: >-
      dump level {{ dump.contents.dump_level }}: {{ dump.contents.dumped_mib }} of
      {{ dump.contents.present_mib }} MiB written ({{ dump.contents.dumped_pct }} %),
      domU pages excluded - {{ dump.contents.domu_pages_excluded }} ({{ dump.contents.note }})

- name: Check /proc/vmcore inside the crash kernel, report only
  xenkdump.fleet.vmcore_info:
    path: /proc/vmcore
    fail_on_invalid: false
  register: vmcore

- name: Complain about a bad dump without failing the play
  ansible.builtin.debug:
    msg: "{{ vmcore.problems }}"
  when: not vmcore.valid
"""

RETURN = r"""
path:
  description: The dump file that was inspected (the newest one when O(path) was a directory).
  returned: success or an invalid dump
  type: str
  sample: /var/crash/202611261152/dump.202611261152
source:
  description: O(path) as given.
  returned: success or an invalid dump
  type: str
  sample: /var/crash
candidates:
  description: Every dump file found (oldest first); only O(path) itself when it is a file.
  returned: success or an invalid dump
  type: list
  elements: str
format:
  description: What the file is.
  returned: success or an invalid dump
  type: str
  choices: [elf, kdump-compressed, flattened, empty, unknown]
  sample: flattened
inner_format:
  description: For a flattened file, the format it rebuilds into (C(makedumpfile -R)); else null.
  returned: success or an invalid dump
  type: str
  sample: kdump-compressed
valid:
  description: The dump is complete and is a crash dump (no RV(problems)).
  returned: success or an invalid dump
  type: bool
  sample: true
problems:
  description: Everything wrong with the dump, each a sentence with the numbers that do not fit.
  returned: success or an invalid dump
  type: list
  elements: str
  sample: ["truncated: the flattened stream ends at byte 65536 after 17 data blocks without the end marker"]
remarks:
  description: Things worth knowing that do not make the dump invalid.
  returned: success or an invalid dump
  type: list
  elements: str
empty:
  description: The file is 0 bytes.
  returned: success or an invalid dump
  type: bool
truncated:
  description: The file is shorter than its headers claim, or a flattened stream has no end marker.
  returned: success or an invalid dump
  type: bool
size:
  description: File size in bytes.
  returned: success or an invalid dump
  type: int
  sample: 2952261632
expected_size:
  description:
    - The size the headers require (ELF - end of the last segment; kdump-compressed - end of the
      last page data the descriptors point to). For a flattened file its own size when the stream
      is complete, else null. Null when it cannot be known.
  returned: success or an invalid dump
  type: int
bytes_read:
  description: Bytes the module read from the file to reach its verdict.
  returned: success or an invalid dump
  type: int
  sample: 6086
kind:
  description: Whose crash this is, from the notes.
  returned: success or an invalid dump
  type: str
  choices: [xen, linux, unknown]
is_xen:
  description: The dump carries Xen notes (a hypervisor crash); null when it cannot be told.
  returned: success or an invalid dump
  type: bool
nr_cpus:
  description: CPUs in the dump (C(CORE)/C(NT_PRSTATUS) notes; for kdump-compressed the header's nr_cpus).
  returned: success or an invalid dump
  type: int
  sample: 2
memory_bytes:
  description: Memory the ELF core covers (sum of PT_LOAD p_memsz); null for other formats.
  returned: success or an invalid dump
  type: int
  sample: 2952248320
pt_load_count:
  description: Number of PT_LOAD segments of an ELF core.
  returned: success or an invalid dump
  type: int
  sample: 4
xen:
  description: Xen facts from the notes; null for a non-Xen dump.
  returned: success or an invalid dump
  type: dict
  contains:
    version:
      description: C(major.minor) from C(XEN_ELFNOTE_CRASH_INFO).
      type: str
      sample: "4.17"
    full_version:
      description: Version with the extra version when it could be read from the dump, else as RV(xen.version).
      type: str
      sample: "4.17.7"
    extra_version:
      description: Xen's extra version string, when readable.
      type: str
    version_note:
      description: Why only major.minor is reported, when that is the case.
      type: str
    major:
      description: Xen major version.
      type: int
    minor:
      description: Xen minor version.
      type: int
    crash_info:
      description: A C(XEN_ELFNOTE_CRASH_INFO) (0x1000001) note is present.
      type: bool
    crash_regs:
      description: Number of C(XEN_ELFNOTE_CRASH_REGS) (0x1000002) notes (one per CPU).
      type: int
      sample: 2
    tainted:
      description: Xen's taint flags at the crash.
      type: int
    vmcoreinfo:
      description: The C(VMCOREINFO_XEN) keys and values.
      type: dict
    pointers:
      description: Physical addresses (hex) of the strings C(XEN_ELFNOTE_CRASH_INFO) points to.
      type: dict
    strings:
      description: Those strings when readable from the dump, else null each.
      type: dict
linux:
  description: Linux facts from C(VMCOREINFO) (osrelease, crashtime, crashtime_iso, pagesize, build_id); null when absent.
  returned: success or an invalid dump
  type: dict
  sample: {osrelease: 6.1.0-56-amd64, crashtime: 1764157920, crashtime_iso: "2025-11-26T11:52:00+00:00"}
notes:
  description: Count of ELF notes and a count per C(name/type).
  returned: success or an invalid dump
  type: dict
  sample: {count: 6, types: {"CORE/0x1": 2, "Xen/0x1000002": 2, "Xen/0x1000001": 1, "VMCOREINFO_XEN/0x0": 1}}
elf:
  description: ELF header facts (class, endian, type, machine, phnum, pt_note_count); null for other formats.
  returned: success or an invalid dump
  type: dict
kdump:
  description:
    - disk_dump_header and kdump_sub_header facts of a kdump-compressed (or flattened) dump -
      header_version, block_size, nr_cpus, utsname, timestamp, status, compression, incomplete_flag,
      sub_hdr_size, bitmap_blocks, max_mapnr, dump_level, split, phys_base, dumpable_pages and the
      sizes of the vmcoreinfo, note and eraseinfo areas. Null for other formats.
  returned: success or an invalid dump
  type: dict
contents:
  description:
    - What the dump holds, from the bitmaps of a kdump-compressed (or flattened) dump, or from
      the PT_LOAD program headers of an ELF core. Page data is never read.
    - Null for an empty file, a file that is not a dump, or headers too corrupt to locate the
      bitmaps. Counts that cannot be made (a bitmap cut short, an ELF core without C(PAGESIZE)
      in its VMCOREINFO) are null; RV(problems) and RV(contents.note) say why.
  returned: success or an invalid dump
  type: dict
  contains:
    source:
      description: Where the figures come from - V(bitmaps) (kdump-compressed, flattened) or V(pt_load) (ELF).
      type: str
      choices: [bitmaps, pt_load]
      sample: bitmaps
    dump_level:
      description: makedumpfile's C(-d) level from the kdump_sub_header; null for an ELF core (it records none).
      type: int
      sample: 0
    page_size:
      description: Page size in bytes (the disk_dump_header's block_size; for an ELF core C(PAGESIZE) from VMCOREINFO or VMCOREINFO_XEN, else null).
      type: int
      sample: 4096
    max_mapnr:
      description:
        - Highest page frame number + 1 (kdump_sub_header max_mapnr_64, or the header's 32-bit one before
          version 6; for an ELF core the end of the highest PT_LOAD in pages, null without a page size).
      type: int
      sample: 1310720
    pages_present:
      description: Pages present in the host's memory - set bits of the 1st bitmap (ELF - pages the PT_LOADs' p_memsz cover).
      type: int
      sample: 720764
    pages_dumped:
      description:
        - Pages written to the dump - set bits of the 2nd bitmap, zero pages included (at C(-d 1) they
          stay in the bitmap and share one zero page descriptor). ELF - pages the PT_LOADs' p_filesz cover.
      type: int
      sample: 720764
    pages_excluded:
      description: RV(contents.pages_present) - RV(contents.pages_dumped).
      type: int
      sample: 0
    present_bytes:
      description: Memory present, in bytes (pages_present x page_size; ELF - sum of PT_LOAD p_memsz).
      type: int
      sample: 2952249344
    dumped_bytes:
      description: Memory written, in bytes before compression (pages_dumped x page_size; ELF - sum of PT_LOAD p_filesz).
      type: int
      sample: 2952249344
    present_mib:
      description: RV(contents.present_bytes) in MiB, one decimal.
      type: float
      sample: 2815.5
    dumped_mib:
      description: RV(contents.dumped_bytes) in MiB, one decimal.
      type: float
      sample: 2815.5
    dumped_pct:
      description: RV(contents.dumped_bytes) as a percentage of RV(contents.present_bytes), two decimals.
      type: float
      sample: 100.0
    bytes_per_present_mib:
      description:
        - The dump file's size on disk (RV(size)) per MiB of memory present - what a dump costs per MiB of
          host RAM with these capture settings (about 62,500 for C(-c -d 0) on the Xen 4.17 lab host,
          about 1 MiB for an ELF core).
      type: int
      sample: 62514
    domu_pages_excluded:
      description:
        - V(true) when the dump level is 0 or 1 and pages were excluded - on a Xen dump (no Linux
          VMCOREINFO) only C(makedumpfile -X) can leave pages out at those levels, so they are domU
          pages. V(false) at level 0 or 1 with nothing excluded.
        - Null when it cannot be told - levels above 1 (they exclude by page type), ELF cores, Linux
          dumps, parts of a split dump, bitmaps cut short.
      type: bool
      sample: false
    note:
      description: One sentence on what the figures mean, or why some are null.
      type: str
      sample: "dump level 0 and nothing excluded: every page present was written"
flattened:
  description:
    - Flattened stream facts - type, version, data_blocks, end_marker, image_size (size of the
      rebuilt file), image_expected_size, trailing_bytes. Null for other formats.
  returned: success or an invalid dump
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xenkdump.fleet.plugins.module_utils import errors
from ansible_collections.xenkdump.fleet.plugins.module_utils import elfcore


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            expect=dict(type="str", default="any", choices=["any", "xen", "linux"]),
            fail_on_invalid=dict(type="bool", default=True),
            patterns=dict(type="list", elements="str", default=list(elfcore.DEFAULT_PATTERNS)),
            exclude=dict(type="list", elements="str", default=list(elfcore.DEFAULT_EXCLUDE)),
        ),
        supports_check_mode=True,
    )
    params = module.params
    report = None
    try:
        report = elfcore.vmcore_info(params["path"], expect=params["expect"],
                                     patterns=params["patterns"], exclude=params["exclude"])
        if params["fail_on_invalid"]:
            elfcore.require_valid(report)
    except errors.XenKdumpError as exc:
        errors.fail_json_from(module, exc, changed=False, **(report or {}))
        return
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
