# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel image checks and crash dump verification, reading headers only.

* :func:`kernel_image_info` -- what a crash kernel image is (bzImage setup header, or an ELF
  ``vmlinux`` through pyelftools): boot protocol, ``init_size``, relocatable, 64-bit.
* :func:`vmcore_info` -- what a captured dump is (ELF core, makedumpfile's kdump-compressed
  format, or its flattened stream as kdump-tools writes it), whether it is whole, and the
  Xen/Linux facts its notes carry.  It never reads page data: every read goes through a
  counting wrapper and the figure is returned as ``bytes_read``.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError

try:
    from elftools.elf.elffile import ELFFile
    from elftools.common.exceptions import ELFError
    HAS_ELFTOOLS = True
    ELFTOOLS_IMPORT_ERROR = None  # type: Optional[str]
except ImportError as _exc:  # pragma: no cover - exercised only where pyelftools is absent
    ELFFile = None  # type: ignore
    ELFError = Exception  # type: ignore
    HAS_ELFTOOLS = False
    ELFTOOLS_IMPORT_ERROR = str(_exc)


# ---------------------------------------------------------------------------------------------
# Errors (XK500-XK599)
# ---------------------------------------------------------------------------------------------

class KernelImageMissing(XenKdumpError):
    code = "XK500"
    title = "Kernel image not found or unreadable"
    remedy = ("Give the path of an installed kernel image (for example /boot/vmlinuz-$(uname -r)) "
              "that the connecting user can read.")


class KernelImageTruncated(XenKdumpError):
    code = "XK501"
    title = "Kernel image is truncated"
    remedy = ("The file is shorter than its own header says; reinstall the kernel package "
              "(apt-get install --reinstall linux-image-...) or copy the image again.")


class NotAKernelImage(XenKdumpError):
    code = "XK502"
    title = "File is not a Linux kernel image"
    remedy = ("Point at a bzImage (vmlinuz, with the 'HdrS' setup header) or an ELF vmlinux, not an "
              "initrd, a compressed Xen hypervisor (xen.gz) or a config file.")


class BootProtocolTooOld(XenKdumpError):
    code = "XK503"
    title = "Kernel boot protocol too old"
    remedy = ("Use a kernel whose bzImage speaks boot protocol 2.10 or newer (any Linux >= 2.6.31); "
              "older images carry no init_size, so the crash region cannot be sized for them.")


class PyelftoolsMissing(XenKdumpError):
    code = "XK504"
    title = "pyelftools is not installed on the managed host"
    remedy = ("Install it on the host (Debian/Ubuntu: apt-get install python3-pyelftools; "
              "others: pip install pyelftools) or run the task with an interpreter that has it.")


class DumpNotFound(XenKdumpError):
    code = "XK510"
    title = "Dump path not found or unreadable"
    remedy = ("Give the path of a dump file or of a crash directory (kdump-tools: /var/crash, or "
              "/var/crash/<timestamp>) that the connecting user (usually root) can read.")


class NoDumpInDirectory(XenKdumpError):
    code = "XK511"
    title = "No dump file in the crash directory"
    remedy = ("No crash has been captured there yet (or only dmesg.* files were saved). Run the fire "
              "drill, or check the capture log (journalctl -u kdump-tools-dump) for why nothing was written.")


class DumpInvalid(XenKdumpError):
    code = "XK512"
    title = "Crash dump is not a valid, complete dump"
    remedy = ("Look at 'problems' in the result: an empty or truncated dump means the capture ran out "
              "of space or makedumpfile failed (on Xen use MAKEDUMP_ARGS='-c -d 0' or -X with "
              "--xen-syms); set fail_on_invalid=false to only report.")


# ---------------------------------------------------------------------------------------------
# Kernel images
# ---------------------------------------------------------------------------------------------

SETUP_HEADER_MAGIC = b"HdrS"
XLF_KERNEL_64 = 1 << 0
LOADED_HIGH = 1 << 0
MIN_BOOT_PROTOCOL = 0x020A          # 2.10: first one with init_size
KERNEL_HEADER_READ = 0x300          # everything up to and including init_size (0x260) and beyond
ELF_MAGIC = b"\x7fELF"


def _u8(buf: bytes, off: int) -> int:
    return buf[off]


def _u16(buf: bytes, off: int) -> int:
    return struct.unpack_from("<H", buf, off)[0]


def _u32(buf: bytes, off: int) -> int:
    return struct.unpack_from("<I", buf, off)[0]


def kernel_image_info(path: str) -> Dict[str, Any]:
    """Describe a kernel image from its headers (reads at most a few KiB).

    Returns ``{format: "bzImage"|"elf", size, boot_protocol, init_size, relocatable, x86_64,
    kernel_alignment, machine, load_size, setup_sects, loadflags, xloadflags}``.
    For an ELF image ``boot_protocol`` is None, ``init_size`` equals ``load_size`` (sum of the
    PT_LOAD ``p_memsz``: the memory the image occupies) and ``kernel_alignment`` is the largest
    PT_LOAD ``p_align``.  Raises :class:`KernelImageMissing`, :class:`KernelImageTruncated`,
    :class:`NotAKernelImage`, :class:`BootProtocolTooOld`.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(KERNEL_HEADER_READ)
    except (IOError, OSError) as exc:
        raise KernelImageMissing("Cannot read kernel image %s: %s." % (path, exc.strerror or exc), path=path)
    if os.path.isdir(path):  # pragma: no cover - open() already fails on a directory
        raise KernelImageMissing("Kernel image %s is a directory." % path, path=path)
    if size == 0:
        raise NotAKernelImage("Kernel image %s is empty (0 bytes)." % path, path=path)
    if head[:4] == ELF_MAGIC:
        return _elf_kernel_info(path, size)
    if len(head) < 0x206:
        if len(head) >= 0x1f1 + 1:
            raise KernelImageTruncated(
                "Kernel image %s is %d bytes: too short to hold the setup header 'HdrS' magic at "
                "0x202." % (path, size), path=path, size=size)
        raise NotAKernelImage("%s is %d bytes: neither an ELF file nor a bzImage (no 'HdrS' at 0x202)."
                              % (path, size), path=path, size=size)
    if head[0x202:0x206] != SETUP_HEADER_MAGIC:
        raise NotAKernelImage(
            "%s is not a kernel image: no 'HdrS' magic at offset 0x202 (found %r) and no ELF magic "
            "(found %r)." % (path, head[0x202:0x206], head[:4]), path=path)
    if len(head) < 0x208:
        raise KernelImageTruncated("Kernel image %s is %d bytes: it ends inside the setup header."
                                   % (path, size), path=path, size=size)
    version = _u16(head, 0x206)
    protocol = "%d.%02d" % (version >> 8, version & 0xFF)
    if version < MIN_BOOT_PROTOCOL:
        raise BootProtocolTooOld(
            "Kernel image %s speaks boot protocol %s; at least 2.10 is needed (init_size)."
            % (path, protocol), path=path, boot_protocol=protocol)
    if len(head) < 0x264:
        raise KernelImageTruncated(
            "Kernel image %s is %d bytes: it ends before init_size at 0x260 (boot protocol %s)."
            % (path, size, protocol), path=path, size=size)
    setup_sects = _u8(head, 0x1F1) or 4   # 0 means 4 (boot.rst)
    setup_bytes = (setup_sects + 1) * 512
    if size <= setup_bytes:
        raise KernelImageTruncated(
            "Kernel image %s is %d bytes but its setup code alone claims %d bytes (setup_sects=%d): "
            "no protected-mode kernel follows." % (path, size, setup_bytes, setup_sects),
            path=path, size=size, setup_bytes=setup_bytes)
    if version >= 0x0208 and len(head) >= 0x250:
        payload_offset = _u32(head, 0x248)
        payload_length = _u32(head, 0x24C)
        need = setup_bytes + payload_offset + payload_length
        if payload_length and need > size:
            raise KernelImageTruncated(
                "Kernel image %s is %d bytes but its compressed payload ends at byte %d "
                "(setup %d + payload_offset %d + payload_length %d)."
                % (path, size, need, setup_bytes, payload_offset, payload_length),
                path=path, size=size, expected_min=need)
    loadflags = _u8(head, 0x211)
    xloadflags = _u16(head, 0x236) if version >= 0x020C else 0
    init_size = _u32(head, 0x260)
    return {
        "format": "bzImage",
        "size": size,
        "boot_protocol": protocol,
        "init_size": init_size,
        "relocatable": bool(_u8(head, 0x234)) if version >= 0x0205 else False,
        "x86_64": bool(xloadflags & XLF_KERNEL_64),
        "kernel_alignment": _u32(head, 0x230) if version >= 0x0205 else None,
        "machine": "x86_64" if xloadflags & XLF_KERNEL_64 else "x86",
        "load_size": init_size,
        "setup_sects": setup_sects,
        "loadflags": loadflags,
        "xloadflags": xloadflags,
    }


_EM_NAMES = {"EM_X86_64": "x86_64", "EM_386": "x86", "EM_AARCH64": "aarch64", "EM_PPC64": "ppc64",
             "EM_S390": "s390x", "EM_ARM": "arm", "EM_RISCV": "riscv"}


def _require_elftools() -> None:
    if not HAS_ELFTOOLS:
        raise PyelftoolsMissing("The Python module 'elftools' cannot be imported: %s."
                                % ELFTOOLS_IMPORT_ERROR)


def _elf_kernel_info(path: str, size: int) -> Dict[str, Any]:
    _require_elftools()
    try:
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            e_type = elf.header["e_type"]
            machine_raw = elf.header["e_machine"]
            loads = []
            interp = False
            for index in range(elf.num_segments()):
                seg = elf.get_segment(index)
                if seg["p_type"] == "PT_INTERP":
                    interp = True
                if seg["p_type"] == "PT_LOAD":
                    loads.append((seg["p_offset"], seg["p_filesz"], seg["p_memsz"], seg["p_align"]))
    except (ELFError, struct.error, ValueError, OSError, IndexError, KeyError) as exc:
        raise KernelImageTruncated("ELF kernel image %s (%d bytes) has unreadable headers: %s."
                                   % (path, size, exc), path=path, size=size)
    if e_type not in ("ET_EXEC", "ET_DYN"):
        raise NotAKernelImage("%s is an ELF file of type %s, not an executable kernel (ET_EXEC/ET_DYN)."
                              % (path, e_type), path=path, e_type=e_type)
    if interp:
        raise NotAKernelImage("%s is a dynamically linked user-space program (it has PT_INTERP), not a "
                              "kernel." % path, path=path)
    if not loads:
        raise NotAKernelImage("ELF file %s has no PT_LOAD segment: nothing a kernel loader could load."
                              % path, path=path)
    for off, filesz, _memsz, _align in loads:
        if off + filesz > size:
            raise KernelImageTruncated(
                "ELF kernel image %s is %d bytes but a PT_LOAD segment ends at byte %d (offset %d + "
                "filesz %d)." % (path, size, off + filesz, off, filesz),
                path=path, size=size, expected_min=off + filesz)
    load_size = sum(memsz for _o, _f, memsz, _a in loads)
    machine = _EM_NAMES.get(machine_raw, str(machine_raw))
    return {
        "format": "elf",
        "size": size,
        "boot_protocol": None,
        "init_size": load_size,
        "relocatable": e_type == "ET_DYN",
        "x86_64": machine == "x86_64",
        "kernel_alignment": max(align for _o, _f, _m, align in loads),
        "machine": machine,
        "load_size": load_size,
        "setup_sects": None,
        "loadflags": None,
        "xloadflags": None,
    }
