# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vmcore inspection on the real Xen 4.17 fixtures and on cores/dumps made by coredump_builder."""

from __future__ import annotations

import os
import shutil
import struct

import pytest

import coredump_builder as cb
from conftest import XEN417
from ansible_collections.xenkdump.fleet.plugins.module_utils import elfcore

VMCORE_HEAD = os.path.join(XEN417, "vmcore-head.bin")
FLAT_HEAD = os.path.join(XEN417, "flat-kdump-dump-head.bin")
VMCORE_FULL_SIZE = 2952261632
GiB = 1 << 30


def _file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _sparse(tmp_path, name, head, size):
    return cb.write_sparse(str(tmp_path / name), head, size)


# ------------------------------------------------------------------ the real Xen 4.17 dumps


def test_real_xen_vmcore_full_shape(tmp_path):
    path = str(tmp_path / "vmcore")
    shutil.copyfile(VMCORE_HEAD, path)
    os.truncate(path, VMCORE_FULL_SIZE)
    r = elfcore.inspect_dump(path)
    assert r["valid"] is True, r["problems"]
    assert r["format"] == "elf" and r["kind"] == "xen" and r["is_xen"] is True
    assert r["xen"]["version"] == "4.17" and (r["xen"]["major"], r["xen"]["minor"]) == (4, 17)
    assert r["nr_cpus"] == 2 and r["xen"]["crash_regs"] == 2 and r["xen"]["crash_info"] is True
    assert r["pt_load_count"] == 4
    assert r["memory_bytes"] == 0x9FC00 + 0x3F00000 + 0x6BFDC000 + 0x40000000
    assert r["size"] == r["expected_size"] == VMCORE_FULL_SIZE
    assert r["xen"]["vmcoreinfo"]["PAGESIZE"] == "4096"
    assert r["xen"]["vmcoreinfo"]["SYMBOL(domain_list)"] == "ffff82d04057b380"
    assert r["xen"]["pointers"]["extra_version"] == "0x7fba053f"
    # the sparse copy holds zeros where Xen's strings were: say so, report major.minor
    assert r["xen"]["extra_version"] is None and r["xen"]["full_version"] == "4.17"
    assert "physical-address pointers" in r["xen"]["version_note"]
    assert r["notes"]["types"] == {"CORE/0x1": 2, "Xen/0x1000002": 2, "Xen/0x1000001": 1,
                                   "VMCOREINFO_XEN/0x0": 1}
    assert 0 < r["bytes_read"] < 16 * 1024
    assert r["linux"] is None and r["problems"] == [] and r["truncated"] is False


def test_real_xen_vmcore_head_is_truncated():
    r = elfcore.inspect_dump(VMCORE_HEAD)
    assert r["valid"] is False and r["truncated"] is True
    assert r["expected_size"] == VMCORE_FULL_SIZE
    assert "PT_LOAD #4" in r["problems"][0] and "2952196096 bytes missing" in r["problems"][0]
    assert r["xen"]["version"] == "4.17" and r["nr_cpus"] == 2   # facts still reported


def test_real_flattened_head_is_truncated_xen_kdump():
    r = elfcore.inspect_dump(FLAT_HEAD)
    assert r["valid"] is False and r["truncated"] is True
    assert r["format"] == "flattened" and r["inner_format"] == "kdump-compressed"
    assert r["flattened"]["end_marker"] is False and r["flattened"]["type"] == 1
    assert r["flattened"]["data_blocks"] == 17
    assert any("without the end marker" in p or "no end marker" in p for p in r["problems"])
    kd = r["kdump"]
    assert kd["header_version"] == 6 and kd["block_size"] == 4096 and kd["nr_cpus"] == 2
    assert kd["dump_level"] == 0 and kd["compression"] == ["zlib"] and kd["utsname"] == {}
    assert kd["sub_hdr_size"] == 2 and kd["bitmap_blocks"] == 80 and kd["note_size"] == 5000
    # makedumpfile copied the Xen notes into the dump: it is a Xen hypervisor dump
    assert r["is_xen"] is True and r["kind"] == "xen" and r["xen"]["version"] == "4.17"
    assert r["xen"]["crash_regs"] == 2
    assert "compressed page data" in r["xen"]["version_note"]
    # headers and notes, plus the 55600 bytes of the 1st bitmap the head holds (counted, see
    # test_elfcore_contents.py); no page data
    assert 55600 < r["bytes_read"] < 16 * 1024 + 55600


def test_real_flattened_stream_closed_but_image_short(tmp_path):
    """Cut the fixture at its last whole block and add the end marker: the stream is whole, but the
    rebuilt kdump file stops before its page descriptors."""
    data = open(FLAT_HEAD, "rb").read()[:63168] + struct.pack(">qq", -1, -1)
    r = elfcore.inspect_dump(_file(tmp_path, "dump", data))
    assert r["flattened"]["end_marker"] is True and r["truncated"] is True
    assert r["problems"] == [
        "truncated: the 1st bitmap (163840 bytes at byte 12288) is cut short after 53248 bytes (they mark 360352 "
        "pages present): the pages present cannot be counted",
        "truncated: the page descriptors start at byte 339968 but the image is 65536 bytes"]


# ------------------------------------------------------------------ generated ELF cores


def test_generated_xen_core_64gib_reads_little(tmp_path):
    head, size = cb.xen_core(nr_cpus=4, loads=[(0, 0xA0000), (0x100000, 64 * GiB - 0x100000)])
    path = _sparse(tmp_path, "vmcore", head, size)
    r = elfcore.inspect_dump(path)
    assert r["valid"] is True and r["size"] > 64 * GiB - GiB
    assert r["nr_cpus"] == 4 and r["xen"]["crash_regs"] == 4 and r["pt_load_count"] == 2
    assert r["bytes_read"] < 1 << 20
    assert os.stat(path).st_blocks * 512 < 1 << 20    # the test file itself is sparse


def test_xen_extra_version_followed_into_memory(tmp_path):
    loads = [(0, 0x100000), (0x7F800000, 0x1000000)]
    pa = 0x7F800000 + 0x3A053F
    head, size = cb.xen_core(loads=loads, extra_pa=pa)
    path = _sparse(tmp_path, "vmcore", head, size)
    data_start = len(head) + 0x100000
    with open(path, "r+b") as handle:
        handle.seek(data_start + (pa - 0x7F800000))
        handle.write(b".7-deb12u1\0")
    r = elfcore.inspect_dump(path)
    assert r["xen"]["extra_version"] == ".7-deb12u1" and r["xen"]["full_version"] == "4.17.7-deb12u1"
    assert r["xen"]["version_note"] == "" and r["valid"]


def test_generated_linux_core(tmp_path):
    head, size = cb.linux_core(nr_cpus=3, osrelease="6.1.0-56-amd64", crashtime=1764157920)
    r = elfcore.inspect_dump(_sparse(tmp_path, "vmcore", head, size))
    assert r["valid"] and r["kind"] == "linux" and r["is_xen"] is False and r["xen"] is None
    assert r["nr_cpus"] == 3
    assert r["linux"]["osrelease"] == "6.1.0-56-amd64" and r["linux"]["crashtime"] == 1764157920
    assert r["linux"]["crashtime_iso"] == "2025-11-26T11:52:00+00:00"


def test_linux_core_without_crashtime(tmp_path):
    head, size = cb.linux_core(crashtime=None)
    r = elfcore.inspect_dump(_sparse(tmp_path, "vmcore", head, size))
    assert r["valid"] and r["linux"]["crashtime"] is None and r["linux"]["osrelease"]


@pytest.mark.parametrize("expect,shape,ok", [("xen", "xen", True), ("xen", "linux", False),
                                             ("linux", "xen", False), ("linux", "linux", True),
                                             ("any", "xen", True), ("any", "linux", True)])
def test_expect(tmp_path, expect, shape, ok):
    head, size = cb.xen_core() if shape == "xen" else cb.linux_core()
    r = elfcore.inspect_dump(_sparse(tmp_path, "vmcore", head, size), expect=expect)
    assert r["valid"] is ok
    if not ok:
        assert "expected a" in r["problems"][-1]


def test_xen_core_missing_crash_info_and_regs_mismatch(tmp_path):
    notes = cb.xen_notes(nr_cpus=2, crash_info=False)
    notes += cb.note(b"CORE", cb.NT_PRSTATUS, cb.prstatus(3))     # a third CPU without CRASH_REGS
    head, size = cb.elf_core(notes, [(0, 0x100000)])
    r = elfcore.inspect_dump(_sparse(tmp_path, "vmcore", head, size))
    assert not r["valid"]
    assert any("CRASH_INFO" in p for p in r["problems"])
    assert any("2 CRASH_REGS notes for 3 CORE" in p for p in r["problems"])
    assert r["xen"]["version"] is None


def test_core_without_notes_or_loads(tmp_path):
    head, size = cb.elf_core(b"", [])
    r = elfcore.inspect_dump(_sparse(tmp_path, "vmcore", head, size))
    assert not r["valid"]
    assert any("no PT_LOAD" in p for p in r["problems"])
    assert any("NT_PRSTATUS" in p for p in r["problems"])


def test_malformed_note(tmp_path):
    # a note whose descsz runs past the note area
    bad = struct.pack("<III", 5, 0x10000, 1) + b"CORE\0\0\0\0" + b"\0" * 16
    head, size = cb.elf_core(bad, [(0, 0x1000)])
    r = elfcore.inspect_dump(_sparse(tmp_path, "vmcore", head, size))
    assert not r["valid"] and any("claims namesz=5 descsz=65536" in p for p in r["problems"])


def test_elf_executable_is_not_a_core(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "vmlinux", cb.elf_kernel()))
    assert not r["valid"] and r["format"] == "elf" and "not a core dump: ELF type ET_EXEC" in r["problems"][0]


def test_big_endian_and_32bit_cores_do_not_crash(tmp_path):
    head, size = cb.xen_core(loads=[(0, 0x1000)])
    be = bytearray(head)
    be[5] = 2
    r = elfcore.inspect_dump(_sparse(tmp_path, "be", bytes(be), size))
    assert r["valid"] is False and r["problems"]
    c32 = bytearray(head)
    c32[4] = 1
    r = elfcore.inspect_dump(_sparse(tmp_path, "c32", bytes(c32), size))
    assert r["valid"] is False and r["problems"]


# ------------------------------------------------------------------ empty and foreign files


def test_empty_dump(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "dump.202611261152", b""))
    assert r["valid"] is False and r["empty"] is True and r["format"] == "empty"
    assert r["problems"][0].startswith("empty") and r["bytes_read"] == 0


def test_text_file_is_not_a_dump(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "dump.1", b"kdump-tools: saved vmcore\n"))
    assert not r["valid"] and r["format"] == "unknown" and "not a crash dump" in r["problems"][0]


@pytest.mark.parametrize("data", [b"\x7fEL", b"KDUMP", b"makedump"])
def test_signature_cut_short(tmp_path, data):
    r = elfcore.inspect_dump(_file(tmp_path, "dump", data))
    assert not r["valid"] and r["truncated"] is True


def test_incomplete_name(tmp_path):
    head, size = cb.xen_core()
    r = elfcore.inspect_dump(_sparse(tmp_path, "dump-incomplete", head, size))
    assert not r["valid"] and "did not finish" in r["problems"][-1]


# ------------------------------------------------------------------ kdump-compressed and flattened


def _xen_kdump(**kw):
    return cb.kdump_compressed(notes=cb.xen_notes(), **kw)


def test_kdump_compressed_xen(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "dump", _xen_kdump(dumpable_pages=7)))
    assert r["valid"], r["problems"]
    assert r["format"] == "kdump-compressed" and r["is_xen"] and r["xen"]["version"] == "4.17"
    assert r["kdump"]["dumpable_pages"] == 7 and r["nr_cpus"] == 2 and r["kdump"]["max_mapnr"] == 0x140000
    assert r["expected_size"] == r["size"]


def test_kdump_compressed_linux_vmcoreinfo(tmp_path):
    uts = cb.utsname("Linux", "node1", "6.1.0-56-amd64", "#1 SMP", "x86_64")
    data = cb.kdump_compressed(notes=b"",
                               vmcoreinfo=b"OSRELEASE=6.1.0-56-amd64\nCRASHTIME=1764157920\n", uts=uts,
                               dump_level=31, nr_cpus=8)
    r = elfcore.inspect_dump(_file(tmp_path, "dump", data))
    assert r["valid"], r["problems"]
    assert r["kdump"]["utsname"]["release"] == "6.1.0-56-amd64" and r["kdump"]["dump_level"] == 31
    assert r["linux"]["osrelease"] == "6.1.0-56-amd64" and r["linux"]["crashtime"] == 1764157920
    assert r["kind"] == "linux" and r["nr_cpus"] == 8


def test_kdump_without_notes_is_unknown_kind(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "dump", cb.kdump_compressed()))
    assert r["valid"] and r["kind"] == "unknown" and r["is_xen"] is None
    assert any("no ELF notes" in w for w in r["remarks"])


def test_kdump_incomplete_flag(tmp_path):
    data = _xen_kdump(status=0x1 | 0x8)
    r = elfcore.inspect_dump(_file(tmp_path, "dump", data))
    assert not r["valid"] and "incomplete" in r["problems"][0]


def test_kdump_corrupt_header(tmp_path):
    data = bytearray(_xen_kdump())
    struct.pack_into("<i", data, 428, 3000)
    r = elfcore.inspect_dump(_file(tmp_path, "dump", bytes(data)))
    assert not r["valid"] and "block_size 3000" in r["problems"][0]


def test_kdump_truncated_inside_pages(tmp_path):
    data = _xen_kdump(dumpable_pages=10)
    r = elfcore.inspect_dump(_file(tmp_path, "dump", data[:-100]))
    assert r["truncated"] and "100 bytes missing" in r["problems"][0]


def test_flattened_whole_is_valid(tmp_path):
    image = _xen_kdump(dumpable_pages=5)
    r = elfcore.inspect_dump(_file(tmp_path, "dump.202611261152", cb.flatten(image)))
    assert r["valid"], r["problems"]
    assert r["format"] == "flattened" and r["inner_format"] == "kdump-compressed"
    assert r["flattened"]["image_size"] == len(image) == r["flattened"]["image_expected_size"]
    assert r["flattened"]["end_marker"] and r["expected_size"] == r["size"]
    assert r["is_xen"] and r["xen"]["crash_regs"] == 2


def test_flattened_out_of_order_and_overwrites(tmp_path):
    image = _xen_kdump(dumpable_pages=3)
    pieces = [(0, cb.DISK_DUMP_HEADER_SIZE), (4096 + 104, len(image) - 4096 - 104), (4096, 104)]
    stream = bytearray(cb.flatten(image, pieces=pieces))
    r = elfcore.inspect_dump(_file(tmp_path, "dump", bytes(stream)))
    assert r["valid"], r["problems"]
    # a later write of garbage over the sub header wins, as with makedumpfile -R
    stream2 = cb.flatten(image, pieces=pieces, end_marker=False) + struct.pack(">qq", 4096 + 8, 4) + \
        struct.pack("<i", 99) + struct.pack(">qq", -1, -1)
    r2 = elfcore.inspect_dump(_file(tmp_path, "dump2", stream2))
    assert r2["kdump"]["dump_level"] == 99


def test_flattened_without_end_marker(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "dump", cb.flatten(_xen_kdump(), end_marker=False)))
    assert r["truncated"] and "without the end marker" in r["problems"][0]
    assert r["kdump"]["nr_cpus"] == 2 and r["expected_size"] is None


def test_flattened_trailing_bytes_and_bad_type(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "dump", cb.flatten(_xen_kdump()) + b"junk"))
    assert r["valid"] and r["flattened"]["trailing_bytes"] == 4 and any("4 bytes follow" in w for w in r["remarks"])
    r = elfcore.inspect_dump(_file(tmp_path, "dump2", cb.flatten(_xen_kdump(), ftype=7)))
    assert not r["valid"] and "unknown makedumpfile header type 7" in r["problems"][0]


def test_flattened_elf_inside(tmp_path):
    head, size = cb.xen_core(loads=[(0, 0x2000)])
    image = head + b"\0" * (size - len(head))
    r = elfcore.inspect_dump(_file(tmp_path, "dump", cb.flatten(image)))
    assert r["valid"], r["problems"]
    assert r["inner_format"] == "elf" and r["xen"]["version"] == "4.17"


def test_flattened_corrupt_data_header(tmp_path):
    stream = cb.flatten(_xen_kdump(), pieces=[(0, 464), (-5, 10)])
    r = elfcore.inspect_dump(_file(tmp_path, "dump", stream))
    assert not r["valid"] and "corrupt flattened data header" in r["problems"][0]


def test_flattened_of_garbage(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "dump", cb.flatten(b"hello world" * 10, pieces=[(0, 110)])))
    assert not r["valid"] and "does not rebuild" in r["problems"][0]
    r = elfcore.inspect_dump(_file(tmp_path, "dump2", cb.flatten(b"", pieces=[])))
    assert not r["valid"] and "holds no data" in r["problems"][0]


# ------------------------------------------------------------------ choosing a dump in a directory


def _touch(path, data=b"x", mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_find_newest_dump_in_kdump_tools_layout(tmp_path):
    crash = tmp_path / "crash"
    old = _touch(str(crash / "202611251000" / "dump.202611251000"), mtime=1000)
    new = _touch(str(crash / "202611261152" / "dump.202611261152"), mtime=2000)
    _touch(str(crash / "202611261152" / "dmesg.202611261152"), mtime=3000)
    _touch(str(crash / "kexec_cmd"), mtime=4000)
    os.symlink("/boot/vmlinuz", str(crash / "kernel_link"))
    chosen, candidates = elfcore.find_dump(str(crash))
    assert chosen == new and candidates == [old, new]


def test_find_dump_file_itself_and_errors(tmp_path):
    f = _touch(str(tmp_path / "anything.bin"))
    assert elfcore.find_dump(f) == (f, [f])
    with pytest.raises(elfcore.DumpNotFound) as exc:
        elfcore.find_dump(str(tmp_path / "missing"))
    assert exc.value.code == "XK510"
    empty = tmp_path / "empty"
    empty.mkdir()
    _touch(str(empty / "dmesg.1"))
    with pytest.raises(elfcore.NoDumpInDirectory) as exc:
        elfcore.find_dump(str(empty))
    assert exc.value.code == "XK511" and "dmesg" in str(exc.value)


def test_vmcore_info_on_directory_and_custom_patterns(tmp_path):
    head, size = cb.xen_core()
    _sparse(tmp_path, "vmcore", head, size)
    _touch(str(tmp_path / "vmcore-dmesg.txt"))
    r = elfcore.vmcore_info(str(tmp_path))
    assert r["valid"] and r["path"].endswith("/vmcore") and r["source"] == str(tmp_path)
    with pytest.raises(elfcore.NoDumpInDirectory):
        elfcore.vmcore_info(str(tmp_path), patterns=["*.zzz"])
    with pytest.raises(ValueError):
        elfcore.vmcore_info(str(tmp_path), expect="windows")


def test_require_valid(tmp_path):
    r = elfcore.inspect_dump(_file(tmp_path, "dump", b""))
    with pytest.raises(elfcore.DumpInvalid) as exc:
        elfcore.require_valid(r)
    assert exc.value.code == "XK512" and "empty" in str(exc.value)
    assert exc.value.data["problems"] == r["problems"]
    head, size = cb.xen_core()
    elfcore.require_valid(elfcore.inspect_dump(_sparse(tmp_path, "ok", head, size)))


def test_unreadable_dump(tmp_path):
    with pytest.raises(elfcore.DumpNotFound):
        elfcore.inspect_dump(str(tmp_path / "missing"))


def test_flattened_kdump_tools_shape_reads_only_block_headers(tmp_path):
    path = str(tmp_path / "dump.202611261152")
    size, blocks = cb.write_sparse_flat_kdump(path, pages=1000)
    r = elfcore.inspect_dump(path, expect="xen")
    assert r["valid"], r["problems"]
    assert r["kdump"]["dumpable_pages"] == 1000 and r["flattened"]["data_blocks"] == blocks
    assert r["size"] == size and r["xen"]["version"] == "4.17"
    # every data header (16 bytes) and both bitmaps (0x140000 bits each) are read, page bodies never are
    bitmaps = 2 * 0x140000 // 8
    assert 16 * blocks + bitmaps < r["bytes_read"] < 16 * blocks + bitmaps + 64 * 1024 < size // 10
    os.truncate(path, size - 16 - 100)             # lose the end marker and the end of the last page
    r = elfcore.inspect_dump(path)
    assert r["truncated"] and "claims 4096 bytes but only" in r["problems"][0]
    assert r["flattened"]["image_expected_size"] - r["flattened"]["image_size"] == 100


def test_flattened_without_end_marker_but_whole_pages(tmp_path):
    path = str(tmp_path / "dump")
    cb.write_sparse_flat_kdump(path, pages=50, end_marker=False)
    r = elfcore.inspect_dump(path)
    assert r["truncated"] and r["problems"] == [
        "truncated: the flattened stream ends at byte %d after %d data blocks without the end marker"
        % (r["size"], r["flattened"]["data_blocks"])]
