# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel image checks and crash dump verification, reading headers only.

* :func:`kernel_image_info` -- what a crash kernel image is (bzImage setup header, or an ELF
  ``vmlinux`` through pyelftools): boot protocol, ``init_size``, relocatable, 64-bit.
* :func:`vmcore_info` -- what a captured dump is (ELF core, makedumpfile's kdump-compressed
  format, or its flattened stream as kdump-tools writes it), whether it is whole, and the
  Xen/Linux facts its notes carry, and what it holds (``contents``: the page bitmaps of
  makedumpfile's formats, counted 1 MiB at a time, or the PT_LOAD sizes of an ELF core).  It
  never reads page data: every read goes through a counting wrapper and the figure is returned
  as ``bytes_read``.
"""

from __future__ import annotations

import bisect
import os
import struct
from typing import Any, Dict, List, Optional, Set, Tuple

from ansible_collections.xenkdump.fleet.plugins.module_utils import hostio
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


# ---------------------------------------------------------------------------------------------
# Crash dumps: readers that count every byte
# ---------------------------------------------------------------------------------------------

class CountingReader(object):
    """A read-only, unbuffered file that counts the bytes it hands out (``bytes_read``).

    File-like enough for pyelftools (read/seek/tell) plus ``pread`` and ``size``.
    """

    def __init__(self, path: str) -> None:
        # a FIFO would block, a device never ends: only regular files (hostio.NotARegularFile)
        self._fh = os.fdopen(hostio.open_regular(path), "rb", buffering=0)
        self.size = os.fstat(self._fh.fileno()).st_size
        self.bytes_read = 0
        self.reads = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = max(0, self.size - self._fh.tell())
        chunks = []
        while n > 0:
            data = self._fh.read(n)
            if not data:
                break
            chunks.append(data)
            n -= len(data)
        out = b"".join(chunks)
        self.bytes_read += len(out)
        self.reads += 1
        return out

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def pread(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0 or offset >= self.size:
            return b""
        self._fh.seek(offset)
        return self.read(min(n, self.size - offset))

    def close(self) -> None:
        self._fh.close()


class FlatImage(object):
    """The file ``makedumpfile -R`` would rebuild from a flattened stream, read in place.

    ``blocks`` are (offset, size, position-in-stream) in stream order; a later write wins where
    blocks overlap; never-written holes read as zeros (as in the rebuilt sparse file).
    """

    def __init__(self, reader: CountingReader, offsets: List[int], sizes: List[int],
                 positions: List[int]) -> None:
        self._r = reader
        self._off = offsets
        self._len = sizes
        self._pos = positions
        self.size = max([o + s for o, s in zip(offsets, sizes)] or [0])
        self._cur = 0
        # blocks sorted by image offset, so a read looks only at the blocks it can overlap
        self._by_start = sorted(range(len(offsets)), key=offsets.__getitem__)
        self._starts = [offsets[i] for i in self._by_start]
        self._longest = max(sizes or [0])

    @property
    def bytes_read(self) -> int:
        return self._r.bytes_read

    def pread(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0 or offset >= self.size:
            return b""
        n = min(n, self.size - offset)
        out = bytearray(n)
        end = offset + n
        first = bisect.bisect_right(self._starts, offset - self._longest)
        last = bisect.bisect_left(self._starts, end)
        for index in sorted(self._by_start[first:last]):     # stream order: a later write wins
            boff, blen, bpos = self._off[index], self._len[index], self._pos[index]
            lo = max(offset, boff)
            hi = min(end, boff + blen)
            if lo < hi:
                out[lo - offset:hi - offset] = self._r.pread(bpos + (lo - boff), hi - lo).ljust(hi - lo, b"\0")
        return bytes(out)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = max(0, self.size - self._cur)
        data = self.pread(self._cur, n)
        self._cur += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._cur
        elif whence == 2:
            offset += self.size
        self._cur = max(0, offset)
        return self._cur

    def tell(self) -> int:
        return self._cur


# ---------------------------------------------------------------------------------------------
# Crash dumps: constants
# ---------------------------------------------------------------------------------------------

KDUMP_SIGNATURE = b"KDUMP   "
DISKDUMP_SIGNATURE = b"DISKDUMP"
MAKEDUMPFILE_SIGNATURE = b"makedumpfile"
MAX_SIZE_MDF_HEADER = 4096
TYPE_FLAT_HEADER = 1
END_FLAG_FLAT_HEADER = -1
DISK_DUMP_HEADER_SIZE = 464
PAGE_DESC_SIZE = 24
MAX_NOTES_BYTES = 8 << 20
MAX_FLAT_BLOCKS = 50000000
BITMAP_CHUNK = 1 << 20              # bitmaps are read and counted 1 MiB at a time
MIB = 1 << 20

NT_PRSTATUS = 1
XEN_ELFNOTE_CRASH_INFO = 0x1000001
XEN_ELFNOTE_CRASH_REGS = 0x1000002

DUMP_DH_FLAGS = ((0x1, "zlib"), (0x2, "lzo"), (0x4, "snappy"), (0x20, "zstd"))
DUMP_DH_COMPRESSED_INCOMPLETE = 0x8
DUMP_DH_EXCLUDED_VMEMMAP = 0x10

DEFAULT_PATTERNS = ("dump*", "vmcore*", "*.vmcore", "*.core", "*.kdump")
DEFAULT_EXCLUDE = ("*dmesg*", "*.txt", "*.log")

LINUX_VMCOREINFO_KEYS = ("OSRELEASE", "CRASHTIME", "PAGESIZE", "BUILD-ID", "KERNELOFFSET")


# ---------------------------------------------------------------------------------------------
# Crash dumps: choosing the file
# ---------------------------------------------------------------------------------------------

def find_dump(path: str, patterns: Optional[List[str]] = None,
              exclude: Optional[List[str]] = None) -> Tuple[str, List[str]]:
    """Resolve ``path`` to one dump file.  A directory yields its newest dump (by mtime).

    Looks at regular files in ``path`` and in its immediate subdirectories (kdump-tools writes
    ``/var/crash/<timestamp>/dump.<timestamp>``), keeps names matching ``patterns`` and not
    ``exclude`` (``dmesg.*`` files are never dumps).  Returns ``(file, candidates)``.
    """
    import fnmatch
    if patterns is None:
        patterns = list(DEFAULT_PATTERNS)
    if exclude is None:
        exclude = list(DEFAULT_EXCLUDE)
    try:
        st_mode = os.stat(path).st_mode
    except OSError as exc:
        raise DumpNotFound("Cannot read dump path %s: %s." % (path, exc.strerror or exc), path=path)
    import stat as _stat
    if not _stat.S_ISDIR(st_mode):
        return path, [path]
    found = []  # type: List[Tuple[float, str]]

    def consider(directory: str, depth: int) -> None:
        try:
            entries = sorted(os.listdir(directory))
        except OSError as exc:
            if depth == 0:
                raise DumpNotFound("Cannot list crash directory %s: %s." % (directory, exc.strerror or exc),
                                   path=directory)
            return
        for name in entries:
            full = os.path.join(directory, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if _stat.S_ISDIR(st.st_mode) and depth == 0:
                consider(full, 1)
            elif _stat.S_ISREG(st.st_mode):
                if any(fnmatch.fnmatch(name, pat) for pat in exclude):
                    continue
                if any(fnmatch.fnmatch(name, pat) for pat in patterns):
                    found.append((st.st_mtime, full))

    consider(path, 0)
    if not found:
        raise NoDumpInDirectory(
            "No dump file in %s or its subdirectories (looked for %s, skipped %s)."
            % (path, ", ".join(patterns), ", ".join(exclude)), path=path)
    found.sort(key=lambda item: (item[0], item[1]))
    return found[-1][1], [f for _m, f in found]


# ---------------------------------------------------------------------------------------------
# Crash dumps: notes
# ---------------------------------------------------------------------------------------------

def parse_notes(data: bytes, little_endian: bool = True) -> Tuple[List[Tuple[str, int, bytes]], List[str]]:
    """Split an ELF note area into ``(name, type, desc)``; problems for anything malformed."""
    fmt = "<III" if little_endian else ">III"
    notes = []  # type: List[Tuple[str, int, bytes]]
    problems = []  # type: List[str]
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(fmt, data, pos)
        if namesz == 0 and descsz == 0 and ntype == 0:
            break                                   # zero padding at the end of the area
        name_end = pos + 12 + namesz
        desc_start = pos + 12 + ((namesz + 3) & ~3)
        desc_end = desc_start + descsz
        if name_end > len(data) or desc_end > len(data):
            problems.append("note #%d at note offset %d claims namesz=%d descsz=%d but the note area is "
                            "%d bytes" % (len(notes), pos, namesz, descsz, len(data)))
            break
        name = data[pos + 12:name_end].split(b"\0", 1)[0].decode("ascii", "replace")
        notes.append((name, ntype, data[desc_start:desc_end]))
        pos = desc_start + ((descsz + 3) & ~3)
    return notes, problems


def _cstring(data: bytes) -> Optional[str]:
    text = data.split(b"\0", 1)[0]
    if not text:
        return None
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not all(32 <= ord(ch) < 127 for ch in decoded):
        return None
    return decoded


def parse_keyvalues(desc: bytes) -> Dict[str, str]:
    """VMCOREINFO-style ``KEY=value`` lines (NUL padding ignored)."""
    out = {}  # type: Dict[str, str]
    for line in desc.split(b"\0", 1)[0].decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            out[key.strip()] = value.strip()
    return out


def summarize_notes(notes: List[Tuple[str, int, bytes]], little_endian: bool = True) -> Dict[str, Any]:
    """Facts from the notes: CPUs, Xen crash info, VMCOREINFO(_XEN)."""
    prstatus = sum(1 for n, t, _d in notes if n == "CORE" and t == NT_PRSTATUS)
    xen_regs = sum(1 for n, t, _d in notes if n == "Xen" and t == XEN_ELFNOTE_CRASH_REGS)
    xen_infos = [d for n, t, d in notes if n == "Xen" and t == XEN_ELFNOTE_CRASH_INFO]
    vmci_xen = [d for n, _t, d in notes if n == "VMCOREINFO_XEN"]
    vmci = [d for n, _t, d in notes if n == "VMCOREINFO"]
    counts = {}  # type: Dict[str, int]
    for name, ntype, _desc in notes:
        key = "%s/0x%x" % (name, ntype)
        counts[key] = counts.get(key, 0) + 1
    summary = {
        "note_count": len(notes),
        "note_types": counts,
        "prstatus_notes": prstatus,
        "is_xen": bool(xen_regs or xen_infos or vmci_xen or any(n == "Xen" for n, _t, _d in notes)),
        "xen": None,
        "linux": None,
    }  # type: Dict[str, Any]
    if summary["is_xen"]:
        xen = {"crash_regs": xen_regs, "crash_info": bool(xen_infos), "major": None, "minor": None,
               "version": None, "tainted": None, "vmcoreinfo": parse_keyvalues(vmci_xen[0]) if vmci_xen else {},
               "pointers": {}}  # type: Dict[str, Any]
        if xen_infos:
            desc = xen_infos[0]
            word = "<Q" if little_endian else ">Q"
            if len(desc) >= 64:
                fields = [struct.unpack_from(word, desc, 8 * i)[0] for i in range(min(len(desc) // 8, 10))]
                xen["major"], xen["minor"] = fields[0], fields[1]
                xen["version"] = "%d.%d" % (fields[0], fields[1])
                xen["pointers"] = dict(zip(("extra_version", "changeset", "compiler", "compile_date",
                                            "compile_time"), fields[2:7]))
                xen["tainted"] = fields[7]
                if len(fields) >= 10:
                    xen["xen_phys_start"] = "0x%x" % fields[8]
        summary["xen"] = xen
    if vmci:
        kv = parse_keyvalues(vmci[0])
        linux = {"osrelease": kv.get("OSRELEASE"), "crashtime": None, "crashtime_iso": None,
                 "pagesize": kv.get("PAGESIZE"), "build_id": kv.get("BUILD-ID"),
                 "vmcoreinfo_keys": len(kv)}  # type: Dict[str, Any]
        if kv.get("CRASHTIME", "").isdigit():
            import datetime
            linux["crashtime"] = int(kv["CRASHTIME"])
            try:
                linux["crashtime_iso"] = datetime.datetime.fromtimestamp(
                    linux["crashtime"], datetime.timezone.utc).isoformat()
            except (ValueError, OverflowError, OSError):
                pass
        summary["linux"] = linux
    return summary


def _notes_problems(summary: Dict[str, Any]) -> List[str]:
    problems = []
    if summary["prstatus_notes"] == 0:
        problems.append("no CORE/NT_PRSTATUS note: the dump holds no CPU registers")
    xen = summary.get("xen")
    if xen:
        if not xen["crash_info"]:
            problems.append("Xen dump without XEN_ELFNOTE_CRASH_INFO (0x1000001): no hypervisor version")
        if xen["crash_regs"] != summary["prstatus_notes"]:
            problems.append("Xen dump has %d CRASH_REGS notes for %d CORE/NT_PRSTATUS notes"
                            % (xen["crash_regs"], summary["prstatus_notes"]))
    return problems


# ---------------------------------------------------------------------------------------------
# Crash dumps: inspection
# ---------------------------------------------------------------------------------------------

def _new_result(path: str) -> Dict[str, Any]:
    return {
        "path": path, "format": "unknown", "inner_format": None, "valid": False, "problems": [],
        "remarks": [], "empty": False, "truncated": False, "size": 0, "expected_size": None,
        "bytes_read": 0, "kind": "unknown", "is_xen": None, "nr_cpus": None, "xen": None, "linux": None,
        "memory_bytes": None, "pt_load_count": None, "elf": None, "kdump": None, "flattened": None,
        "notes": None, "contents": None,
    }


def _truncated(result: Dict[str, Any], message: str) -> None:
    result["truncated"] = True
    result["problems"].append("truncated: " + message)


def _segment_header(seg: Any) -> Dict[str, Any]:
    return dict((key, seg[key]) for key in ("p_type", "p_offset", "p_paddr", "p_filesz", "p_memsz"))


def _inspect_elf(img: Any, result: Dict[str, Any]) -> None:
    result["format"] = "elf" if result["format"] == "unknown" else result["format"]
    size = img.size
    ident = img.pread(0, 64)
    if len(ident) < 52 or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        if len(ident) < 52:
            _truncated(result, "the file is %d bytes, shorter than an ELF header" % size)
        else:
            result["problems"].append("corrupt ELF identification: class %d, data encoding %d"
                                      % (ident[4], ident[5]))
        return
    is64 = ident[4] == 2
    little = ident[5] == 1
    end = "<" if little else ">"
    if is64:
        if len(ident) < 64:
            _truncated(result, "the file is %d bytes, shorter than an ELF64 header (64)" % size)
            return
        phoff, = struct.unpack_from(end + "Q", ident, 32)
        phentsize, phnum = struct.unpack_from(end + "HH", ident, 54)
    else:
        phoff, = struct.unpack_from(end + "I", ident, 28)
        phentsize, phnum = struct.unpack_from(end + "HH", ident, 42)
    if phnum and phentsize < (56 if is64 else 32):
        result["problems"].append("corrupt ELF header: e_phentsize %d is too small for a program header"
                                  % phentsize)
        return
    table_end = phoff + phentsize * phnum
    if table_end > size:
        _truncated(result, "the program header table (%d entries at byte %d) ends at byte %d, the file is %d bytes"
                   % (phnum, phoff, table_end, size))
        result["expected_size"] = table_end
        return
    _require_elftools()
    try:
        elf = ELFFile(img)
        e_type = elf.header["e_type"]
        machine = elf.header["e_machine"]
        segs = [_segment_header(elf.get_segment(i)) for i in range(elf.num_segments())]
    except Exception as exc:  # pyelftools raises many types on hostile input; report, never crash
        result["problems"].append("ELF headers unreadable by pyelftools: %s: %s" % (type(exc).__name__, exc))
        return
    result["elf"] = {"class": 64 if is64 else 32, "endian": "little" if little else "big",
                     "type": e_type, "machine": _EM_NAMES.get(machine, str(machine)), "phnum": len(segs)}
    if e_type != "ET_CORE":
        result["problems"].append("not a core dump: ELF type %s (a core is ET_CORE)" % e_type)
        return
    loads = [s for s in segs if s["p_type"] == "PT_LOAD"]
    note_segs = [s for s in segs if s["p_type"] == "PT_NOTE"]
    result["pt_load_count"] = len(loads)
    result["elf"]["pt_note_count"] = len(note_segs)
    result["memory_bytes"] = sum(s["p_memsz"] for s in loads)
    expected = table_end
    worst = None  # type: Optional[Tuple[int, str]]
    for index, seg in enumerate(segs):
        seg_end = seg["p_offset"] + seg["p_filesz"]
        if seg["p_filesz"] and seg_end > expected:
            expected = seg_end
            worst = (seg_end, "%s #%d (paddr 0x%x, offset %d, filesz %d)"
                     % (seg["p_type"], index, seg["p_paddr"], seg["p_offset"], seg["p_filesz"]))
    result["expected_size"] = expected
    if size < expected and worst is not None:
        _truncated(result, "the file is %d bytes but %s ends at byte %d: %d bytes missing"
                   % (size, worst[1], worst[0], worst[0] - size))
    if not loads:
        result["problems"].append("no PT_LOAD segment: the dump holds no memory")
    if not note_segs:
        result["problems"].append("no PT_NOTE segment: no CPU registers, no Xen or VMCOREINFO notes")
        _elf_contents(result, loads)
        return
    notes = []  # type: List[Tuple[str, int, bytes]]
    seen = set()  # type: Set[Tuple[int, int]]
    budget = MAX_NOTES_BYTES    # for all PT_NOTEs together: the notes are read O(headers), not O(headers x size)
    for seg in note_segs:
        if seg["p_filesz"] > MAX_NOTES_BYTES:
            result["problems"].append("PT_NOTE at byte %d claims %d bytes (more than %d): corrupt header"
                                      % (seg["p_offset"], seg["p_filesz"], MAX_NOTES_BYTES))
            continue
        span = (seg["p_offset"], seg["p_filesz"])
        if span in seen:
            result["problems"].append("corrupt program headers: %d PT_NOTE headers, several pointing at the same "
                                      "%d bytes at byte %d (read once)" % (len(note_segs), seg["p_filesz"], seg["p_offset"]))
            break
        seen.add(span)
        if seg["p_filesz"] > budget:
            result["problems"].append("corrupt program headers: the %d PT_NOTE segments claim more than %d bytes "
                                      "of notes together (a Xen or Linux dump has a few KiB); the rest is not read"
                                      % (len(note_segs), MAX_NOTES_BYTES))
            break
        budget -= seg["p_filesz"]
        data = img.pread(seg["p_offset"], seg["p_filesz"])
        parsed, problems = parse_notes(data, little)
        notes.extend(parsed)
        result["problems"].extend(problems)
    _apply_notes(result, notes, little)
    _elf_contents(result, loads)
    if result["xen"]:
        _read_xen_strings(img, result["xen"], loads)


def _apply_notes(result: Dict[str, Any], notes: List[Tuple[str, int, bytes]], little: bool,
                 require_prstatus: bool = True) -> None:
    summary = summarize_notes(notes, little)
    result["notes"] = {"count": summary["note_count"], "types": summary["note_types"]}
    result["is_xen"] = summary["is_xen"]
    result["kind"] = "xen" if summary["is_xen"] else ("linux" if summary["linux"] or notes else "unknown")
    if summary["prstatus_notes"] or result["nr_cpus"] is None:
        result["nr_cpus"] = summary["prstatus_notes"]
    result["xen"] = summary["xen"]
    result["linux"] = summary["linux"]
    result["problems"].extend(p for p in _notes_problems(summary)
                              if require_prstatus or "NT_PRSTATUS" not in p)


XEN_STRING_NOTE = ("XEN_ELFNOTE_CRASH_INFO carries only physical-address pointers to the extra version, "
                   "changeset and compiler strings (xen/common/kexec.c: __pa(xen_extra_version())); ")


def _read_xen_strings(img: Any, xen: Dict[str, Any], loads: List[Dict[str, Any]]) -> None:
    """Follow CRASH_INFO's physical-address pointers into the PT_LOADs (128 bytes each)."""
    strings = {}  # type: Dict[str, Optional[str]]
    for key, paddr in sorted(xen.get("pointers", {}).items()):
        value = None
        for seg in loads:
            if paddr and seg["p_paddr"] <= paddr < seg["p_paddr"] + seg["p_filesz"]:
                value = _cstring(img.pread(seg["p_offset"] + paddr - seg["p_paddr"], 128))
                break
        strings[key] = value
    _finish_xen_strings(xen, strings, "the memory they point to reads as zeros or lies outside this file")


def _finish_xen_strings(xen: Dict[str, Any], strings: Dict[str, Optional[str]], why: str) -> None:
    xen["strings"] = strings
    xen["extra_version"] = strings.get("extra_version")
    xen["pointers"] = dict((k, "0x%x" % v) for k, v in xen.get("pointers", {}).items())
    if xen["version"] is not None and xen["extra_version"]:
        xen["full_version"] = xen["version"] + xen["extra_version"]
        xen["version_note"] = ""
    else:
        xen["full_version"] = xen["version"]
        xen["version_note"] = (XEN_STRING_NOTE + why + ": only major.minor is reported") if xen["version"] else ""


def _le(fmt: str, data: bytes, off: int) -> Any:
    return struct.unpack_from("<" + fmt, data, off)[0]


# ---------------------------------------------------------------------------------------------
# Crash dumps: what they hold (bitmaps of kdump-compressed files, PT_LOADs of ELF cores)
# ---------------------------------------------------------------------------------------------

_HAS_BIT_COUNT = hasattr(int, "bit_count")      # Python >= 3.10


def popcount(data: bytes) -> int:
    """Number of set bits in ``data``."""
    if not data:
        return 0
    value = int.from_bytes(data, "little")
    if _HAS_BIT_COUNT:
        return value.bit_count()  # type: ignore[attr-defined]
    return bin(value).count("1")


def count_bitmap(img: Any, offset: int, nbits: int, limit: int) -> Tuple[int, int]:
    """Count the set bits among the first ``nbits`` bits of the bitmap at ``offset``.

    Reads at most ``limit`` bytes, :data:`BITMAP_CHUNK` at a time.  Returns ``(set_bits,
    bytes_there)``; ``bytes_there`` is short of ``ceil(nbits / 8)`` when the image ends first.
    """
    need = (nbits + 7) // 8
    want = min(need, max(0, limit))
    count = 0
    got = 0
    while got < want:
        chunk = img.pread(offset + got, min(BITMAP_CHUNK, want - got))
        if not chunk:
            break
        if got + len(chunk) == need and nbits % 8:
            chunk = chunk[:-1] + bytes([chunk[-1] & ((1 << (nbits % 8)) - 1)])   # bits past max_mapnr
        count += popcount(chunk)
        got += len(chunk)
    return count, got


def _new_contents(source: str) -> Dict[str, Any]:
    return {"source": source, "dump_level": None, "page_size": None, "max_mapnr": None,
            "pages_present": None, "pages_dumped": None, "pages_excluded": None,
            "present_bytes": None, "dumped_bytes": None, "present_mib": None, "dumped_mib": None,
            "dumped_pct": None, "bytes_per_present_mib": None, "domu_pages_excluded": None, "note": ""}


def _kdump_contents(img: Any, result: Dict[str, Any], kd: Dict[str, Any], file_size: int) -> None:
    """Count both bitmaps of a kdump-compressed image (1st: pages present, 2nd: pages written)."""
    contents = _new_contents("bitmaps")
    result["contents"] = contents
    block_size = kd["block_size"]
    contents["dump_level"] = kd["dump_level"]
    contents["page_size"] = block_size
    contents["max_mapnr"] = max_mapnr = kd["max_mapnr"]
    half = (kd["bitmap_blocks"] // 2) * block_size
    nbits = min(max_mapnr, half * 8)
    need = (nbits + 7) // 8
    counts = []  # type: List[int]
    for index, (ordinal, what) in enumerate((("1st", "present"), ("2nd", "dumped"))):
        offset = (1 + kd["sub_hdr_size"]) * block_size + index * half
        # never read past the image, nor more than the whole file holds (a flattened image
        # with holes can claim any size)
        count, there = count_bitmap(img, offset, nbits, min(img.size - offset, file_size))
        if there < need:
            _truncated(result, "the %s bitmap (%d bytes at byte %d) is cut short after %d bytes (they mark %d "
                       "pages %s): the pages %s cannot be counted"
                       % (ordinal, need, offset, there, count, what, what))
            contents["note"] = "the %s bitmap is cut short: the pages %s cannot be counted" % (ordinal, what)
            return
        contents["pages_" + what] = count
        contents[what + "_bytes"] = count * block_size
        counts.append(count)
    present, dumped = counts
    contents["pages_excluded"] = present - dumped
    if dumped > present:
        result["problems"].append("corrupt bitmaps: the 2nd bitmap marks %d pages written but the 1st only %d "
                                  "present" % (dumped, present))


def _elf_contents(result: Dict[str, Any], loads: List[Dict[str, Any]]) -> None:
    """Memory the PT_LOADs cover (p_memsz) against what the file holds (p_filesz)."""
    contents = _new_contents("pt_load")
    result["contents"] = contents
    contents["present_bytes"] = sum(s["p_memsz"] for s in loads)
    contents["dumped_bytes"] = sum(min(s["p_filesz"], s["p_memsz"]) for s in loads)
    pagesize = None  # type: Optional[str]
    for facts in (result.get("linux"), (result.get("xen") or {}).get("vmcoreinfo")):
        if facts:
            pagesize = facts.get("pagesize") or facts.get("PAGESIZE")
            if pagesize:
                break
    page = int(pagesize) if pagesize and pagesize.isdigit() and int(pagesize) > 0 else None
    if page is None:
        return
    contents["page_size"] = page

    def pages(paddr: int, length: int) -> int:
        return (-(-(paddr + length) // page) - paddr // page) if length > 0 else 0

    contents["pages_present"] = sum(pages(s["p_paddr"], s["p_memsz"]) for s in loads)
    contents["pages_dumped"] = sum(pages(s["p_paddr"], min(s["p_filesz"], s["p_memsz"])) for s in loads)
    contents["pages_excluded"] = contents["pages_present"] - contents["pages_dumped"]
    ends = [s["p_paddr"] + s["p_memsz"] for s in loads if s["p_memsz"]]
    contents["max_mapnr"] = -(-max(ends) // page) if ends else 0


def _finish_contents(result: Dict[str, Any]) -> None:
    """Derived figures and the verdict on domU pages, once the notes have said whose dump it is."""
    contents = result["contents"]
    if not contents or contents["present_bytes"] is None:
        return
    present, dumped = contents["present_bytes"], contents["dumped_bytes"]
    contents["present_mib"] = round(present / MIB, 1)
    if present:
        contents["bytes_per_present_mib"] = int(round(result["size"] * MIB / present))
    if dumped is None:
        return                                  # the 2nd bitmap is cut short: the note says so
    contents["dumped_mib"] = round(dumped / MIB, 1)
    if present:
        contents["dumped_pct"] = round(100.0 * dumped / present, 2)
    contents["note"] = _contents_verdict(result, contents)
    if result["truncated"]:
        contents["note"] += ("; but the file is truncated: not all of what the headers say was written is there "
                             "(see problems)")


# Fewer pages than this (1 MiB of 4 KiB pages) left out of a level 0/1 dump are not -X's doing.
MIN_DOMU_EXCLUDED_PAGES = 256


def _contents_verdict(result: Dict[str, Any], contents: Dict[str, Any]) -> str:
    """Set ``domu_pages_excluded`` and say what the counts mean."""
    present, dumped = contents["present_bytes"], contents["dumped_bytes"]
    if contents["source"] == "pt_load":
        if dumped < present:
            return ("an ELF core records no dump level: its PT_LOADs put %d of the %d bytes of memory they cover "
                    "in the file; whether pages were left out as domU pages, free or zero pages cannot be told"
                    % (dumped, present))
        return "the PT_LOADs put every byte of memory they cover in the file"
    level, excluded = contents["dump_level"], contents["pages_excluded"]
    if (result.get("kdump") or {}).get("split"):
        return "one part of a split dump: its bitmaps do not say what this part holds"
    if result["is_xen"] is False:
        return "a Linux dump: domU pages do not apply"
    if level is None or level < 0 or level > 1:
        return ("dump level %s excludes pages by type (it needs Linux VMCOREINFO): pages makedumpfile -X left out "
                "as domU pages cannot be told from the others" % level)
    if excluded >= MIN_DOMU_EXCLUDED_PAGES:
        contents["domu_pages_excluded"] = True
        return ("dump level %d keeps every page in the 2nd bitmap (zero pages included), so the %d pages excluded "
                "(%.1f MiB) are pages makedumpfile -X left out (domU pages, and Xen's free pages where it can "
                "tell them)" % (level, excluded, excluded * contents["page_size"] / MIB))
    contents["domu_pages_excluded"] = False
    if excluded > 0:
        # Measured on the lab: a -c -d 0 dump of a 6 GiB Xen 4.17 host with 3 GiB of guests left out
        # exactly 1 page (makedumpfile's exclude_nodata_pages), so a handful is not -X at work.
        return ("dump level %d: %d page(s) excluded (fewer than %d: pages with no data in the source, not -X); "
                "the guests' pages are in this dump" % (level, excluded, MIN_DOMU_EXCLUDED_PAGES))
    return "dump level %d and nothing excluded: every page present was written" % level


def _inspect_kdump(img: Any, result: Dict[str, Any]) -> None:
    size = img.size
    if result["format"] == "unknown":
        result["format"] = "kdump-compressed"
    hdr = img.pread(0, DISK_DUMP_HEADER_SIZE)
    kd = {}  # type: Dict[str, Any]
    result["kdump"] = kd
    if len(hdr) < DISK_DUMP_HEADER_SIZE:
        _truncated(result, "the kdump-compressed image is %d bytes; it ends inside the %d-byte disk_dump_header"
                   % (size, DISK_DUMP_HEADER_SIZE))
        if len(hdr) >= 12:
            kd["header_version"] = _le("i", hdr, 8)
        return
    kd["signature"] = hdr[:8].decode("ascii", "replace")
    kd["header_version"] = version = _le("i", hdr, 8)
    uts = [hdr[12 + 65 * i:12 + 65 * (i + 1)].split(b"\0", 1)[0].decode("utf-8", "replace") for i in range(6)]
    uts_keys = ("sysname", "nodename", "release", "version", "machine", "domainname")
    kd["utsname"] = dict((k, v) for k, v in zip(uts_keys, uts) if v)
    kd["timestamp"] = _le("q", hdr, 408)
    status = _le("I", hdr, 424)
    kd["status"] = status
    kd["compression"] = [name for bit, name in DUMP_DH_FLAGS if status & bit]
    kd["incomplete_flag"] = bool(status & DUMP_DH_COMPRESSED_INCOMPLETE)
    block_size = kd["block_size"] = _le("i", hdr, 428)
    sub_hdr_size = kd["sub_hdr_size"] = _le("i", hdr, 432)
    bitmap_blocks = kd["bitmap_blocks"] = _le("I", hdr, 436)
    kd["max_mapnr"] = _le("I", hdr, 440)
    kd["current_cpu"] = _le("I", hdr, 456)
    kd["nr_cpus"] = nr_cpus = _le("i", hdr, 460)
    result["nr_cpus"] = nr_cpus
    if kd["incomplete_flag"]:
        result["problems"].append("makedumpfile marked this dump incomplete (DUMP_DH_COMPRESSED_INCOMPLETE): "
                                  "the capture ran out of space or was interrupted")
    if not kd["utsname"]:
        result["remarks"].append("utsname is empty: makedumpfile had no VMCOREINFO for it (usual for a "
                                 "Xen hypervisor dump taken with -d 0)")
    bad = []
    if version < 1 or version > 64:
        bad.append("header_version %d" % version)
    if block_size < 512 or block_size > (1 << 20) or block_size & (block_size - 1):
        bad.append("block_size %d (not a power of two in 512..1M)" % block_size)
    if sub_hdr_size < 1 or sub_hdr_size > (1 << 20):
        bad.append("sub_hdr_size %d blocks" % sub_hdr_size)
    if bitmap_blocks < 2 or bitmap_blocks > (1 << 30):
        bad.append("bitmap_blocks %d" % bitmap_blocks)
    if nr_cpus < 1 or nr_cpus > 65536:
        bad.append("nr_cpus %d" % nr_cpus)
    if bad:
        result["problems"].append("corrupt disk_dump_header: " + ", ".join(bad))
        return
    sub = img.pread(block_size, 104)
    need_sub = 104 if version >= 6 else (80 if version >= 5 else (64 if version >= 4 else
                                         (48 if version >= 3 else 32)))
    if len(sub) < need_sub:
        _truncated(result, "the image is %d bytes; the kdump_sub_header (%d bytes at byte %d) is not all there"
                   % (size, need_sub, block_size))
        return
    kd["phys_base"] = _le("Q", sub, 0)
    kd["dump_level"] = _le("i", sub, 8)
    kd["split"] = _le("i", sub, 12)
    regions = []  # type: List[Tuple[str, int, int]]
    if version >= 3:
        regions.append(("vmcoreinfo", _le("q", sub, 32), _le("Q", sub, 40)))
    if version >= 4:
        regions.append(("note", _le("q", sub, 48), _le("Q", sub, 56)))
    if version >= 5:
        regions.append(("eraseinfo", _le("q", sub, 64), _le("Q", sub, 72)))
    if version >= 6:
        kd["max_mapnr"] = _le("Q", sub, 96)
    if kd["split"]:
        result["remarks"].append("this is one part of a split dump (makedumpfile --split)")
    for name, off, length in regions:
        kd[name + "_size"] = length
        if length and (off < 0 or length > (1 << 40)):
            result["problems"].append("corrupt kdump_sub_header: %s offset %d size %d" % (name, off, length))
            return
    bitmap_bytes = (bitmap_blocks // 2) * block_size
    if bitmap_bytes * 8 < kd["max_mapnr"]:
        result["problems"].append("corrupt header: %d bitmap blocks of %d bytes cannot map max_mapnr %d pages"
                                  % (bitmap_blocks, block_size, kd["max_mapnr"]))
    _kdump_contents(img, result, kd, result["size"])
    desc_off = (1 + sub_hdr_size + bitmap_blocks) * block_size
    expected = desc_off
    notes = []  # type: List[Tuple[str, int, bytes]]
    for name, off, length in regions:
        if not length:
            continue
        expected = max(expected, off + length)
        if name == "eraseinfo":
            continue
        if length > MAX_NOTES_BYTES:
            result["problems"].append("%s region claims %d bytes: corrupt header" % (name, length))
            continue
        data = img.pread(off, length)
        if len(data) < length:
            _truncated(result, "the %s region (%d bytes at byte %d) is past the end of the image (%d bytes)"
                       % (name, length, off, size))
            continue
        if name == "note":
            parsed, problems = parse_notes(data, True)
            notes.extend(parsed)
            result["problems"].extend(problems)
        else:
            notes.append(("VMCOREINFO", 0, data))
    if notes:
        cpus = result["nr_cpus"]
        has_note_area = any(name == "note" and length for name, _off, length in regions)
        _apply_notes(result, notes, True, require_prstatus=has_note_area)
        if has_note_area and result["nr_cpus"] != cpus:
            result["remarks"].append("the header says %d CPUs, the notes hold %d CORE/NT_PRSTATUS notes"
                                     % (cpus, result["nr_cpus"]))
        result["nr_cpus"] = cpus
        if result["xen"]:
            _finish_xen_strings(result["xen"], dict((k, None) for k in result["xen"]["pointers"]),
                                "in a kdump-compressed file they lie in compressed page data")
    else:
        result["kind"] = "unknown"
        result["is_xen"] = None
        result["remarks"].append("no ELF notes stored in the dump (header version %d): Xen or Linux cannot be "
                                 "told from the header" % version)
    pd0 = img.pread(desc_off, PAGE_DESC_SIZE)
    if len(pd0) < PAGE_DESC_SIZE:
        _truncated(result, "the page descriptors start at byte %d but the image is %d bytes" % (desc_off, size))
        result["expected_size"] = expected
        return
    first_off, first_size = _le("q", pd0, 0), _le("I", pd0, 8)
    if first_off == 0 and first_size == 0:
        result["expected_size"] = max(expected, desc_off + PAGE_DESC_SIZE)
        _truncated(result, "the first page descriptor (byte %d) was never written: makedumpfile stopped "
                   "before the page data" % desc_off)
        return
    if first_off < desc_off or (first_off - desc_off) % PAGE_DESC_SIZE:
        result["problems"].append("corrupt page descriptor at byte %d: data offset %d does not follow the "
                                  "descriptor table" % (desc_off, first_off))
        result["expected_size"] = expected
        return
    dumpable = (first_off - desc_off) // PAGE_DESC_SIZE
    kd["dumpable_pages"] = dumpable
    dumped = (result["contents"] or {}).get("pages_dumped")
    if dumped is not None and dumped != dumpable and not kd["split"]:
        result["remarks"].append("the 2nd bitmap marks %d pages written but the page descriptor table holds %d"
                                 % (dumped, dumpable))
    last_at = desc_off + PAGE_DESC_SIZE * (dumpable - 1)
    last = img.pread(last_at, PAGE_DESC_SIZE)
    expected = max(expected, first_off + first_size)
    if len(last) == PAGE_DESC_SIZE:
        last_off, last_size = _le("q", last, 0), _le("I", last, 8)
        if last_off == 0 and last_size == 0:
            _truncated(result, "the last page descriptor (byte %d, page %d of %d) was never written"
                       % (last_at, dumpable, dumpable))
        else:
            expected = max(expected, last_off + last_size)
    else:
        expected = max(expected, first_off)
    result["expected_size"] = expected
    if size < expected and not result["truncated"]:
        _truncated(result, "the image is %d bytes but its headers and page descriptors reach byte %d: "
                   "%d bytes missing" % (size, expected, expected - size))


def _inspect_flat(reader: CountingReader, result: Dict[str, Any]) -> None:
    result["format"] = "flattened"
    size = reader.size
    head = reader.pread(0, 32)
    flat = {"type": None, "version": None, "data_blocks": 0, "end_marker": False, "image_size": None,
            "trailing_bytes": 0}  # type: Dict[str, Any]
    result["flattened"] = flat
    if len(head) < 32:
        _truncated(result, "the file is %d bytes; the makedumpfile header needs %d" % (size, MAX_SIZE_MDF_HEADER))
        return
    ftype, fversion = struct.unpack_from(">qq", head, 16)
    flat["type"], flat["version"] = ftype, fversion
    if ftype != TYPE_FLAT_HEADER:
        result["problems"].append("unknown makedumpfile header type %d (flattened format is %d)"
                                  % (ftype, TYPE_FLAT_HEADER))
        return
    if size < MAX_SIZE_MDF_HEADER:
        _truncated(result, "the file is %d bytes; the makedumpfile header alone is %d" % (size, MAX_SIZE_MDF_HEADER))
        return
    offsets, sizes, positions = [], [], []  # type: List[int], List[int], List[int]
    pos = MAX_SIZE_MDF_HEADER
    while True:
        if pos >= size:
            _truncated(result, "the flattened stream ends at byte %d after %d data blocks without the end marker"
                       % (size, len(offsets)))
            break
        dh = reader.pread(pos, 16)
        if len(dh) < 16:
            _truncated(result, "the flattened stream ends inside the data header at byte %d (after %d data "
                       "blocks, no end marker)" % (pos, len(offsets)))
            break
        offset, length = struct.unpack(">qq", dh)
        if offset == END_FLAG_FLAT_HEADER:
            flat["end_marker"] = True
            if length != END_FLAG_FLAT_HEADER:
                result["remarks"].append("end marker at byte %d has size %d (expected -1)" % (pos, length))
            flat["trailing_bytes"] = size - pos - 16
            if flat["trailing_bytes"]:
                result["remarks"].append("%d bytes follow the end marker" % flat["trailing_bytes"])
            break
        if offset < 0 or length < 0:
            result["problems"].append("corrupt flattened data header at byte %d: offset %d, size %d"
                                      % (pos, offset, length))
            break
        if length == 0:
            # makedumpfile never writes an empty block; a run of zero bytes (a preallocated or
            # zero-filled tail) would otherwise be walked 16 bytes at a time
            result["problems"].append("corrupt flattened data header at byte %d: a data block of size 0 (offset %d); "
                                      "%d bytes follow, not read (zero-filled tail?)" % (pos, offset, size - pos - 16))
            break
        avail = size - pos - 16
        if length > avail:
            _truncated(result, "flattened data block #%d at byte %d claims %d bytes but only %d remain (no end "
                       "marker)" % (len(offsets), pos, length, avail))
            offsets.append(offset)
            sizes.append(avail)
            positions.append(pos + 16)
            break
        offsets.append(offset)
        sizes.append(length)
        positions.append(pos + 16)
        pos += 16 + length
        if len(offsets) > MAX_FLAT_BLOCKS:
            result["problems"].append("more than %d flattened data blocks: giving up" % MAX_FLAT_BLOCKS)
            break
    flat["data_blocks"] = len(offsets)
    img = FlatImage(reader, offsets, sizes, positions)
    flat["image_size"] = img.size
    magic = img.pread(0, 8)
    if magic[:8] in (KDUMP_SIGNATURE, DISKDUMP_SIGNATURE):
        result["inner_format"] = "kdump-compressed"
        _inspect_kdump(img, result)
    elif magic[:4] == ELF_MAGIC:
        result["inner_format"] = "elf"
        _inspect_elf(img, result)
    elif not offsets:
        result["problems"].append("the flattened stream holds no data")
    else:
        result["problems"].append("the flattened stream does not rebuild into a kdump-compressed or ELF file "
                                  "(image starts with %r)" % magic)
    flat["image_expected_size"] = result["expected_size"]
    result["expected_size"] = size if flat["end_marker"] and not result["truncated"] else None


def inspect_dump(path: str, expect: str = "any") -> Dict[str, Any]:
    """Inspect one dump file; never raises for bad content (only :class:`DumpNotFound`)."""
    result = _new_result(path)
    try:
        reader = CountingReader(path)
    except (IOError, OSError) as exc:
        raise DumpNotFound("Cannot open dump %s: %s." % (path, exc.strerror or exc), path=path)
    try:
        result["size"] = reader.size
        magic = reader.pread(0, 16)
        if reader.size == 0:
            result["format"] = "empty"
            result["empty"] = True
            result["problems"].append("empty: the dump file is 0 bytes (the capture wrote nothing)")
        elif magic[:4] == ELF_MAGIC:
            _inspect_elf(reader, result)
        elif magic[:8] in (KDUMP_SIGNATURE, DISKDUMP_SIGNATURE):
            _inspect_kdump(reader, result)
        elif magic[:12] == MAKEDUMPFILE_SIGNATURE:
            _inspect_flat(reader, result)
        elif reader.size < 16 and any(magic == sig[:len(magic)] for sig in
                                      (ELF_MAGIC, KDUMP_SIGNATURE, MAKEDUMPFILE_SIGNATURE)):
            result["format"] = "unknown"
            _truncated(result, "the file is %d bytes: it ends inside the signature %r" % (reader.size, magic))
        else:
            result["problems"].append("not a crash dump: no ELF, KDUMP or makedumpfile signature (starts with %r)"
                                      % magic[:16])
        _finish_contents(result)
    finally:
        result["bytes_read"] = reader.bytes_read
        reader.close()
    base = os.path.basename(path)
    if "incomplete" in base:
        result["problems"].append("the file name %r says the capture did not finish" % base)
    if expect == "xen" and result["is_xen"] is not True and not result["empty"]:
        result["problems"].append("expected a Xen hypervisor dump, but no Xen note (CRASH_INFO, CRASH_REGS, "
                                  "VMCOREINFO_XEN) was found")
    elif expect == "linux" and result["is_xen"]:
        result["problems"].append("expected a Linux kernel dump, but this is a Xen hypervisor dump")
    result["valid"] = not result["problems"]
    return result


def vmcore_info(path: str, expect: str = "any", patterns: Optional[List[str]] = None,
                exclude: Optional[List[str]] = None) -> Dict[str, Any]:
    """Resolve ``path`` (file or crash directory) and inspect the dump.  See ``vmcore_info`` module."""
    if expect not in ("any", "xen", "linux"):
        raise ValueError("expect must be any, xen or linux")
    chosen, candidates = find_dump(path, patterns, exclude)
    result = inspect_dump(chosen, expect)
    result["source"] = path
    result["candidates"] = candidates
    return result


def require_valid(result: Dict[str, Any]) -> None:
    """Raise :class:`DumpInvalid` naming every problem of an invalid dump."""
    if not result.get("valid"):
        raise DumpInvalid("Dump %s (%s, %d bytes) is not valid: %s."
                          % (result.get("path"), result.get("format"), result.get("size") or 0,
                             "; ".join(result.get("problems") or ["unknown problem"])),
                          problems=result.get("problems"), path=result.get("path"))
