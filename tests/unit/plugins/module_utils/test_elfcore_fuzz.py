# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile dumps: truncations at every interesting offset, bit flips in headers, random bytes.

Every input must give a clear report (a dict that JSON-serialises, ``valid`` a bool, a reason
for every invalid verdict) -- never a traceback.  A strict prefix of a whole dump must always
be reported truncated.
"""

from __future__ import annotations

import json
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import coredump_builder as cb
from conftest import XEN417
from ansible_collections.xenkdump.fleet.plugins.module_utils import elfcore


def _materialise(head_size):
    head, size = head_size
    return head + b"\0" * (size - len(head))


XEN_CORE = _materialise(cb.xen_core(loads=[(0, 0x2000), (0x100000, 0x1000)]))
LINUX_CORE = _materialise(cb.linux_core(loads=[(0, 0x1000)]))
KDUMP = cb.kdump_compressed(notes=cb.xen_notes(), dumpable_pages=6, max_mapnr=0x10000,
                            vmcoreinfo=b"OSRELEASE=6.1.0-56-amd64\n")
FLAT = cb.flatten(KDUMP)
FLAT_ELF = cb.flatten(XEN_CORE)
with open(os.path.join(XEN417, "vmcore-head.bin"), "rb") as _fh:
    REAL_HEAD = _fh.read(0x3000)          # ELF header, phdrs and all the notes of the real core
with open(os.path.join(XEN417, "flat-kdump-dump-head.bin"), "rb") as _fh:
    REAL_FLAT = _fh.read()

WHOLE = {"xen-elf": XEN_CORE, "linux-elf": LINUX_CORE, "kdump": KDUMP, "flat": FLAT, "flat-elf": FLAT_ELF}


def _interesting(name, data):
    """Offsets where a structure starts or ends (and one byte either side)."""
    points = {0, 4, 8, 12, 16, 32, 52, 64}
    if name.endswith("elf") and not name.startswith("flat"):
        phnum = struct.unpack_from("<H", data, 56)[0]
        points |= {64 + 56 * i for i in range(phnum + 1)}
        for i in range(phnum):
            _t, _f, off, _v, _p, filesz = struct.unpack_from("<IIQQQQ", data, 64 + 56 * i)
            points |= {off, off + filesz}
        pos = 0x1000
        while pos < 0x2000:
            namesz, descsz, _ty = struct.unpack_from("<III", data, pos)
            if not namesz:
                break
            points.add(pos)
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    if name == "kdump":
        points |= {424, 464, 4096, 4096 + 104, 4096 + 104 + 25}
        points |= set(range(0, len(data), 4096))
        points |= {len(data) - 64 * k for k in range(7)}
    if name.startswith("flat"):
        pos = 4096
        while pos + 16 <= len(data):
            points |= {pos, pos + 16}
            off, size = struct.unpack_from(">qq", data, pos)
            if off == -1:
                break
            pos += 16 + size
    out = set()
    for p in points:
        out |= {p - 1, p, p + 1}
    return sorted(p for p in out if 0 <= p < len(data))


def _check(report):
    json.dumps(report)
    assert isinstance(report["valid"], bool)
    assert report["valid"] == (not report["problems"])
    assert all(isinstance(p, str) and p for p in report["problems"])
    assert report["bytes_read"] >= 0
    return report


def _inspect(tmp_path, data, name="dump"):
    path = tmp_path / name
    path.write_bytes(data)
    return _check(elfcore.inspect_dump(str(path)))


def test_whole_images_are_valid(tmp_path):
    for name, data in WHOLE.items():
        report = _inspect(tmp_path, data, name)
        assert report["valid"], (name, report["problems"])


CASES = [(name, cut) for name, data in sorted(WHOLE.items()) for cut in _interesting(name, data)]


def test_enough_interesting_offsets():
    assert len(CASES) >= 100


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_truncation_at_interesting_offsets(tmp_path, name):
    """Every strict prefix ending at a structure boundary is reported truncated (or empty)."""
    cuts = [cut for n, cut in CASES if n == name]
    assert cuts
    for cut in cuts:
        report = _inspect(tmp_path, WHOLE[name][:cut])
        assert report["valid"] is False, (name, cut)
        if cut > 0:
            assert report["truncated"] is True, (name, cut, report["problems"])
        else:
            assert report["empty"] is True


FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])


@FUZZ
@given(name=st.sampled_from(sorted(WHOLE)), data=st.data())
def test_truncation_anywhere(tmp_path, name, data):
    whole = WHOLE[name]
    cut = data.draw(st.integers(0, len(whole) - 1))
    report = _inspect(tmp_path, whole[:cut])
    assert report["valid"] is False and (report["truncated"] or report["empty"])


@FUZZ
@given(name=st.sampled_from(sorted(WHOLE) + ["real-head", "real-flat"]), data=st.data())
def test_bit_flips_in_headers(tmp_path, name, data):
    whole = {"real-head": REAL_HEAD, "real-flat": REAL_FLAT}.get(name) or WHOLE[name]
    limit = 4096 + 16 + 4096 + 512 if name.startswith(("flat", "real-flat")) else 0x2400
    img = bytearray(whole)
    for _flip in range(data.draw(st.integers(1, 4))):
        bit = data.draw(st.integers(0, min(len(img), limit) * 8 - 1))
        img[bit // 8] ^= 1 << (bit % 8)
    _inspect(tmp_path, bytes(img))


@FUZZ
@given(prefix=st.sampled_from([b"", b"\x7fELF\x02\x01\x01", b"KDUMP   ", b"makedumpfile\0\0\0\0"]),
       body=st.binary(max_size=6000))
def test_random_bytes(tmp_path, prefix, body):
    _inspect(tmp_path, prefix + body)


@FUZZ
@given(blocks=st.lists(st.tuples(st.integers(-2, 1 << 20), st.integers(-2, 600)), max_size=8),
       end=st.booleans())
def test_random_flattened_streams(tmp_path, blocks, end):
    stream = bytearray(cb.flatten(b"", pieces=[], end_marker=False))
    for off, size in blocks:
        stream += struct.pack(">qq", off, size) + KDUMP[:max(size, 0)]
    if end:
        stream += struct.pack(">qq", -1, -1)
    _inspect(tmp_path, bytes(stream))
