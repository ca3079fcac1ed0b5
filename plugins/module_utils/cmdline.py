# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel / Xen command lines, and where the bootloader keeps the Xen one.

* :func:`tokenize` / :func:`options` split a command line the way Linux and Xen do.
* :func:`detect_bootloader` decides where the Xen command line lives on a host
  (XCP-ng ``xen-cmdline``, an EFI ``xen.cfg``, or GRUB's ``/etc/default/grub`` files).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.xenkdump.fleet.plugins.module_utils import errors
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import Host

XEN_CMDLINE_TOOL = "/opt/xensource/libexec/xen-cmdline"
GRUB_DEFAULT = "/etc/default/grub"
GRUB_DEFAULT_D = "/etc/default/grub.d"
EFI_DIR = "/boot/efi/EFI"
EFI_FIRMWARE = "/sys/firmware/efi"

_WS = " \t\n\r\v\f"


# ---------------------------------------------------------------------------------------------
# Command line tokens
# ---------------------------------------------------------------------------------------------

def tokenize(line: str) -> List[str]:
    """Split a kernel/Xen command line into tokens, as Linux's ``next_arg()`` does.

    Tokens are separated by whitespace; a double quote toggles "inside quotes", where
    whitespace does not split (``opt="a b"`` and ``"opt=a b"`` are one token each).  The
    token text is returned verbatim (quotes kept); :func:`options` strips them.
    """
    tokens: List[str] = []
    current: List[str] = []
    in_quote = False
    started = False
    for char in line or "":
        if char == '"':
            in_quote = not in_quote
            current.append(char)
            started = True
        elif char in _WS and not in_quote:
            if started:
                tokens.append("".join(current))
                current = []
                started = False
        else:
            current.append(char)
            started = True
    if started:
        tokens.append("".join(current))
    return tokens


def split_option(token: str) -> Tuple[str, Optional[str]]:
    """``key=value`` → (key, value), ``flag`` → (flag, None); quotes stripped like the kernel."""
    text = token
    if text.startswith('"'):
        text = text[1:]
        if text.endswith('"'):
            text = text[:-1]
    if "=" not in text:
        return text, None
    key, value = text.split("=", 1)
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        value = value[1:-1]
    elif value.startswith('"'):
        value = value[1:]
    return key, value


def options(tokens: Sequence[str]) -> Dict[str, Optional[str]]:
    """key → value (None for a flag such as ``noreboot``); the last occurrence wins."""
    result: Dict[str, Optional[str]] = {}
    for token in tokens:
        key, value = split_option(token)
        if key in result:
            del result[key]  # keep dict order = order of the winning occurrence
        result[key] = value
    return result


# ---------------------------------------------------------------------------------------------
# Bootloader detection
# ---------------------------------------------------------------------------------------------

def grub_files(host: Host, default: str = GRUB_DEFAULT) -> List[str]:
    """``/etc/default/grub`` then ``/etc/default/grub.d/*.cfg`` in glob (sorted) order."""
    files = [default]
    directory = default + ".d"
    for name in host.listdir(directory):
        if name.endswith(".cfg") and not name.startswith("."):
            files.append(directory.rstrip("/") + "/" + name)
    return files


def efi_xen_cfgs(host: Host) -> List[str]:
    """Every ``/boot/efi/EFI/*/xen.cfg`` present (sorted)."""
    found: List[str] = []
    for vendor in host.listdir(EFI_DIR):
        candidate = EFI_DIR + "/" + vendor + "/xen.cfg"
        if os.path.isfile(host.p(candidate)):
            found.append(candidate)
    return found


def grub_regenerate(host: Host, distro_family: str) -> List[str]:
    """argv that turns /etc/default/grub into grub.cfg on this host ([] when unknown)."""
    family = (distro_family or "").lower()
    if family in ("debian", "ubuntu") and host.which("update-grub"):
        return ["update-grub"]
    mkconfig = host.which("grub2-mkconfig") and "grub2-mkconfig" or (
        host.which("grub-mkconfig") and "grub-mkconfig")
    if family in ("suse", "redhat") or (mkconfig == "grub2-mkconfig"):
        candidates = ["/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"]
    else:
        candidates = ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"]
    cfg = next((c for c in candidates if host.exists(c)), candidates[0])
    if not mkconfig:
        if family in ("suse", "redhat"):
            mkconfig = "grub2-mkconfig"
        elif host.which("update-grub"):
            return ["update-grub"]
        else:
            return []
    return [mkconfig, "-o", cfg]


def detect_bootloader(host: Host, distro_family: str) -> Dict[str, Any]:
    """Where does this host keep the Xen command line?

    Returns ``{"kind": "grub"|"xen_cfg"|"xen_cmdline"|"unknown", "path": str|None,
    "regenerate": [argv] ([] when nothing), "files": [all files considered], "reason": str}``.
    Order: XCP-ng's ``xen-cmdline`` tool, then an EFI ``xen.cfg`` when the host booted via
    EFI, then GRUB's default files.
    """
    if host.exists(XEN_CMDLINE_TOOL):
        return {"kind": "xen_cmdline", "path": XEN_CMDLINE_TOOL, "regenerate": [],
                "files": [XEN_CMDLINE_TOOL],
                "reason": "%s exists (XCP-ng / Citrix Hypervisor)" % XEN_CMDLINE_TOOL}
    cfgs = efi_xen_cfgs(host)
    efi_booted = host.exists(EFI_FIRMWARE)
    if cfgs and efi_booted:
        preferred = EFI_DIR + "/xen/xen.cfg"
        path = preferred if preferred in cfgs else cfgs[0]
        return {"kind": "xen_cfg", "path": path, "regenerate": [], "files": cfgs,
                "reason": "booted via EFI (%s exists) and %s exists" % (EFI_FIRMWARE, path)}
    if host.exists(GRUB_DEFAULT):
        files = grub_files(host)
        regen = grub_regenerate(host, distro_family)
        reason = "%s exists" % GRUB_DEFAULT
        if cfgs:
            reason += "; %s ignored: host did not boot via EFI (%s absent)" % (
                ", ".join(cfgs), EFI_FIRMWARE)
        return {"kind": "grub", "path": GRUB_DEFAULT, "regenerate": regen, "files": files,
                "reason": reason}
    considered = [XEN_CMDLINE_TOOL, EFI_DIR + "/*/xen.cfg", GRUB_DEFAULT]
    if cfgs:
        reason = "%s found but the host did not boot via EFI (%s absent), and no %s" % (
            ", ".join(cfgs), EFI_FIRMWARE, GRUB_DEFAULT)
    else:
        reason = "none of %s exists" % ", ".join(considered)
    return {"kind": "unknown", "path": None, "regenerate": [], "files": cfgs or [],
            "reason": reason}
