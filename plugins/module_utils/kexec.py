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
from typing import Any, Dict, List, Optional, Sequence, Tuple

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
              "use a smaller initrd (kdump-tools' MODULES=dep initrd), or lower min_free_mb.")


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
        state["loaded"] = bool(record.get("loaded"))
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
