# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Xen's ``crashkernel=`` grammar, the crash-region sizing model and the planner.

Xen's grammar, not Linux's (``xen/common/kexec.c`` ``parse_crashkernel()`` and
``xen/lib`` ``parse_size_and_unit()`` as shipped in Xen 4.17)::

    value      := ranges [placement]
                | size [placement]
                | size ",below=" size
    ranges     := range ":" size { "," range ":" size }      (at most 16 entries)
    range      := size "-" [size]                            (open end: "4G-")
    placement  := "@" size                                   (exact start address)
                | "<" size                                   (upper limit for the region's end)
    size       := number [unit]
    number     := "0x" hexdigits | "0" octdigits | decimal   (C strtoull, base 0)
    unit       := T | G | M | K | B  (either case)           (no unit = KiB, Xen's default)

Facts from Xen's source that shape this module (docs/sizing.md has the details):

* ``,below=`` is honoured only after a plain size.  After a range list Xen's loop swallows
  the comma as the start of another range and the limit is dropped ("crashkernel: 'elow=4G'
  ignored"), so a range list must use ``<`` (which GRUB needs escaped).  We reject
  ``<ranges>,below=``.
* A range ``start-end`` matches when ``start <= RAM < end`` (end exclusive); the first match
  wins; an entry whose size is ``>=`` RAM is skipped; an entry of size 0 ends the list.
* RAM is the sum of the E820 RAM entries at boot (``__start_xen``), the figure ``xl info``
  reports as ``total_memory`` (floored to MiB).
* Xen rounds the reserved size up to a whole MiB and logs ``Kdump: <N>MB``.

The parser is stricter than Xen: anything Xen would warn about, ignore or read surprisingly
raises a :class:`CrashkernelError` subclass naming the character and its position.  No
``AnsibleModule`` here: pure logic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40
U64_MAX = (1 << 64) - 1
FOUR_GIB = 4 * GIB
MAX_RANGES = 16  # ranges[16] in kexec.c

_UNITS = {"t": TIB, "g": GIB, "m": MIB, "k": KIB, "b": 1}
_FORMAT_UNITS = (("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB))
PLACEMENT_STYLES = ("@", "<", ",below=")
DUMP_TARGETS = ("local", "nfs", "ssh")
VERDICTS = ("ok", "missing", "too_small", "too_large", "wrong_placement", "on_dom0_cmdline_only")


# --------------------------------------------------------------------------------------------
# Errors (XK200-XK299)
# --------------------------------------------------------------------------------------------

class CrashkernelError(XenKdumpError):
    """A crashkernel= value Xen would not read the way it looks."""

    code = "XK200"
    title = "Empty crashkernel= value"
    remedy = ("Give a size such as crashkernel=256M,below=4G, or remove the option to reserve "
              "nothing.")


class CrashkernelSyntaxError(CrashkernelError):
    code = "XK201"
    title = "Malformed crashkernel= value"
    remedy = ("Write it in Xen's grammar: <size>[@<addr>|<<addr>], <size>,below=<addr>, or "
              "<start>-[<end>]:<size>[,...][@<addr>|<<addr>], sizes like 256M or 4G.")


class CrashkernelRangeOrderError(CrashkernelError):
    code = "XK202"
    title = "crashkernel= range ends before it starts"
    remedy = "Write each range as <start>-<end> with end greater than start, or <start>- for open-ended."


class CrashkernelTooManyRanges(CrashkernelError):
    code = "XK203"
    title = "More than 16 ranges in crashkernel="
    remedy = "Xen keeps at most 16 <range>:<size> entries; merge neighbouring ranges."


class CrashkernelBelowAfterRanges(CrashkernelError):
    code = "XK204"
    title = "',below=' after a crashkernel= range list is ignored by Xen"
    remedy = ("Use '<' after a range list (e.g. 0-:256M<4G; escape it as \\< in GRUB files), or use a "
              "plain size with ',below=' (e.g. 256M,below=4G).")


class CrashkernelOverflow(CrashkernelError):
    code = "XK205"
    title = "crashkernel= number does not fit in 64 bits"
    remedy = "Use a realistic size or address (at most 16E); check for a missing unit or separator."


class CrashkernelZeroRange(CrashkernelError):
    code = "XK206"
    title = "A crashkernel= range entry of size 0 ends Xen's range list"
    remedy = ("Leave ranges that should reserve nothing out of the list instead of giving them size 0: "
              "Xen stops looking at the first entry of size 0.")


class SizingInputError(XenKdumpError):
    code = "XK210"
    title = "Invalid input for crash region sizing"
    remedy = ("Give host memory in MiB (> 0), CPUs (>= 1), non-negative image sizes and headroom, and "
              "dump_target local, nfs or ssh.")


class PlacementPolicyConflict(XenKdumpError):
    code = "XK211"
    title = "crashkernel= placement contradicts below_4g"
    remedy = ("Either set below_4g: false, or give a value whose region must end below 4 GiB "
              "(no placement, '<4G', ',below=4G', or '@<addr>' with addr + size <= 4G).")


class ImpossiblePlan(XenKdumpError):
    code = "XK213"
    title = "The crash region asked for cannot be reserved on this host"
    remedy = ("Nothing was planned. Give a size this host can hold: more than 0, less than its RAM, "
              "ending below its own limit ('<'/',below='/@start+size), with a range list that covers "
              "this host's RAM; or lower headroom_pct/headroom_mb, or set below_4g: false.")


class PlanInputsMissing(XenKdumpError):
    code = "XK212"
    title = "Crash region planning needs host facts"
    remedy = ("Run it on a Xen dom0 (with become: true), or pass total_memory_mb, nr_cpus and "
              "xen_commandline explicitly (e.g. from xen_facts) to plan on any host.")


# --------------------------------------------------------------------------------------------
# Data structures
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RangeEntry:
    """``start-end:size``: reserve ``size`` bytes when ``start <= RAM < end``."""

    start: int
    end: Optional[int]  # exclusive; None = open-ended ("4G-")
    size: int

    def matches(self, system_ram: int) -> bool:
        return self.start <= system_ram and (self.end is None or self.end > system_ram)


@dataclass(frozen=True)
class Placement:
    """``@addr`` (exact start) or ``<addr`` / ``,below=addr`` (the region ends at or below addr)."""

    style: str  # "@", "<" or ",below="
    address: int

    @property
    def kind(self) -> str:
        return "at" if self.style == "@" else "below"


@dataclass(frozen=True)
class CrashKernel:
    """A parsed crashkernel= value: either ``size`` or ``ranges``, and an optional placement."""

    size: Optional[int] = None
    ranges: Tuple[RangeEntry, ...] = ()
    placement: Optional[Placement] = None
    notes: Tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_ranges(self) -> bool:
        return bool(self.ranges)

    def format(self) -> str:
        return format_crashkernel(self)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "value": self.format(),
            "size_bytes": self.size,
            "ranges": [{"start": r.start, "end": r.end, "size": r.size} for r in self.ranges],
            "placement": (None if self.placement is None else
                          {"kind": self.placement.kind, "style": self.placement.style,
                           "address": self.placement.address}),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

def _where(text: str, pos: int) -> str:
    if pos >= len(text):
        return "at the end of %r" % text
    return "at character %d (%r) of %r" % (pos + 1, text[pos], text)


class _Parser(object):
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.notes: List[str] = []

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def fail(self, expected: str, pos: Optional[int] = None) -> None:
        at = self.pos if pos is None else pos
        raise CrashkernelSyntaxError("crashkernel=%s is malformed %s: expected %s."
                                     % (self.text, _where(self.text, at), expected),
                                     value=self.text, position=at + 1)

    def size(self, what: str) -> int:
        """One <size>, Xen's parse_size_and_unit(): strtoull base 0, optional unit, default KiB."""
        start = self.pos
        text = self.text
        match = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*").match(text, start)
        if not match:
            self.fail("a number for the %s (like 256M, 4G or 0x4000000)" % what)
        digits = match.group(0)
        end = match.end()
        # A '0x' without hex digits or an octal literal followed by 8/9 would be read by strtoull
        # as something else than it looks: refuse.
        if digits in ("0",) and end < len(text) and text[end] in "xX":
            self.fail("hex digits after '0x'", end + 1)
        if digits.startswith("0") and digits[1:2] not in ("x", "X") and end < len(text) and text[end] in "89":
            self.fail("an octal digit (a leading 0 makes Xen read %r as octal)" % text[start:end + 1], end)
        if digits.startswith("0") and len(digits) > 1 and digits[1] not in "xX":
            self.notes.append("%r has a leading 0: Xen reads it as octal (%d)" % (digits, int(digits, 8)))
            number = int(digits, 8)
        elif digits[:2] in ("0x", "0X"):
            number = int(digits, 16)
            if digits[-1] in "bB":
                self.notes.append("in %r the trailing %r is a hex digit, not the bytes unit"
                                  % (digits, digits[-1]))
        else:
            number = int(digits)
        if number > U64_MAX:
            raise CrashkernelOverflow("crashkernel=%s: %r at character %d does not fit in 64 bits."
                                      % (text, digits, start + 1), value=text, position=start + 1)
        unit = text[end:end + 1]
        if unit and unit.lower() in _UNITS:
            mult = _UNITS[unit.lower()]
            end += 1
        elif unit.isalpha():
            self.fail("a unit (T, G, M, K or B; Xen would read %r as KiB and ignore the rest)" % digits, end)
            mult = KIB  # pragma: no cover
        else:
            mult = KIB
            if number:
                self.notes.append("%r has no unit: Xen reads a bare number as KiB (%d bytes)"
                                  % (digits, number * KIB))
        value = number * mult
        if value > U64_MAX:
            raise CrashkernelOverflow("crashkernel=%s: %r at character %d is %d bytes, more than 64 bits."
                                      % (text, text[start:end], start + 1, value),
                                      value=text, position=start + 1)
        self.pos = end
        return value

    def placement(self, after_ranges: bool) -> Optional[Placement]:
        ch = self.peek()
        if ch == "":
            return None
        if ch in "@<":
            self.pos += 1
            address = self.size("address after %r" % ch)
            return Placement(ch, address)
        if self.text.startswith(",below=", self.pos):
            if after_ranges:
                raise CrashkernelBelowAfterRanges(
                    "crashkernel=%s: ',below=' %s follows a range list; Xen 4.17 reads the comma as "
                    "another range and ignores the limit." % (self.text, _where(self.text, self.pos)),
                    value=self.text, position=self.pos + 1)
            self.pos += len(",below=")
            return Placement(",below=", self.size("address after ',below='"))
        self.fail("'@<address>', '<<address>'%s or the end of the value"
                  % ("" if after_ranges else ", ',below=<address>'"))
        return None  # pragma: no cover

    def ranges(self) -> Tuple[RangeEntry, ...]:
        entries: List[RangeEntry] = []
        while True:
            if len(entries) >= MAX_RANGES:
                raise CrashkernelTooManyRanges(
                    "crashkernel=%s has more than %d ranges (entry %d starts %s); Xen ignores the rest."
                    % (self.text, MAX_RANGES, len(entries) + 1, _where(self.text, self.pos)),
                    value=self.text, position=self.pos + 1)
            start = self.size("start of range %d" % (len(entries) + 1))
            if self.peek() != "-":
                self.fail("'-' after the start of range %d" % (len(entries) + 1))
            self.pos += 1
            end: Optional[int] = None
            if self.peek() != ":":
                end_pos = self.pos
                end = self.size("end of range %d (or ':' for an open-ended range)" % (len(entries) + 1))
                if end <= start:
                    raise CrashkernelRangeOrderError(
                        "crashkernel=%s: range %d ends (%s, character %d) at or before its start (%s)."
                        % (self.text, len(entries) + 1, format_size(end), end_pos + 1, format_size(start)),
                        value=self.text, position=end_pos + 1)
            if self.peek() != ":":
                self.fail("':' between range %d and its size" % (len(entries) + 1))
            self.pos += 1
            size_pos = self.pos
            size = self.size("size of range %d" % (len(entries) + 1))
            if size == 0:
                raise CrashkernelZeroRange(
                    "crashkernel=%s: range %d (character %d) has size 0; Xen treats it as the end of "
                    "the list, so no later range can ever match." % (self.text, len(entries) + 1, size_pos + 1),
                    value=self.text, position=size_pos + 1)
            entries.append(RangeEntry(start, end, size))
            if self.peek() == "," and not self.text.startswith(",below=", self.pos):
                self.pos += 1
                continue
            return tuple(entries)


def parse(value: Optional[str]) -> CrashKernel:
    """Parse a Xen crashkernel= value (without the ``crashkernel=`` prefix).

    Raises a :class:`CrashkernelError` subclass (XK200-XK206) for anything Xen would not read
    the way it looks; never any other exception for a string input.
    """
    if value is None:
        raise CrashkernelError("crashkernel= has no value.", value=None)
    if not isinstance(value, str):
        raise CrashkernelSyntaxError("crashkernel= value must be a string, got %s." % type(value).__name__,
                                     value=repr(value))
    text = value
    if text.startswith("crashkernel="):
        # crashkernel=crashkernel=256M: Xen's parse_size_and_unit() stops at the 'c', warns and
        # reserves nothing. Never strip it: that would call a broken line valid.
        raise CrashkernelSyntaxError(
            "crashkernel=%s repeats 'crashkernel=' at character 1: Xen reads the value %r as a size, "
            "finds no number and reserves nothing." % (text, text), value=value, position=1)
    if text == "":
        raise CrashkernelError("crashkernel= is empty: Xen warns 'memory value expected' and reserves nothing.",
                               value=value)
    bad = re.search(r"[\s\"']", text)
    if bad:
        p = _Parser(text)
        p.fail("no blanks or quotes inside the value", bad.start())
    parser = _Parser(text)
    if ":" in text:
        ranges = parser.ranges()
        placement = parser.placement(after_ranges=True)
        result = CrashKernel(ranges=ranges, placement=placement)
    else:
        size = parser.size("size")
        if parser.peek() == "-":
            parser.fail("':<size>' somewhere after a range (ranges look like 0-2G:128M or 4G-:256M)")
        placement = parser.placement(after_ranges=False)
        result = CrashKernel(size=size, placement=placement)
    if parser.pos != len(text):
        parser.fail("the end of the value")
    if result.placement is not None and result.placement.style == "@" and result.placement.address == 0:
        parser.notes.append("'@0' means 'no fixed address' to Xen (start 0 is treated as unset)")
    if result.placement is not None and result.placement.kind == "below" and result.placement.address == 0:
        raise CrashkernelSyntaxError("crashkernel=%s: a limit of 0 leaves no room for the region." % text,
                                     value=text)
    return replace(result, notes=tuple(parser.notes))


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------

def format_size(nbytes: int) -> str:
    """Canonical Xen size: the largest unit that divides exactly, else bytes with a ``B``.

    Never a bare number (Xen would read it as KiB)."""
    if nbytes < 0:
        raise SizingInputError("A size cannot be negative (%d bytes)." % nbytes)
    if nbytes == 0:
        return "0M"
    for suffix, mult in _FORMAT_UNITS:
        if nbytes % mult == 0:
            return "%d%s" % (nbytes // mult, suffix)
    return "%dB" % nbytes


def format_crashkernel(ck: CrashKernel) -> str:
    """The canonical string for a parsed value; ``parse(format_crashkernel(x)) == x``."""
    if ck.ranges:
        body = ",".join("%s-%s:%s" % (format_size(r.start), "" if r.end is None else format_size(r.end),
                                      format_size(r.size)) for r in ck.ranges)
    elif ck.size is not None:
        body = format_size(ck.size)
    else:
        raise CrashkernelError("crashkernel= value has neither a size nor ranges.")
    if ck.placement is not None:
        body += ck.placement.style + format_size(ck.placement.address)
    return body


def canonical(value: str) -> str:
    return parse(value).format()


# --------------------------------------------------------------------------------------------
# What Xen reserves on a given host
# --------------------------------------------------------------------------------------------

def selected_bytes(ck: CrashKernel, system_ram: int) -> int:
    """Bytes Xen asks to reserve for ``ck`` on a host with ``system_ram`` bytes of E820 RAM
    (set_kexec_crash_area_size()), before its round-up to MiB.  0 = nothing."""
    if not ck.ranges:
        return ck.size or 0
    for entry in ck.ranges:
        if entry.size == 0:
            break
        if entry.size >= system_ram:  # "crashkernel: invalid size", skipped
            continue
        if entry.matches(system_ram):
            return entry.size
    return 0


def reserved_mb(ck: CrashKernel, host_memory_mb: int) -> int:
    """MiB Xen would reserve on a host whose ``xl info total_memory`` is ``host_memory_mb``."""
    nbytes = selected_bytes(ck, host_memory_mb * MIB)
    return (nbytes + MIB - 1) // MIB


def boundary_note(ck: CrashKernel, host_memory_mb: int) -> Optional[str]:
    """xl info floors RAM to MiB; Xen compares bytes.  Say so when that sub-MiB could flip the choice."""
    low = selected_bytes(ck, host_memory_mb * MIB)
    high = selected_bytes(ck, (host_memory_mb + 1) * MIB - 1)
    if low == high:
        return None
    return ("a range boundary falls inside this host's last MiB of RAM (xl info total_memory=%d is "
            "rounded down): Xen may select %s or %s; move the boundary away from %d MiB"
            % (host_memory_mb, format_size(low), format_size(high), host_memory_mb))


def region_end_bound(ck: CrashKernel, system_ram: int) -> Optional[int]:
    """Highest address the region can end at, when the value guarantees one; None when not."""
    if ck.placement is None:
        return None
    if ck.placement.kind == "below":
        return ck.placement.address
    size = (selected_bytes(ck, system_ram) + MIB - 1) // MIB * MIB
    return ck.placement.address + size


def placed_below(ck: CrashKernel, system_ram: int, limit: int = FOUR_GIB) -> bool:
    """Whether the value forces the region to end at or below ``limit`` (4 GiB by default)."""
    bound = region_end_bound(ck, system_ram)
    if ck.placement is not None and ck.placement.kind == "at" and ck.placement.address == 0:
        return False  # '@0' is "no fixed start" to Xen
    return bound is not None and bound <= limit


def with_below(ck: CrashKernel, limit: int = FOUR_GIB) -> CrashKernel:
    """``ck`` with a below-``limit`` placement in the spelling Xen honours for its form."""
    style = "<" if ck.ranges else ",below="
    return replace(ck, placement=Placement(style, limit), notes=())


def cmdline_values(cmdline: Optional[str], option: str = "crashkernel") -> List[str]:
    """Every value of ``option=`` on a Xen/Linux command line, in order (double quotes honoured)."""
    if not cmdline:
        return []
    values: List[str] = []
    token = ""
    quoted = False
    tokens: List[str] = []
    for ch in cmdline:
        if ch == '"':
            quoted = not quoted
            continue
        if ch.isspace() and not quoted:
            if token:
                tokens.append(token)
            token = ""
            continue
        token += ch
    if token:
        tokens.append(token)
    prefix = option + "="
    for tok in tokens:
        if tok.startswith(prefix):
            values.append(tok[len(prefix):])
        elif tok == option:
            values.append("")
    return values


# --------------------------------------------------------------------------------------------
# Sizing model: one table, one function.  docs/sizing.md explains every figure and its source.
# --------------------------------------------------------------------------------------------

SIZING: Dict[str, Any] = {
    # Debian 12 linux-image-6.1.0-56-amd64 (6.1.192-2): bzImage setup header init_size at
    # 0x260 = 0x3f98000.  Used when the host's own kernel image cannot be read.
    "default_kernel_init_size": 66682880,
    # Compressed crash initrd used before kdump-tools has built one (xen_crash_region reads the
    # real /var/lib/kdump/initrd.img-<release> when it exists).  Measured on the lab: Debian 12
    # kdump-tools (initramfs-tools MODULES=dep, zstd) 7216519 B = 6.9 MiB; 16 MiB leaves room for
    # hosts whose storage and network drivers make it bigger.
    "default_initrd_size": 16 * MIB,
    # The initramfs unpacked into the crash kernel's rootfs, relative to the compressed file
    # (measured: 20021760 / 7216519 = 2.77 for the lab's zstd image).
    "initrd_unpack_factor": 3.0,
    # Purgatory, boot parameters and the ELF core header kexec-tools puts in the region.
    "purgatory_mb": 1.0,
    # Crash kernel runtime beyond its image and initramfs: memmap, slab, page tables, systemd,
    # udev, kdump-tools.  CALIBRATED on the Xen lab by bisection (benchmarks/sizing_calibration.py,
    # docs/performance.md): the value that makes the model's need meet the smallest region that
    # still gave a valid dump, with the lab's own kernel and crash initrd as inputs.
    "runtime_base_mb": 26.0,
    # Capture userspace and buffers per dump target (makedumpfile, compression, writeback,
    # network stack for nfs/ssh).
    "target_mb": {"local": 16.0, "nfs": 48.0, "ssh": 32.0},
    # makedumpfile's Xen path keeps full bitmaps (no cyclic mode): 2 bits per 4 KiB page frame
    # up to the highest RAM address (max_pfn from Xen's e820 map when known; host RAM
    # otherwise, which is smaller whenever RAM has holes, e.g. the PCI hole below 4 GiB).
    "bitmap_bits_per_page": 2,
    "page_size": 4096,
    # Per physical CPU: crash notes (CORE + Xen CRASH_REGS), ELF core header entries.
    "per_cpu_kib": 16.0,
    # recommended = max(floor, roundup(need * (1 + headroom_pct/100) + headroom_mb, round_mb))
    "round_mb": 16,
    # The smallest region that gave a valid dump on the lab (2 GiB host, 1 CPU): never less.
    "floor_mb": 128,
    "default_headroom_pct": 10.0,
    "default_headroom_mb": 0,
    # too_large: reserved > max(too_large_factor * need, need + too_large_slack_mb)
    "too_large_factor": 2.0,
    "too_large_slack_mb": 256,
}


@dataclass(frozen=True)
class SizingResult:
    required_mb: int
    recommended_mb: int
    components_mb: Dict[str, float]
    inputs: Dict[str, Any]

    def as_dict(self) -> Dict[str, Any]:
        return {"required_mb": self.required_mb, "recommended_mb": self.recommended_mb,
                "components_mb": dict(self.components_mb), "inputs": dict(self.inputs)}


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SizingInputError("%s must be an integer, got %r." % (name, value))
    if value < minimum:
        raise SizingInputError("%s must be >= %d, got %d." % (name, minimum, value))
    return value


def size_region(host_memory_mb: int, nr_cpus: int, dump_target: str = "local",
                kernel_init_size: Optional[int] = None, initrd_size: Optional[int] = None,
                headroom_pct: Optional[float] = None, headroom_mb: Optional[int] = None,
                table: Optional[Dict[str, Any]] = None, max_pfn: Optional[int] = None) -> SizingResult:
    """The one sizing function: what the crash region must hold on this host, and what to ask for.

    ``max_pfn`` (xen_facts' ``max_pfn``: page frames up to Xen's highest RAM address) sizes
    makedumpfile's bitmaps when known; host RAM's page count otherwise (never less than it)."""
    t = dict(SIZING)
    if table:
        t.update(table)
    _check_int("total_memory_mb", host_memory_mb, 1)
    _check_int("nr_cpus", nr_cpus, 1)
    if dump_target not in t["target_mb"]:
        raise SizingInputError("dump_target must be one of %s, got %r."
                               % (", ".join(sorted(t["target_mb"])), dump_target))
    init_size = t["default_kernel_init_size"] if kernel_init_size is None else \
        _check_int("kernel_init_size", kernel_init_size, 0)
    initrd = t["default_initrd_size"] if initrd_size is None else _check_int("initrd_size", initrd_size, 0)
    pct = t["default_headroom_pct"] if headroom_pct is None else headroom_pct
    extra = t["default_headroom_mb"] if headroom_mb is None else headroom_mb
    if isinstance(pct, bool) or not isinstance(pct, (int, float)) or pct < 0 or pct > 1000:
        raise SizingInputError("headroom_pct must be between 0 and 1000, got %r." % (pct,))
    _check_int("headroom_mb", extra, 0)

    pages = host_memory_mb * MIB // t["page_size"]
    bitmap_pages = pages
    if max_pfn is not None:
        bitmap_pages = max(pages, _check_int("max_pfn", max_pfn, 1))
    components = {
        "kernel_init_size": init_size / MIB,
        "initramfs_unpacked": initrd * t["initrd_unpack_factor"] / MIB,
        "purgatory": float(t["purgatory_mb"]),
        "runtime_base": float(t["runtime_base_mb"]),
        "capture_" + dump_target: float(t["target_mb"][dump_target]),
        "makedumpfile_bitmap": bitmap_pages * t["bitmap_bits_per_page"] / 8.0 / MIB,
        "per_cpu": nr_cpus * t["per_cpu_kib"] / 1024.0,
    }
    # The load must fit too: kexec-tools places the kernel (init_size), the compressed initrd
    # and purgatory in the region at once.  It is smaller than the run phase with these
    # figures, but an unusual initrd could make it the larger one.
    load_phase = (init_size + initrd) / MIB + t["purgatory_mb"]
    run_phase = sum(components.values())
    need = max(load_phase, run_phase)
    required = int(math.ceil(need - 1e-9))
    step = t["round_mb"]
    want = need * (1.0 + pct / 100.0) + extra
    recommended = max(int(t["floor_mb"]), int(math.ceil(want / step - 1e-9)) * step)
    return SizingResult(
        required_mb=required, recommended_mb=recommended,
        components_mb={k: round(v, 2) for k, v in components.items()},
        inputs={"total_memory_mb": host_memory_mb, "nr_cpus": nr_cpus, "dump_target": dump_target,
                "kernel_init_size": init_size, "initrd_size": initrd, "headroom_pct": pct,
                "headroom_mb": extra, "kernel_init_size_default": kernel_init_size is None,
                "initrd_size_default": initrd_size is None, "load_phase_mb": round(load_phase, 2),
                "max_pfn": max_pfn, "bitmap_pages": bitmap_pages},
    )


def too_large_threshold_mb(required: int, table: Optional[Dict[str, Any]] = None) -> int:
    t = dict(SIZING)
    if table:
        t.update(table)
    return int(max(t["too_large_factor"] * required, required + t["too_large_slack_mb"]))


# --------------------------------------------------------------------------------------------
# Planner
# --------------------------------------------------------------------------------------------

@dataclass
class Plan:
    recommended: str
    recommended_size_mb: int
    current: Optional[str]
    current_size_mb: Optional[int]
    reserved_mb: Optional[int]
    required_mb: int
    verdict: str
    reboot_required: bool
    change: Dict[str, Any]
    reasons: List[str]
    sizing: Dict[str, Any]
    current_error: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        return {
            "recommended": self.recommended, "recommended_size_mb": self.recommended_size_mb,
            "current": self.current, "current_size_mb": self.current_size_mb,
            "reserved_mb": self.reserved_mb, "required_mb": self.required_mb,
            "verdict": self.verdict, "reboot_required": self.reboot_required,
            "change": dict(self.change), "reasons": list(self.reasons), "sizing": self.sizing,
            "current_error": self.current_error,
        }


def _policy_value(size: str, sizing: SizingResult, below_4g: bool, host_memory_mb: int) -> CrashKernel:
    if size == "auto":
        ck = CrashKernel(size=sizing.recommended_mb * MIB)
        return with_below(ck) if below_4g else ck
    ck = parse(size)
    system_ram = host_memory_mb * MIB
    if below_4g:
        if ck.placement is None:
            return with_below(ck)
        if ck.placement.kind == "at" and ck.placement.address == 0:
            raise PlacementPolicyConflict(
                "size=%s: '@0' does not fix the start (Xen treats 0 as unset), so the region may land "
                "above 4 GiB while below_4g is true." % size, value=size)
        if not placed_below(ck, system_ram):
            raise PlacementPolicyConflict(
                "size=%s lets the region end at %s, above 4 GiB, while below_4g is true."
                % (size, format_size(region_end_bound(ck, system_ram) or 0)), value=size)
    return replace(ck, notes=())


# Largest figures the planner accepts: 2**64 bytes of RAM, address space or image.
_MAX_INPUT = {"total_memory_mb": U64_MAX // MIB, "nr_cpus": 1 << 20, "reserved_mb": U64_MAX // MIB,
              "reserved_start": U64_MAX, "kernel_init_size": U64_MAX, "initrd_size": U64_MAX,
              "headroom_mb": U64_MAX // MIB}


def _check_plan_inputs(**inputs: Any) -> None:
    """Refuse what would make the arithmetic fail (NaN, infinity, integers of hundreds of digits)
    with an XK210 naming the input, before any arithmetic is done."""
    for name, value in inputs.items():
        if value is None:
            continue
        if name == "headroom_pct":
            try:
                number = math.inf if isinstance(value, bool) else float(value)
            except (TypeError, ValueError, OverflowError):
                number = math.inf
            if not math.isfinite(number):
                raise SizingInputError("headroom_pct must be a finite number between 0 and 1000, got %s."
                                       % (repr(value)[:40],))
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value > _MAX_INPUT[name]:
            raise SizingInputError("%s must be at most %d, got a number of %d digits."
                                   % (name, _MAX_INPUT[name], len(str(value))))


def _check_possible(target: CrashKernel, target_mb: int, total_memory_mb: int, size: str,
                    sizing: SizingResult) -> None:
    """Raise :class:`ImpossiblePlan` when Xen could not reserve ``target`` on this host."""
    asked = "size=%s" % size if size != "auto" else (
        "the sizing model's %d MiB (required %d MiB + headroom)" % (sizing.recommended_mb, sizing.required_mb))
    value = target.format()
    if target_mb == 0:
        why = ("no range of crashkernel=%s covers this host's %d MiB of RAM" % (value, total_memory_mb)
               if target.ranges else "crashkernel=%s reserves 0 bytes" % value)
        raise ImpossiblePlan("%s: %s, so nothing would be reserved." % (asked, why), value=value)
    if target_mb >= total_memory_mb:
        raise ImpossiblePlan("%s: crashkernel=%s asks for %d MiB, but this host has %d MiB of RAM."
                             % (asked, value, target_mb, total_memory_mb), value=value)
    placement = target.placement
    if placement is not None and placement.kind == "below" and target_mb * MIB >= placement.address:
        raise ImpossiblePlan("%s: crashkernel=%s asks for %d MiB ending below %s, no less than the "
                             "region itself." % (asked, value, target_mb, format_size(placement.address)),
                             value=value)
    if placement is not None and placement.kind == "at" and placement.address and \
            placement.address + target_mb * MIB > U64_MAX:
        raise ImpossiblePlan("%s: crashkernel=%s would end beyond the 64-bit address space." % (asked, value),
                             value=value)


def plan(total_memory_mb: int, nr_cpus: int, xen_commandline: Optional[str],
         dom0_cmdline: Optional[str] = None, reserved_mb_now: Optional[int] = None,
         reserved_start: Optional[int] = None, size: str = "auto", below_4g: bool = True,
         dump_target: str = "local", kernel_init_size: Optional[int] = None,
         initrd_size: Optional[int] = None, headroom_pct: Optional[float] = None,
         headroom_mb: Optional[int] = None, table: Optional[Dict[str, Any]] = None,
         max_pfn: Optional[int] = None) -> Plan:
    """Facts + policy -> what Xen's crashkernel= should be on this host, and what to change.

    ``xen_commandline`` None means "unknown" and is treated like a line without crashkernel=.
    ``reserved_mb_now`` / ``reserved_start`` are what Xen actually reserved this boot (None =
    unknown).  Pure: no host access.
    """
    _check_plan_inputs(total_memory_mb=total_memory_mb, nr_cpus=nr_cpus, reserved_mb=reserved_mb_now,
                       reserved_start=reserved_start, kernel_init_size=kernel_init_size,
                       initrd_size=initrd_size, headroom_mb=headroom_mb, headroom_pct=headroom_pct)
    sizing = size_region(total_memory_mb, nr_cpus, dump_target, kernel_init_size, initrd_size,
                         headroom_pct, headroom_mb, table, max_pfn=max_pfn)
    if not isinstance(size, str) or not size.strip():
        raise SizingInputError("size must be 'auto' or a Xen crashkernel= value, got %r." % (size,))
    size = size.strip()
    if reserved_mb_now is not None:
        _check_int("reserved_mb", reserved_mb_now, 0)
    required = sizing.required_mb
    system_ram = total_memory_mb * MIB
    reasons: List[str] = []

    target = _policy_value(size, sizing, below_4g, total_memory_mb)
    target_str = target.format()
    target_mb = reserved_mb(target, total_memory_mb)
    _check_possible(target, target_mb, total_memory_mb, size, sizing)
    if size != "auto":
        if target_mb == 0:
            reasons.append("the requested size=%s reserves nothing on this host (%d MiB RAM)"
                           % (size, total_memory_mb))
        elif target_mb < required:
            reasons.append("the requested size=%s gives %d MiB on this host, less than the %d MiB the "
                           "sizing model needs" % (size, target_mb, required))
    note = boundary_note(target, total_memory_mb)
    if note:
        reasons.append(note)

    values = cmdline_values(xen_commandline)
    current = values[-1] if values else None
    if len(values) > 1:
        reasons.append("crashkernel= appears %d times on the Xen command line; Xen applies them in "
                       "order and fields of earlier ones can persist: keep exactly one" % len(values))
    dom0_values = cmdline_values(dom0_cmdline)

    current_ck: Optional[CrashKernel] = None
    current_error: Optional[str] = None
    current_mb: Optional[int] = None
    if current is not None:
        try:
            current_ck = parse(current)
            current_mb = reserved_mb(current_ck, total_memory_mb)
            for n in current_ck.notes:
                reasons.append("current crashkernel=%s: %s" % (current, n))
            cnote = boundary_note(current_ck, total_memory_mb)
            if cnote and current_ck != target:
                reasons.append("current value: " + cnote)
        except XenKdumpError as exc:
            current_error = exc.message
            reasons.append("the current crashkernel=%s on the Xen command line is not valid: %s"
                           % (current, exc.detail))

    # What is reserved now: Xen's own answer when known, else what the line asks for.
    effective = reserved_mb_now if reserved_mb_now is not None else current_mb
    threshold = too_large_threshold_mb(required, table)

    # Is the current line acceptable as it is?
    line_ok = False
    placement_bad = False
    if current_ck is not None:
        placement_bad = below_4g and not placed_below(current_ck, system_ram)
        if size == "auto":
            line_ok = (current_mb is not None and required <= current_mb <= threshold and not placement_bad)
        else:
            line_ok = current_ck == target
            if not line_ok and current_ck.format() == target.format():
                line_ok = True

    actually_high = (reserved_start is not None and reserved_mb_now
                     and reserved_start + reserved_mb_now * MIB > FOUR_GIB)

    if current is None:
        if dom0_values:
            verdict = "on_dom0_cmdline_only"
            reasons.append("crashkernel=%s is on dom0's kernel command line, where a PV dom0 ignores it "
                           "('Ignoring crashkernel for a Xen PV domain'); it belongs on the Xen command "
                           "line" % dom0_values[-1])
        else:
            verdict = "missing"
            reasons.append("no crashkernel= on the Xen command line")
        if reserved_mb_now:
            reasons.append("yet Xen reserved %d MiB this boot: the command line changed since boot"
                           % reserved_mb_now)
    elif current_ck is None:
        # an invalid value (e.g. crashkernel=crashkernel=...) reserves nothing at the next boot,
        # whatever Xen reserved this boot
        verdict = "too_small"
        reasons.append("the Xen command line reserves nothing at the next boot (its crashkernel= is not valid)")
    elif effective is None or effective < required:
        verdict = "too_small"
        if effective == 0 or effective is None:
            reasons.append("nothing is reserved on this host (needs %d MiB)" % required)
        else:
            reasons.append("%d MiB reserved, the sizing model needs %d MiB" % (effective, required))
    elif (below_4g and (placement_bad or actually_high)):
        verdict = "wrong_placement"
        if actually_high:
            reasons.append("the region Xen reserved ends at 0x%x, above 4 GiB"
                           % (reserved_start + reserved_mb_now * MIB))
        else:
            reasons.append("crashkernel=%s does not keep the region below 4 GiB (Xen has no default "
                           "limit and places it at the top of RAM)" % current)
    elif effective > threshold:
        verdict = "too_large"
        t = dict(SIZING, **(table or {}))
        reasons.append("%d MiB reserved, more than %d MiB (the larger of %sx and +%d MiB of the %d MiB "
                       "need): memory lost to guests" % (effective, threshold, t["too_large_factor"],
                                                         t["too_large_slack_mb"], required))
    else:
        verdict = "ok"
        reasons.append("%d MiB reserved covers the %d MiB the sizing model needs" % (effective, required))

    if line_ok:
        change = {"option": "crashkernel", "value": current, "state": "unchanged"}
        recommended, recommended_mb = current or target_str, current_mb if current_mb is not None else target_mb
    else:
        change = {"option": "crashkernel", "value": target_str, "state": "present"}
        recommended, recommended_mb = target_str, target_mb
        if current is not None and verdict == "ok":
            reasons.append("the line works, but differs from the requested size=%s" % size)

    reboot = change["state"] == "present"
    if reserved_mb_now is not None and reserved_mb_now != recommended_mb:
        reboot = True
        if change["state"] == "unchanged":
            reasons.append("the Xen command line asks for %d MiB but Xen reserved %d MiB this boot "
                           "(changed since boot, or the reservation failed): reboot to apply"
                           % (recommended_mb, reserved_mb_now))
    elif reserved_mb_now is None and change["state"] == "unchanged":
        reasons.append("what Xen reserved this boot is unknown (no reserved_mb): cannot tell whether a "
                       "reboot is pending")
    if "<" in recommended and change["state"] == "present":
        reasons.append("the value contains '<': GRUB needs it escaped (\\<) in grub.cfg")
    if total_memory_mb and recommended_mb * 4 > total_memory_mb:
        reasons.append("the crash region takes %d%% of this host's RAM" % (recommended_mb * 100 // total_memory_mb))

    return Plan(recommended=recommended, recommended_size_mb=recommended_mb, current=current,
                current_size_mb=current_mb, reserved_mb=reserved_mb_now, required_mb=required,
                verdict=verdict, reboot_required=reboot, change=change, reasons=reasons,
                sizing=sizing.as_dict(), current_error=current_error)


def plan_from_facts(facts: Dict[str, Any], **policy: Any) -> Plan:
    """:func:`plan` with the host inputs taken from the xen_facts dictionary (docs/architecture.md):
    RAM, CPUs, both command lines, the region Xen reserved (size and start) and, unless given in
    ``policy``, the crash kernel's ``init_size`` and crash initrd size (``crash_images``).
    Pure: the facts were read on the host; this runs anywhere (the ``crash_region`` filter runs
    it on the controller).  Raises :class:`PlanInputsMissing` when the facts lack RAM or CPUs
    (not a dom0, or ``xl`` missing)."""
    if not isinstance(facts, dict):
        raise PlanInputsMissing("The host facts must be the xen_facts dictionary, got %s." % type(facts).__name__)
    missing = [name for name, key in (("total_memory_mb", "host_memory_mb"), ("nr_cpus", "nr_cpus"))
               if facts.get(key) is None]
    if missing:
        why = (facts.get("reason") or "not running under Xen") if not facts.get("is_dom0") else \
            "; ".join(facts.get("problems") or []) or "xl did not report them"
        raise PlanInputsMissing("The host facts do not include %s (%s)." % (", ".join(missing), why),
                                missing=missing)
    region = facts.get("crash_region") or {}
    images = facts.get("crash_images") or {}
    for name in ("kernel_init_size", "initrd_size"):
        if policy.get(name) is None:
            policy[name] = images.get(name)
    if policy.get("max_pfn") is None:
        policy["max_pfn"] = facts.get("max_pfn")
    return plan(total_memory_mb=facts["host_memory_mb"], nr_cpus=facts["nr_cpus"],
                xen_commandline=facts.get("xen_commandline"), dom0_cmdline=facts.get("dom0_cmdline"),
                reserved_mb_now=region.get("size_mb"), reserved_start=region.get("start"), **policy)


def figures_table(memories_mb: Sequence[int], nr_cpus: int = 2, **kw: Any) -> List[Dict[str, Any]]:
    """Host RAM -> recommended value -> MiB (for docs and reports)."""
    rows = []
    for mem in memories_mb:
        p = plan(mem, nr_cpus, None, **kw)
        rows.append({"total_memory_mb": mem, "recommended": p.recommended,
                     "recommended_size_mb": p.recommended_size_mb, "required_mb": p.required_mb})
    return rows
