# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build small kernel images and crash dumps for tests, byte by byte.

Shapes follow the real things:

* bzImage setup header: Linux Documentation/arch/x86/boot.rst (offsets 0x1f1..0x260).
* ELF cores as Xen writes them (``CORE``/NT_PRSTATUS and ``Xen``/CRASH_REGS per CPU,
  ``Xen``/CRASH_INFO after CPU0, ``VMCOREINFO_XEN``; xen/common/kexec.c, xen/include/xen/elfcore.h)
  and as Linux writes them (``CORE`` per CPU and ``VMCOREINFO``).
* makedumpfile's kdump-compressed file (diskdump_mod.h: disk_dump_header, kdump_sub_header,
  bitmaps, page_desc_t, pages) and its flattened stream (makedumpfile.h: 4096-byte
  makedumpfile_header, big-endian (offset, size) data headers, end marker -1/-1).

Page data of big cores is never materialised: :func:`write_sparse` writes the headers and
truncates the file to its full size, so a 64 GiB core costs a few KiB of disk.
"""

from __future__ import annotations

import struct
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

PAGE = 4096

# --------------------------------------------------------------------------------- kernels


def bzimage(version: int = 0x020F, setup_sects: int = 27, init_size: int = 0x3378000,
            xloadflags: int = 0x7F, relocatable: int = 1, kernel_alignment: int = 0x200000,
            loadflags: int = 0x01, payload_length: int = 4096, magic: bytes = b"HdrS",
            body: Optional[int] = None) -> bytes:
    """A bzImage: boot sector + setup header + setup code + a protected-mode part."""
    setup_bytes = (setup_sects + 1) * 512
    size = setup_bytes + (body if body is not None else payload_length + 512)
    img = bytearray(size)
    img[0x1F1] = setup_sects & 0xFF
    struct.pack_into("<H", img, 0x1FE, 0xAA55)
    img[0x202:0x206] = magic
    struct.pack_into("<H", img, 0x206, version)
    img[0x211] = loadflags
    struct.pack_into("<I", img, 0x230, kernel_alignment)
    img[0x234] = relocatable
    struct.pack_into("<H", img, 0x236, xloadflags)
    struct.pack_into("<I", img, 0x248, 0x100)            # payload_offset (from the protected-mode start)
    struct.pack_into("<I", img, 0x24C, payload_length)
    struct.pack_into("<I", img, 0x260, init_size)
    return bytes(img)


# --------------------------------------------------------------------------------- ELF

EHDR_SIZE = 64
PHDR_SIZE = 56
PT_LOAD = 1
PT_NOTE = 4
PT_INTERP = 3
ET_EXEC = 2
ET_CORE = 4
EM_X86_64 = 62


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def note(name: bytes, ntype: int, desc: bytes) -> bytes:
    """One ELF note: Elf64_Nhdr (4-byte words) + name (NUL included) + desc, 4-byte padded."""
    name_z = name + b"\0" if name else b""
    return struct.pack("<III", len(name_z), len(desc), ntype) + _pad4(name_z) + _pad4(desc)


def ehdr(e_type: int, phnum: int, machine: int = EM_X86_64, phoff: int = EHDR_SIZE,
         ei_class: int = 2, ei_data: int = 1) -> bytes:
    ident = b"\x7fELF" + bytes([ei_class, ei_data, 1, 0]) + b"\0" * 8
    return ident + struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0, phoff, 0, 0,
                               EHDR_SIZE, PHDR_SIZE, phnum, 0, 0, 0)


def phdr(p_type: int, offset: int, vaddr: int, paddr: int, filesz: int, memsz: int,
         flags: int = 7, align: int = 0) -> bytes:
    return struct.pack("<IIQQQQQQ", p_type, flags, offset, vaddr, paddr, filesz, memsz, align)


def elf_kernel(loads: Sequence[Tuple[int, int]] = ((0x2000, 0x3000), (0x1000, 0x1800)),
               machine: int = EM_X86_64, e_type: int = ET_EXEC, interp: bool = False) -> bytes:
    """An ELF vmlinux-like executable: PT_LOADs of (filesz, memsz) with data after the headers."""
    phnum = len(loads) + (1 if interp else 0)
    off = EHDR_SIZE + PHDR_SIZE * phnum
    data_off = -(-off // PAGE) * PAGE
    phdrs = b""
    if interp:
        phdrs += phdr(PT_INTERP, off, 0, 0, 1, 1, align=1)
    end = data_off
    for filesz, memsz in loads:
        phdrs += phdr(PT_LOAD, end, 0xFFFFFFFF81000000 + end, 0x1000000 + end, filesz, memsz, align=0x200000)
        end += filesz
    head = ehdr(e_type, phnum, machine) + phdrs
    return head + b"\0" * (end - len(head))


# NT_PRSTATUS for x86_64 is 336 bytes (struct elf_prstatus); Xen's CRASH_REGS desc is 32 bytes
# (crash_xen_core_t: cr0, cr2, cr3, cr4); CRASH_INFO (crash_xen_info_t, x86_64) is 80 bytes.
PRSTATUS_SIZE = 336
XEN_ELFNOTE_CRASH_INFO = 0x1000001
XEN_ELFNOTE_CRASH_REGS = 0x1000002
NT_PRSTATUS = 1


def prstatus(pid: int = 0) -> bytes:
    desc = bytearray(PRSTATUS_SIZE)
    struct.pack_into("<i", desc, 32, pid)   # pr_pid
    return bytes(desc)


def crash_xen_info(major: int = 4, minor: int = 17, extra_pa: int = 0, changeset_pa: int = 0,
                   compiler_pa: int = 0, date_pa: int = 0, time_pa: int = 0, tainted: int = 0,
                   phys_start: int = 0x83E00000, p2m_mfn: int = 0) -> bytes:
    """crash_xen_info_t on x86_64: two unsigned longs, five paddr_t, tainted, two x86 extras."""
    return struct.pack("<QQQQQQQQQQ", major, minor, extra_pa, changeset_pa, compiler_pa, date_pa,
                       time_pa, tainted, phys_start, p2m_mfn)


XEN_VMCOREINFO = ("PAGESIZE=4096\nSYMBOL(domain_list)=ffff82d04057b380\n"
                  "SYMBOL(frame_table)=ffff82d04039e858\nSYMBOL(max_page)=ffff82d0405932f0\n"
                  "SIZE(page_info)=32\nSIZE(domain)=2304\n")


def xen_notes(nr_cpus: int = 2, major: int = 4, minor: int = 17, vmcoreinfo: str = XEN_VMCOREINFO,
              crash_info: bool = True, extra_pa: int = 0) -> bytes:
    """Notes in Xen's order: per CPU CORE + Xen CRASH_REGS, CRASH_INFO after CPU0, VMCOREINFO_XEN."""
    out = b""
    for cpu in range(nr_cpus):
        out += note(b"CORE", NT_PRSTATUS, prstatus(cpu))
        out += note(b"Xen", XEN_ELFNOTE_CRASH_REGS, b"\0" * 32)
        if cpu == 0 and crash_info:
            out += note(b"Xen", XEN_ELFNOTE_CRASH_INFO, crash_xen_info(major, minor, extra_pa=extra_pa))
    if vmcoreinfo is not None:
        out += note(b"VMCOREINFO_XEN", 0, vmcoreinfo.encode())
    return out


def linux_notes(nr_cpus: int = 2, osrelease: str = "6.1.0-56-amd64", crashtime: Optional[int] = 1764157920,
                extra: str = "PAGESIZE=4096\n") -> bytes:
    out = b""
    for cpu in range(nr_cpus):
        out += note(b"CORE", NT_PRSTATUS, prstatus(cpu))
    info = "OSRELEASE=%s\n%s" % (osrelease, extra)
    if crashtime is not None:
        info += "CRASHTIME=%d\n" % crashtime
    out += note(b"VMCOREINFO", 0, info.encode())
    return out


# The real Xen 4.17 host's PT_LOADs (paddr, memsz), from crash-kernel-vmcore-notes.txt.
XEN417_LOADS = ((0x0, 0x9FC00), (0x100000, 0x3F00000), (0x14000000, 0x6BFDC000),
                (0x100000000, 0x40000000))


def elf_core(notes: bytes, loads: Iterable[Sequence[int]], machine: int = EM_X86_64,
             e_type: int = ET_CORE, note_offset: int = 0x1000) -> Tuple[bytes, int]:
    """An ELF core the way Linux/Xen lay it out: headers, notes at 0x1000, page-aligned PT_LOADs.

    ``loads`` are ``(paddr, memsz)`` or ``(paddr, memsz, filesz)``.
    Returns ``(head, full_size)``: the bytes up to the first PT_LOAD's data, and the size the whole
    file must have.  PT_LOAD contents are zeros (write them sparse with :func:`write_sparse`).
    """
    loads = list(loads)
    phnum = 1 + len(loads)
    data = -(-(note_offset + len(notes)) // PAGE) * PAGE
    phdrs = phdr(PT_NOTE, note_offset, 0, 0, len(notes), len(notes), flags=0)
    end = data
    for load in loads:
        paddr, memsz = load[0], load[1]
        filesz = load[2] if len(load) > 2 else memsz     # makedumpfile -E: p_filesz < p_memsz where it excluded
        phdrs += phdr(PT_LOAD, end, 0xFFFF888000000000 + paddr, paddr, filesz, memsz, align=0)
        end += filesz
    head = bytearray(ehdr(e_type, phnum, machine) + phdrs)
    head += b"\0" * (note_offset - len(head))
    head += notes
    head += b"\0" * (data - len(head))
    return bytes(head), end


def xen_core(nr_cpus: int = 2, major: int = 4, minor: int = 17,
             loads: Iterable[Tuple[int, int]] = XEN417_LOADS, **kw: object) -> Tuple[bytes, int]:
    return elf_core(xen_notes(nr_cpus, major, minor, **kw), loads)  # type: ignore[arg-type]


def linux_core(nr_cpus: int = 2, loads: Iterable[Tuple[int, int]] = ((0x0, 0x9F000), (0x100000, 0x7FF00000)),
               **kw: object) -> Tuple[bytes, int]:
    return elf_core(linux_notes(nr_cpus, **kw), loads)  # type: ignore[arg-type]


def write_sparse(path: str, head: bytes, size: int) -> str:
    """Write ``head`` and extend the file to ``size`` bytes without allocating the rest."""
    with open(path, "wb") as handle:
        handle.write(head[:size])
        handle.truncate(size)
    return str(path)


# --------------------------------------------------------------------------------- makedumpfile

DISK_DUMP_HEADER_SIZE = 464
SUB_HEADER_V6_SIZE = 104
PAGE_DESC_SIZE = 24
DUMP_DH_COMPRESSED_ZLIB = 0x1


def utsname(sysname: str = "", nodename: str = "", release: str = "", version: str = "",
            machine: str = "", domainname: str = "") -> bytes:
    out = b""
    for field in (sysname, nodename, release, version, machine, domainname):
        out += field.encode()[:64].ljust(65, b"\0")
    return out


def kdump_compressed(notes: bytes = b"", nr_cpus: int = 2, max_mapnr: int = 0x140000, dumpable_pages: int = 4,
                     header_version: int = 6, block_size: int = PAGE, dump_level: int = 0,
                     uts: Optional[bytes] = None, vmcoreinfo: bytes = b"", status: int = DUMP_DH_COMPRESSED_ZLIB,
                     eraseinfo: bytes = b"", signature: bytes = b"KDUMP   ",
                     bitmap1: Optional[bytes] = None, bitmap2: Optional[bytes] = None) -> bytes:
    """A whole (small) kdump-compressed file as makedumpfile lays it out.

    Block 0: disk_dump_header.  Block 1..sub_hdr_size: kdump_sub_header, then vmcoreinfo and the
    ELF notes.  Then two bitmaps of ``max_mapnr`` bits each, page descriptors for
    ``dumpable_pages`` pages and their (fake, 64-byte "compressed") page data, then eraseinfo.
    By default both bitmaps mark the first ``dumpable_pages`` pages; ``bitmap1`` (pages present)
    and ``bitmap2`` (pages written) replace them (see :func:`pfn_bitmap`).
    """
    sub_len = SUB_HEADER_V6_SIZE + len(vmcoreinfo) + len(notes)
    sub_hdr_size = max(1, -(-sub_len // block_size))
    bitmap_bytes = -(-max_mapnr // 8)
    bitmap_blocks = 2 * (-(-bitmap_bytes // block_size))
    desc_off = (1 + sub_hdr_size + bitmap_blocks) * block_size
    data_off = desc_off + PAGE_DESC_SIZE * dumpable_pages
    uts = uts if uts is not None else utsname()

    hdr = bytearray(DISK_DUMP_HEADER_SIZE)
    hdr[0:8] = signature
    struct.pack_into("<i", hdr, 8, header_version)
    hdr[12:12 + len(uts)] = uts
    struct.pack_into("<qq", hdr, 408, 1764157920, 0)                  # timestamp (timeval)
    struct.pack_into("<IiiIIIIIIi", hdr, 424, status, block_size, sub_hdr_size, bitmap_blocks,
                     min(max_mapnr, 0xFFFFFFFF), 0, 0, 0, 0, nr_cpus)

    off_vmci = block_size + SUB_HEADER_V6_SIZE if vmcoreinfo else 0
    off_note = block_size + SUB_HEADER_V6_SIZE + len(vmcoreinfo) if notes else 0
    page_data = b""
    descs = b""
    for i in range(dumpable_pages):
        chunk = bytes([i & 0xFF]) * 64
        descs += struct.pack("<qIIQ", data_off + len(page_data), len(chunk), 1, 0)
        page_data += chunk
    off_erase = data_off + len(page_data) if eraseinfo else 0
    sub = struct.pack("<QiiQQqQqQqQQQQ", 0, dump_level, 0, 0, min(max_mapnr, 0xFFFFFFFF),
                      off_vmci, len(vmcoreinfo), off_note, len(notes), off_erase, len(eraseinfo),
                      0, max_mapnr, max_mapnr)
    out = bytearray(data_off)
    out[0:DISK_DUMP_HEADER_SIZE] = hdr
    out[block_size:block_size + len(sub)] = sub
    pos = block_size + SUB_HEADER_V6_SIZE
    out[pos:pos + len(vmcoreinfo)] = vmcoreinfo
    pos += len(vmcoreinfo)
    out[pos:pos + len(notes)] = notes
    bm = (1 + sub_hdr_size) * block_size
    for i in range(dumpable_pages):        # mark the first pages dumpable in both bitmaps
        out[bm + i // 8] |= 1 << (i % 8)
        out[bm + bitmap_blocks // 2 * block_size + i // 8] |= 1 << (i % 8)
    for index, given in enumerate((bitmap1, bitmap2)):
        if given is not None:
            at = bm + index * (bitmap_blocks // 2 * block_size)
            assert len(given) <= bitmap_blocks // 2 * block_size
            out[at:at + bitmap_bytes] = given.ljust(bitmap_bytes, b"\0")
    out[desc_off:data_off] = descs
    return bytes(out) + page_data + eraseinfo


def pfn_bitmap(ranges: Iterable[Tuple[int, int]], max_mapnr: int) -> bytes:
    """A makedumpfile bitmap of ``max_mapnr`` bits (bit ``pfn`` = byte pfn//8, bit pfn%8) with the
    PFNs of each ``[start, end)`` range set."""
    out = bytearray(-(-max_mapnr // 8))
    for start, end in ranges:
        for pfn in range(start, min(end, max_mapnr)):
            out[pfn // 8] |= 1 << (pfn % 8)
    return bytes(out)


def pfn_ranges(loads: Iterable[Tuple[int, int]], page: int = PAGE) -> List[Tuple[int, int]]:
    """The PFN ranges makedumpfile marks present for PT_LOADs (paddr, memsz): partial pages included."""
    return [(paddr // page, -(-(paddr + memsz) // page)) for paddr, memsz in loads]


def flatten(image: bytes, pieces: Optional[Sequence[Tuple[int, int]]] = None, end_marker: bool = True,
            signature: bytes = b"makedumpfile", ftype: int = 1, version: int = 1, chunk: int = 4096) -> bytes:
    """makedumpfile -F: 4096-byte header, then big-endian (offset, size) headers each followed by data.

    ``pieces`` are (offset, size) writes in stream order; by default the disk_dump_header goes
    first (offset 0, 464 bytes) and the rest follows in ``chunk``-sized pieces, like makedumpfile.
    """
    head = bytearray(4096)
    head[0:len(signature)] = signature
    struct.pack_into(">qq", head, 16, ftype, version)
    if pieces is None:
        pieces = [(0, DISK_DUMP_HEADER_SIZE)]
        pos = DISK_DUMP_HEADER_SIZE
        while pos < len(image):
            size = min(chunk - pos % chunk, len(image) - pos)
            pieces.append((pos, size))
            pos += size
    out = bytearray(head)
    for off, size in pieces:
        out += struct.pack(">qq", off, size) + image[off:off + size]
    if end_marker:
        out += struct.pack(">qq", -1, -1)
    return bytes(out)


def vmcoreinfo_text(items: Dict[str, str]) -> bytes:
    return "".join("%s=%s\n" % kv for kv in items.items()).encode()


def flip(data: bytes, bit: int) -> bytes:
    """``data`` with one bit flipped (bit index counts from the first byte's LSB)."""
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def chunks_of(data: bytes, n: int) -> List[bytes]:
    return [data[i:i + n] for i in range(0, len(data), n)]


def write_sparse_flat_kdump(path: str, pages: int, notes: Optional[bytes] = None, max_mapnr: int = 0x140000,
                            page_size: int = PAGE, end_marker: bool = True) -> Tuple[int, int]:
    """A big flattened kdump-compressed dump on disk, page bodies left as holes.

    Like kdump-tools' ``makedumpfile -F -c``: headers, sub header + notes, bitmaps and page
    descriptors as real data blocks, then one data block per page (``page_size`` bytes each, all
    zeros and never written, so the file stays sparse), then the end marker.
    Returns ``(file_size, number_of_data_blocks)``.
    """
    image = kdump_compressed(notes=xen_notes() if notes is None else notes, max_mapnr=max_mapnr,
                             dumpable_pages=0)
    desc_off = len(image)
    data_off = desc_off + PAGE_DESC_SIZE * pages
    descs = b"".join(struct.pack("<qIIQ", data_off + i * page_size, page_size, 1, 0) for i in range(pages))
    meta = image + descs
    stream = flatten(meta, end_marker=False)
    blocks = 0
    pos = 4096
    while pos < len(stream):
        _off, size = struct.unpack_from(">qq", stream, pos)
        pos += 16 + size
        blocks += 1
    with open(path, "wb") as handle:
        handle.write(stream)
        offset = handle.tell()
        for i in range(pages):
            handle.seek(offset)
            handle.write(struct.pack(">qq", data_off + i * page_size, page_size))
            offset += 16 + page_size
        handle.seek(offset)
        if end_marker:
            handle.write(struct.pack(">qq", -1, -1))
        size = handle.tell()
        handle.truncate(size)
    return size, blocks + pages
