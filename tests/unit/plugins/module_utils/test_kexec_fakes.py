# -*- coding: utf-8 -*-
"""Test doubles for kexec.py / xen_crash_kernel tests.

``FakeXen`` is a TEST DOUBLE of the hypervisor's kexec interface as kexec-tools shows it on a
PV dom0 (a hypervisor cannot run in a unit test; the lab proves the real thing).  It models
exactly what xen/common/kexec.c does and what ``tests/fixtures/xen-4.17-dom0/
kexec-status-toggle.txt`` measured: ``kexec -S -p`` returns a slot-position bit that toggles on
every load AND every unload, 0 after boot.  ``test_fake_matches_measured_toggle`` replays the
measured sequence against it.
"""

from __future__ import annotations

import os
import struct
from typing import List, Optional, Sequence

from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import CommandResult, Host

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(HERE))))
XEN417 = os.path.join(REPO, "tests", "fixtures", "xen-4.17-dom0")
RELEASE = "6.1.0-56-amd64"
BOOT_ID = "6a1f3c2e-0000-4000-8000-000000000001"
KEXEC = "/usr/sbin/kexec"
XL = "/usr/sbin/xl"
MIB = 1024 * 1024


def fixture(name: str) -> str:
    with open(os.path.join(XEN417, name), encoding="utf-8") as handle:
        return handle.read()


def make_elf(needed: Sequence[str] = (), extra: bytes = b"") -> bytes:
    """A minimal little-endian ELF64 executable with a PT_DYNAMIC holding DT_NEEDED entries."""
    strtab = b"\x00"
    offsets = []
    for name in needed:
        offsets.append(len(strtab))
        strtab += name.encode() + b"\x00"
    ehdr_size, phdr_size = 64, 56
    phoff = ehdr_size
    data_off = phoff + 2 * phdr_size
    strtab_off = data_off
    dyn_off = strtab_off + len(strtab)
    dyn = b"".join(struct.pack("<qQ", 1, off) for off in offsets)
    dyn += struct.pack("<qQ", 5, 0x400000 + strtab_off) + struct.pack("<qQ", 0, 0)
    total = dyn_off + len(dyn)
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\x00" * 8
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, phoff, 0, 0, ehdr_size, phdr_size, 2, 64, 0, 0)
    pt_load = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, total, total, 0x1000)
    pt_dyn = struct.pack("<IIQQQQQQ", 2, 6, dyn_off, 0x400000 + dyn_off, 0x400000 + dyn_off, len(dyn), len(dyn), 8)
    return ehdr + pt_load + pt_dyn + strtab + dyn + extra


def make_bzimage(init_size: int = 40 * MIB, relocatable: bool = True, x86_64: bool = True,
                 protocol: int = 0x020F, payload: int = 4096, truncate_to: Optional[int] = None) -> bytes:
    """A synthetic bzImage: boot sector + setup header fields elfcore.kernel_image_info reads."""
    setup_sects = 4
    setup_bytes = (setup_sects + 1) * 512
    head = bytearray(setup_bytes)
    head[0x1F1] = setup_sects
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", head, 0x206, protocol)
    head[0x211] = 1  # LOADED_HIGH
    struct.pack_into("<I", head, 0x230, 0x200000)
    head[0x234] = 1 if relocatable else 0
    struct.pack_into("<H", head, 0x236, 0x1 if x86_64 else 0)
    struct.pack_into("<I", head, 0x248, 0)
    struct.pack_into("<I", head, 0x24C, payload)
    struct.pack_into("<I", head, 0x260, init_size)
    image = bytes(head) + b"\x1f\x8b" + b"\x00" * (payload - 2)
    if truncate_to is not None:
        image = image[:truncate_to]
    return image


class FakeXen(object):
    """The hypervisor's crash-image slot as kexec-tools (with libxenctrl) shows it on a PV dom0."""

    def __init__(self, root: str, ckr: int = 256 * MIB, xen_support: bool = True,
                 xl_info: Optional[str] = None) -> None:
        self.root = root
        self.ckr = ckr
        self.xen_support = xen_support
        self.bit = 0            # fresh boot
        self.loaded: Optional[List[str]] = None
        self.calls: List[List[str]] = []
        self.xl_info = fixture("xl-info.txt") if xl_info is None else xl_info

    # hypervisor operations (each toggles the slot-position bit, like kexec_swap_images())
    def hyper_load(self, argv: Sequence[str]) -> None:
        self.bit ^= 1
        self.loaded = list(argv)

    def hyper_unload(self) -> None:
        self.bit ^= 1
        self.loaded = None

    def external_load(self) -> None:
        """Another tool (kdump-tools) loads behind our back."""
        self.hyper_load(["kdump-config", "load"])

    def mutating_calls(self) -> List[List[str]]:
        return [c for c in self.calls if c[0].endswith("kexec") and "-p" in c and "-S" not in c]

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0].endswith("xl"):
            if argv[1:] == ["info"]:
                return CommandResult(0, self.xl_info, "")
            return CommandResult(1, "", "unknown xl command")
        if not argv[0].endswith("kexec"):
            return CommandResult(127, "", "not found")
        args = argv[1:]
        if args == ["--version"]:
            return CommandResult(0, "kexec-tools 2.0.25\n", "")
        if args == ["--print-ckr-size"]:
            return CommandResult(0, "%d\n" % (self.ckr if self.xen_support else 0), "")
        if args == ["-S", "-p"]:
            if not self.xen_support:
                return CommandResult(255, "", "")
            return CommandResult(self.bit, "", "")
        if args == ["-p", "-u"]:
            if not self.xen_support:
                return CommandResult(255, "", "kexec_unload failed\n")
            self.hyper_unload()
            return CommandResult(0, "", "")
        if args and args[0] == "-p":
            kernel = args[1]
            if not os.path.exists(os.path.join(self.root, kernel.lstrip("/"))):
                return CommandResult(255, "", "Cannot open `%s': No such file or directory\n" % kernel)
            if not self.xen_support:
                return CommandResult(255, "", "kexec_load failed: Operation not permitted\n")
            self.hyper_load(argv)
            return CommandResult(0, "", "")
        return CommandResult(1, "", "unexpected argv %r" % argv)


def write(root: str, path: str, data, mode: int = 0o644) -> str:
    real = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(real), exist_ok=True)
    with open(real, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    os.chmod(real, mode)
    return real


def make_dom0(root: str, boot_id: str = BOOT_ID, kexec_binary: Optional[bytes] = None,
              initrd_size: int = 30 * MIB, kernel: Optional[bytes] = None, kdump_initrd: bool = False,
              capture_unit: bool = True) -> str:
    """A sysroot that looks like the measured Debian 12 dom0."""
    write(root, "/proc/xen/capabilities", fixture("proc-xen-capabilities.txt"))
    write(root, "/sys/hypervisor/type", fixture("sys-hypervisor-type.txt"))
    write(root, "/proc/sys/kernel/random/boot_id", boot_id + "\n")
    write(root, "/proc/sys/kernel/osrelease", RELEASE + "\n")
    write(root, "/proc/cmdline", fixture("dom0-proc-cmdline.txt"))
    write(root, KEXEC, kexec_binary if kexec_binary is not None else make_elf(["libxenctrl.so.4.17", "libc.so.6"]),
          0o755)
    write(root, XL, b"#!/bin/sh\n", 0o755)
    write(root, "/boot/vmlinuz-" + RELEASE, kernel if kernel is not None else make_bzimage())
    initrd = "/var/lib/kdump/initrd.img-" + RELEASE if kdump_initrd else "/boot/initrd.img-" + RELEASE
    real = write(root, initrd, b"\x30\x37\x30\x37\x30\x31")
    os.truncate(real, initrd_size)
    if capture_unit:
        write(root, "/lib/systemd/system/kdump-tools-dump.service", "[Unit]\n")
    os.makedirs(os.path.join(root, "run"), exist_ok=True)
    return root


def host_for(root: str, fake: FakeXen) -> Host:
    return Host(run=fake, root=root, path=("/usr/sbin", "/usr/bin", "/sbin", "/bin"))


def file_writer(root: str):
    """write_record callback for converge(): writes under the sysroot."""

    def writer(path: str, text: str) -> None:
        real = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(real), exist_ok=True)
        tmp = real + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, real)

    return writer
