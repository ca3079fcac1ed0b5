# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a dump holds: bitmap counts of kdump-compressed and flattened dumps, PT_LOAD sums of ELF
cores, on the real Xen 4.17 flattened head and on dumps made by coredump_builder."""

from __future__ import annotations

import struct

from hypothesis import given, strategies as st

from ansible_collections.xenkdump.fleet.plugins.module_utils import elfcore


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
