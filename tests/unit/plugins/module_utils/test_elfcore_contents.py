# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a dump holds: bitmap counts of kdump-compressed and flattened dumps, PT_LOAD sums of ELF
cores, on the real Xen 4.17 flattened head and on dumps made by coredump_builder."""

from __future__ import annotations

import os
import shutil
import struct
import time

import pytest
from hypothesis import given, strategies as st

import coredump_builder as cb
from conftest import XEN417
from ansible_collections.xenkdump.fleet.plugins.module_utils import elfcore

FLAT_HEAD = os.path.join(XEN417, "flat-kdump-dump-head.bin")
VMCORE_HEAD = os.path.join(XEN417, "vmcore-head.bin")
VMCORE_FULL_SIZE = 2952261632
MiB = 1 << 20
# the real host: 3 GiB, PT_LOADs of cb.XEN417_LOADS; its pages, as makedumpfile's 1st bitmap marks them
XEN417_PAGES = sum(end - start for start, end in cb.pfn_ranges(cb.XEN417_LOADS))
XEN417_MAX_MAPNR = 0x140000


def _file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


class _Bytes(object):
    """A CountingReader stand-in over bytes in memory."""

    def __init__(self, data):
        self.data = data
        self.size = len(data)
        self.bytes_read = 0

    def pread(self, offset, n):
        out = self.data[offset:offset + n] if 0 <= offset < self.size and n > 0 else b""
        self.bytes_read += len(out)
        return out


def _naive_rebuild(blocks):
    """makedumpfile -R: write each block in stream order into a zero-filled file."""
    image = bytearray(max([off + len(data) for off, data in blocks] or [0]))
    for off, data in blocks:
        image[off:off + len(data)] = data
    return bytes(image)


@given(st.lists(st.tuples(st.integers(0, 300), st.binary(min_size=0, max_size=40)), max_size=12),
       st.integers(0, 360), st.integers(0, 80))
def test_flat_image_reads_as_the_rebuilt_file(blocks, offset, length):
    stream = b"".join(data for _off, data in blocks)
    positions, pos = [], 0
    for _off, data in blocks:
        positions.append(pos)
        pos += len(data)
    img = elfcore.FlatImage(_Bytes(stream), [o for o, _d in blocks], [len(d) for _o, d in blocks], positions)
    rebuilt = _naive_rebuild(blocks)
    assert img.size == len(rebuilt)
    assert img.pread(offset, length) == rebuilt[offset:offset + length]


# ------------------------------------------------------------------ bit counting


@given(st.binary(max_size=200), st.integers(0, 1700), st.integers(1, 9), st.booleans())
def test_count_bitmap_chunks_and_masks_past_max_mapnr(data, nbits, chunk, fallback):
    naive = sum(1 for i in range(min(nbits, 8 * len(data))) if data[i // 8] >> (i % 8) & 1)
    saved = elfcore.BITMAP_CHUNK, elfcore._HAS_BIT_COUNT
    elfcore.BITMAP_CHUNK, elfcore._HAS_BIT_COUNT = chunk, saved[1] and not fallback
    try:
        count, there = elfcore.count_bitmap(_Bytes(data), 0, nbits, len(data))
    finally:
        elfcore.BITMAP_CHUNK, elfcore._HAS_BIT_COUNT = saved
    assert count == naive and there == min(len(data), (nbits + 7) // 8)


def test_popcount_fallback_without_int_bit_count(monkeypatch):
    monkeypatch.setattr(elfcore, "_HAS_BIT_COUNT", False)
    assert elfcore.popcount(b"") == 0
    assert elfcore.popcount(b"\xff" * 1000 + b"\x01\x80") == 8002


# ------------------------------------------------------------------ kdump-compressed / flattened


MAPNR = 4099            # not a multiple of 8: the last bitmap byte holds bits past max_mapnr


def _kdump(present, dumped, dump_level=1, notes=None, max_mapnr=MAPNR, garbage_tail=True):
    bm1 = bytearray(cb.pfn_bitmap(present, max_mapnr))
    if garbage_tail:
        bm1[-1] |= 0xFF << (max_mapnr % 8) & 0xFF      # makedumpfile would leave them 0: they must not count
    bm2 = cb.pfn_bitmap(dumped, max_mapnr)
    pages = sum(min(e, max_mapnr) - s for s, e in dumped)
    return cb.kdump_compressed(notes=cb.xen_notes() if notes is None else notes, max_mapnr=max_mapnr,
                               dumpable_pages=pages, dump_level=dump_level, bitmap1=bytes(bm1), bitmap2=bm2)


DOMU_HOLE = [(0, 1000), (2000, MAPNR)]            # pfns 1000..1999: a domU's memory left out by -X


@pytest.mark.parametrize("flat", [False, True])
def test_domu_pages_excluded_counted_exactly(tmp_path, flat):
    image = _kdump([(0, MAPNR)], DOMU_HOLE, dump_level=1)
    data = cb.flatten(image) if flat else image
    r = elfcore.inspect_dump(_file(tmp_path, "dump", data), expect="xen")
    assert r["valid"], r["problems"]
    assert r["remarks"] == ["utsname is empty: makedumpfile had no VMCOREINFO for it (usual for a Xen hypervisor "
                            "dump taken with -d 0)"]          # no bitmap/descriptor mismatch remark
    c = r["contents"]
    assert c["source"] == "bitmaps" and c["dump_level"] == 1 and c["page_size"] == 4096
    assert c["max_mapnr"] == MAPNR
    assert (c["pages_present"], c["pages_dumped"], c["pages_excluded"]) == (4099, 3099, 1000)
    assert c["present_bytes"] == 4099 * 4096 and c["dumped_bytes"] == 3099 * 4096
    assert c["present_mib"] == 16.0 and c["dumped_mib"] == 12.1 and c["dumped_pct"] == 75.60
    assert c["bytes_per_present_mib"] == round(len(data) * MiB / (4099 * 4096))
    assert c["domu_pages_excluded"] is True
    assert c["note"] == ("dump level 1 keeps every page in the 2nd bitmap (zero pages included), so the 1000 "
                         "pages excluded (3.9 MiB) are pages makedumpfile -X left out (domU pages, and Xen's "
                         "free pages where it can tell them)")
    assert r["kdump"]["dumpable_pages"] == 3099
    # the bitmaps (2 x 513 bytes) are read, the page data (3099 x 64 bytes) is not
    assert r["bytes_read"] < 24 * 1024 < 3099 * 64


@pytest.mark.parametrize("excluded", [1, elfcore.MIN_DOMU_EXCLUDED_PAGES - 1])
def test_a_few_nodata_pages_are_not_domu_exclusion(tmp_path, excluded):
    """Measured on the lab: -c -d 0 of a 6 GiB Xen 4.17 host with 3 GiB of running guests left out
    exactly 1 page (1535866 present, 1535865 dumped); that dump holds the guests' pages."""
    image = _kdump([(0, MAPNR)], [(0, 1000), (1000 + excluded, MAPNR)], dump_level=0)
    c = elfcore.inspect_dump(_file(tmp_path, "dump", cb.flatten(image)), expect="xen")["contents"]
    assert c["pages_excluded"] == excluded
    assert c["domu_pages_excluded"] is False
    assert "not -X" in c["note"]


def test_exclusion_threshold_is_domu(tmp_path):
    image = _kdump([(0, MAPNR)], [(0, 1000), (1000 + elfcore.MIN_DOMU_EXCLUDED_PAGES, MAPNR)], dump_level=1)
    c = elfcore.inspect_dump(_file(tmp_path, "dump", cb.flatten(image)), expect="xen")["contents"]
    assert c["domu_pages_excluded"] is True


def test_memory_holes_are_not_excluded_pages(tmp_path):
    """-d 0 on a host with holes: the 1st bitmap leaves the holes out, nothing is excluded."""
    ram = [(0, 160), (256, 3000), (3500, MAPNR)]
    r = elfcore.inspect_dump(_file(tmp_path, "dump", cb.flatten(_kdump(ram, ram, dump_level=0))))
    c = r["contents"]
    assert r["valid"], r["problems"]
    assert (c["pages_present"], c["pages_dumped"], c["pages_excluded"]) == (160 + 2744 + 599,) * 2 + (0,)
    assert c["domu_pages_excluded"] is False and c["dumped_pct"] == 100.0
    assert c["note"] == "dump level 0 and nothing excluded: every page present was written"


def test_level_31_cannot_tell_domu_pages(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "dump", _kdump([(0, MAPNR)], DOMU_HOLE, dump_level=31)))
    c = r["contents"]
    assert c["dump_level"] == 31 and c["pages_excluded"] == 1000 and c["domu_pages_excluded"] is None
    assert c["note"].startswith("dump level 31 excludes pages by type")


def test_linux_dump_has_no_domu_verdict(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "dump", _kdump([(0, MAPNR)], DOMU_HOLE, notes=cb.linux_notes())))
    assert r["kind"] == "linux" and r["contents"]["pages_excluded"] == 1000
    assert r["contents"]["domu_pages_excluded"] is None and "Linux dump" in r["contents"]["note"]


def test_bitmap_descriptor_mismatch_is_remarked(tmp_path):
    image = cb.kdump_compressed(notes=cb.xen_notes(), max_mapnr=MAPNR, dumpable_pages=5,
                                bitmap2=cb.pfn_bitmap([(0, 7)], MAPNR), bitmap1=cb.pfn_bitmap([(0, MAPNR)], MAPNR))
    r = elfcore.inspect_dump(_file(tmp_path, "dump", image))
    assert r["contents"]["pages_dumped"] == 7
    assert "the 2nd bitmap marks 7 pages written but the page descriptor table holds 5" in r["remarks"]


def test_2nd_bitmap_beyond_1st_is_corrupt(tmp_path):
    image = cb.kdump_compressed(notes=cb.xen_notes(), max_mapnr=MAPNR, dumpable_pages=9,
                                bitmap1=cb.pfn_bitmap([(0, 5)], MAPNR), bitmap2=cb.pfn_bitmap([(0, 9)], MAPNR))
    r = elfcore.inspect_dump(_file(tmp_path, "dump", image))
    assert r["valid"] is False
    assert "corrupt bitmaps: the 2nd bitmap marks 9 pages written but the 1st only 5 present" in r["problems"]


def _bitmaps_at(image):
    block = struct.unpack_from("<i", image, 428)[0]
    sub_blocks, bitmap_blocks = struct.unpack_from("<iI", image, 432)
    first = (1 + sub_blocks) * block
    return first, first + bitmap_blocks // 2 * block


@pytest.mark.parametrize("which", ["1st", "2nd"])
def test_truncated_bitmap_is_a_clear_problem(tmp_path, which):
    image = _kdump([(0, MAPNR)], DOMU_HOLE)
    first, second = _bitmaps_at(image)
    cut = (first if which == "1st" else second) + 100
    r = elfcore.inspect_dump(_file(tmp_path, "dump", image[:cut]))
    assert r["valid"] is False and r["truncated"] is True
    marked = 800                    # the first 100 bytes: pfns 0..799, all set in both bitmaps
    what = "present" if which == "1st" else "dumped"
    assert r["problems"][0] == ("truncated: the %s bitmap (513 bytes at byte %d) is cut short after 100 bytes "
                                "(they mark %d pages %s): the pages %s cannot be counted"
                                % (which, cut - 100, marked, what, what))
    c = r["contents"]
    assert c["dump_level"] == 1 and c["max_mapnr"] == MAPNR and c["domu_pages_excluded"] is None
    assert c["pages_dumped"] is None and c["pages_excluded"] is None and c["dumped_pct"] is None
    assert c["pages_present"] == (None if which == "1st" else 4099)
    assert c["note"] == "the %s bitmap is cut short: the pages %s cannot be counted" % (which, what)


def test_huge_max_mapnr_claim_reads_at_most_the_file(tmp_path):
    """A header claiming 2**40 pages (a 4 PiB host) in a 30 KiB file: bounded reads, a clear problem."""
    image = bytearray(_kdump([(0, MAPNR)], DOMU_HOLE))
    struct.pack_into("<I", image, 436, 1 << 30)                 # bitmap_blocks
    struct.pack_into("<Q", image, 4096 + 96, 1 << 40)           # max_mapnr_64
    for data in (bytes(image), cb.flatten(bytes(image), pieces=[(0, len(image)), (1 << 50, 16)])):
        started = time.monotonic()
        r = elfcore.inspect_dump(_file(tmp_path, "dump", data))
        assert time.monotonic() - started < 5
        assert r["bytes_read"] <= 2 * len(data)
        assert r["valid"] is False and r["contents"]["max_mapnr"] == 1 << 40
        assert any(p.startswith("truncated: the 1st bitmap (137438953472 bytes at byte 8192) is cut short")
                   for p in r["problems"]), r["problems"]


# ------------------------------------------------------------------ the real flattened dump (Xen 4.17, -c -d 0)


def _real_blocks():
    data = open(FLAT_HEAD, "rb").read()
    blocks, pos = [], 4096
    while pos + 16 <= len(data):
        off, size = struct.unpack_from(">qq", data, pos)
        if size > len(data) - pos - 16:
            break                                               # the block the head cuts
        blocks.append((off, data[pos + 16:pos + 16 + size]))
        pos += 16 + size
    return data[:4096], blocks


def test_real_flat_head_what_it_lets_us_check():
    r = elfcore.inspect_dump(FLAT_HEAD)
    c = r["contents"]
    assert c["source"] == "bitmaps" and c["dump_level"] == 0 and c["page_size"] == 4096
    assert c["max_mapnr"] == XEN417_MAX_MAPNR                  # highest PFN + 1 of a 3 GiB host with its holes
    assert c["pages_present"] is None and c["domu_pages_excluded"] is None
    # the head holds the first 55600 of the 163840 bytes of the 1st bitmap; they mark exactly the pages
    # of the real PT_LOADs below pfn 55600 * 8 (the partial page at 0x9f000 included)
    below = sum(max(0, min(end, 55600 * 8) - start) for start, end in cb.pfn_ranges(cb.XEN417_LOADS))
    assert below == 379168
    assert ("truncated: the 1st bitmap (163840 bytes at byte 12288) is cut short after 55600 bytes (they mark "
            "379168 pages present): the pages present cannot be counted") in r["problems"]


def test_real_flat_head_completed_counts_the_whole_host(tmp_path):
    """The real stream's header, notes and first bitmap blocks, completed the way -c -d 0 goes on: the
    rest of the 1st bitmap and the 2nd (a copy: level 0 excludes nothing), first and last page
    descriptor, the last page's data, the end marker."""
    head, blocks = _real_blocks()
    present = cb.pfn_bitmap(cb.pfn_ranges(cb.XEN417_LOADS), XEN417_MAX_MAPNR)
    first, half = 12288, len(present)
    real_end = max(off + len(d) for off, d in blocks)
    assert present[:real_end - first] == b"".join(d for off, d in sorted(blocks) if off >= first)
    desc = first + 2 * half
    data_off = desc + 24 * XEN417_PAGES
    last_data = data_off + 4096 * 10
    extra = [(real_end, present[real_end - first:]), (first + half, present),
             (desc, struct.pack("<qIIQ", data_off, 4096, 1, 0)),
             (desc + 24 * (XEN417_PAGES - 1), struct.pack("<qIIQ", last_data, 900, 1, 0)),
             (last_data, b"\x78" * 900)]
    stream = head + b"".join(struct.pack(">qq", off, len(d)) + d for off, d in blocks + extra)
    stream += struct.pack(">qq", -1, -1)
    r = elfcore.inspect_dump(_file(tmp_path, "dump", stream), expect="xen")
    assert r["valid"], r["problems"]
    c = r["contents"]
    assert XEN417_PAGES == 720764
    assert (c["pages_present"], c["pages_dumped"], c["pages_excluded"]) == (720764, 720764, 0)
    assert c["present_mib"] == 2815.5 and c["dumped_pct"] == 100.0 and c["domu_pages_excluded"] is False
    assert r["kdump"]["dumpable_pages"] == 720764
    assert c["bytes_per_present_mib"] == round(len(stream) / (720764 * 4096 / MiB))


# ------------------------------------------------------------------ ELF cores


def test_real_vmcore_contents_match_the_kdump_bitmaps(tmp_path):
    path = str(tmp_path / "vmcore")
    shutil.copyfile(VMCORE_HEAD, path)
    os.truncate(path, VMCORE_FULL_SIZE)
    r = elfcore.inspect_dump(path)
    c = r["contents"]
    memory = 0x9FC00 + 0x3F00000 + 0x6BFDC000 + 0x40000000
    assert c["source"] == "pt_load" and c["present_bytes"] == c["dumped_bytes"] == memory == r["memory_bytes"]
    assert c["page_size"] == 4096                               # VMCOREINFO_XEN's PAGESIZE
    # the same host's flattened dump: 720764 pages present, max_mapnr 0x140000
    assert c["pages_present"] == c["pages_dumped"] == 720764 and c["max_mapnr"] == XEN417_MAX_MAPNR
    assert c["pages_excluded"] == 0 and c["dumped_pct"] == 100.0 and c["dump_level"] is None
    assert c["domu_pages_excluded"] is None
    assert c["note"] == "the PT_LOADs put every byte of memory they cover in the file"
    assert c["bytes_per_present_mib"] == round(VMCORE_FULL_SIZE * MiB / memory)


def test_real_vmcore_head_contents_say_the_file_is_truncated():
    r = elfcore.inspect_dump(VMCORE_HEAD)
    c = r["contents"]
    assert r["truncated"] and c["pages_present"] == c["pages_dumped"] == 720764
    assert c["bytes_per_present_mib"] == round(65536 * MiB / r["memory_bytes"])
    assert c["note"] == ("the PT_LOADs put every byte of memory they cover in the file; but the file is truncated: "
                         "not all of what the headers say was written is there (see problems)")


def test_elf_core_with_excluded_ranges(tmp_path):
    """makedumpfile -E: a run of >= 256 excluded pages ends a PT_LOAD's data (p_filesz < p_memsz)."""
    head, size = cb.xen_core(loads=[(0, 0x100000), (0x100000, 0x400000, 0x100000)])
    r = elfcore.inspect_dump(cb.write_sparse(str(tmp_path / "vmcore"), head, size))
    assert r["valid"], r["problems"]
    c = r["contents"]
    assert (c["present_bytes"], c["dumped_bytes"]) == (0x500000, 0x200000)
    assert (c["pages_present"], c["pages_dumped"], c["pages_excluded"]) == (1280, 512, 768)
    assert c["dumped_pct"] == 40.0 and c["present_mib"] == 5.0 and c["dumped_mib"] == 2.0
    assert c["domu_pages_excluded"] is None and c["dump_level"] is None
    assert c["note"].startswith("an ELF core records no dump level: its PT_LOADs put 2097152 of the 5242880 bytes")


def test_elf_core_without_pagesize_reports_bytes_only(tmp_path):
    head, size = cb.xen_core(loads=[(0, 0x100000)], vmcoreinfo=None)
    r = elfcore.inspect_dump(cb.write_sparse(str(tmp_path / "vmcore"), head, size))
    c = r["contents"]
    assert c["present_bytes"] == c["dumped_bytes"] == 0x100000 and c["page_size"] is None
    assert c["pages_present"] is None and c["max_mapnr"] is None and c["dumped_pct"] == 100.0


def test_other_formats_have_no_contents(tmp_path):
    assert elfcore.inspect_dump(_file(tmp_path, "empty", b""))["contents"] is None
    assert elfcore.inspect_dump(_file(tmp_path, "junk", b"hello" * 10))["contents"] is None
