# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kernel_image_info: bzImage setup headers and ELF vmlinux images."""

from __future__ import annotations

import glob
import os
import struct

import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

import coredump_builder as cb
from ansible_collections.xenkdump.fleet.plugins.module_utils import elfcore
from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_bzimage_like_debian_6_1(tmp_path):
    # Header values measured on Debian's vmlinuz-6.1.0-56-cloud-amd64.
    path = _write(tmp_path, "vmlinuz", cb.bzimage(version=0x020F, setup_sects=39, init_size=0x3378000,
                                                  xloadflags=0x7F, kernel_alignment=0x200000))
    info = elfcore.kernel_image_info(path)
    assert info["format"] == "bzImage"
    assert info["boot_protocol"] == "2.15"
    assert info["init_size"] == 0x3378000 == info["load_size"]
    assert info["relocatable"] is True
    assert info["x86_64"] is True
    assert info["machine"] == "x86_64"
    assert info["kernel_alignment"] == 0x200000
    assert info["size"] == os.path.getsize(path)
    assert info["setup_sects"] == 39


def test_bzimage_32bit_not_relocatable(tmp_path):
    path = _write(tmp_path, "vmlinuz", cb.bzimage(xloadflags=0, relocatable=0, version=0x020A))
    info = elfcore.kernel_image_info(path)
    assert info["x86_64"] is False and info["relocatable"] is False
    assert info["boot_protocol"] == "2.10" and info["machine"] == "x86"


def test_setup_sects_zero_means_four(tmp_path):
    path = _write(tmp_path, "vmlinuz", cb.bzimage(setup_sects=0, body=8192))
    img = bytearray(open(path, "rb").read())
    img[0x1F1] = 0
    open(path, "wb").write(bytes(img))
    assert elfcore.kernel_image_info(path)["setup_sects"] == 4


@pytest.mark.parametrize("version,text", [(0x0209, "2.09"), (0x0200, "2.00"), (0x0105, "1.05")])
def test_old_boot_protocol(tmp_path, version, text):
    path = _write(tmp_path, "vmlinuz", cb.bzimage(version=version))
    with pytest.raises(elfcore.BootProtocolTooOld) as exc:
        elfcore.kernel_image_info(path)
    assert exc.value.code == "XK503" and text in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(elfcore.KernelImageMissing) as exc:
        elfcore.kernel_image_info(str(tmp_path / "nope"))
    assert "No such file" in str(exc.value) and exc.value.code == "XK500"


def test_directory(tmp_path):
    with pytest.raises(elfcore.KernelImageMissing):
        elfcore.kernel_image_info(str(tmp_path))


def test_empty_and_text_files(tmp_path):
    with pytest.raises(elfcore.NotAKernelImage, match="empty"):
        elfcore.kernel_image_info(_write(tmp_path, "empty", b""))
    with pytest.raises(elfcore.NotAKernelImage, match="HdrS"):
        elfcore.kernel_image_info(_write(tmp_path, "config", b"#\n# Linux config\nCONFIG_X=y\n" * 100))
    with pytest.raises(elfcore.NotAKernelImage):
        elfcore.kernel_image_info(_write(tmp_path, "tiny", b"hi"))


def test_gzip_is_not_a_kernel(tmp_path):
    # xen.gz / an initrd: gzip magic, no setup header
    with pytest.raises(elfcore.NotAKernelImage) as exc:
        elfcore.kernel_image_info(_write(tmp_path, "xen.gz", b"\x1f\x8b\x08\x00" + b"\0" * 4096))
    assert "0x202" in str(exc.value)


def test_truncated_bzimage(tmp_path):
    full = cb.bzimage(payload_length=100000, body=100000 + 0x100 + 512)
    for cut in (0x204, 0x240, 0x262, 28 * 512, 28 * 512 + 5000):
        with pytest.raises(elfcore.KernelImageTruncated) as exc:
            elfcore.kernel_image_info(_write(tmp_path, "cut%d" % cut, full[:cut]))
        assert exc.value.code == "XK501"
        assert str(cut) in str(exc.value)


def test_elf_vmlinux(tmp_path):
    path = _write(tmp_path, "vmlinux", cb.elf_kernel(loads=((0x2000, 0x3000), (0x1000, 0x1800))))
    info = elfcore.kernel_image_info(path)
    assert info["format"] == "elf" and info["machine"] == "x86_64" and info["x86_64"] is True
    assert info["load_size"] == 0x4800 == info["init_size"]
    assert info["boot_protocol"] is None and info["relocatable"] is False
    assert info["kernel_alignment"] == 0x200000


def test_elf_other_machine_and_types(tmp_path):
    info = elfcore.kernel_image_info(_write(tmp_path, "arm", cb.elf_kernel(machine=183)))
    assert info["machine"] == "aarch64" and info["x86_64"] is False
    with pytest.raises(elfcore.NotAKernelImage, match="ET_CORE"):
        elfcore.kernel_image_info(_write(tmp_path, "core", cb.elf_kernel(e_type=cb.ET_CORE)))
    with pytest.raises(elfcore.NotAKernelImage, match="PT_INTERP"):
        elfcore.kernel_image_info(_write(tmp_path, "prog", cb.elf_kernel(interp=True)))
    with pytest.raises(elfcore.NotAKernelImage, match="no PT_LOAD"):
        elfcore.kernel_image_info(_write(tmp_path, "noload", cb.elf_kernel(loads=())))


def test_elf_truncated(tmp_path):
    img = cb.elf_kernel(loads=((0x2000, 0x3000),))
    with pytest.raises(elfcore.KernelImageTruncated, match="PT_LOAD segment ends"):
        elfcore.kernel_image_info(_write(tmp_path, "cut", img[:0x1800]))
    with pytest.raises(elfcore.KernelImageTruncated):
        elfcore.kernel_image_info(_write(tmp_path, "cut2", img[:100]))


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_kernel_images(tmp_path, data):
    """Truncations, bit flips and random bytes: a dict or a XenKdumpError, never anything else."""
    base = data.draw(st.sampled_from([cb.bzimage(), cb.elf_kernel()]))
    how = data.draw(st.sampled_from(["cut", "flip", "random"]))
    if how == "cut":
        img = base[:data.draw(st.integers(0, len(base)))]
    elif how == "flip":
        img = cb.flip(base, data.draw(st.integers(0, min(len(base), 0x300) * 8 - 1)))
    else:
        img = data.draw(st.binary(min_size=0, max_size=2048))
    path = _write(tmp_path, "img", img)
    try:
        info = elfcore.kernel_image_info(path)
    except XenKdumpError as exc:
        assert exc.code.startswith("XK5") and exc.detail
        return
    assert info["format"] in ("bzImage", "elf") and info["size"] == len(img)


REAL = sorted(glob.glob("/boot/vmlinuz-*")) + [p for p in [os.environ.get("XENKDUMP_REAL_KERNEL")] if p]


@pytest.mark.skipif(not REAL, reason="no real kernel image on this machine (/boot/vmlinuz-* or $XENKDUMP_REAL_KERNEL)")
def test_real_kernel():
    info = elfcore.kernel_image_info(REAL[-1])
    with open(REAL[-1], "rb") as handle:
        head = handle.read(0x300)
    assert info["format"] == "bzImage"
    assert info["init_size"] == struct.unpack_from("<I", head, 0x260)[0] > info["size"] // 2
    assert info["x86_64"] and info["relocatable"]
