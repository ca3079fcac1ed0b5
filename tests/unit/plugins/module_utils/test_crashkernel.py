# -*- coding: utf-8 -*-
"""Xen crashkernel= grammar: parse, format, round-trip, select-by-RAM, errors."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings, strategies as st

from conftest import XEN417

from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel as ck
from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError

M, G, T = ck.MIB, ck.GIB, ck.TIB


def fixture(name: str) -> str:
    with open(os.path.join(XEN417, name), encoding="utf-8") as fh:
        return fh.read()


# ---------------------------------------------------------------------------- valid values

@pytest.mark.parametrize("text,size,ranges,placement,canonical", [
    ("256M", 256 * M, (), None, "256M"),
    ("256m", 256 * M, (), None, "256M"),
    ("256M@64M", 256 * M, (), ("@", 64 * M), "256M@64M"),
    ("512M<4G", 512 * M, (), ("<", 4 * G), "512M<4G"),
    ("256M,below=4G", 256 * M, (), (",below=", 4 * G), "256M,below=4G"),
    ("256M,below=4g", 256 * M, (), (",below=", 4 * G), "256M,below=4G"),
    ("1024M", G, (), None, "1G"),
    ("262144", 256 * M, (), None, "256M"),            # no unit: Xen reads KiB
    ("268435456B", 256 * M, (), None, "256M"),        # B = bytes
    ("268435456b", 256 * M, (), None, "256M"),
    ("0x40000K", 256 * M, (), None, "256M"),          # hex, like strtoull base 0
    ("0x100M@0x10000k", 256 * M, (), ("@", 64 * M), "256M@64M"),
    ("0x1b", 0x1b * 1024, (), None, "27K"),           # Xen's trap: the b is a hex digit -> KiB
    ("010M", 8 * M, (), None, "8M"),                  # leading 0: octal, like strtoull
    ("1T", T, (), None, "1T"),
    ("3000K", 3000 * 1024, (), None, "3000K"),
    ("1000B", 1000, (), None, "1000B"),
    ("0", 0, (), None, "0M"),
    ("4G-:256M", None, ((4 * G, None, 256 * M),), None, "4G-:256M"),
    ("0-2G:128M,2G-8G:256M,8G-:512M", None,
     ((0, 2 * G, 128 * M), (2 * G, 8 * G, 256 * M), (8 * G, None, 512 * M)), None,
     "0M-2G:128M,2G-8G:256M,8G-:512M"),
    ("1G-4G:192M,4G-64G:256M,64G-:512M<4G", None,
     ((G, 4 * G, 192 * M), (4 * G, 64 * G, 256 * M), (64 * G, None, 512 * M)), ("<", 4 * G),
     "1G-4G:192M,4G-64G:256M,64G-:512M<4G"),
    ("0-:256M@64M", None, ((0, None, 256 * M),), ("@", 64 * M), "0M-:256M@64M"),
])
def test_parse_valid(text, size, ranges, placement, canonical):
    parsed = ck.parse(text)
    assert parsed.size == size
    assert [(r.start, r.end, r.size) for r in parsed.ranges] == list(ranges)
    if placement is None:
        assert parsed.placement is None
    else:
        assert (parsed.placement.style, parsed.placement.address) == placement
    assert parsed.format() == canonical
    assert ck.parse(canonical) == parsed


def test_fixture_host_value_from_real_xen_cmdline():
    info = fixture("xl-info.txt")
    line = re.search(r"^xen_commandline\s*:\s*(.*)$", info, re.M).group(1)
    assert ck.cmdline_values(line) == ["256M@64M"]
    parsed = ck.parse("256M@64M")
    # Xen's own log on that host: "Kdump: 256MB (262144kB) at 0x4000000"
    dmesg = fixture("xl-dmesg-kdump-lines.txt")
    size_mb, kb, start = re.search(r"Kdump: (\d+)MB \((\d+)kB\) at (0x[0-9a-f]+)", dmesg).groups()
    assert ck.reserved_mb(parsed, 3071) == int(size_mb) == int(kb) // 1024
    assert parsed.placement.address == int(start, 16)
    assert ck.placed_below(parsed, 3071 * M)


def test_notes_explain_surprising_but_valid_spellings():
    assert any("hex digit" in n for n in ck.parse("0x1b").notes)
    assert any("KiB" in n for n in ck.parse("262144").notes)
    assert any("octal" in n for n in ck.parse("010M").notes)
    assert ck.parse("256M").notes == ()
    assert any("unset" in n for n in ck.parse("256M@0").notes)


# ---------------------------------------------------------------------------- select by RAM

RANGES = ck.parse("0-2G:128M,2G-8G:256M,8G-:512M")


@pytest.mark.parametrize("ram_mb,expected", [
    (1024, 128), (2047, 128),
    (2048, 256),                 # start is inclusive: 2G itself is in 2G-8G
    (8191, 256),
    (8192, 512),                 # end is exclusive: 8G is no longer in 2G-8G
    (4 * 1024 * 1024, 512),
])
def test_select_is_start_inclusive_end_exclusive(ram_mb, expected):
    assert ck.reserved_mb(RANGES, ram_mb) == expected


def test_first_match_wins_and_oversize_entries_are_skipped():
    overlapping = ck.parse("0-:64M,1G-:512M")
    assert ck.reserved_mb(overlapping, 4096) == 64
    # size >= RAM: Xen prints "crashkernel: invalid size" and tries the next entry
    oversize = ck.parse("0-:4G,0-:128M")
    assert ck.reserved_mb(oversize, 3071) == 128
    assert ck.reserved_mb(oversize, 8192) == 4096


def test_no_matching_range_reserves_nothing():
    assert ck.reserved_mb(ck.parse("4G-:256M"), 3071) == 0
    assert ck.reserved_mb(ck.parse("4G-:256M"), 4096) == 256


def test_size_rounds_up_to_mib_like_xen():
    assert ck.reserved_mb(ck.parse("1000B"), 3071) == 1
    assert ck.reserved_mb(ck.parse("262145"), 3071) == 257


def test_boundary_inside_last_mib_is_reported():
    near = ck.parse("0-3071M:128M,3071M-:256M")
    assert ck.boundary_note(near, 3071) is None  # 3071M exactly: start inclusive, no doubt
    odd = ck.parse("0-3220177396B:128M,3220177396B-:256M")  # between 3071 MiB and 3072 MiB
    note = ck.boundary_note(odd, 3071)
    assert note and "3071" in note


def test_placement_guarantees():
    ram = 3071 * M
    assert ck.placed_below(ck.parse("256M,below=4G"), ram)
    assert ck.placed_below(ck.parse("0-:256M<4G"), ram)
    assert ck.placed_below(ck.parse("256M@3840M"), ram)          # ends exactly at 4G
    assert not ck.placed_below(ck.parse("256M@3841M"), ram)
    assert not ck.placed_below(ck.parse("256M"), ram)            # Xen has no default limit
    assert not ck.placed_below(ck.parse("256M<8G"), ram)
    assert not ck.placed_below(ck.parse("256M@0"), ram)          # 0 = unset start
    assert ck.with_below(ck.parse("0-:256M")).format() == "0M-:256M<4G"
    assert ck.with_below(ck.parse("256M")).format() == "256M,below=4G"


def test_cmdline_values_last_wins_and_quotes():
    line = 'console=com1 crashkernel=128M dom0_mem=1G "crashkernel=256M,below=4G" crashkernel'
    assert ck.cmdline_values(line) == ["128M", "256M,below=4G", ""]
    assert ck.cmdline_values(None) == []
    assert ck.cmdline_values("crashkernelx=1") == []


# ---------------------------------------------------------------------------- malformed values

MALFORMED = [
    # (value, error code, 1-based position named in the message or None)
    ("", "XK200", None),
    # a repeated option name: Xen reads no number and reserves nothing (issue 17)
    ("crashkernel=", "XK201", 1), ("crashkernel=256M", "XK201", 1), ("crashkernel=0-:256M<4G", "XK201", 1),
    ("M", "XK201", 1), ("abc", "XK201", 1), ("-256M", "XK201", 1), ("+256M", "XK201", 1),
    ("256Q", "XK201", 4), ("256MB", "XK201", 5), ("256 M", "XK201", 4), (" 256M", "XK201", 1),
    ("256M ", "XK201", 5), ("256M\t", "XK201", 5), ('"256M"', "XK201", 1), ("256M'", "XK201", 5),
    ("256M@", "XK201", 6), ("256M<", "XK201", 6), ("256M@64Q", "XK201", 8), ("256M@@64M", "XK201", 6),
    ("256M@64M<4G", "XK201", 9), ("256M<4G@64M", "XK201", 8), ("256M,below", "XK201", 5),
    ("256M,below=", "XK201", 12), ("256M,BELOW=4G", "XK201", 5), ("256M,below:4G", "XK201", 5),
    ("256M,high", "XK201", 5), ("256M,low", "XK201", 5), ("256M;", "XK201", 5), ("256M=", "XK201", 5),
    ("256M,,below=4G", "XK201", 5), ("256M,below=4G,", "XK201", 14), ("256M,below=0", "XK201", None),
    ("256M<0", "XK201", None), ("0x", "XK201", 3), ("0xG", "XK201", 3), ("09M", "XK201", 2),
    ("018M", "XK201", 3), ("1.5G", "XK201", 2), ("256M@64M@64M", "XK201", 9), ("auto", "XK201", 1),
    ("256M-", "XK201", 5), ("2G-1G", "XK201", 3),
    (":256M", "XK201", 1), ("-:256M", "XK201", 1), ("0-", "XK201", 2), ("0-:", "XK201", 4),
    ("0:256M", "XK201", 2), ("0-:256Q", "XK201", 7), ("0-2G256M", "XK201", 2), ("0-2G;256M", "XK201", 2),
    ("0-2G:128M,", "XK201", 11), ("0-2G:128M,,2G-:256M", "XK201", 11), ("0-2G:128M;2G-:256M", "XK201", 10),
    ("0-2G:128M 2G-:256M", "XK201", 10), ("0-2G:128M,2G:256M", "XK201", 13), ("0-:256M@", "XK201", 9),
    ("0-:256M<", "XK201", 9), ("0-:256M<4G,", "XK201", 11), ("0-:256M@1G<4G", "XK201", 11),
    ("0-:256M,below", "XK201", 9), ("0-:256M:512M", "XK201", 8), ("0-1G-2G:128M", "XK201", 5),
    ("4G-2G:128M", "XK202", 4), ("2G-2G:128M", "XK202", 4), ("1G-1024M:128M", "XK202", 4),
    ("0-:256M,below=4G", "XK204", 8), ("0-2G:128M,2G-:256M,below=4G", "XK204", 19),
    ("99999999999999999999", "XK205", 1), ("16777216T", "XK205", 1), ("256M@20000000T", "XK205", 6),
    ("0-1G:0,1G-:256M", "XK206", 6), ("0-:0", "XK206", 4),
    (",".join("%dG-%dG:64M" % (i, i + 1) for i in range(17)), "XK203", None),
]


def test_enough_malformed_cases():
    assert len(MALFORMED) >= 50


@pytest.mark.parametrize("value,code,position", MALFORMED, ids=[repr(m[0])[:40] for m in MALFORMED])
def test_malformed_values_raise_clear_errors(value, code, position):
    with pytest.raises(XenKdumpError) as info:
        ck.parse(value)
    exc = info.value
    assert exc.code == code, exc.message
    assert exc.code in exc.message and "Fix:" in exc.message
    assert exc.remedy
    if position is not None:
        assert exc.data.get("position") == position, exc.message
        assert "character %d" % position in exc.message or "at the end" in exc.message


def test_non_string_inputs_are_errors_not_tracebacks():
    for bad in (None, 256, b"256M", ["256M"]):
        with pytest.raises(XenKdumpError):
            ck.parse(bad)


def test_sixteen_ranges_are_fine_seventeen_are_not():
    sixteen = ",".join("%dG-%dG:64M" % (i, i + 1) for i in range(16))
    assert len(ck.parse(sixteen).ranges) == 16


# ---------------------------------------------------------------------------- hypothesis

SIZES = st.one_of(
    st.integers(min_value=0, max_value=1 << 44),
    st.integers(min_value=1, max_value=4096).map(lambda n: n * M),
    st.integers(min_value=1, max_value=64).map(lambda n: n * G),
)
PLACEMENTS = st.one_of(
    st.none(),
    st.builds(ck.Placement, st.sampled_from(["@", "<"]), st.integers(min_value=1, max_value=1 << 44)),
)


@st.composite
def crashkernels(draw):
    if draw(st.booleans()):
        size = draw(SIZES)
        style = draw(st.sampled_from([None, "@", "<", ",below="]))
        placement = None if style is None else ck.Placement(style, draw(st.integers(1, 1 << 44)))
        return ck.CrashKernel(size=size, placement=placement)
    count = draw(st.integers(min_value=1, max_value=ck.MAX_RANGES))
    bounds = sorted(draw(st.lists(st.integers(0, 1 << 44), min_size=count + 1, max_size=count + 1,
                                  unique=True)))
    entries = []
    for i in range(count):
        end = bounds[i + 1] if (i < count - 1 or draw(st.booleans())) else None
        entries.append(ck.RangeEntry(bounds[i], end, draw(st.integers(1, 1 << 40))))
    return ck.CrashKernel(ranges=tuple(entries), placement=draw(PLACEMENTS))


@settings(max_examples=300, deadline=None)
@given(crashkernels())
def test_roundtrip_structure_format_parse(value):
    text = value.format()
    assert ck.parse(text) == value
    assert ck.parse(text).format() == text


def _spell(nbytes, draw):
    """A random, valid Xen spelling of nbytes: unit and case vary, hex or bytes sometimes."""
    options = ["%dB" % nbytes, "%db" % nbytes]
    if nbytes % (1 << 20) == 0:
        options.append("0x%xM" % (nbytes >> 20))
    for suffix, mult in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)):
        if nbytes % mult == 0:
            options += ["%d%s" % (nbytes // mult, suffix), "%d%s" % (nbytes // mult, suffix.lower())]
    if nbytes % 1024 == 0 and nbytes:
        options.append("%d" % (nbytes // 1024))  # bare number = KiB
    return draw(st.sampled_from(options))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_valid_spelling_parses_to_the_same_value(data):
    value = data.draw(crashkernels())
    draw = data.draw
    if value.ranges:
        body = ",".join("%s-%s:%s" % (_spell(r.start, draw), "" if r.end is None else _spell(r.end, draw),
                                      _spell(r.size, draw)) for r in value.ranges)
    else:
        body = _spell(value.size, draw)
    if value.placement is not None:
        body += value.placement.style + _spell(value.placement.address, draw)
    assert ck.parse(body) == value
    assert ck.parse(ck.parse(body).format()) == value


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789xXaAbBkKmMgGtT-:,@<=below \t.;'\"", max_size=40))
def test_fuzz_never_anything_but_xenkdumperror(text):
    try:
        parsed = ck.parse(text)
    except XenKdumpError as exc:
        assert exc.code.startswith("XK2")
        return
    assert ck.parse(parsed.format()) == parsed


@settings(max_examples=300, deadline=None)
@given(crashkernels(), st.integers(min_value=1, max_value=1 << 44))
def test_selection_matches_a_literal_reading_of_xen(value, ram):
    # set_kexec_crash_area_size(): first entry with size < RAM and start <= RAM < end
    expected = 0
    if value.ranges:
        for r in value.ranges:
            if r.size >= ram:
                continue
            if r.start <= ram and (r.end is None or r.end > ram):
                expected = r.size
                break
    else:
        expected = value.size
    assert ck.selected_bytes(value, ram) == expected
