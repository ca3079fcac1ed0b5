# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What this host is under Xen, and what Xen says about itself and its crash region.

* :func:`detect_guest` decides is_xen / is_dom0 / guest type (PV, PVH, HVM, none) from
  ``/sys/hypervisor``, ``/proc/xen/capabilities`` and weaker hints, and says which source
  answered.  It never runs a command.
* :func:`parse_xl_info`, :func:`parse_xl_list`, :func:`parse_kdump_line`,
  :func:`crashkernel_warnings`, :func:`console_rotated`, :func:`distro_family` are pure
  parsers of the texts those tools print.
* :func:`gather` runs everything once on a :class:`~hostio.Host` and returns the facts dict
  of the "Facts contract" in ``docs/architecture.md`` (``xen_facts`` returns it, the
  ``xen_crash_region`` planner calls it for live defaults).

Nothing here changes the host: only ``xl info``, ``xl list``, ``xl dmesg`` and the
read-only kexec probes (through ``kexec.py``) are run, and only on a dom0; ``makedumpfile -v``
and ``statvfs`` of the dump path (:func:`dump_target_facts`) on every host.
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.xenkdump.fleet.plugins.module_utils import capture
from ansible_collections.xenkdump.fleet.plugins.module_utils import cmdline
from ansible_collections.xenkdump.fleet.plugins.module_utils import kexec
from ansible_collections.xenkdump.fleet.plugins.module_utils import known_issues
from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import Host

MIB = 1024 * 1024

HYPERVISOR_TYPE = "/sys/hypervisor/type"
GUEST_TYPE = "/sys/hypervisor/guest_type"
FEATURES = "/sys/hypervisor/properties/features"
VERSION_DIR = "/sys/hypervisor/version"
CAPABILITIES = "/proc/xen/capabilities"
PROC_XEN = "/proc/xen"
CPUINFO = "/proc/cpuinfo"
DMI_VENDOR = "/sys/class/dmi/id/sys_vendor"
DMI_PRODUCT = "/sys/class/dmi/id/product_name"
PROC_CMDLINE = "/proc/cmdline"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")

# xen/include/public/features.h
XENFEAT_AUTO_TRANSLATED_PHYSMAP = 2
XENFEAT_DOM0 = 11

GUEST_TYPES = ("PV", "PVH", "HVM")

# Package that provides `xl`, per distro family.
XL_PACKAGES = {
    "Debian": "xen-utils-common",   # /usr/sbin/xl wrapper; the real binary is in xen-utils-4.x
    "Suse": "xen-tools",
    "RedHat": "xen-runtime",        # Fedora / CentOS Virt SIG
    "XCP-ng": "xen-dom0-tools",
}
XL_PACKAGE_UNKNOWN = "the Xen toolstack package that provides xl"

# Facts keys that `xl info` must provide, with their type.
XL_INFO_INT_KEYS = ("nr_cpus", "total_memory", "free_memory")


# ---------------------------------------------------------------------------------------------
# Errors (XK100-XK199)
# ---------------------------------------------------------------------------------------------

class XlInfoUnparsable(XenKdumpError):
    code = "XK100"
    title = "xl info output could not be understood"
    remedy = ("Run 'xl info' by hand as root: it must print 'key : value' lines including "
              "xen_version, total_memory, free_memory and nr_cpus. Reinstall the Xen tools "
              "matching the running hypervisor if it does not.")


class XlCommandFailed(XenKdumpError):
    code = "XK101"
    title = "xl failed on a dom0"
    remedy = ("Run the task as root (become: true) and make sure the Xen control interface "
              "is up: xenfs mounted on /proc/xen, /dev/xen/privcmd present, xencommons "
              "(xenstored) started, and the xl tools match the running hypervisor version.")


class NotDom0(XenKdumpError):
    code = "XK102"
    title = "This host is not a Xen dom0"
    remedy = ("Run this on the Xen control domain (dom0), booted through the Xen hypervisor; "
              "or drop require_dom0 to get a report instead of a failure.")


class XlListUnparsable(XenKdumpError):
    code = "XK103"
    title = "xl list output could not be understood"
    remedy = ("Run 'xl list' by hand as root: it must print a header and a Domain-0 row "
              "'Name ID Mem VCPUs State Time(s)'. Reinstall the Xen tools matching the "
              "running hypervisor if it does not.")


# ---------------------------------------------------------------------------------------------
# Pure parsers
# ---------------------------------------------------------------------------------------------

_XL_INFO_LINE = re.compile(r"^([A-Za-z0-9_]+)\s*:\s?(.*)$")


def parse_xl_info(text: str) -> Dict[str, Any]:
    """``xl info`` → dict (str values; nr_cpus/total_memory/free_memory/xen_major/minor as int).

    Raises :class:`XlInfoUnparsable` when the text is not ``key : value`` lines or lacks one
    of the keys the facts need (naming the line or key).
    """
    if text is None or not text.strip():
        raise XlInfoUnparsable("'xl info' printed nothing.")
    info: Dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line.strip():
            continue
        match = _XL_INFO_LINE.match(line)
        if not match:
            if info and raw[:1].isspace():
                # a continuation line (e.g. a very long value wrapped): keep it with the key
                last = list(info)[-1]
                info[last] = (str(info[last]) + " " + line.strip()).strip()
                continue
            raise XlInfoUnparsable(
                "'xl info' line %d is not 'key : value': %r." % (number, line[:120]),
                line=number)
        info[match.group(1)] = match.group(2).strip()
    missing = [k for k in ("xen_version",) + XL_INFO_INT_KEYS if k not in info]
    if missing:
        if "xen_version" in missing and "xen_major" in info and "xen_minor" in info:
            info["xen_version"] = "%s.%s%s" % (info["xen_major"], info["xen_minor"],
                                               info.get("xen_extra", ""))
            missing.remove("xen_version")
    if missing:
        raise XlInfoUnparsable(
            "'xl info' lacks %s (got keys: %s)." % (", ".join(missing), ", ".join(sorted(info)) or "none"),
            missing=missing)
    for key in XL_INFO_INT_KEYS + ("xen_major", "xen_minor", "max_cpu_id", "nr_nodes"):
        if key not in info:
            continue
        value = info[key]
        try:
            info[key] = int(value)
        except (TypeError, ValueError):
            raise XlInfoUnparsable(
                "'xl info' %s is %r, not a whole number." % (key, value), key=key, value=value)
        if info[key] < 0:
            raise XlInfoUnparsable("'xl info' %s is negative (%d)." % (key, info[key]), key=key)
    if info["nr_cpus"] == 0 or info["total_memory"] == 0:
        raise XlInfoUnparsable(
            "'xl info' reports nr_cpus=%d total_memory=%d: a running host has neither at 0."
            % (info["nr_cpus"], info["total_memory"]))
    if info["free_memory"] > info["total_memory"]:
        raise XlInfoUnparsable(
            "'xl info' free_memory %d MiB exceeds total_memory %d MiB."
            % (info["free_memory"], info["total_memory"]))
    if not re.match(r"^\d+\.\d+", info["xen_version"]):
        raise XlInfoUnparsable("'xl info' xen_version %r does not start with major.minor."
                               % info["xen_version"])
    return info


def parse_xl_list(text: str) -> List[Dict[str, Any]]:
    """``xl list [0]`` → [{name, id, mem_mb, vcpus, state, time_s}] (header skipped).

    Raises :class:`XlListUnparsable` for a row that does not have the six columns.
    """
    rows: List[Dict[str, Any]] = []
    lines = [l for l in (text or "").splitlines() if l.strip()]
    if not lines:
        raise XlListUnparsable("'xl list' printed nothing.")
    start = 1 if lines[0].split()[:2] == ["Name", "ID"] else 0
    for number, line in enumerate(lines[start:], start + 1):
        fields = line.split()
        # The name may contain spaces in theory; the last five columns are fixed.
        if len(fields) < 6:
            raise XlListUnparsable("'xl list' line %d has %d columns, expected 6: %r."
                                   % (number, len(fields), line[:120]), line=number)
        name = " ".join(fields[:-5])
        dom_id, mem, vcpus, state, time_s = fields[-5:]
        try:
            row = {"name": name, "id": int(dom_id), "mem_mb": int(mem), "vcpus": int(vcpus),
                   "state": state, "time_s": float(time_s)}
        except ValueError:
            raise XlListUnparsable("'xl list' line %d: ID/Mem/VCPUs/Time are not numbers: %r."
                                   % (number, line[:120]), line=number)
        rows.append(row)
    return rows


def dom0_row(rows: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The Domain-0 row (ID 0) of :func:`parse_xl_list`, or None."""
    for row in rows:
        if row["id"] == 0:
            return row
    return None


def domu_rows(rows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The guests of :func:`parse_xl_list` (every row but ID 0) as the ``domains`` fact:
    [{name, domid, mem_mb, vcpus, state}]."""
    return [{"name": r["name"], "domid": r["id"], "mem_mb": r["mem_mb"], "vcpus": r["vcpus"],
             "state": r["state"]} for r in rows if r["id"] != 0]


# "(XEN) " prefix, optional "[timestamp] " (console_timestamps=), optional "<N>" loglevel.
_XEN_PREFIX = r"^(?:\(XEN\)\s*)?(?:\[[^\]]*\]\s*)?(?:<\d>)?"
_KDUMP_ANY = re.compile(_XEN_PREFIX + r"Kdump:\s*(.*?)\s*$")
_KDUMP_OK = re.compile(r"^(\d+)MB\s+\((\d+)kB\)\s+at\s+(0x[0-9a-fA-F]+)$")
_KDUMP_FAILED = re.compile(r"^DISABLED\s+\(failed to reserve\s+(\d+)MB\s+\((\d+)kB\)\s+at\s+"
                           r"(0x[0-9a-fA-F]+)\)$")
_CRASHKERNEL_WARN = re.compile(_XEN_PREFIX + r"(crashkernel:\s*.*?)\s*$")
_BANNER = re.compile(_XEN_PREFIX + r"(Xen version \d|Command line:)")
_CMDLINE_LINE = re.compile(_XEN_PREFIX + r"Command line:\s?(.*?)\s*$")


def parse_kdump_line(xl_dmesg_text: str) -> Optional[Dict[str, Any]]:
    """Xen's boot-time ``Kdump:`` line (the last one) → dict, or None when there is none.

    Xen prints (xen/arch/x86/setup.c) ``Kdump: 256MB (262144kB) at 0x4000000`` when the
    region is reserved, ``Kdump: DISABLED (failed to reserve 256MB (262144kB) at 0x...)``
    when the requested placement is not RAM.  Returns ``{"reserved": bool, "size_bytes":
    int|None, "start": int|None, "line": str, "failure": str}``; an unknown ``Kdump:`` line
    gives reserved False with sizes None and the line quoted in ``failure``.
    """
    found: Optional[str] = None
    for raw in (xl_dmesg_text or "").splitlines():
        match = _KDUMP_ANY.match(raw.strip())
        if match:
            found = match.group(1)
            line = raw.strip()
    if found is None:
        return None
    ok = _KDUMP_OK.match(found)
    if ok:
        return {"reserved": True, "size_bytes": int(ok.group(2)) * 1024,
                "start": int(ok.group(3), 16), "line": line, "failure": ""}
    failed = _KDUMP_FAILED.match(found)
    if failed:
        return {"reserved": False, "size_bytes": int(failed.group(2)) * 1024,
                "start": int(failed.group(3), 16), "line": line,
                "failure": "Xen could not reserve %sMB at %s: that range is not free RAM "
                           "in the e820 map" % (failed.group(1), failed.group(3))}
    return {"reserved": False, "size_bytes": None, "start": None, "line": line,
            "failure": "Xen printed %r" % line}


_E820_HEADER = re.compile(_XEN_PREFIX + r"(Xen-e820|EFI|Multiboot|BIOS-provided physical) RAM map:\s*$")
# Xen >= 4.12: " [0000000000100000, 000000007ffdbfff] (usable)" (inclusive end);
# older: " 0000000000100000 - 000000007ffdc000 (usable)" (exclusive end).
_E820_BRACKET = re.compile(_XEN_PREFIX + r"\[([0-9a-fA-F]+),\s*([0-9a-fA-F]+)\]\s*\(([^)]*)\)")
_E820_DASH = re.compile(_XEN_PREFIX + r"([0-9a-fA-F]{8,})\s*-\s*([0-9a-fA-F]{8,})\s*\(([^)]*)\)")


def parse_e820(xl_dmesg_text: str) -> Optional[List[Dict[str, Any]]]:
    """Xen's boot-time RAM map from ``xl dmesg`` (the last "Xen-e820 RAM map:" block, else the
    last other "... RAM map:" block) -> [{start, end (exclusive), type}], or None when the
    console ring no longer holds it."""
    blocks: List[List[Dict[str, Any]]] = []
    kinds: List[str] = []
    current: Optional[List[Dict[str, Any]]] = None
    for raw in (xl_dmesg_text or "").splitlines():
        line = raw.strip()
        header = _E820_HEADER.match(line)
        if header:
            current = []
            blocks.append(current)
            kinds.append(header.group(1))
            continue
        if current is None:
            continue
        bracket = _E820_BRACKET.match(line)
        dash = _E820_DASH.match(line) if not bracket else None
        if bracket:
            current.append({"start": int(bracket.group(1), 16), "end": int(bracket.group(2), 16) + 1,
                            "type": bracket.group(3).strip()})
        elif dash:
            current.append({"start": int(dash.group(1), 16), "end": int(dash.group(2), 16),
                            "type": dash.group(3).strip()})
        else:
            current = None
    for wanted in ("Xen-e820", None):
        for kind, block in reversed(list(zip(kinds, blocks))):
            if block and (wanted is None or kind == wanted):
                return block
    return None


def highest_ram(xl_dmesg_text: str, page_size: int = 4096) -> Dict[str, Any]:
    """{max_pfn, highest_ram_address} from Xen's e820 map in ``xl dmesg`` (usable RAM only):
    the number of page frames makedumpfile's Xen bitmaps cover, and the last RAM byte.
    Both None when the map is gone from the console ring."""
    ranges = parse_e820(xl_dmesg_text) or []
    ends = [r["end"] for r in ranges if r["type"].lower() in ("usable", "ram") and r["end"] > r["start"]]
    if not ends:
        return {"max_pfn": None, "highest_ram_address": None}
    top = max(ends)
    return {"max_pfn": (top + page_size - 1) // page_size, "highest_ram_address": top - 1}


def crashkernel_warnings(xl_dmesg_text: str) -> List[str]:
    """Xen's ``crashkernel: ...`` parse warnings (xen/common/kexec.c), in order."""
    out: List[str] = []
    for raw in (xl_dmesg_text or "").splitlines():
        match = _CRASHKERNEL_WARN.match(raw.strip())
        if match:
            out.append(match.group(1))
    return out


def console_rotated(xl_dmesg_text: str) -> bool:
    """True when the Xen console ring no longer holds the boot banner
    (neither ``Xen version`` nor ``Command line:`` is left in ``xl dmesg``)."""
    for raw in (xl_dmesg_text or "").splitlines():
        if _BANNER.match(raw.strip()):
            return False
    return True


def dmesg_commandline(xl_dmesg_text: str) -> Optional[str]:
    """The Xen command line from the boot banner in ``xl dmesg``, or None."""
    for raw in (xl_dmesg_text or "").splitlines():
        match = _CMDLINE_LINE.match(raw.strip())
        if match:
            return match.group(1)
    return None


def parse_os_release(text: str) -> Dict[str, str]:
    """``/etc/os-release`` → dict (quotes removed)."""
    result: Dict[str, str] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        result[key.strip()] = value
    return result


_FAMILIES = (
    ("XCP-ng", ("xcp-ng", "xcpng", "xenserver", "xenenterprise", "citrix")),
    ("Debian", ("debian", "ubuntu", "raspbian", "linuxmint", "devuan", "pop", "kali")),
    ("Suse", ("suse", "sles", "sled", "opensuse", "opensuse-leap", "opensuse-tumbleweed",
              "opensuse-microos")),
    ("RedHat", ("rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn",
                "cloudlinux", "scientific", "eurolinux", "virtuozzo")),
)


def distro_family(os_release_text: str) -> str:
    """Debian | Suse | RedHat | XCP-ng | unknown, from ``/etc/os-release`` text.

    ID decides first (XCP-ng's ID_LIKE says centos), then NAME for XenServer / Citrix
    Hypervisor, then ID_LIKE.
    """
    data = parse_os_release(os_release_text)
    ident = data.get("ID", "").lower()
    name = data.get("NAME", "").lower()
    for family, ids in _FAMILIES:
        if ident in ids or (ident.startswith("opensuse") and family == "Suse"):
            return family
    if any(word in name for word in ("xcp-ng", "xenserver", "citrix hypervisor")):
        return "XCP-ng"
    for like in data.get("ID_LIKE", "").lower().split():
        for family, ids in _FAMILIES:
            if like in ids:
                return family
    return "unknown"


def _clean(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    text = text.replace("\x00", "").strip()
    return text


def _features(host: Host) -> Optional[int]:
    text = _clean(host.read(FEATURES))
    if not text:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def sysfs_xen_version(host: Host) -> Optional[str]:
    """Xen version from ``/sys/hypervisor/version/{major,minor,extra}`` (no xl needed)."""
    major = _clean(host.read(VERSION_DIR + "/major"))
    minor = _clean(host.read(VERSION_DIR + "/minor"))
    if not major or not minor:
        return None
    return "%s.%s%s" % (major, minor, _clean(host.read(VERSION_DIR + "/extra")) or "")


# ---------------------------------------------------------------------------------------------
# Guest detection
# ---------------------------------------------------------------------------------------------

def detect_guest(host: Host) -> Dict[str, Any]:
    """Is this Xen, a dom0, and which guest type? Reads files only, never runs a command.

    Returns ``{"is_xen", "is_dom0", "guest_type", "guest_type_source", "reason",
    "evidence": {source: value}}``.  Sources, strongest first:
    ``/sys/hypervisor/type`` (``xen``), ``/proc/xen/capabilities`` (``control_d`` = dom0),
    ``/sys/hypervisor/properties/features`` (XENFEAT_dom0, auto-translated physmap),
    ``/sys/hypervisor/guest_type`` (PV/PVH/HVM; kernels >= 4.15), DMI vendor ``Xen``
    (HVM), and the ``hypervisor`` CPU flag (only says "some hypervisor").
    """
    evidence: Dict[str, Any] = {}
    hyp_type = _clean(host.read(HYPERVISOR_TYPE))
    if hyp_type is not None:
        evidence[HYPERVISOR_TYPE] = hyp_type
    caps = _clean(host.read(CAPABILITIES))
    if caps is not None:
        evidence[CAPABILITIES] = caps
    features = _features(host)
    if features is not None:
        evidence[FEATURES] = "%08x" % features
    gtype = _clean(host.read(GUEST_TYPE))
    if gtype is not None:
        evidence[GUEST_TYPE] = gtype
    vendor = _clean(host.read(DMI_VENDOR))
    product = _clean(host.read(DMI_PRODUCT))
    if vendor is not None:
        evidence[DMI_VENDOR] = vendor
    if product is not None:
        evidence[DMI_PRODUCT] = product
    cpu_flag = False
    cpuinfo = host.read(CPUINFO, limit=1 << 20) or ""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            cpu_flag = "hypervisor" in line.split(":", 1)[-1].split()
            break
    evidence["cpuinfo hypervisor flag"] = cpu_flag
    proc_xen = host.exists(PROC_XEN)

    dmi_xen = (vendor or "").lower() == "xen" or "hvm domu" in (product or "").lower()
    is_xen = (hyp_type or "").lower() == "xen" or proc_xen or dmi_xen

    result: Dict[str, Any] = {"is_xen": is_xen, "is_dom0": False, "guest_type": "none",
                              "guest_type_source": "", "reason": "", "evidence": evidence}
    if not is_xen:
        if hyp_type:
            result["reason"] = "not running under Xen: %s says %r" % (HYPERVISOR_TYPE, hyp_type)
        else:
            hint = ""
            if cpu_flag:
                hint = "; the CPU 'hypervisor' flag shows another hypervisor"
                if vendor:
                    hint += " (DMI vendor %r)" % vendor
            result["reason"] = ("not running under Xen: %s absent, no %s%s"
                                % (HYPERVISOR_TYPE, PROC_XEN, hint or
                                   "; no hypervisor CPU flag: bare metal"))
        result["guest_type_source"] = HYPERVISOR_TYPE
        return result

    # dom0?
    if caps is not None:
        is_dom0 = "control_d" in caps.split()
        dom0_source = CAPABILITIES
    elif features is not None:
        is_dom0 = bool(features & (1 << XENFEAT_DOM0))
        dom0_source = FEATURES + " (XENFEAT_dom0; xenfs not mounted on /proc/xen)"
    else:
        is_dom0 = False
        dom0_source = ""
    result["is_dom0"] = is_dom0

    # guest type
    if gtype in GUEST_TYPES:
        result["guest_type"] = gtype
        result["guest_type_source"] = GUEST_TYPE
    elif features is not None and hyp_type:
        if features & (1 << XENFEAT_AUTO_TRANSLATED_PHYSMAP):
            result["guest_type"] = "HVM"
            result["guest_type_source"] = (
                FEATURES + " (auto-translated physmap; kernel without " + GUEST_TYPE
                + ": a PVH kernel would have it, so HVM)")
        else:
            result["guest_type"] = "PV"
            result["guest_type_source"] = FEATURES + " (no auto-translated physmap: PV)"
    elif is_dom0:
        result["guest_type"] = "PV"
        result["guest_type_source"] = (
            dom0_source + " (control_d; kernel without " + GUEST_TYPE
            + ": such a dom0 kernel predates PVH dom0, so PV)")
    elif dmi_xen:
        result["guest_type"] = "HVM"
        result["guest_type_source"] = "%s %r (firmware tables: HVM)" % (
            DMI_VENDOR if (vendor or "").lower() == "xen" else DMI_PRODUCT,
            vendor if (vendor or "").lower() == "xen" else product)
    else:
        result["guest_type"] = "PV"
        result["guest_type_source"] = "%s exists, no %s, no DMI tables: PV" % (PROC_XEN, GUEST_TYPE)

    if not is_dom0:
        if caps is not None:
            why = "%s has no control_d (%r)" % (CAPABILITIES, caps)
        elif features is not None:
            why = "%s lacks XENFEAT_dom0" % FEATURES
        else:
            why = ("neither %s nor %s is readable (mount xenfs: "
                   "'mount -t xenfs xenfs /proc/xen')" % (CAPABILITIES, FEATURES))
        result["reason"] = "Xen %s guest (domU), not the control domain: %s" % (
            result["guest_type"], why)
    else:
        result["dom0_source"] = dom0_source
    return result


# ---------------------------------------------------------------------------------------------
# gather()
# ---------------------------------------------------------------------------------------------

def xl_package(family: str) -> str:
    return XL_PACKAGES.get(family, XL_PACKAGE_UNKNOWN)


def _run_xl(host: Host, xl_path: str, args: Sequence[str]) -> str:
    argv = [xl_path] + list(args)
    result = host.run(argv)
    if result.rc != 0:
        text = (result.stderr or "").strip() or (result.stdout or "").strip() or "(no output)"
        command = " ".join(["xl"] + list(args))
        raise XlCommandFailed("'%s' exited %d: %s" % (command, result.rc, text.splitlines()[0][:300]),
                              rc=result.rc, stderr=(result.stderr or "")[:2000])
    return result.stdout or ""


def _nothing_reserved_note(requested: bool, xen_options: Dict[str, Optional[str]]) -> str:
    """What to tell the user when Xen reserved no crash region."""
    if requested:
        return ("crashkernel=%s is on the Xen command line but Xen reserved nothing "
                "(no room for it below its limit, or it did not parse)" % xen_options.get("crashkernel"))
    return ("no crashkernel= on the Xen command line: add one (xen_crash_region "
            "sizes it, xen_cmdline sets it) and reboot")


def _crash_region(dmesg_text: Optional[str], ckr: Optional[int],
                  xen_options: Dict[str, Optional[str]]) -> Dict[str, Any]:
    region: Dict[str, Any] = {"reserved": None, "size_bytes": None, "size_mb": None,
                              "start": None, "start_hex": None, "source": "none", "note": "",
                              "console_rotated": None, "kdump_line": None, "warnings": []}
    kdump = None
    if dmesg_text is not None:
        kdump = parse_kdump_line(dmesg_text)
        region["console_rotated"] = console_rotated(dmesg_text) and kdump is None
        region["warnings"] = crashkernel_warnings(dmesg_text)
        if kdump is not None:
            region["kdump_line"] = kdump["line"]
    notes: List[str] = []
    requested = "crashkernel" in xen_options

    if kdump is not None and kdump["reserved"]:
        region.update(reserved=True, size_bytes=kdump["size_bytes"], start=kdump["start"],
                      source="xl dmesg")
        if ckr is not None:
            region["source"] = "xl dmesg+kexec"
            if ckr != kdump["size_bytes"]:
                notes.append("kexec --print-ckr-size says %d bytes but Xen's boot line says %d: "
                             "trusting kexec (it asks the running hypervisor)"
                             % (ckr, kdump["size_bytes"]))
                region["size_bytes"] = ckr
                region["reserved"] = ckr > 0
    elif ckr is not None:
        region.update(reserved=ckr > 0, size_bytes=ckr if ckr > 0 else 0,
                      source="kexec --print-ckr-size")
        if kdump is not None:
            region["source"] = "xl dmesg+kexec"
            notes.append(kdump["failure"])
        if ckr > 0 and kdump is None:
            if region["console_rotated"]:
                notes.append("the Xen console ring has rotated: the boot-time 'Kdump:' line is gone, "
                             "so the start address is unknown (size from kexec --print-ckr-size). "
                             "To keep boot messages, add conring_size=1M (or larger) to the Xen "
                             "command line")
            elif dmesg_text is not None:
                notes.append("no 'Kdump:' line in xl dmesg although kexec reports a region")
        elif ckr == 0 and kdump is None and dmesg_text is not None and not region["console_rotated"]:
            # Banner present, no Kdump: line, kexec says 0: both sources agree on "nothing".
            region["source"] = "xl dmesg+kexec"
            notes.append(_nothing_reserved_note(requested, xen_options))
    elif kdump is not None:
        region.update(reserved=False, size_bytes=0, start=None, source="xl dmesg")
        region["requested_size_bytes"] = kdump["size_bytes"]
        region["requested_start"] = kdump["start"]
        notes.append(kdump["failure"])
    elif dmesg_text is not None and not region["console_rotated"]:
        # The boot banner is there and Xen printed no Kdump: line: nothing was reserved.
        region.update(reserved=False, size_bytes=0, source="xl dmesg")
        notes.append(_nothing_reserved_note(requested, xen_options))
    elif region["console_rotated"]:
        notes.append("the Xen console ring has rotated (no 'Xen version'/'Command line:' banner in "
                     "xl dmesg) and kexec --print-ckr-size is unavailable: the reservation is "
                     "unknown. Install kexec-tools and rely on 'kexec --print-ckr-size'; add "
                     "conring_size=1M to the Xen command line to keep boot messages")
    if region["warnings"]:
        notes.append("Xen warned while parsing crashkernel=: " + "; ".join(region["warnings"]))
    if region["size_bytes"] is not None:
        region["size_mb"] = region["size_bytes"] // MIB
    if region["start"] is not None:
        region["start_hex"] = "0x%x" % region["start"]
    region["note"] = ". ".join(n.rstrip(".") for n in notes if n)
    return region


def _empty_facts() -> Dict[str, Any]:
    return {
        "is_xen": False, "is_dom0": False, "guest_type": "none", "guest_type_source": "",
        "reason": "", "xen_version": None, "xen_commandline": None, "xen_cmdline_tokens": [],
        "xen_cmdline_options": {}, "host_memory_mb": None, "host_free_memory_mb": None,
        "dom0_memory_mb": None, "nr_cpus": None, "domains": None, "max_pfn": None,
        "highest_ram_address": None,
        "makedumpfile": capture.unknown_makedumpfile(None, "not gathered"),
        "dump_target": {"path": None, "exists": None, "statvfs_path": None, "free_bytes": None,
                        "total_bytes": None, "dumps": [], "dumps_count": 0, "dumps_truncated": False,
                        "error": "not gathered"},
        "known_issues": [],
        "crash_region": {"reserved": None, "size_bytes": None, "size_mb": None, "start": None,
                         "start_hex": None, "source": "none", "note": "",
                         "console_rotated": None, "kdump_line": None, "warnings": []},
        "kexec": {"present": False, "path": None, "version": None, "xen_support": None,
                  "package": "kexec-tools"},
        "xl": {"present": False, "path": None, "package": XL_PACKAGE_UNKNOWN},
        "crash_kernel": {"loaded": None, "source": "none", "status_bit": None,
                         "consistent": None, "record": None},
        "crash_images": {"kernel": None, "kernel_init_size": None, "initrd": None, "initrd_size": None,
                         "notes": []},
        "dom0_cmdline": None, "dom0_crashkernel": None, "distro_family": "unknown",
        "bootloader": {"kind": "unknown", "path": None, "regenerate": [], "files": [],
                       "reason": ""},
        "evidence": {}, "problems": [],
    }


DUMPS_LIMIT = 200


def dump_target_facts(host: Host, path: str, limit: int = DUMPS_LIMIT) -> Dict[str, Any]:
    """Free space where dumps go, and the dumps already there (read-only, no deep walk).

    ``statvfs`` of ``path`` (through the host root), or of its nearest existing parent when it
    does not exist yet (kdump-tools creates it): ``free_bytes`` = f_bavail x f_frsize,
    ``total_bytes`` = f_blocks x f_frsize.  ``dumps``: the directories directly in ``path``
    (kdump-tools writes ``<YYYYMMDDHHMM>/dump.<stamp>``, ``vmcore.<stamp>``, ``dmesg.<stamp>``),
    by name, at most ``limit``, each {name, bytes (its regular files, one level), files, mtime}."""
    out: Dict[str, Any] = {"path": path, "exists": False, "statvfs_path": None, "free_bytes": None,
                           "total_bytes": None, "dumps": [], "dumps_count": 0, "dumps_truncated": False,
                           "error": ""}
    if not path or not path.startswith("/"):
        out["error"] = "dump_path %r is not an absolute path" % (path,)
        return out
    path = os.path.normpath(path)
    out["path"] = path
    out["exists"] = os.path.isdir(host.p(path))
    probe = path
    while not os.path.isdir(host.p(probe)) and probe != "/":
        probe = os.path.dirname(probe)
    try:
        st = os.statvfs(host.p(probe))
    except OSError as exc:
        out["error"] = "statvfs(%s) failed: %s" % (probe, exc.strerror or exc)
        return out
    out.update(statvfs_path=probe, free_bytes=st.f_bavail * st.f_frsize, total_bytes=st.f_blocks * st.f_frsize)
    if not out["exists"]:
        return out
    try:
        names = sorted(os.listdir(host.p(path)))
    except OSError as exc:
        out["error"] = "cannot list %s: %s" % (path, exc.strerror or exc)
        return out
    dirs = []
    for name in names:
        try:
            st_entry = os.lstat(os.path.join(host.p(path), name))
        except OSError:
            continue
        if stat.S_ISDIR(st_entry.st_mode):
            dirs.append((name, st_entry))
    out["dumps_count"] = len(dirs)
    out["dumps_truncated"] = len(dirs) > limit
    for name, st_entry in dirs[:limit]:
        total = 0
        files = 0
        try:
            with os.scandir(os.path.join(host.p(path), name)) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                        files += 1
        except OSError:
            pass
        out["dumps"].append({"name": name, "bytes": total, "files": files, "mtime": int(st_entry.st_mtime)})
    return out


def makedumpfile_facts(host: Host) -> Dict[str, Any]:
    """The ``makedumpfile`` fact: {present, path, version, compressors, known, reason}."""
    path = host.which("makedumpfile")
    if path is None:
        return capture.makedumpfile_fact(None, None, "", "")
    result = host.run([path, "-v"])
    return capture.makedumpfile_fact(path, result.rc, result.stdout or "", result.stderr or "")


def gather(host: Host, dump_path: str = "/var/crash") -> Dict[str, Any]:
    """Every fact of the "Facts contract" (docs/architecture.md) for this host.

    Read-only.  On a non-Xen host or a domU it returns is_dom0 False with ``reason`` and runs
    no Xen command.  Missing ``xl`` / kexec-tools are reported (``problems``, with the
    package to install), not raised.  Raises :class:`XlCommandFailed` when ``xl`` fails on a
    dom0 and :class:`XlInfoUnparsable` / :class:`XlListUnparsable` for garbled output.
    """
    facts = _empty_facts()
    problems: List[str] = facts["problems"]

    os_release = None
    for path in OS_RELEASE:
        os_release = host.read(path)
        if os_release is not None:
            break
    family = distro_family(os_release or "")
    facts["distro_family"] = family

    guest = detect_guest(host)
    for key in ("is_xen", "is_dom0", "guest_type", "guest_type_source", "reason", "evidence"):
        facts[key] = guest[key]

    dom0_line = _clean(host.read(PROC_CMDLINE))
    facts["dom0_cmdline"] = dom0_line
    if dom0_line is not None:
        facts["dom0_crashkernel"] = cmdline.options(cmdline.tokenize(dom0_line)).get("crashkernel")

    xl_path = host.which("xl")
    facts["xl"] = {"present": xl_path is not None, "path": xl_path, "package": xl_package(family)}

    probe = kexec.probe(host)
    facts["kexec"] = dict(probe)

    facts["bootloader"] = cmdline.detect_bootloader(host, family)
    facts["makedumpfile"] = makedumpfile_facts(host)
    facts["dump_target"] = dump_target_facts(host, dump_path)

    if not facts["is_dom0"]:
        if facts["is_xen"]:
            facts["xen_version"] = sysfs_xen_version(host)
        return facts

    if facts["dom0_crashkernel"] is not None and facts["guest_type"] == "PV":
        problems.append("dom0's kernel command line has crashkernel=%s: a PV dom0 kernel ignores it "
                        "(the crash region belongs on the Xen command line); remove it"
                        % facts["dom0_crashkernel"])
    pv_dom0, why = kexec.is_pv_dom0(host)
    if probe.get("present") and facts["guest_type"] != "PV":
        if not pv_dom0:
            problems.append("kexec-tools will not load into the hypervisor here (%s): 'kexec -p' "
                            "targets dom0's own Linux kernel, which a Xen crash never reaches; "
                            "boot dom0 as a PV guest (Xen's default dom0 mode) for hypervisor kdump"
                            % why)
    if not probe.get("present"):
        problems.append("kexec-tools is not installed: install package %s"
                        % (probe.get("package") or "kexec-tools"))
    elif probe.get("xen_support") is False:
        problems.append("kexec at %s is built without Xen support (no libxenctrl): it cannot load "
                        "a crash kernel into the hypervisor; install your distribution's %s"
                        % (probe.get("path"), probe.get("package") or "kexec-tools"))

    facts["xen_version"] = sysfs_xen_version(host)
    dmesg_text: Optional[str] = None
    if xl_path is None:
        problems.append("xl is not installed: install package %s%s" % (
            facts["xl"]["package"],
            " (and xen-utils-%s matching the hypervisor)" % ".".join(
                (facts["xen_version"] or "4.x").split(".")[:2]) if family == "Debian" else ""))
    else:
        info = parse_xl_info(_run_xl(host, xl_path, ["info"]))
        facts["xen_version"] = info["xen_version"]
        facts["host_memory_mb"] = info["total_memory"]
        facts["host_free_memory_mb"] = info["free_memory"]
        facts["nr_cpus"] = info["nr_cpus"]
        facts["xen_commandline"] = info.get("xen_commandline")
        rows = parse_xl_list(_run_xl(host, xl_path, ["list"]))
        row = dom0_row(rows)
        if row is None:
            raise XlListUnparsable("'xl list' has no row with ID 0 (Domain-0).")
        facts["dom0_memory_mb"] = row["mem_mb"]
        facts["domains"] = domu_rows(rows)
        dmesg = host.run([xl_path, "dmesg"])
        if dmesg.rc == 0:
            dmesg_text = dmesg.stdout or ""
            facts.update(highest_ram(dmesg_text))
            if not facts["xen_commandline"]:
                facts["xen_commandline"] = dmesg_commandline(dmesg_text)
        else:
            problems.append("'xl dmesg' exited %d: %s" % (
                dmesg.rc, ((dmesg.stderr or "").strip().splitlines() or ["(no output)"])[0][:300]))

    if facts["xen_commandline"] is not None:
        tokens = cmdline.tokenize(facts["xen_commandline"])
        facts["xen_cmdline_tokens"] = tokens
        facts["xen_cmdline_options"] = cmdline.options(tokens)

    # kexec --print-ckr-size asks Xen only when kexec-tools targets the hypervisor (a PV dom0
    # and a libxenctrl build); otherwise it reads dom0's /proc/iomem and prints 0 for a region
    # that Xen did reserve, so its answer is not used then.
    ckr = None
    if probe.get("present") and probe.get("xen_support") is not False and pv_dom0:
        ckr = kexec.ckr_size(host)
    facts["crash_region"] = _crash_region(dmesg_text, ckr, facts["xen_cmdline_options"])
    if facts["crash_region"]["reserved"] is False:
        problems.append("Xen has no crash region reserved: nothing can be loaded and a hypervisor "
                        "crash will not be dumped (%s)" % (facts["crash_region"]["note"] or "see crash_region"))

    bit = kexec.status_bit(host) if probe.get("present") else None
    facts["crash_kernel"] = dict(kexec.load_state(host, bit))
    # What the sizing model needs about this host's crash kernel (init_size, crash initrd), so
    # the region can be planned from these facts alone (crashkernel.plan_from_facts).
    facts["crash_images"] = kexec.crash_image_sizes(host)
    facts["known_issues"] = known_issues.find(known_issues.component_versions(facts))
    return facts


def require_dom0(facts: Dict[str, Any]) -> None:
    """Raise :class:`NotDom0` unless ``facts`` (from :func:`gather`) describe a dom0."""
    if not facts.get("is_dom0"):
        raise NotDom0("require_dom0 is set but this host is not a Xen dom0: %s."
                      % (facts.get("reason") or "unknown reason"),
                      is_xen=facts.get("is_xen"), guest_type=facts.get("guest_type"))
