# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What makedumpfile does in the crash kernel, how big its dump can get, and whether it fits.

Pure: the inputs are the facts ``xen_facts`` gathered (``makedumpfile``, ``domains``,
``dump_target``, ``xl info`` memory); nothing here reads the host.

* :func:`parse_makedumpfile_version` reads ``makedumpfile -v``.
* :func:`parse_makedump_args` / :func:`args_problems` read a MAKEDUMP_ARGS string the way
  makedumpfile's ``getopt_long`` does and say what would fail on a Xen dump (the one rule the
  role's verification, the audit and :func:`plan_capture` share).
* :func:`plan_capture` chooses MAKEDUMP_ARGS for a mode (``auto``, ``xen-dom0``, ``full``) or
  validates an explicit string.
* :func:`estimate_dump` bounds the bytes the dump can need; :func:`check_room` compares that
  with the dump target's free space.

What makedumpfile 1.7.x does on a Xen crash image (``/proc/vmcore`` with no Linux VMCOREINFO,
read from makedumpfile.c):

* ``initial_xen()`` takes Xen's symbols from ``--xen-syms``/``--xen-vmcoreinfo``, else from the
  ``VMCOREINFO_XEN`` note in /proc/vmcore (Xen always writes it): ``-X`` needs nothing else.
* ``initial()`` then wants dom0's **Linux** vmcoreinfo for any dump level above 1
  (``if (!has_vmcoreinfo()) { if (info->max_dump_level <= DL_EXCLUDE_ZERO) goto out; ... }``),
  whatever Xen symbols were given: ``--xen-syms`` does not lift that, only ``-x <dom0 vmlinux>``
  or ``-i <vmcoreinfo>`` would.  kexec-tools never adds that note on Xen, so ``-X -d 1`` is the
  most filtering there is; a higher level makes makedumpfile exit and kdump-tools save an empty
  file (its pipe hides the exit status).
* ``-X`` (``exclude_xen4_user_domain``) clears every page owned by a domain other than dom0,
  plus free, offlined and broken pages; Xen's heap and anonymous pages stay.
* ``check_param_for_creating_dumpfile()`` refuses ``-E`` together with a compression flag;
  ``-E`` with ``-X`` is accepted (an ELF dump without the guests).
* Xen dumps are non-cyclic: two bitmaps of ``max_mapnr`` bits (``initial_xen``).
"""

from __future__ import annotations

import shlex
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.xenkdump.fleet.plugins.module_utils import known_issues as ki
from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError

MIB = 1024 * 1024
PAGE_SIZE = 4096

# ---------------------------------------------------------------------------------------------
# The lead's knobs: the compressor preference and the measured figures (edit these, not code).
# ---------------------------------------------------------------------------------------------

# Fastest first: the first one makedumpfile on the host was built with is used in xen-dom0
# mode. zlib (-c) is always built in, so it ends the list.
COMPRESSOR_PREFERENCE: Tuple[str, ...] = ("lzo", "zstd", "snappy", "zlib")

# makedumpfile's flag per compressor (-z from makedumpfile 1.7.0).
COMPRESSOR_FLAGS: Dict[str, str] = {"zlib": "-c", "lzo": "-l", "snappy": "-p", "zstd": "-z"}

# Measured captures on real Xen (host RAM, mode, compressor -> dump size, time, valid): the lab's
# 6 GiB Xen 4.17.7 host (1 GiB dom0, makedumpfile 1.7.2), benchmarks/capture.py; every try is in
# benchmarks/results/capture.json and tests/unit/.../test_capture_measured.py holds the two together.
# Reported with a plan whose mode and compressor match; never used to size anything.
MEASUREMENTS: Tuple[Dict[str, Any], ...] = (
    {"args": "-c -d 0", "mode": "full", "compressor": "zlib", "host_memory_mb": 6143,
     "domu_memory_mb": 3072, "dump_bytes": 3036269077, "makedumpfile_seconds": 477.4,
     "crash_to_back_seconds": 598, "valid": True,
     "source": "Xen 4.17.7 lab, 3 fill guests, makedumpfile 1.7.2 (benchmarks/results/capture.json)"},
    {"args": "-l -X -d 1", "mode": "xen-dom0", "compressor": "lzo", "host_memory_mb": 6143,
     "domu_memory_mb": 3072, "dump_bytes": 481089795, "makedumpfile_seconds": 62.5,
     "crash_to_back_seconds": 392, "valid": True,
     "source": "Xen 4.17.7 lab, 3 fill guests, makedumpfile 1.7.2 (benchmarks/results/capture.json)"},
    {"args": "-l -X -d 1", "mode": "xen-dom0", "compressor": "lzo", "host_memory_mb": 6143,
     "domu_memory_mb": 0, "dump_bytes": 220282511, "makedumpfile_seconds": 42.8,
     "crash_to_back_seconds": 255, "valid": True,
     "source": "Xen 4.17.7 lab, no guests, makedumpfile 1.7.2 (benchmarks/results/capture.json)"},
)

MODES = ("auto", "xen-dom0", "full")
ROOM_POLICIES = ("refuse", "warn", "off")
DUMP_TARGETS = ("local", "nfs", "ssh")
FULL_ARGS = "-c -d 0"

# Bytes the kdump-compressed format adds: one page_desc_t (off_t offset, 2 x unsigned int,
# unsigned long long page_flags = 24 bytes on x86_64) per dumped page, the two bitmaps of
# max_mapnr bits, and the headers (a few pages).
PAGE_DESC_BYTES = 24
HEADER_BYTES = 4 * PAGE_SIZE

# kdump-tools 1.8.1 (/usr/sbin/kdump-config, kdump_save_core): old dumps are pruned AFTER the
# new one was saved, and only for local targets ("if [ -z "${NFS}" ] && [ $ERROR -eq 0 ] &&
# [ "$KDUMP_NUM_DUMPS" -gt 0 ]": find "$KDUMP_COREDIR" -mindepth 1 -maxdepth 1 -name '2*' |
# sort -V | head -n (count - KDUMP_NUM_DUMPS) | xargs rm -rf). So pruning never makes room
# for the dump being written: the room is the free space alone.
KDUMP_TOOLS_PRUNES_BEFORE_SAVE = False
KDUMP_TOOLS_PRUNE_GLOB_PREFIX = "2"


# ---------------------------------------------------------------------------------------------
# Errors (XK700-XK799)
# ---------------------------------------------------------------------------------------------

class CapturePolicyInvalid(XenKdumpError):
    code = "XK700"
    title = "Capture policy value not understood"
    remedy = ("Use xenkdump_capture_mode auto, xen-dom0 or full; xenkdump_dump_room_check refuse, "
              "warn or off; xenkdump_num_dumps a whole number >= 0.")


class MakedumpLevelNeedsVmcoreinfo(XenKdumpError):
    code = "XK701"
    title = "makedumpfile dump level above 1 on a Xen dom0"
    remedy = ("Drop xenkdump_makedump_args (the role then writes '-X -d 1' with the fastest "
              "compressor), or use '-X -d 1' / '-d 0' yourself: a Xen crash dump has no Linux "
              "vmcoreinfo, so makedumpfile refuses levels above 1 (with or without --xen-syms) "
              "and kdump-tools saves an empty file.")


class MakedumpArgsInvalid(XenKdumpError):
    code = "XK702"
    title = "MAKEDUMP_ARGS that makedumpfile refuses"
    remedy = ("Fix xenkdump_makedump_args as the message says (one compression flag of -c, -l, -p, "
              "-z; never a compression flag with -E; -X only on a Xen dom0), or leave it empty "
              "and choose xenkdump_capture_mode.")


class DumpTargetTooSmall(XenKdumpError):
    code = "XK703"
    title = "The dump target has less free space than the dump can need"
    remedy = ("Give the dump target more room (xenkdump_dump_path on a bigger filesystem, or an "
              "nfs/ssh xenkdump_dump_target), delete old dumps there (kdump-tools prunes to "
              "xenkdump_num_dumps only after the next dump is saved), or use "
              "xenkdump_capture_mode: xen-dom0 (leaves the guests' memory out). "
              "xenkdump_dump_room_check: warn reports instead of refusing.")


# ---------------------------------------------------------------------------------------------
# makedumpfile -v
# ---------------------------------------------------------------------------------------------

def unknown_makedumpfile(path: Optional[str] = None, reason: str = "") -> Dict[str, Any]:
    """The ``makedumpfile`` fact when nothing is known (absent, or -v not understood)."""
    return {"present": path is not None, "path": path, "version": None,
            "compressors": {"zlib": None, "lzo": None, "snappy": None, "zstd": None},
            "known": False, "reason": reason}


def parse_makedumpfile_version(text: str) -> Optional[Dict[str, Any]]:
    """``makedumpfile -v`` (print_info.c: ``makedumpfile: version 1.7.2 (released on ...)`` then
    ``lzo\\tenabled``, ``snappy\\tdisabled``, ``zstd\\t...``) -> {version, compressors}, or None
    when the text is not that.  zlib (-c) is always built in; a compressor line that is missing
    (makedumpfile before zstd support prints no zstd line) means it is not there."""
    version = None
    found: Dict[str, Optional[bool]] = {}
    for raw in (text or "").splitlines():
        line = raw.strip()
        if line.startswith("makedumpfile: version "):
            word = line[len("makedumpfile: version "):].split()
            version = word[0] if word else None
            continue
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("lzo", "snappy", "zstd") and parts[1] in ("enabled", "disabled"):
            found[parts[0]] = parts[1] == "enabled"
    if not version or not version[0].isdigit():
        return None
    compressors: Dict[str, Optional[bool]] = {"zlib": True}
    for name in ("lzo", "snappy", "zstd"):
        compressors[name] = bool(found.get(name, False))
    return {"version": version, "compressors": compressors}


def makedumpfile_fact(path: Optional[str], rc: Optional[int], stdout: str, stderr: str) -> Dict[str, Any]:
    """The ``makedumpfile`` fact from ``makedumpfile -v``'s result (path None = not installed)."""
    if path is None:
        return unknown_makedumpfile(None, "makedumpfile is not installed")
    parsed = parse_makedumpfile_version(stdout) or parse_makedumpfile_version(stderr)
    if parsed is None:
        first = ((stderr or "").strip() or (stdout or "").strip() or "(no output)").splitlines()[0][:200]
        return unknown_makedumpfile(path, "'makedumpfile -v' exited %s and printed no version: %s" % (rc, first))
    fact = unknown_makedumpfile(path)
    fact.update(parsed, known=True, reason="")
    return fact


# ---------------------------------------------------------------------------------------------
# MAKEDUMP_ARGS: parsed like getopt_long("b:cDd:eEFfg:hi:lL:pRvXx:z") does
# ---------------------------------------------------------------------------------------------

_SHORT_WITH_ARG = set("bdgiLx")
_LONG_WITH_ARG = {"xen-syms", "xen-vmcoreinfo", "xen_phys_start", "message-level", "vtop", "config",
                  "diskset", "cyclic-buffer", "eppic", "splitblock-size", "work-dir", "num-threads",
                  "extension"}
_FLAG_COMPRESSOR = {"c": "zlib", "l": "lzo", "p": "snappy", "z": "zstd"}


def parse_makedump_args(args: str) -> Dict[str, Any]:
    """MAKEDUMP_ARGS -> {tokens, compressors (in order), dump_levels, dump_level (max, None
    when no -d: makedumpfile's default 0), exclude_domu, elf, flatten, xen_syms,
    xen_vmcoreinfo, vmlinux, unparsed}.  Raises :class:`MakedumpArgsInvalid` for text the shell
    could not split or a -d that is not a list of levels."""
    try:
        tokens = shlex.split(args or "")
    except ValueError as exc:
        raise MakedumpArgsInvalid("MAKEDUMP_ARGS %r cannot be split into words: %s." % (args, exc), args=args)
    out: Dict[str, Any] = {"tokens": tokens, "compressors": [], "dump_levels": [], "dump_level": None,
                           "exclude_domu": False, "elf": False, "flatten": False, "xen_syms": None,
                           "xen_vmcoreinfo": None, "vmlinux": None, "vmcoreinfo": None, "unparsed": []}
    i = 0

    def level(value: str) -> None:
        try:
            levels = [int(v) for v in value.split(",")]
        except ValueError:
            raise MakedumpArgsInvalid("MAKEDUMP_ARGS -d %r is not a dump level (0-31, or a comma list)." % value,
                                      args=args)
        if any(v < 0 or v > 31 for v in levels):
            raise MakedumpArgsInvalid("MAKEDUMP_ARGS -d %r: dump levels are 0 to 31." % value, args=args)
        out["dump_levels"].extend(levels)

    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok.startswith("--") and len(tok) > 2:
            name, _sep, value = tok[2:].partition("=")
            if name in _LONG_WITH_ARG and not value:
                value = tokens[i] if i < len(tokens) else ""
                i += 1
            if name == "xen-syms":
                out["xen_syms"] = value
            elif name == "xen-vmcoreinfo":
                out["xen_vmcoreinfo"] = value
            continue
        if tok.startswith("-") and len(tok) > 1:
            chars = tok[1:]
            j = 0
            while j < len(chars):
                ch = chars[j]
                j += 1
                if ch in _SHORT_WITH_ARG:
                    value = chars[j:]
                    if not value:
                        value = tokens[i] if i < len(tokens) else ""
                        i += 1
                    if ch == "d":
                        level(value)
                    elif ch == "x":
                        out["vmlinux"] = value
                    elif ch == "i":
                        out["vmcoreinfo"] = value
                    break
                if ch in _FLAG_COMPRESSOR:
                    out["compressors"].append(_FLAG_COMPRESSOR[ch])
                elif ch == "X":
                    out["exclude_domu"] = True
                elif ch == "E":
                    out["elf"] = True
                elif ch == "F":
                    out["flatten"] = True
            continue
        out["unparsed"].append(tok)
    if out["dump_levels"]:
        out["dump_level"] = max(out["dump_levels"])
    return out


def args_problems(args: Optional[str], is_dom0: bool = True,
                  compressors: Optional[Dict[str, Optional[bool]]] = None) -> List[str]:
    """What is wrong with MAKEDUMP_ARGS for this kind of host (empty list: nothing).

    The one rule of the role's plan, its verification (verify.j2) and the audit (audit-row.j2),
    through the ``makedump_args_problems`` filter.  ``compressors`` is the host's
    ``makedumpfile.compressors`` fact when known."""
    if args is None or not str(args).strip():
        return ['MAKEDUMP_ARGS is not set: kdump-tools defaults to "-F -c -d 31", which writes an empty '
                'dump on Xen' if is_dom0 else 'MAKEDUMP_ARGS is not set (kdump-tools uses "-F -c -d 31")']
    try:
        parsed = parse_makedump_args(str(args))
    except MakedumpArgsInvalid as exc:
        return [exc.detail]
    problems: List[str] = []
    if parsed["elf"] and parsed["compressors"]:
        problems.append("%s: makedumpfile refuses -E (ELF output) with a compression flag (-%s), so no "
                        "dump is written" % (args, "/-".join(COMPRESSOR_FLAGS[c][1] for c in parsed["compressors"])))
    if len(set(parsed["compressors"])) > 1:
        problems.append("%s: more than one compression flag; makedumpfile uses only the last" % args)
    if compressors:
        for comp in parsed["compressors"]:
            if compressors.get(comp) is False:
                problems.append("%s: this host's makedumpfile is built without %s (%s is ignored: the dump is "
                                "written uncompressed)" % (args, comp, COMPRESSOR_FLAGS[comp]))
    if is_dom0:
        level = parsed["dump_level"] or 0
        if level > 1 and not (parsed["vmlinux"] or parsed["vmcoreinfo"]):
            problems.append("%s: dump level %d needs dom0's Linux vmcoreinfo, which a Xen dump lacks%s: "
                            "makedumpfile fails and kdump-tools saves an empty dump (use \"-X -d 1\")"
                            % (args, level, " (--xen-syms does not provide it)" if parsed["xen_syms"] else ""))
    elif parsed["exclude_domu"]:
        problems.append("%s: -X works only on a Xen crash dump; this host is not a Xen dom0" % args)
    return problems


# ---------------------------------------------------------------------------------------------
# plan_capture
# ---------------------------------------------------------------------------------------------

def _known(mdf: Optional[Dict[str, Any]]) -> bool:
    return bool(mdf) and bool(mdf.get("present")) and bool(mdf.get("version")) and \
        isinstance(mdf.get("compressors"), dict)


def best_compressor(mdf: Optional[Dict[str, Any]]) -> str:
    """The first of :data:`COMPRESSOR_PREFERENCE` the host's makedumpfile has (zlib otherwise)."""
    available = (mdf or {}).get("compressors") or {}
    for name in COMPRESSOR_PREFERENCE:
        if name == "zlib" or available.get(name) is True:
            return name
    return "zlib"


def _measured(mode: str, compressor: Optional[str]) -> List[Dict[str, Any]]:
    return [dict(m) for m in MEASUREMENTS if m["mode"] == mode and m["compressor"] == compressor]


def _result(args: str, mode: str, reason: str, parsed: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    parsed = parsed if parsed is not None else parse_makedump_args(args)
    comps = parsed["compressors"]
    compressor = comps[-1] if comps else None
    return {"args": args, "mode": mode, "dump_level": parsed["dump_level"] or 0,
            "exclude_domu": parsed["exclude_domu"], "compressor": compressor,
            "xen_syms": parsed["xen_syms"], "reason": reason, "measured": _measured(mode, compressor),
            "preference": list(COMPRESSOR_PREFERENCE)}


def plan_capture(makedumpfile_facts: Optional[Dict[str, Any]], mode: str = "auto", makedump_args: str = "",
                 xen_syms_present: bool = False, is_dom0: bool = True,
                 xen_syms: str = "") -> Dict[str, Any]:
    """The MAKEDUMP_ARGS kdump-tools runs in the crash kernel, and why.

    Returns {args, mode (auto resolved: xen-dom0 | full | explicit | non-dom0), dump_level,
    exclude_domu, compressor, xen_syms, reason, measured, preference}.

    * ``full``: ``-c -d 0``, the whole host (guests included) compressed with zlib: the
      measured fallback.
    * ``xen-dom0``: ``<fastest compressor> -X -d 1`` (+ ``--xen-syms PATH`` when present):
      dom0, Xen and its heap; guests and zero pages left out (Xen's free pages are kept:
      makedumpfile reads pre-XSA-402 page-state bits, measured; scrubbed ones are zero pages).
    * ``auto``: xen-dom0 when makedumpfile's version and compressors are known, else full.
    * ``makedump_args`` (non-empty) wins over ``mode``; on a dom0 it is refused
      (:class:`MakedumpLevelNeedsVmcoreinfo`, :class:`MakedumpArgsInvalid`) when it cannot work.
    * Not a dom0: exactly what the role always wrote there (the explicit string, else
      ``-c -X --xen-syms PATH`` when xen-syms exists, else ``-c -d 0``).
    """
    if mode not in MODES:
        raise CapturePolicyInvalid("xenkdump_capture_mode is %r; expected one of %s." % (mode, ", ".join(MODES)),
                                   mode=mode)
    makedump_args = (makedump_args or "").strip()
    syms = xen_syms if (xen_syms and xen_syms_present) else ""
    mdf = makedumpfile_facts or {}

    if not is_dom0:
        if makedump_args:
            parsed = parse_makedump_args(makedump_args)
            if parsed["elf"] and parsed["compressors"]:
                raise MakedumpArgsInvalid("xenkdump_makedump_args %r: %s." % (
                    makedump_args, args_problems(makedump_args, is_dom0=False)[0]), args=makedump_args)
            why = "xenkdump_makedump_args (not a Xen dom0: not checked against Xen's rules)"
            return _result(makedump_args, "explicit", why, parsed)
        if syms:
            why = "not a Xen dom0: the role's previous default with xen-syms"
            return _result("-c -X --xen-syms " + syms, "non-dom0", why)
        return _result(FULL_ARGS, "non-dom0", "not a Xen dom0: whole-memory dump (-c -d 0)")

    if makedump_args:
        problems = args_problems(makedump_args, is_dom0=True,
                                 compressors=mdf.get("compressors") if _known(mdf) else None)
        parsed = parse_makedump_args(makedump_args)
        level_problems = [p for p in problems if "needs dom0's Linux vmcoreinfo" in p]
        if level_problems:
            raise MakedumpLevelNeedsVmcoreinfo("xenkdump_makedump_args %r asks for dump level %d on a Xen dom0."
                                               % (makedump_args, parsed["dump_level"] or 0), args=makedump_args)
        if problems:
            raise MakedumpArgsInvalid("xenkdump_makedump_args: %s." % "; ".join(problems), args=makedump_args)
        return _result(makedump_args, "explicit", "xenkdump_makedump_args, checked against makedumpfile's "
                                                  "Xen rules", parsed)

    if mode == "full":
        return _result(FULL_ARGS, "full", "xenkdump_capture_mode full: the whole host (guests included), "
                                          "zlib; the measured fallback")
    if mode == "auto" and not _known(mdf):
        why = mdf.get("reason") or "makedumpfile's version and compressors are unknown"
        return _result(FULL_ARGS, "full", "auto: %s, so the whole-host dump (-c -d 0); set "
                                          "xenkdump_capture_mode: xen-dom0 to leave the guests out anyway" % why)
    compressor = best_compressor(mdf) if _known(mdf) else "zlib"
    args = "%s -X -d 1" % COMPRESSOR_FLAGS[compressor]
    if syms:
        args += " --xen-syms " + syms
    if _known(mdf):
        why = "%s makedumpfile %s: %s is the first of %s it has" % (
            "auto:" if mode == "auto" else "xen-dom0:", mdf.get("version"), compressor,
            "/".join(COMPRESSOR_PREFERENCE))
    else:
        why = "xen-dom0: makedumpfile not known (%s): zlib, always built in" % (
            mdf.get("reason") or "no makedumpfile -v")
    why += ("; -X -d 1 leaves out the guests' pages and zero pages (Xen's symbols from %s; "
            "levels above 1 need Linux vmcoreinfo a Xen dump lacks)"
            % ("--xen-syms" if syms else "the dump's VMCOREINFO_XEN note"))
    return _result(args, "xen-dom0", why)


# ---------------------------------------------------------------------------------------------
# estimate_dump
# ---------------------------------------------------------------------------------------------

def estimate_dump(facts: Dict[str, Any], capture_plan: Dict[str, Any]) -> Dict[str, Any]:
    """Upper bound of the bytes the dump can take for this plan, from xl info / xl list facts.

    Page data is counted uncompressed (a bound, not a forecast: the measured 3 GiB lab host gave
    176 MB with zlib); the kdump-compressed format adds a 24-byte descriptor per dumped page,
    two bitmaps of max_pfn bits and its headers.

    * full (``-d 0``): host memory in use, ``total_memory - free_memory``: Xen scrubs free
      pages to zeros, which compress to almost nothing (descriptors for all host pages counted).
    * xen-dom0 (``-X``): dom0's memory + Xen's own, ``total - free - sum(all domains)``.
    Returns {bytes, mib, known, mode, data_bytes, metadata_bytes, inputs, derivation}; bytes None
    when the facts lack the memory figures (not a dom0, xl missing)."""
    total = facts.get("host_memory_mb")
    free = facts.get("host_free_memory_mb")
    dom0 = facts.get("dom0_memory_mb")
    domains = facts.get("domains")
    mode = "xen-dom0" if capture_plan.get("exclude_domu") else "full"
    out: Dict[str, Any] = {"bytes": None, "mib": None, "known": False, "mode": mode, "data_bytes": None,
                           "metadata_bytes": None, "inputs": {}, "derivation": ""}
    if total is None or free is None:
        out["derivation"] = "the facts have no xl info total_memory/free_memory (not a dom0, or xl missing)"
        return out
    used_mb = max(0, total - free)
    max_pfn = facts.get("max_pfn") or (total * MIB // PAGE_SIZE)
    inputs: Dict[str, Any] = {"total_memory_mb": total, "free_memory_mb": free, "max_pfn": max_pfn}
    bitmaps = 2 * ((max_pfn + 7) // 8)
    if mode == "full":
        data_mb = used_mb
        pages_described = total * MIB // PAGE_SIZE
        how = "full: host memory in use = total %d - free %d = %d MiB" % (total, free, used_mb)
    else:
        if dom0 is None or domains is None:
            data_mb = used_mb
            how = ("xen-dom0, but the facts have no domain list: bounded by host memory in use "
                   "= total %d - free %d = %d MiB" % (total, free, used_mb))
            inputs["domains_known"] = False
        else:
            domu_mb = sum(int(d.get("mem_mb") or 0) for d in domains)
            xen_own = max(0, total - free - dom0 - domu_mb)
            data_mb = dom0 + xen_own
            inputs.update(dom0_memory_mb=dom0, domu_memory_mb=domu_mb, domu_count=len(domains),
                          xen_own_mb=xen_own, domains_known=True)
            how = ("xen-dom0: dom0 %d MiB + Xen's own %d MiB (total %d - free %d - dom0 %d - %d guest(s) %d MiB)"
                   % (dom0, xen_own, total, free, dom0, len(domains), domu_mb))
        pages_described = data_mb * MIB // PAGE_SIZE
    data = data_mb * MIB
    meta = pages_described * PAGE_DESC_BYTES + bitmaps + HEADER_BYTES
    total_bytes = data + meta
    out.update(bytes=total_bytes, mib=_mib_up(total_bytes), known=True, data_bytes=data,
               metadata_bytes=meta, inputs=inputs,
               derivation="%s, uncompressed; + %d MiB of page descriptors, bitmaps (max_pfn %d) and headers"
               % (how, _mib_up(meta), max_pfn))
    return out


# ---------------------------------------------------------------------------------------------
# check_room
# ---------------------------------------------------------------------------------------------

def _mib(nbytes: int) -> int:
    return int(nbytes // MIB)


def _mib_up(nbytes: int) -> int:
    return int(-(-nbytes // MIB))


def prune_after_save(dumps: Sequence[Dict[str, Any]], num_dumps: int) -> List[Dict[str, Any]]:
    """The dump directories kdump-tools removes after saving ONE more dump with
    KDUMP_NUM_DUMPS=num_dumps (0 keeps all): names starting with '2', oldest by version sort."""
    if num_dumps <= 0:
        return []
    stamped = [d for d in dumps if str(d.get("name", "")).startswith(KDUMP_TOOLS_PRUNE_GLOB_PREFIX)]
    purge = len(stamped) + 1 - num_dumps
    if purge <= 0:
        return []
    return sorted(stamped, key=lambda d: _version_sort_key(str(d["name"])))[:purge]


def _version_sort_key(name: str) -> List[Any]:
    parts: List[Any] = []
    digits = ""
    text = ""
    for ch in name:
        if ch.isdigit():
            if text:
                parts.append((1, text))
                text = ""
            digits += ch
        else:
            if digits:
                parts.append((0, int(digits)))
                digits = ""
            text += ch
    if digits:
        parts.append((0, int(digits)))
    if text:
        parts.append((1, text))
    return parts


def check_room(estimate: Dict[str, Any], dump_target_facts: Optional[Dict[str, Any]], num_dumps: int = 0,
               policy: str = "refuse", dump_target: str = "local",
               capture_mode: str = "") -> Dict[str, Any]:
    """Does the dump fit where kdump-tools writes it?

    room = free bytes of the dump path's filesystem (kdump-tools prunes old dumps only after
    saving the new one, so they do not count). Verdict: ``ok`` (room >= the estimate),
    ``warn`` / ``refuse`` (short, by ``policy``), ``off`` (policy off) or ``unchecked`` (nfs/ssh,
    or figures unknown), with a message naming both numbers in MiB.  Raises
    :class:`DumpTargetTooSmall` when the verdict is refuse; its ``data["room"]`` is the result."""
    if policy not in ROOM_POLICIES:
        raise CapturePolicyInvalid("xenkdump_dump_room_check is %r; expected one of %s."
                                   % (policy, ", ".join(ROOM_POLICIES)), policy=policy)
    if dump_target not in DUMP_TARGETS:
        raise CapturePolicyInvalid("dump_target is %r; expected one of %s." % (dump_target, ", ".join(DUMP_TARGETS)))
    if isinstance(num_dumps, bool) or not isinstance(num_dumps, int) or num_dumps < 0:
        raise CapturePolicyInvalid("xenkdump_num_dumps is %r; expected a whole number >= 0." % (num_dumps,))
    target = dump_target_facts or {}
    need = estimate.get("bytes")
    free = target.get("free_bytes")
    dumps = list(target.get("dumps") or [])
    pruned = prune_after_save(dumps, num_dumps) if dump_target == "local" else []
    room: Dict[str, Any] = {
        "verdict": "unchecked", "policy": policy, "path": target.get("path"), "need_bytes": need,
        "need_mib": _mib_up(need) if need is not None else None, "free_bytes": free,
        "free_mib": _mib(free) if free is not None else None, "room_bytes": free,
        "room_mib": _mib(free) if free is not None else None,
        "existing_dumps": len(dumps), "existing_dumps_bytes": sum(int(d.get("bytes") or 0) for d in dumps),
        "pruned_after_save": [d.get("name") for d in pruned],
        "pruned_after_save_bytes": sum(int(d.get("bytes") or 0) for d in pruned),
        "prunes_before_save": KDUMP_TOOLS_PRUNES_BEFORE_SAVE, "message": "",
    }
    if policy == "off":
        room.update(verdict="off", message="room check off (xenkdump_dump_room_check: off)")
        return room
    if dump_target != "local":
        room.update(verdict="unchecked", room_bytes=None, room_mib=None, free_bytes=None, free_mib=None,
                    message="dump target %s: its free space is on the %s server and cannot be read from this "
                            "host; make sure %s MiB fit there" % (
                                dump_target, dump_target, room["need_mib"] if need is not None else "enough"))
        return room
    if need is None:
        room["message"] = "dump size unknown: %s" % (estimate.get("derivation") or "no memory facts")
        return room
    if free is None:
        room["message"] = "free space of %s unknown: %s" % (
            target.get("path") or "the dump path", target.get("error") or "no dump_target facts (xen_facts dump_path)")
        return room
    where = target.get("path") or "the dump path"
    fs = target.get("statvfs_path")
    fs_note = " (on the filesystem of %s, which exists)" % fs if fs and fs != where else ""
    numbers = "the dump can need up to %d MiB (%s) and %s has %d MiB free%s" % (
        room["need_mib"], estimate.get("derivation", ""), where, room["free_mib"], fs_note)
    if free >= need:
        room.update(verdict="ok", message="fits: " + numbers)
        if num_dumps == 0 and dumps:
            room["message"] += "; %d old dump(s) (%d MiB) are kept forever (xenkdump_num_dumps: 0)" % (
                len(dumps), _mib(room["existing_dumps_bytes"]))
        return room
    fixes = ["a bigger dump target (xenkdump_dump_path on a larger filesystem, or nfs/ssh)"]
    if dumps:
        fixes.append("delete old dumps in %s (%d, %d MiB; kdump-tools prunes to xenkdump_num_dumps only after "
                     "the next dump is saved)" % (where, len(dumps), _mib(room["existing_dumps_bytes"])))
    else:
        fixes.append("xenkdump_num_dumps to keep later dumps from piling up")
    if capture_mode != "xen-dom0" and estimate.get("mode") != "xen-dom0":
        fixes.append("xenkdump_capture_mode: xen-dom0 (leaves the guests' memory out)")
    text = "does not fit: %s. Fix: %s" % (numbers, "; or ".join(fixes))
    if policy == "warn":
        room.update(verdict="warn", message=text)
        return room
    room.update(verdict="refuse", message=text)
    raise DumpTargetTooSmall("The dump does not fit where kdump-tools writes it: %s. Options here: %s."
                             % (numbers, "; or ".join(fixes)), room=room)


# ---------------------------------------------------------------------------------------------
# Everything at once, from the xen_facts dictionary (the capture_plan filter)
# ---------------------------------------------------------------------------------------------

def plan_from_facts(facts: Dict[str, Any], mode: str = "auto", makedump_args: str = "",
                    xen_syms: str = "", xen_syms_present: bool = False, room_check: str = "refuse",
                    num_dumps: int = 0, dump_target: str = "local",
                    ignore_known_issues: Sequence[str] = ()) -> Dict[str, Any]:
    """{capture, estimate, room, known_issues: {found, ignored, blocking}, refusals} for a host.

    ``capture`` is :func:`plan_capture` (raises for a mode or explicit MAKEDUMP_ARGS that cannot
    work), ``estimate`` :func:`estimate_dump`, ``room`` :func:`check_room` (a refusal does not
    raise here: its message, with the error code, goes to ``refusals``), and on a dom0 the
    ``known_issues`` of the facts not in ``ignore_known_issues``, each a refusal too (XK710)."""
    is_dom0 = bool(facts.get("is_dom0"))
    plan = plan_capture(facts.get("makedumpfile"), mode=mode, makedump_args=makedump_args,
                        xen_syms_present=xen_syms_present, is_dom0=is_dom0, xen_syms=xen_syms)
    estimate = estimate_dump(facts, plan)
    refusals: List[str] = []
    try:
        room = check_room(estimate, facts.get("dump_target"), num_dumps=num_dumps, policy=room_check,
                          dump_target=dump_target, capture_mode=plan["mode"])
    except DumpTargetTooSmall as exc:
        room = dict(exc.data["room"])
        room["message"] = exc.message
        refusals.append(exc.message)
    found = list(facts.get("known_issues") or []) if is_dom0 else []
    left = ki.blocking(found, ignore_known_issues)
    try:
        ki.refuse(found, ignore_known_issues)
    except ki.KnownIssueOnHost as exc:
        refusals.append(exc.message)
    return {"capture": plan, "estimate": estimate, "room": room,
            "known_issues": {"found": found,
                             "ignored": [i["id"] for i in found if i["id"] in set(ignore_known_issues or ())],
                             "blocking": [i["id"] for i in left]},
            "refusals": refusals}
