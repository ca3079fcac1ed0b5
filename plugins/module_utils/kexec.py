# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kexec-tools on a Xen dom0: probe, status bit, the loader's /run record, planning.

How kexec-tools decides where a ``kexec -p`` image goes (kexec-tools 2.0.25,
``kexec/kexec-xen.c`` and ``kexec/kexec.c``):

* ``xen_present()`` is true when ``/proc/xen`` exists and the CPUID probe says this is a PV
  guest (a PV dom0).  Then load/unload/status go through libxenctrl hypercalls
  (``xc_kexec_load``/``xc_kexec_unload``/``xc_kexec_status``) into the **hypervisor**;
  otherwise they go to the Linux kexec syscalls.
* Built without libxenctrl (``! HAVE_LIBXENCTRL``), the Xen stubs return -1: on a PV dom0
  ``kexec -p`` fails and ``kexec -S -p`` exits 255.
* ``k_status()`` returns ``xen_kexec_status()`` on Xen: Xen's ``KEXEC_CMD_kexec_status``
  answers ``test_bit(bit, &kexec_flags)`` where the bit is the *slot position* that
  ``kexec_swap_images()`` toggles on every load and every unload.  So on Xen the exit status
  of ``kexec -S -p`` is a parity bit, not "loaded" (measured:
  ``tests/fixtures/xen-4.17-dom0/kexec-status-toggle.txt``).
* ``--print-ckr-size`` prints the crash region size: on Xen from ``xen_get_kexec_range()``
  (a hypercall), on Linux from ``/proc/iomem``'s "Crash kernel"; it prints ``0`` when nothing
  is reserved (or when a non-Xen build runs on a dom0, whose iomem has no "Crash kernel").

Hence "loaded" comes from our own record (:data:`RECORD_PATH`, per boot), and the status bit
only cross-checks it by parity: ``expected_bit = (swaps + parity_offset) % 2``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import Host

PACKAGE = "kexec-tools"
RECORD_PATH = "/run/xenkdump/crash-kernel.json"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
RECORD_VERSION = 1
HISTORY_MAX = 50

# Byte strings that exist in a kexec binary only when it was built with libxenctrl:
# the DT_NEEDED / dlopen() library name, and a message compiled only under HAVE_LIBXENCTRL
# (xen_get_kexec_range() in kexec/kexec-xen.c).
XEN_BUILD_MARKERS = (b"libxenctrl.so", b"failed to open xen control interface")


# --------------------------------------------------------------------------- errors

class KexecError(XenKdumpError):
    code = "XK400"
    title = "kexec-tools failed"
    remedy = "Run the kexec command shown in the message by hand with -d to see why it failed."


class KexecMissingError(KexecError):
    code = "XK401"
    title = "kexec-tools is not installed"
    remedy = "Install the kexec-tools package (it provides /sbin/kexec)."


class KexecNoXenSupportError(KexecError):
    code = "XK402"
    title = "kexec-tools was built without Xen support"
    remedy = ("Install a kexec-tools built with libxenctrl (Debian/Ubuntu's kexec-tools is; "
              "on other distros rebuild it with --with-xen) and make sure libxenctrl is installed.")


class NoCrashRegionError(KexecError):
    code = "XK403"
    title = "Xen reserved no crash region"
    remedy = ("Add crashkernel=<size> to the XEN command line (GRUB_CMDLINE_XEN_DEFAULT, xen.cfg "
              "options=, or xen-cmdline --set-xen; xenkdump.fleet.xen_cmdline does it) and reboot.")


class NotHypervisorTargetError(KexecError):
    code = "XK404"
    title = "kexec would load into Linux, not into the Xen hypervisor"
    remedy = ("Run this on a PV dom0 of a Xen host, or use target=auto to skip non-dom0 hosts; "
              "on bare metal or in a domU use the distribution's kdump service instead.")


class ImageTooBigError(KexecError):
    code = "XK405"
    title = "The crash kernel does not fit in Xen's crash region"
    remedy = ("Grow the region (crashkernel= on the Xen command line, see xen_crash_region), "
              "use a smaller initrd (kdump-tools' MODULES=dep initrd), or give min_free_mb to replace "
              "the sizing model's figure with your own (only after a fire drill proves it).")


class CrashFileMissingError(KexecError):
    code = "XK406"
    title = "Crash kernel or initrd file not found"
    remedy = "Give existing paths in kernel=/initrd=, or install the kernel package for this release."


class KexecLoadError(KexecError):
    code = "XK407"
    title = "kexec could not load the crash kernel into the hypervisor"
    remedy = ("Check the kexec stderr in the message; run it again with -d. Make sure /dev/xen/privcmd "
              "exists (xenfs mounted on /proc/xen) and the image fits the Xen crash region.")


class KexecUnloadError(KexecError):
    code = "XK408"
    title = "kexec could not unload the crash kernel from the hypervisor"
    remedy = "Check the kexec stderr in the message; make sure /dev/xen/privcmd exists (xenfs mounted)."


class UnsafeAppendError(KexecError):
    code = "XK409"
    title = "Crash kernel command line contains a token that hangs a crash kernel"
    remedy = ("Remove console=hvc*/earlyprintk=xen/xencons= from extra_append; the crash kernel runs on "
              "bare metal after a Xen crash and needs a real console (console=ttyS0,115200 or tty0).")


class CkrSizeError(KexecError):
    code = "XK410"
    title = "kexec --print-ckr-size gave no usable answer"
    remedy = ("Run 'kexec --print-ckr-size' as root on the dom0; it needs /dev/xen/privcmd "
              "(xenfs on /proc/xen). Retry after the Xen control interface is up.")


class RecordWriteError(KexecError):
    code = "XK411"
    title = "Cannot write the loader record under /run"
    remedy = "Make /run/xenkdump writable by the user running the task (run with become: true)."


# --------------------------------------------------------------------------- small helpers

def _kexec_path(host: Host) -> Optional[str]:
    return host.which("kexec")


def boot_id(host: Host) -> Optional[str]:
    """This boot's id (``/proc/sys/kernel/random/boot_id``), or None."""
    text = host.read(BOOT_ID_PATH)
    if text is None:
        return None
    text = text.strip()
    return text or None


def _elf_dt_needed(data: bytes) -> Optional[List[str]]:
    """DT_NEEDED names of an ELF image (bytes), [] for a static ELF, None when not ELF.

    A tiny reader of the ELF dynamic section (so a managed host needs no pyelftools):
    header → program headers → PT_DYNAMIC → DT_STRTAB mapped through PT_LOAD → names.
    """
    if len(data) < 52 or data[:4] != b"\x7fELF":
        return None
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        return None
    end = "<" if ei_data == 1 else ">"
    try:
        if ei_class == 2:
            e_phoff, = struct.unpack_from(end + "Q", data, 0x20)
            e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 0x36)
            ph_fmt, dyn_fmt = end + "IIQQQQQQ", end + "qQ"
        else:
            e_phoff, = struct.unpack_from(end + "I", data, 0x1C)
            e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 0x2A)
            ph_fmt, dyn_fmt = end + "IIIIIIII", end + "iI"
        loads = []  # (vaddr, offset, filesz)
        dynamic = None  # (offset, filesz)
        for index in range(e_phnum):
            raw = struct.unpack_from(ph_fmt, data, e_phoff + index * e_phentsize)
            if ei_class == 2:
                p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = raw[:6]
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz = raw[:5]
            if p_type == 1:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == 2:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            return []
        entsize = struct.calcsize(dyn_fmt)
        needed_offsets = []
        strtab_vaddr = None
        offset, size = dynamic
        for pos in range(offset, min(offset + size, len(data)) - entsize + 1, entsize):
            tag, value = struct.unpack_from(dyn_fmt, data, pos)
            if tag == 0:
                break
            if tag == 1:
                needed_offsets.append(value)
            elif tag == 5:
                strtab_vaddr = value
        if strtab_vaddr is None:
            return []
        strtab = None
        for vaddr, file_off, filesz in loads:
            if vaddr <= strtab_vaddr < vaddr + filesz:
                strtab = file_off + (strtab_vaddr - vaddr)
                break
        if strtab is None:
            return []
        names = []
        for rel in needed_offsets:
            start = strtab + rel
            stop = data.find(b"\x00", start)
            if stop < 0:
                continue
            names.append(data[start:stop].decode("ascii", "replace"))
        return names
    except struct.error:
        return None


def elf_xen_evidence(real_path: str) -> Tuple[Optional[bool], str]:
    """Read a kexec binary: (True|False|None, how it was decided)."""
    try:
        with open(real_path, "rb") as handle:
            data = handle.read(16 * 1024 * 1024)
    except (IOError, OSError) as exc:
        return None, "binary not readable (%s)" % exc
    needed = _elf_dt_needed(data)
    if needed is None:
        return None, "binary is not an ELF file"
    for name in needed:
        if name.startswith("libxenctrl.so"):
            return True, "ELF DT_NEEDED %s" % name
    for marker in XEN_BUILD_MARKERS:
        if marker in data:
            return True, "binary contains %r (libxenctrl built in or dlopen()ed)" % marker.decode()
    return False, "ELF has no libxenctrl in DT_NEEDED (%s) and no libxenctrl strings" % (
        ", ".join(needed) or "static")


def _parse_version(text: str) -> Optional[str]:
    match = re.search(r"kexec-tools\s+(\S+)", text or "")
    return match.group(1) if match else None


def is_pv_dom0(host: Host) -> Tuple[bool, str]:
    """Would kexec-tools' xen_present() be true here?  (bool, reason)."""
    if not host.exists("/proc/xen"):
        return False, "/proc/xen does not exist: not running under Xen as a PV domain"
    caps = host.read("/proc/xen/capabilities")
    guest_type = (host.read("/sys/hypervisor/guest_type") or "").strip()
    if guest_type and guest_type != "PV":
        return False, "/sys/hypervisor/guest_type is %s: kexec-tools treats a %s guest as native hardware" % (
            guest_type, guest_type)
    if caps is None:
        return False, ("/proc/xen/capabilities is not readable (xenfs not mounted?): cannot tell "
                       "whether this is dom0")
    if "control_d" not in caps:
        return False, "/proc/xen/capabilities has no control_d: this is a domU, not dom0"
    return True, "PV dom0 (/proc/xen/capabilities has control_d%s)" % (
        ", guest_type PV" if guest_type else "")


# --------------------------------------------------------------------------- contract: probe & state

def probe(host: Host) -> Dict[str, Any]:
    """kexec-tools facts: {present, path, version, xen_support, xen_support_source, package}.

    ``xen_support`` is True/False when the binary (ELF dynamic section and strings) or a dom0's
    answers decide it, None when unknown.  ``xen_support_source`` says how it was decided.
    """
    path = _kexec_path(host)
    result: Dict[str, Any] = {"present": path is not None, "path": path, "version": None,
                              "xen_support": None, "xen_support_source": "kexec not found",
                              "package": PACKAGE}
    if path is None:
        return result
    res = host.run([path, "--version"])
    result["version"] = _parse_version(res.stdout + "\n" + res.stderr)
    support, source = elf_xen_evidence(host.p(path))
    if support is None:
        # Binary unreadable (e.g. a wrapper script): on a PV dom0 the status op decides it:
        # a build without libxenctrl returns -1 (exit 255) from xen_kexec_status().
        dom0, _why = is_pv_dom0(host)
        if dom0:
            status = host.run([path, "-S", "-p"])
            if status.rc in (0, 1):
                support, source = True, "%s; kexec -S -p answered %d on a PV dom0" % (source, status.rc)
            elif status.rc == 255 and "xen control" not in status.stderr.lower():
                support, source = False, "%s; kexec -S -p exited 255 on a PV dom0" % source
    result["xen_support"] = support
    result["xen_support_source"] = source
    return result


def ckr_size(host: Host) -> Optional[int]:
    """Crash region size in bytes from ``kexec --print-ckr-size``; None when kexec is missing
    or fails; 0 means nothing reserved."""
    path = _kexec_path(host)
    if path is None:
        return None
    res = host.run([path, "--print-ckr-size"])
    if res.rc != 0:
        return None
    match = re.search(r"^\s*(\d+)\s*$", res.stdout, re.MULTILINE)
    if not match:
        return None
    return int(match.group(1))


def status_bit(host: Host) -> Optional[int]:
    """Raw exit status of ``kexec -S -p`` (0 or 1); None when kexec is missing or rc is other."""
    path = _kexec_path(host)
    if path is None:
        return None
    res = host.run([path, "-S", "-p"])
    if res.rc in (0, 1):
        return res.rc
    return None


def read_record(host: Host, path: str = RECORD_PATH) -> Tuple[Optional[Dict[str, Any]], str]:
    """(record or None, note).  A record from another boot or an unreadable one is ignored."""
    text = host.read(path)
    if text is None:
        return None, "no record at %s" % path
    try:
        record = json.loads(text)
    except ValueError as exc:
        return None, "record %s is not JSON (%s): ignored" % (path, exc)
    if not isinstance(record, dict):
        return None, "record %s is not a JSON object: ignored" % path
    current = boot_id(host)
    if current is None or record.get("boot_id") != current:
        return None, "record %s is from another boot (boot_id %s, now %s): ignored" % (
            path, record.get("boot_id"), current)
    return record, "record of this boot"


def expected_bit(record: Dict[str, Any]) -> Optional[int]:
    """The status bit our record predicts: (swaps + parity_offset) % 2."""
    try:
        return (int(record.get("swaps", 0)) + int(record.get("parity_offset", 0))) % 2
    except (TypeError, ValueError):
        return None


def load_state(host: Host, status_bit: Optional[int], record_path: str = RECORD_PATH) -> Dict[str, Any]:
    """{loaded, source, status_bit, consistent, record, expected_bit, note}.

    ``loaded`` comes from this boot's record (``source: record``); without one it is None
    (``source: status-bit`` when the bit could be read, else ``none``): on Xen the bit alone
    cannot tell loaded from not loaded.  ``consistent`` is True/False when the record's parity
    agrees/disagrees with the bit, None when either is missing.
    """
    record, note = read_record(host, record_path)
    state: Dict[str, Any] = {"loaded": None, "source": "none", "status_bit": status_bit,
                             "consistent": None, "record": record, "expected_bit": None,
                             "note": note}
    if record is not None:
        loaded = record.get("loaded")
        state["loaded"] = loaded if isinstance(loaded, bool) else None  # None: a failed op left it unknown
        state["source"] = "record"
        expected = expected_bit(record)
        state["expected_bit"] = expected
        if status_bit is not None and expected is not None:
            state["consistent"] = status_bit == expected
            if not state["consistent"]:
                state["note"] = ("kexec -S -p says %d but our record predicts %d after %s load/unload "
                                 "hypercalls: another tool (kdump-tools?) loaded or unloaded the "
                                 "hypervisor's crash image since" % (
                                     status_bit, expected, record.get("swaps")))
    elif status_bit is not None:
        state["source"] = "status-bit"
    return state


# --------------------------------------------------------------------------- crash kernel command line

# Tokens of dom0's command line the crash kernel needs to find and mount the root file system
# (kdump-tools' capture unit runs from it) and to keep device names stable.
KEEP_KEYS = ("root", "rootflags", "rootfstype", "rootwait", "rootdelay", "ro", "rw",
             "net.ifnames", "biosdevname", "cryptdevice")
KEEP_PREFIXES = ("rd.lvm", "rd.luks", "rd.md", "rd.dm", "rd.auto", "rd.ifname")
# Crash-kernel basics (kdump-tools' KDUMP_CMDLINE_APPEND on Debian adds the same three).
CRASH_BASICS = ("irqpoll", "nr_cpus=1", "reset_devices")
DEBIAN_CAPTURE_UNIT = "kdump-tools-dump.service"
CAPTURE_UNIT_FILES = ("/lib/systemd/system/kdump-tools-dump.service",
                      "/usr/lib/systemd/system/kdump-tools-dump.service",
                      "/etc/systemd/system/kdump-tools-dump.service")
# Linux parity letters for Xen's DPS parity letters (Linux has no mark/space).
_PARITY = {"n": "n", "o": "o", "e": "e"}


def _tokenize(line: Optional[str]) -> List[str]:
    from ansible_collections.xenkdump.fleet.plugins.module_utils.cmdline import tokenize
    return tokenize(line or "")


def _split(token: str) -> Tuple[str, Optional[str]]:
    from ansible_collections.xenkdump.fleet.plugins.module_utils.cmdline import split_option
    return split_option(token)


def unsafe_token(token: str) -> Optional[str]:
    """Why ``token`` must never reach a crash kernel's command line, or None when it is fine."""
    key, value = _split(token)
    low = (value or "").lower()
    if key == "console" and low.startswith("hvc"):
        return ("%s: hvc is Xen's paravirtual console; after a hypervisor crash there is no Xen to "
                "serve it, so the crash kernel hangs silently" % token)
    if key == "earlyprintk" and "xen" in low:
        return "%s: earlyprintk=xen writes through a Xen hypercall that no longer exists" % token
    if key == "xencons":
        return "%s: xencons= configures the Xen PV console, which the crash kernel does not have" % token
    return None


def parse_xen_commandline(xl_info_text: Optional[str]) -> Optional[str]:
    """The ``xen_commandline : ...`` value of ``xl info`` output, or None."""
    for line in (xl_info_text or "").splitlines():
        match = re.match(r"^xen_commandline\s*:\s?(.*)$", line)
        if match:
            return match.group(1).strip()
    return None


def xl_info_numbers(xl_info_text: Optional[str]) -> Tuple[Optional[int], Optional[int]]:
    """(total_memory in MiB, nr_cpus) from ``xl info`` output; None for what is not there."""
    found: Dict[str, Optional[int]] = {"total_memory": None, "nr_cpus": None}
    for line in (xl_info_text or "").splitlines():
        match = re.match(r"^(total_memory|nr_cpus)\s*:\s*(\d+)\s*$", line)
        if match:
            found[match.group(1)] = int(match.group(2))
    return found["total_memory"], found["nr_cpus"]


def xen_serial_console(port: int, setting: Optional[str]) -> str:
    """Linux ``console=ttySn[,opts]`` for Xen's ``comN=<setting>``.

    Xen: ``comN=<baud>[/<base-baud>][,DPS[,<io-base>[,<irq>...]]]`` (or ``auto`` for the baud,
    or the ``baud=...,data-bits=...`` form); DPS is data bits, parity, stop bits (``8n1``).
    Linux: ``console=ttyS<n-1>,<baud><parity><bits>``; ``115200`` alone means 8n1.
    """
    tty = "ttyS%d" % (port - 1)
    if not setting:
        return "console=%s" % tty
    baud = None
    dps = None
    parts = setting.split(",")
    if "=" in parts[0]:
        named = dict(p.split("=", 1) for p in parts if "=" in p)
        baud = named.get("baud")
        bits, parity = named.get("data-bits"), named.get("parity")
        if bits or parity:
            dps = "%s%s1" % (bits or "8", (parity or "n")[:1])
    else:
        baud = parts[0].split("/")[0]
        if len(parts) > 1 and parts[1]:
            dps = parts[1]
    if not baud or not baud.isdigit():
        return "console=%s" % tty  # "auto": Linux keeps the UART's programmed rate
    opts = baud
    if dps:
        match = re.match(r"^([5-8])([noems])([12])$", dps.lower())
        if match and (match.group(1), match.group(2)) != ("8", "n"):
            parity = _PARITY.get(match.group(2), "n")
            opts = "%s%s%s" % (baud, parity, match.group(1))
    return "console=%s,%s" % (tty, opts)


def derive_consoles(xen_commandline: Optional[str]) -> List[str]:
    """``console=`` tokens for the crash kernel, from the Xen command line.

    Xen's ``console=`` lists its outputs (``com1``, ``com2``, ``vga``, ...); ``comN=`` holds the
    serial settings.  Serial outputs become ``ttyS<N-1>`` with their baud rate, ``vga`` becomes
    ``tty0``.  The serial console goes last so it is the crash kernel's ``/dev/console`` (the
    one a lab or BMC log captures).  Without a Xen ``console=``, every configured ``comN=`` is
    used.  Nothing usable → ``console=tty0``.
    """
    opts: Dict[str, Optional[str]] = {}
    for token in _tokenize(xen_commandline):
        key, value = _split(token)
        if key in opts:
            del opts[key]
        opts[key] = value
    consoles: List[str] = []
    serial: List[str] = []
    outputs = [o.strip().lower() for o in (opts.get("console") or "").split(",") if o.strip()]
    if "console" not in opts:
        outputs = [k for k in ("com1", "com2") if k in opts]
    for output in outputs:
        match = re.match(r"^com([12])[hl]?$", output)
        if match:
            token = xen_serial_console(int(match.group(1)), opts.get("com" + match.group(1)))
            if token not in serial:
                serial.append(token)
        elif output == "vga" and "console=tty0" not in consoles:
            consoles.append("console=tty0")
    consoles.extend(serial)
    return consoles or ["console=tty0"]


def _normalise_unit(capture_unit: Optional[str]) -> Optional[str]:
    if not capture_unit:
        return None
    unit = capture_unit.strip()
    if unit.startswith("systemd.unit="):
        unit = unit[len("systemd.unit="):]
    return "systemd.unit=%s" % unit if unit else None


def derive_append(dom0_cmdline: Optional[str], xen_commandline: Optional[str],
                  capture_unit: Optional[str], extra: Optional[str]) -> str:
    """The crash kernel's command line, derived from the host (pure function).

    root=/rootflags=/ro... from dom0's line (never its ``console=hvc0`` / ``earlyprintk=xen``),
    ``console=`` from Xen's serial settings, ``irqpoll nr_cpus=1 reset_devices``, the capture
    unit (``systemd.unit=...``), then ``extra`` (whose keys replace derived ones; a ``console=``
    in ``extra`` replaces all derived consoles).  Raises :class:`UnsafeAppendError` when
    ``extra`` holds a token that hangs a crash kernel.
    """
    extra_tokens = _tokenize(extra)
    for token in extra_tokens:
        why = unsafe_token(token)
        if why:
            raise UnsafeAppendError("extra_append %r contains %s." % (extra, why), token=token)
    tokens: List[str] = []
    for token in _tokenize(dom0_cmdline):
        key, _value = _split(token)
        if key in KEEP_KEYS or key.startswith(KEEP_PREFIXES):
            tokens.append(token)
    tokens.extend(derive_consoles(xen_commandline))
    tokens.extend(CRASH_BASICS)
    unit = _normalise_unit(capture_unit)
    if unit:
        tokens.append(unit)
    extra_keys = set(_split(t)[0] for t in extra_tokens)
    if {"ro", "rw"} & extra_keys:
        extra_keys |= {"ro", "rw"}
    tokens = [t for t in tokens if _split(t)[0] not in extra_keys]
    result: List[str] = []
    for token in tokens + extra_tokens:
        if token not in result:
            result.append(token)
    return " ".join(result)


def check_append(append: str) -> None:
    """Refuse a full command line that would hang the crash kernel."""
    for token in _tokenize(append):
        why = unsafe_token(token)
        if why:
            raise UnsafeAppendError("append %r contains %s." % (append, why), token=token)


# --------------------------------------------------------------------------- inputs: kernel, initrd, fit

MIB = 1024 * 1024
PURGATORY_BYTES = 1 * MIB     # purgatory + elfcorehdr + setup data + the identity-mapped low MiB copy
# The crash kernel's own RAM beyond its loaded images is NOT a constant here: by default the
# fit check asks the sizing model (crashkernel.size_region, calibrated on the Xen lab) what these
# very images need on this host, so the module and xen_crash_region agree on one minimum.


def running_release(host: Host) -> str:
    text = host.read("/proc/sys/kernel/osrelease")
    if text and text.strip():
        return text.strip()
    if host.root in ("", "/"):
        return os.uname()[2]
    raise CrashFileMissingError("Cannot read /proc/sys/kernel/osrelease to name the running kernel.")


def default_kernel(host: Host, release: str) -> str:
    return "/boot/vmlinuz-%s" % release


def kdump_initrd(release: str) -> str:
    """kdump-tools' crash initrd for a kernel release (built by its postinst hook)."""
    return "/var/lib/kdump/initrd.img-%s" % release


def default_initrd(host: Host, release: str) -> Tuple[str, str]:
    """(path, why): kdump-tools' crash initrd when present, else the boot initrd."""
    kdump = kdump_initrd(release)
    if host.exists(kdump):
        return kdump, "kdump-tools' crash initrd"
    return "/boot/initrd.img-%s" % release, "the boot initrd (%s does not exist)" % kdump


def crash_image_sizes(host: Host) -> Dict[str, Any]:
    """What the sizing model needs to know about this host's crash kernel, read from the host:
    the running kernel's ``init_size`` (bzImage header) and the size of kdump-tools' crash
    initrd.  Each is None when it cannot be read (no image, no crash initrd yet on a host where
    kdump-tools is not installed): the model then uses its estimate.  Never raises."""
    out: Dict[str, Any] = {"kernel": None, "kernel_init_size": None, "initrd": None, "initrd_size": None,
                           "notes": []}
    try:
        release = running_release(host)
    except XenKdumpError as exc:
        out["notes"].append(exc.detail)
        return out
    kernel = default_kernel(host, release)
    out["kernel"] = kernel
    try:
        from ansible_collections.xenkdump.fleet.plugins.module_utils.elfcore import kernel_image_info
        out["kernel_init_size"] = int(kernel_image_info(host.p(kernel))["init_size"])
    except XenKdumpError as exc:
        out["notes"].append("kernel init_size unknown (%s): the model's estimate is used" % exc.detail)
    kdump = kdump_initrd(release)
    try:
        out["initrd_size"] = os.path.getsize(host.p(kdump))
        out["initrd"] = kdump
    except OSError:
        out["notes"].append("no crash initrd %s yet: the model's estimate is used" % kdump)
    return out


def default_capture_unit(host: Host) -> Optional[str]:
    for path in CAPTURE_UNIT_FILES:
        if host.exists(path):
            return DEBIAN_CAPTURE_UNIT
    return None


def sha256_file(real_path: str) -> str:
    digest = hashlib.sha256()
    with open(real_path, "rb") as handle:
        while True:
            chunk = handle.read(1024 * 1024)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def _file_facts(host: Host, path: str, what: str, digest: bool = True) -> Dict[str, Any]:
    real = host.p(path)
    if not os.path.isfile(real):
        raise CrashFileMissingError("The crash %s %s does not exist (or is not a regular file)." % (what, path),
                                    path=path)
    try:
        return {"path": path, "size": os.path.getsize(real), "sha256": sha256_file(real) if digest else None}
    except (IOError, OSError) as exc:
        raise CrashFileMissingError("Cannot read the crash %s %s: %s." % (what, path, exc), path=path)


def add_digests(host: Host, image: Dict[str, Any]) -> Dict[str, Any]:
    """Fill kernel_sha256 / initrd_sha256 (done after the fit check: hashing reads whole files)."""
    image["kernel_sha256"] = _file_facts(host, image["kernel"]["path"], "kernel")["sha256"]
    if image.get("initrd"):
        image["initrd_sha256"] = _file_facts(host, image["initrd"], "initrd")["sha256"]
    return image


def image_facts(host: Host, kernel: str, initrd: Optional[str], digest: bool = True) -> Dict[str, Any]:
    """Kernel header facts (elfcore.kernel_image_info), sizes and (with ``digest``) sha256 of
    kernel and initrd."""
    from ansible_collections.xenkdump.fleet.plugins.module_utils.elfcore import kernel_image_info
    kfile = _file_facts(host, kernel, "kernel", digest)
    info = kernel_image_info(host.p(kernel))
    info = dict(info)
    info["path"] = kernel
    if info.get("format") == "bzImage" and not info.get("relocatable"):
        raise ImageTooBigError(
            "Kernel %s is a bzImage that is not relocatable (boot protocol %s): kexec-tools refuses "
            "it as a capture kernel, it cannot run from Xen's crash region." % (kernel, info.get("boot_protocol")),
            remedy="Use a kernel built with CONFIG_RELOCATABLE=y (every distribution kernel is).")
    if not info.get("x86_64") and info.get("machine") not in ("x86_64",):
        raise ImageTooBigError(
            "Kernel %s is for %s, not x86_64: Xen on x86_64 cannot run it as its crash kernel."
            % (kernel, info.get("machine")),
            remedy="Use the dom0's own x86_64 kernel (the default).")
    facts: Dict[str, Any] = {"kernel": info, "kernel_sha256": kfile["sha256"], "kernel_size": kfile["size"],
                             "initrd": None, "initrd_sha256": None, "initrd_size": 0}
    if initrd:
        ifile = _file_facts(host, initrd, "initrd", digest)
        facts.update(initrd=initrd, initrd_sha256=ifile["sha256"], initrd_size=ifile["size"])
    return facts


def fit(image: Dict[str, Any], available: int, min_free_mb: Optional[int] = None,
        host_memory_mb: Optional[int] = None, nr_cpus: Optional[int] = None) -> Dict[str, Any]:
    """Does the crash kernel fit in Xen's crash region of ``available`` bytes?

    Xen's crash region is all the RAM the crash kernel gets: kernel init_size + initrd +
    purgatory are loaded into it, and what is left must hold the crash kernel's own memory (page
    tables, the initramfs unpacked, udev, makedumpfile).  By default (``min_free_mb`` None) the
    region must be at least what the sizing model needs for these images on this host
    (``crashkernel.size_region(...).required_mb``, dump target local): the figure the planner
    uses, calibrated by bisection on real Xen (docs/performance.md).  An explicit
    ``min_free_mb`` replaces the model: the images plus that many MiB.  Raises
    :class:`ImageTooBigError` with the numbers when it won't fit.
    """
    kernel = image["kernel"]
    kernel_bytes = int(kernel.get("init_size") or kernel.get("load_size") or kernel.get("size") or 0)
    initrd_bytes = int(image.get("initrd_size") or 0)
    used = kernel_bytes + initrd_bytes + PURGATORY_BYTES
    if min_free_mb is None:
        from ansible_collections.xenkdump.fleet.plugins.module_utils.crashkernel import size_region
        need = size_region(max(1, int(host_memory_mb or 1)), max(1, int(nr_cpus or 1)), "local",
                           kernel_init_size=kernel_bytes, initrd_size=initrd_bytes).required_mb * MIB
        rule = "model"
    else:
        need = used + int(min_free_mb) * MIB
        rule = "min_free_mb"
    free = available - used
    result = {"used_mb": round(used / float(MIB), 1), "available_mb": round(available / float(MIB), 1),
              "free_mb": round(free / float(MIB), 1),
              "min_free_mb": round((need - used) / float(MIB), 1) if rule == "model" else int(min_free_mb),
              "required_mb": round(need / float(MIB), 1), "rule": rule,
              "kernel_mb": round(kernel_bytes / float(MIB), 1),
              "initrd_mb": round(initrd_bytes / float(MIB), 1),
              "purgatory_mb": round(PURGATORY_BYTES / float(MIB), 1), "fits": available >= need}
    if not result["fits"]:
        loads = "kernel init_size %.1f MiB + initrd %.1f MiB + purgatory %.1f MiB = %.1f MiB" % (
            kernel_bytes / float(MIB), initrd_bytes / float(MIB), PURGATORY_BYTES / float(MIB), used / float(MIB))
        if rule == "model":
            why = ("The crash kernel needs %.0f MiB of Xen's crash region to load (%s) and to boot and "
                   "capture on this host (the sizing model, docs/sizing.md, %s MiB host RAM)"
                   % (need / float(MIB), loads, host_memory_mb if host_memory_mb else "unknown"))
        else:
            why = "The crash kernel needs %.1f MiB (%s) and must leave %d MiB free for its own RAM" % (
                used / float(MIB), loads, int(min_free_mb))
        raise ImageTooBigError(
            "%s, but Xen's crash region is %.1f MiB (%.1f MiB would be free)." % (
                why, available / float(MIB), free / float(MIB)),
            used=used, available=available, required=need, min_free_mb=result["min_free_mb"])
    return result


# --------------------------------------------------------------------------- argv, plan, record

def load_argv(kexec_path: str, kernel: str, initrd: Optional[str], append: str) -> List[str]:
    """``kexec -p <kernel> --initrd=<initrd> --append=<append>``.  On a PV dom0 kexec-tools
    built with libxenctrl sends it to Xen (xen_present() → xen_kexec_load())."""
    argv = [kexec_path, "-p", kernel]
    if initrd:
        argv.append("--initrd=%s" % initrd)
    argv.append("--append=%s" % append)
    return argv


def unload_argv(kexec_path: str) -> List[str]:
    return [kexec_path, "-p", "-u"]


FINGERPRINT_KEYS = ("kernel", "kernel_sha256", "initrd", "initrd_sha256", "append")


def plan(state: str, before: Dict[str, Any], wanted: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Decide: {action: none|load|unload, reason, mismatch}.

    ``before`` is :func:`load_state`; ``wanted`` the fingerprint to be loaded (None for unload).
    A parity mismatch means someone else loaded/unloaded since our record: whatever the
    hypervisor holds now is unknown, so state=loaded loads again (a Xen load replaces the
    image: one hypercall) and state=unloaded unloads again.
    """
    record = before.get("record")
    mismatch = before.get("consistent") is False
    if state == "reloaded":
        return {"action": "load", "reason": "state=reloaded always loads", "mismatch": mismatch}
    if state == "loaded":
        if record is None:
            return {"action": "load", "reason": "no record of a load in this boot (%s)" % before.get("note"),
                    "mismatch": False}
        if mismatch:
            return {"action": "load", "reason": "status bit disagrees with the record: " + str(before.get("note")),
                    "mismatch": True}
        if not record.get("loaded"):
            return {"action": "load", "reason": "the record says nothing is loaded", "mismatch": False}
        changed = [k for k in FINGERPRINT_KEYS if (wanted or {}).get(k) != record.get(k)]
        if changed:
            return {"action": "load", "reason": "inputs changed since the last load: %s" % ", ".join(changed),
                    "mismatch": False, "changed_inputs": changed}
        return {"action": "none", "reason": "loaded with the same kernel, initrd and append (record%s)" % (
            ", parity checked" if before.get("consistent") else ", status bit unreadable"), "mismatch": False}
    # unloaded
    if record is None:
        return {"action": "unload", "reason": "no record of this boot: an unload is the only way to know "
                                              "nothing is loaded", "mismatch": False}
    if mismatch:
        return {"action": "unload", "reason": "status bit disagrees with the record: " + str(before.get("note")),
                "mismatch": True}
    if record.get("loaded"):
        return {"action": "unload", "reason": "the record says a crash kernel is loaded", "mismatch": False}
    return {"action": "none", "reason": "the record says nothing is loaded", "mismatch": False}


def _now() -> str:
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def base_record(host: Host, before: Dict[str, Any]) -> Dict[str, Any]:
    """The record to update: this boot's record, or a fresh one whose parity offset is the bit
    seen now (toggles made by others before us).  After a mismatch the offset is re-based on
    the observed bit: from then on only toggles made after this point are predicted."""
    record = before.get("record")
    bit = before.get("status_bit")
    if record is None:
        return {"version": RECORD_VERSION, "boot_id": boot_id(host), "loaded": False, "kernel": None,
                "kernel_sha256": None, "initrd": None, "initrd_sha256": None, "append": None, "argv": None,
                "swaps": 0, "parity_offset": bit or 0, "history": [
                    {"op": "start", "time": _now(), "status_bit": bit,
                     "note": "first record of this boot; offset = bit seen (%s)" % bit}]}
    record = json.loads(json.dumps(record))
    record.setdefault("history", [])
    record.setdefault("swaps", 0)
    if before.get("consistent") is False and bit is not None:
        record["history"].append({"op": "resync", "time": _now(), "status_bit": bit,
                                  "expected_bit": before.get("expected_bit"),
                                  "note": "another tool toggled the slot bit; loaded image unknown"})
        record["parity_offset"] = (bit - int(record["swaps"])) % 2
        record["loaded"] = None
    return record


def record_json(record: Dict[str, Any]) -> str:
    record = dict(record)
    record["history"] = list(record.get("history") or [])[-HISTORY_MAX:]
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def execute(host: Host, action: str, argv: List[str], record: Dict[str, Any],
            wanted: Optional[Dict[str, Any]]) -> Tuple[Dict[str, Any], Optional[XenKdumpError], List[str]]:
    """Run one load/unload; return (updated record, error or None, warnings).

    The record is updated even when kexec fails (the history says so), so the caller writes
    it before failing.  The status bit is read before and after: a hypercall that happened
    toggles it; one that did not (kexec failed early, or kexec went to Linux) does not.
    """
    warnings: List[str] = []
    bit_before = status_bit(host)
    res = host.run(argv)
    bit_after = status_bit(host)
    toggled = None if bit_before is None or bit_after is None else bit_before != bit_after
    entry = {"op": action, "time": _now(), "rc": res.rc, "status_bit_before": bit_before,
             "status_bit_after": bit_after}
    record["history"].append(entry)
    error: Optional[XenKdumpError] = None
    if res.rc == 0 or toggled:
        record["swaps"] = int(record.get("swaps", 0)) + 1
        if action == "load":
            record["loaded"] = True
            record.update({k: (wanted or {}).get(k) for k in FINGERPRINT_KEYS})
            record["argv"] = list(argv)
        else:
            record["loaded"] = False
            record.update({k: None for k in FINGERPRINT_KEYS})
            record["argv"] = list(argv)
        if res.rc != 0:
            record["loaded"] = None
    if res.rc != 0:
        cls = KexecLoadError if action == "load" else KexecUnloadError
        error = cls("'%s' exited %d: %s" % (" ".join(argv), res.rc,
                                            (res.stderr or res.stdout or "no output").strip()[-800:]),
                    rc=res.rc, argv=list(argv))
    elif toggled is False:
        warnings.append("kexec -S -p stayed %s across '%s': on Xen every load/unload toggles it, so this "
                        "kexec may not have reached the hypervisor" % (bit_after, " ".join(argv)))
    return record, error, warnings


# --------------------------------------------------------------------------- the whole converge

def converge(host: Host, params: Dict[str, Any], check_mode: bool,
             write_record: Any) -> Dict[str, Any]:
    """Bring the hypervisor's crash image to ``params['state']``; return the module result.

    ``params``: state, target, kernel, initrd, append, extra_append, capture_unit, min_free_mb,
    record_path.  ``write_record(path, text)`` persists the record (the module writes it
    atomically).  In check mode only read-only commands run (``--version``, ``-S -p``,
    ``--print-ckr-size``, ``xl info``) and the result predicts ``changed`` and ``argv``.
    """
    state = params.get("state") or "loaded"
    target = params.get("target") or "auto"
    record_path = params.get("record_path") or RECORD_PATH
    result: Dict[str, Any] = {"changed": False, "state": state, "target": None, "action": "none",
                              "reason": "", "argv": [], "append": None, "image": None, "fit": None,
                              "before": None, "after": None, "record_path": record_path,
                              "mismatch": False, "warnings": []}
    dom0, why = is_pv_dom0(host)
    if not dom0:
        if target == "hypervisor":
            raise NotHypervisorTargetError(
                "target=hypervisor, but %s; kexec -p here would load into the running Linux kernel, "
                "not into Xen." % why, reason=why)
        result.update(target="none", skipped=True,
                      reason="not a PV dom0 (%s): nothing to load into a hypervisor" % why)
        return result
    result["target"] = "hypervisor"
    facts = probe(host)
    result["kexec"] = facts
    if not facts["present"]:
        raise KexecMissingError("kexec was not found in %s." % ":".join(host.path))
    if facts["xen_support"] is False:
        raise KexecNoXenSupportError(
            "%s (kexec-tools %s) cannot load into Xen: %s." % (facts["path"], facts["version"],
                                                               facts["xen_support_source"]))
    if facts["xen_support"] is None:
        result["warnings"].append("could not tell whether %s has Xen support (%s)" % (
            facts["path"], facts["xen_support_source"]))
    kexec_path = facts["path"]
    before = load_state(host, status_bit(host), record_path)
    result["before"] = before
    wanted: Optional[Dict[str, Any]] = None
    if state in ("loaded", "reloaded"):
        # xl info (read-only): the Xen command line for the derived append, host RAM and CPUs
        # for the fit check.
        xl = host.which("xl")
        xl_info_text = None
        if xl:
            info = host.run([xl, "info"])
            xl_info_text = info.stdout if info.rc == 0 else None
        release = running_release(host)
        kernel = params.get("kernel") or default_kernel(host, release)
        initrd = params.get("initrd")
        if initrd is None:
            initrd, initrd_why = default_initrd(host, release)
            result["initrd_source"] = initrd_why
        if params.get("append"):
            append = params["append"]
            check_append(append)
            if params.get("extra_append"):
                append = " ".join([append] + _tokenize(params["extra_append"]))
                check_append(append)
        else:
            xen_line = parse_xen_commandline(xl_info_text)
            if xen_line is None:
                result["warnings"].append("could not read the Xen command line (xl info): the crash kernel "
                                          "gets console=tty0; pass extra_append='console=ttyS0,115200' "
                                          "for a serial console")
            unit = params.get("capture_unit")
            if unit is None:
                unit = default_capture_unit(host)
            append = derive_append(host.read("/proc/cmdline"), xen_line, unit, params.get("extra_append"))
        result["append"] = append
        size = ckr_size(host)
        if size is None:
            raise CkrSizeError("'%s --print-ckr-size' failed or printed no number." % kexec_path)
        if size == 0:
            raise NoCrashRegionError(
                "'%s --print-ckr-size' says 0 bytes: Xen reserved no crash region (no crashkernel= on the "
                "Xen command line, or Xen could not place it)." % kexec_path)
        image = image_facts(host, kernel, initrd or None, digest=False)
        result["image"] = image
        min_free = params.get("min_free_mb")
        host_mb, cpus = xl_info_numbers(xl_info_text)
        if min_free is None and host_mb is None:
            result["warnings"].append("could not read the host's RAM (xl info): the fit check leaves out "
                                      "makedumpfile's bitmap, which grows with host RAM")
        result["fit"] = fit(image, size, None if min_free is None else int(min_free), host_mb, cpus)
        add_digests(host, image)
        wanted = {"kernel": kernel, "kernel_sha256": image["kernel_sha256"], "initrd": initrd or None,
                  "initrd_sha256": image["initrd_sha256"], "append": append}
        argv = load_argv(kexec_path, kernel, initrd or None, append)
    else:
        argv = unload_argv(kexec_path)
    decision = plan(state, before, wanted)
    result.update(action=decision["action"], reason=decision["reason"], mismatch=decision["mismatch"])
    if decision.get("changed_inputs"):
        result["changed_inputs"] = decision["changed_inputs"]
    if decision["mismatch"]:
        result["warnings"].append(before.get("note") or "status bit disagrees with the record")
    if decision["action"] == "none":
        result["after"] = before
        return result
    result["changed"] = True
    result["argv"] = argv
    if check_mode:
        result["after"] = {"loaded": decision["action"] == "load", "source": "prediction",
                           "status_bit": None if before["status_bit"] is None else 1 - before["status_bit"],
                           "consistent": None, "record": None}
        return result
    record = base_record(host, before)
    record, error, warnings = execute(host, decision["action"], argv, record, wanted)
    result["warnings"].extend(warnings)
    try:
        write_record(record_path, record_json(record))
    except (IOError, OSError) as exc:
        raise RecordWriteError("Cannot write %s: %s (the hypervisor was %s)." % (
            record_path, exc, "changed" if error is None else "possibly changed"), path=record_path)
    if error is not None:
        raise error
    result["after"] = load_state(host, status_bit(host), record_path)
    return result
