# -*- coding: utf-8 -*-
"""kexec.py: probe, status bit, record parity, append derivation, fit, and the converge flow."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_kexec_fakes import (BOOT_ID, KEXEC, MIB, RELEASE, FakeXen, file_writer, fixture,  # noqa: E402
                              host_for, make_bzimage, make_dom0, make_elf, write)

from ansible_collections.xenkdump.fleet.plugins.module_utils import kexec  # noqa: E402
from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel as ck  # noqa: E402
from ansible_collections.xenkdump.fleet.plugins.module_utils import elfcore  # noqa: E402
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import CommandResult, Host  # noqa: E402

MEASURED_APPEND = ("root=/dev/vda ro console=ttyS0,115200 irqpoll nr_cpus=1 reset_devices "
                   "systemd.unit=kdump-tools-dump.service")
KERNEL = "/boot/vmlinuz-" + RELEASE
INITRD = "/boot/initrd.img-" + RELEASE


@pytest.fixture
def dom0(tmp_path):
    root = make_dom0(str(tmp_path))
    fake = FakeXen(root)
    return root, fake, host_for(root, fake)


def params(**kw):
    base = {"state": "loaded", "target": "auto", "kernel": None, "initrd": None, "append": None,
            "extra_append": None, "capture_unit": None, "min_free_mb": None, "record_path": None}
    base.update(kw)
    return base


def run(root, host, check_mode=False, **kw):
    return kexec.converge(host, params(**kw), check_mode, file_writer(root))


def record_of(root):
    with open(os.path.join(root, kexec.RECORD_PATH.lstrip("/")), encoding="utf-8") as handle:
        return json.load(handle)


# --------------------------------------------------------------------------- the test double itself

def test_fake_matches_measured_toggle(tmp_path):
    """Replay kexec-status-toggle.txt (real Xen 4.17) against FakeXen: same bits."""
    root = make_dom0(str(tmp_path))
    fake = FakeXen(root)
    load = [KEXEC, "-p", KERNEL, "--initrd=" + INITRD, "--append=x"]
    observed = []
    for line in fixture("kexec-status-toggle.txt").splitlines():
        line = line.strip()
        if line.startswith("unload rc=0"):
            fake([KEXEC, "-p", "-u"])
        elif line.startswith("load rc=0"):
            fake(load)
        match = re.match(r"kexec -S -p rc=(\d)", line)
        if match:
            assert fake([KEXEC, "-S", "-p"]).rc == int(match.group(1)), line
            observed.append(int(match.group(1)))
    assert observed == [0, 1, 0, 1, 0, 1]


# --------------------------------------------------------------------------- probe

def test_elf_dt_needed_matches_readelf():
    readelf = shutil.which("readelf")
    if not readelf:
        pytest.skip("readelf not installed")
    for binary in (sys.executable, shutil.which("ls") or "/bin/ls"):
        real = os.path.realpath(binary)
        out = subprocess.run([readelf, "-d", real], capture_output=True, text=True, check=True).stdout
        expected = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
        with open(real, "rb") as handle:
            assert kexec._elf_dt_needed(handle.read()) == expected, real


def test_elf_dt_needed_synthetic_and_garbage():
    assert kexec._elf_dt_needed(make_elf(["libxenctrl.so.4.17", "libc.so.6"])) == ["libxenctrl.so.4.17", "libc.so.6"]
    assert kexec._elf_dt_needed(make_elf([])) == []
    assert kexec._elf_dt_needed(b"#!/bin/sh\nexec kexec\n") is None
    assert kexec._elf_dt_needed(make_elf(["libc.so.6"])[:70]) is None  # truncated program headers


@given(st.binary(max_size=400))
def test_elf_dt_needed_never_crashes(data):
    result = kexec._elf_dt_needed(b"\x7fELF" + data)
    assert result is None or isinstance(result, list)


def test_probe_xen_build_by_dt_needed(dom0):
    _root, _fake, host = dom0
    facts = kexec.probe(host)
    assert facts == {"present": True, "path": KEXEC, "version": "2.0.25", "xen_support": True,
                     "xen_support_source": "ELF DT_NEEDED libxenctrl.so.4.17", "package": "kexec-tools"}


def test_probe_dlopen_build_by_string(tmp_path):
    root = make_dom0(str(tmp_path), kexec_binary=make_elf(["libc.so.6"], extra=b"\x00libxenctrl.so\x00"))
    facts = kexec.probe(host_for(root, FakeXen(root)))
    assert facts["xen_support"] is True
    assert "libxenctrl.so" in facts["xen_support_source"]


def test_probe_build_without_xen(tmp_path):
    root = make_dom0(str(tmp_path), kexec_binary=make_elf(["libz.so.1", "libc.so.6"]))
    facts = kexec.probe(host_for(root, FakeXen(root, xen_support=False)))
    assert facts["xen_support"] is False
    assert "libz.so.1, libc.so.6" in facts["xen_support_source"]


def test_probe_wrapper_script_decided_by_status_on_dom0(tmp_path):
    root = make_dom0(str(tmp_path), kexec_binary=b"#!/bin/sh\nexec /usr/lib/kexec \"$@\"\n")
    assert kexec.probe(host_for(root, FakeXen(root)))["xen_support"] is True
    no = kexec.probe(host_for(root, FakeXen(root, xen_support=False)))
    assert no["xen_support"] is False and "255" in no["xen_support_source"]


def test_probe_missing(tmp_path):
    host = Host(run=lambda argv: CommandResult(127, "", ""), root=str(tmp_path), path=("/usr/sbin",))
    assert kexec.probe(host) == {"present": False, "path": None, "version": None, "xen_support": None,
                                 "xen_support_source": "kexec not found", "package": "kexec-tools"}
    assert kexec.ckr_size(host) is None
    assert kexec.status_bit(host) is None


def test_ckr_size_and_status_bit(dom0):
    _root, fake, host = dom0
    assert kexec.ckr_size(host) == 256 * MIB
    assert kexec.status_bit(host) == 0
    fake.external_load()
    assert kexec.status_bit(host) == 1
    fake.ckr = 0
    assert kexec.ckr_size(host) == 0


def test_status_bit_other_rc_is_none(tmp_path):
    root = make_dom0(str(tmp_path))
    host = host_for(root, FakeXen(root, xen_support=False))
    assert kexec.status_bit(host) is None


@pytest.mark.parametrize("out,rc,expected", [("268435456\n", 0, 268435456), ("0\n", 0, 0),
                                             ("", 0, None), ("garbage\n", 0, None), ("1\n", 1, None)])
def test_ckr_size_parsing(tmp_path, out, rc, expected):
    root = make_dom0(str(tmp_path))
    host = host_for(root, lambda argv: CommandResult(rc, out, ""))
    assert kexec.ckr_size(host) == expected


# --------------------------------------------------------------------------- load_state / record

def test_load_state_without_record(dom0):
    _root, _fake, host = dom0
    state = kexec.load_state(host, 0)
    assert state["loaded"] is None and state["source"] == "status-bit" and state["consistent"] is None
    assert kexec.load_state(host, None)["source"] == "none"


def test_load_state_record_parity(dom0):
    root, _fake, host = dom0
    write(root, kexec.RECORD_PATH, json.dumps({"boot_id": BOOT_ID, "loaded": True, "swaps": 3,
                                               "parity_offset": 0}))
    good = kexec.load_state(host, 1)
    assert (good["loaded"], good["source"], good["consistent"], good["expected_bit"]) == (True, "record", True, 1)
    bad = kexec.load_state(host, 0)
    assert bad["consistent"] is False and "another tool" in bad["note"]
    assert kexec.load_state(host, None)["consistent"] is None


def test_load_state_stale_record_from_other_boot(dom0):
    root, _fake, host = dom0
    write(root, kexec.RECORD_PATH, json.dumps({"boot_id": "another-boot", "loaded": True, "swaps": 1}))
    state = kexec.load_state(host, 1)
    assert state["record"] is None and state["loaded"] is None and "another boot" in state["note"]


def test_load_state_corrupt_record(dom0):
    root, _fake, host = dom0
    write(root, kexec.RECORD_PATH, "{not json")
    state = kexec.load_state(host, 0)
    assert state["record"] is None and "not JSON" in state["note"]


# --------------------------------------------------------------------------- derive_append

XEN_LINE = fixture("xl-info.txt")


def test_derive_append_measured_host():
    """The derived line equals the one that produced a valid dump on the real lab host."""
    xen = kexec.parse_xen_commandline(XEN_LINE)
    assert xen.startswith("console=com1 com1=115200,8n1")
    assert kexec.derive_append(fixture("dom0-proc-cmdline.txt"), xen, "kdump-tools-dump.service", "") == \
        MEASURED_APPEND


@pytest.mark.parametrize("xen,expected", [
    ("console=com1 com1=115200,8n1", ["console=ttyS0,115200"]),
    ("console=com2 com2=57600,8n1", ["console=ttyS1,57600"]),
    ("console=com1,vga com1=115200", ["console=tty0", "console=ttyS0,115200"]),
    ("console=vga", ["console=tty0"]),
    ("console=vga com1=115200,8n1", ["console=tty0"]),
    ("com1=115200,8n1", ["console=ttyS0,115200"]),
    ("com1=9600,7e1 console=com1", ["console=ttyS0,9600e7"]),
    ("console=com1 com1=auto", ["console=ttyS0"]),
    ("console=com1 com1=115200/1843200,8n1,0x3f8,4", ["console=ttyS0,115200"]),
    ("console=com1 com1=baud=38400,data-bits=8,parity=n", ["console=ttyS0,38400"]),
    ("console=com1", ["console=ttyS0"]),
    ("", ["console=tty0"]),
    (None, ["console=tty0"]),
    ("dom0_mem=1024M console=none", ["console=tty0"]),
    ("console=com1 com1=115200 console=vga", ["console=tty0"]),  # last console= wins, as in Xen
])
def test_derive_consoles(xen, expected):
    assert kexec.derive_consoles(xen) == expected


@pytest.mark.parametrize("dom0_line,kept", [
    ("root=/dev/vda ro console=hvc0 earlyprintk=xen", "root=/dev/vda ro"),
    ("BOOT_IMAGE=/vmlinuz root=UUID=1234-abcd rw quiet splash console=hvc0", "root=UUID=1234-abcd rw"),
    ('root=/dev/mapper/vg-root ro rd.lvm.lv=vg/root rootflags="subvol=@ x" crashkernel=256M',
     'root=/dev/mapper/vg-root ro rd.lvm.lv=vg/root rootflags="subvol=@ x"'),
    ("root=ZFS=rpool/ROOT net.ifnames=0 xencons=hvc resume=/dev/sda2", "root=ZFS=rpool/ROOT net.ifnames=0"),
    ("", ""),
])
def test_derive_append_keeps_only_what_the_crash_kernel_needs(dom0_line, kept):
    got = kexec.derive_append(dom0_line, "console=com1 com1=115200,8n1", None, None)
    assert got == (kept + " " if kept else "") + "console=ttyS0,115200 irqpoll nr_cpus=1 reset_devices"


def test_derive_append_never_copies_dom0_console():
    got = kexec.derive_append("root=/dev/vda console=hvc0 console=tty0 earlyprintk=xen,keep", "console=vga",
                              None, None)
    assert "hvc" not in got and "earlyprintk" not in got
    assert got.count("console=") == 1


def test_derive_append_capture_unit_forms():
    assert kexec.derive_append("", "", "systemd.unit=kdump-tools-dump.service", "").endswith(
        "systemd.unit=kdump-tools-dump.service")
    assert kexec.derive_append("", "", "kdump-capture.service", "").endswith("systemd.unit=kdump-capture.service")
    assert "systemd.unit" not in kexec.derive_append("", "", "", "")


def test_derive_append_extra_overrides_keys():
    got = kexec.derive_append("root=/dev/vda ro", "console=com1 com1=115200", "kdump-tools-dump.service",
                              "nr_cpus=2 console=ttyS1,9600 rw nousb")
    assert got == ("root=/dev/vda irqpoll reset_devices systemd.unit=kdump-tools-dump.service "
                   "nr_cpus=2 console=ttyS1,9600 rw nousb")


@pytest.mark.parametrize("bad", ["console=hvc0", "console=hvc0,115200", "earlyprintk=xen", "xencons=tty",
                                 "quiet console=HVC0"])
def test_derive_append_refuses_unsafe_extra(bad):
    with pytest.raises(kexec.UnsafeAppendError) as info:
        kexec.derive_append("root=/dev/vda", "", None, bad)
    assert info.value.code == "XK409"
    assert "[XK409]" in str(info.value)


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789=,./_-", min_size=1, max_size=20)


@given(st.lists(_token, max_size=12), st.lists(_token, max_size=8))
def test_derive_append_properties(dom0_tokens, xen_tokens):
    dom0_line = " ".join(dom0_tokens + ["console=hvc0", "earlyprintk=xen"])
    got = kexec.derive_append(dom0_line, " ".join(xen_tokens), "kdump-tools-dump.service", None)
    tokens = got.split()
    assert "console=hvc0" not in tokens and "earlyprintk=xen" not in tokens
    for needed in ("irqpoll", "nr_cpus=1", "reset_devices", "systemd.unit=kdump-tools-dump.service"):
        assert needed in tokens
    assert len(tokens) == len(set(tokens))
    assert any(t.startswith("console=") for t in tokens)
    kexec.check_append(got)  # the derived line is always safe


# --------------------------------------------------------------------------- fit

def _image(init_size, initrd_size):
    return {"kernel": {"format": "bzImage", "init_size": init_size}, "initrd_size": initrd_size}


def test_fit_numbers():
    got = kexec.fit(_image(40 * MIB, 30 * MIB), 256 * MIB, 64)
    assert got == {"used_mb": 71.0, "available_mb": 256.0, "free_mb": 185.0, "min_free_mb": 64,
                   "required_mb": 135.0, "rule": "min_free_mb",
                   "kernel_mb": 40.0, "initrd_mb": 30.0, "purgatory_mb": 1.0, "fits": True}


def test_fit_too_big_names_numbers():
    with pytest.raises(kexec.ImageTooBigError) as info:
        kexec.fit(_image(40 * MIB, 150 * MIB), 256 * MIB, 128)
    msg = str(info.value)
    assert info.value.code == "XK405"
    for number in ("191.0 MiB", "40.0 MiB", "150.0 MiB", "1.0 MiB", "128 MiB", "256.0 MiB", "65.0 MiB"):
        assert number in msg, (number, msg)


def test_fit_boundary():
    kexec.fit(_image(63 * MIB, 0), 128 * MIB, 64)  # exactly 64 MiB left
    with pytest.raises(kexec.ImageTooBigError):
        kexec.fit(_image(63 * MIB + 1, 0), 128 * MIB, 64)


# The lab's crash kernel (Debian 12 6.1.0-56-amd64) and kdump-tools' crash initrd: 128 MiB gave a
# valid dump on every measured host shape, 112 MiB did not (docs/performance.md).
LAB_INIT_SIZE = 0x3f98000
LAB_KDUMP_INITRD = 7216519


@pytest.mark.parametrize("host_mb, cpus", [(2048, 1), (3071, 2), (4096, 1), (8192, 2)])
def test_fit_default_is_the_sizing_model_calibrated_on_the_lab(host_mb, cpus):
    image = _image(LAB_INIT_SIZE, LAB_KDUMP_INITRD)
    got = kexec.fit(image, 128 * MIB, host_memory_mb=host_mb, nr_cpus=cpus)
    assert got["fits"] is True and got["rule"] == "model"
    need = ck.size_region(host_mb, cpus, "local", kernel_init_size=LAB_INIT_SIZE,
                          initrd_size=LAB_KDUMP_INITRD).required_mb
    assert got["required_mb"] == need <= 128
    assert abs(got["min_free_mb"] - (need - got["used_mb"])) < 0.2
    with pytest.raises(kexec.ImageTooBigError) as info:
        kexec.fit(image, 112 * MIB, host_memory_mb=host_mb, nr_cpus=cpus)
    msg = str(info.value)
    assert "needs %d MiB" % need in msg and "112.0 MiB" in msg and "sizing model" in msg and "[XK405]" in msg


def test_fit_model_grows_with_host_ram():
    image = _image(LAB_INIT_SIZE, LAB_KDUMP_INITRD)
    small = kexec.fit(image, 1024 * MIB, host_memory_mb=2048, nr_cpus=2)["required_mb"]
    big = kexec.fit(image, 1024 * MIB, host_memory_mb=4 << 20, nr_cpus=256)["required_mb"]
    assert big > small + 200  # makedumpfile's bitmap: 2 bits per page of 4 TiB = 256 MiB


def test_xl_info_numbers():
    text = "host : dom0\ntotal_memory           : 3071\nfree_memory : 1758\nnr_cpus                : 2\n"
    assert kexec.xl_info_numbers(text) == (3071, 2)
    assert kexec.xl_info_numbers(None) == (None, None)
    assert kexec.xl_info_numbers("total_memory : lots\n") == (None, None)


# --------------------------------------------------------------------------- converge: the scenarios

def test_fresh_boot_load_then_unchanged(dom0):
    root, fake, host = dom0
    first = run(root, host)
    assert first["changed"] is True and first["action"] == "load"
    assert first["argv"] == [KEXEC, "-p", KERNEL, "--initrd=" + INITRD, "--append=" + MEASURED_APPEND]
    assert fake.loaded == first["argv"] and fake.bit == 1
    assert first["before"]["loaded"] is None and first["after"]["loaded"] is True
    assert first["after"]["consistent"] is True
    assert first["fit"]["available_mb"] == 256.0 and first["fit"]["fits"]
    assert first["image"]["kernel"]["format"] == "bzImage"
    rec = record_of(root)
    assert rec["boot_id"] == BOOT_ID and rec["loaded"] is True and rec["swaps"] == 1
    assert rec["parity_offset"] == 0 and rec["argv"] == first["argv"]
    assert rec["kernel_sha256"] == first["image"]["kernel_sha256"] and len(rec["initrd_sha256"]) == 64
    assert rec["history"][-1]["op"] == "load" and rec["history"][-1]["rc"] == 0
    calls = len(fake.mutating_calls())
    second = run(root, host)
    assert second["changed"] is False and second["action"] == "none"
    assert len(fake.mutating_calls()) == calls
    assert second["before"]["consistent"] is True


def test_append_change_reloads(dom0):
    root, fake, host = dom0
    run(root, host)
    again = run(root, host, extra_append="nousb")
    assert again["changed"] is True and again["changed_inputs"] == ["append"]
    assert fake.loaded[-1].endswith(" nousb") and fake.bit == 0
    assert record_of(root)["swaps"] == 2
    assert again["after"]["consistent"] is True and again["after"]["loaded"] is True


def test_initrd_content_change_reloads(dom0):
    root, fake, host = dom0
    run(root, host)
    with open(os.path.join(root, INITRD.lstrip("/")), "r+b") as handle:
        handle.write(b"changed")
    again = run(root, host)
    assert again["changed"] is True and again["changed_inputs"] == ["initrd_sha256"]


def test_kdump_initrd_preferred(tmp_path):
    root = make_dom0(str(tmp_path), kdump_initrd=True)
    res = run(root, host_for(root, FakeXen(root)), check_mode=True)
    assert "--initrd=/var/lib/kdump/initrd.img-" + RELEASE in res["argv"]
    assert res["initrd_source"] == "kdump-tools' crash initrd"


def test_unload_then_unchanged(dom0):
    root, fake, host = dom0
    run(root, host)
    gone = run(root, host, state="unloaded")
    assert gone["changed"] is True and gone["argv"] == [KEXEC, "-p", "-u"]
    assert fake.loaded is None and record_of(root)["loaded"] is False
    assert gone["after"]["loaded"] is False and gone["after"]["consistent"] is True
    again = run(root, host, state="unloaded")
    assert again["changed"] is False


def test_unloaded_without_record_unloads_once(dom0):
    root, fake, host = dom0
    res = run(root, host, state="unloaded")
    assert res["changed"] is True and "no record" in res["reason"]
    assert fake.bit == 1  # the measured "unload with nothing loaded still toggles"
    assert record_of(root)["swaps"] == 1 and res["after"]["consistent"] is True
    assert run(root, host, state="unloaded")["changed"] is False


def test_reloaded_always_loads(dom0):
    root, fake, host = dom0
    run(root, host)
    res = run(root, host, state="reloaded")
    assert res["changed"] is True and fake.bit == 0 and record_of(root)["swaps"] == 2


def test_external_tool_toggle_detected_and_reloaded(dom0):
    root, fake, host = dom0
    run(root, host)
    fake.external_load()          # kdump-tools loads its own image behind our back
    res = run(root, host)
    assert res["mismatch"] is True and res["changed"] is True
    assert res["before"]["consistent"] is False
    assert any("another tool" in w for w in res["warnings"])
    assert fake.loaded == res["argv"]  # ours is what the hypervisor holds now
    rec = record_of(root)
    assert [h["op"] for h in rec["history"]][-2:] == ["resync", "load"]
    assert rec["swaps"] == 2 and (rec["swaps"] + rec["parity_offset"]) % 2 == fake.bit
    assert res["after"]["consistent"] is True
    assert run(root, host)["changed"] is False  # knowledge restarted: converges again


def test_external_toggle_then_unloaded(dom0):
    root, fake, host = dom0
    run(root, host, state="unloaded")
    fake.external_load()
    res = run(root, host, state="unloaded")
    assert res["mismatch"] is True and res["changed"] is True and fake.loaded is None


def test_stale_record_from_another_boot_is_ignored(dom0):
    root, fake, host = dom0
    run(root, host)
    fake.bit, fake.loaded = 0, None  # reboot: Xen starts empty with bit 0 ...
    write(root, "/proc/sys/kernel/random/boot_id", "another-boot-id\n")  # ... and a new boot id
    res = run(root, host)
    assert res["before"]["record"] is None and "another boot" in res["before"]["note"]
    assert res["changed"] is True and fake.bit == 1
    assert record_of(root)["boot_id"] == "another-boot-id" and record_of(root)["swaps"] == 1


def test_first_record_takes_offset_from_bit_seen(dom0):
    """kdump-tools loaded at boot (odd toggles before us): parity stays right afterwards."""
    root, fake, host = dom0
    fake.external_load()
    res = run(root, host)
    assert res["changed"] is True and res["mismatch"] is False
    rec = record_of(root)
    assert rec["parity_offset"] == 1 and fake.bit == 0 and res["after"]["consistent"] is True


def test_no_region_reserved(tmp_path):
    root = make_dom0(str(tmp_path))
    fake = FakeXen(root, ckr=0)
    with pytest.raises(kexec.NoCrashRegionError) as info:
        run(root, host_for(root, fake))
    assert info.value.code == "XK403" and "0 bytes" in str(info.value)
    assert fake.mutating_calls() == []


def test_kexec_without_xen_support(tmp_path):
    root = make_dom0(str(tmp_path), kexec_binary=make_elf(["libc.so.6"]))
    fake = FakeXen(root, xen_support=False)
    with pytest.raises(kexec.KexecNoXenSupportError) as info:
        run(root, host_for(root, fake))
    assert info.value.code == "XK402" and "libc.so.6" in str(info.value)
    assert fake.mutating_calls() == []


def test_kexec_missing(tmp_path):
    root = make_dom0(str(tmp_path))
    os.unlink(os.path.join(root, KEXEC.lstrip("/")))
    with pytest.raises(kexec.KexecMissingError):
        run(root, host_for(root, FakeXen(root)))


def test_image_too_big(tmp_path):
    root = make_dom0(str(tmp_path), initrd_size=200 * MIB)
    fake = FakeXen(root)
    with pytest.raises(kexec.ImageTooBigError) as info:
        run(root, host_for(root, fake))
    msg = str(info.value)
    assert "241.0 MiB" in msg and "200.0 MiB" in msg and "256.0 MiB" in msg and "sizing model" in msg
    assert "3071 MiB host RAM" in msg  # xl info's total_memory went into the model
    assert fake.mutating_calls() == []
    assert run(root, host_for(root, fake), min_free_mb=8)["changed"] is True  # documented knob


def test_fit_uses_the_model_by_default(dom0):
    root, fake, host = dom0
    got = run(root, host)["fit"]
    assert got["rule"] == "model" and got["fits"] is True
    assert got["required_mb"] <= got["available_mb"]


def test_truncated_kernel(tmp_path):
    root = make_dom0(str(tmp_path), kernel=make_bzimage(truncate_to=0x240))
    fake = FakeXen(root)
    with pytest.raises(elfcore.KernelImageTruncated) as info:
        run(root, host_for(root, fake))
    assert info.value.code == "XK501"
    assert fake.mutating_calls() == []


def test_non_relocatable_kernel_refused(tmp_path):
    root = make_dom0(str(tmp_path), kernel=make_bzimage(relocatable=False))
    with pytest.raises(kexec.ImageTooBigError) as info:
        run(root, host_for(root, FakeXen(root)))
    assert "not relocatable" in str(info.value)


def test_missing_initrd(tmp_path):
    root = make_dom0(str(tmp_path))
    with pytest.raises(kexec.CrashFileMissingError) as info:
        run(root, host_for(root, FakeXen(root)), initrd="/boot/nope.img")
    assert info.value.code == "XK406" and "/boot/nope.img" in str(info.value)


def test_unsafe_full_append_refused(dom0):
    root, fake, host = dom0
    with pytest.raises(kexec.UnsafeAppendError):
        run(root, host, append="root=/dev/vda console=hvc0")
    assert fake.mutating_calls() == []


def test_full_append_used_verbatim(dom0):
    root, _fake, host = dom0
    res = run(root, host, check_mode=True, append="root=/dev/vda console=ttyS0,115200 nr_cpus=1",
              extra_append="nousb")
    assert res["argv"][-1] == "--append=root=/dev/vda console=ttyS0,115200 nr_cpus=1 nousb"


@pytest.mark.parametrize("state", ["loaded", "reloaded", "unloaded"])
def test_check_mode_runs_nothing_mutating_and_predicts(tmp_path, state):
    root = make_dom0(str(tmp_path / "a"))
    fake = FakeXen(root)
    predicted = run(root, host_for(root, fake), check_mode=True, state=state)
    assert fake.mutating_calls() == [], fake.calls
    assert not os.path.exists(os.path.join(root, kexec.RECORD_PATH.lstrip("/")))
    assert fake.bit == 0
    readonly = {("--version",), ("-S", "-p"), ("--print-ckr-size",), ("info",)}
    assert all(tuple(c[1:]) in readonly for c in fake.calls), fake.calls
    real = run(root, host_for(root, fake), state=state)
    assert (predicted["changed"], predicted["argv"]) == (real["changed"], real["argv"])
    assert predicted["after"]["loaded"] == real["after"]["loaded"]
    assert predicted["after"]["status_bit"] == real["after"]["status_bit"]
    # after convergence check mode predicts "no change" (reloaded always changes) and runs
    # nothing mutating
    n_calls = len(fake.calls)
    again = run(root, host_for(root, fake), check_mode=True, state=state)
    assert again["changed"] is (state == "reloaded")
    assert all(tuple(c[1:]) in readonly for c in fake.calls[n_calls:]), fake.calls[n_calls:]


def test_check_mode_after_external_toggle_predicts_reload(dom0):
    root, fake, host = dom0
    run(root, host)
    fake.external_load()
    n = len(fake.mutating_calls())
    res = run(root, host, check_mode=True)
    assert res["changed"] is True and res["mismatch"] is True and len(fake.mutating_calls()) == n


def test_failed_load_is_recorded_then_raised(dom0):
    root, fake, host = dom0

    def failing(argv):
        if "-p" in argv and "-S" not in argv and "-u" not in argv:
            fake.calls.append(list(argv))
            return CommandResult(255, "", "xencall: error: Could not obtain handle on privileged command interface")
        return fake(argv)

    host = host_for(root, failing)
    with pytest.raises(kexec.KexecLoadError) as info:
        run(root, host)
    assert "privileged command interface" in str(info.value) and info.value.code == "XK407"
    rec = record_of(root)
    assert rec["history"][-1]["rc"] == 255 and rec["swaps"] == 0 and rec["loaded"] is False


def test_non_dom0_auto_skips_and_hypervisor_fails(tmp_path):
    root = str(tmp_path)
    write(root, "/proc/sys/kernel/random/boot_id", BOOT_ID)
    fake = FakeXen(root)
    host = host_for(root, fake)
    res = run(root, host)
    assert res["changed"] is False and res["skipped"] is True and res["target"] == "none"
    assert "/proc/xen does not exist" in res["reason"]
    with pytest.raises(kexec.NotHypervisorTargetError) as info:
        run(root, host, target="hypervisor")
    assert info.value.code == "XK404" and "load into the running Linux kernel" in str(info.value)
    assert fake.calls == []


@pytest.mark.parametrize("files,why", [
    ({"/proc/xen/capabilities": ""}, "domU"),
    ({"/proc/xen/capabilities": "control_d\n", "/sys/hypervisor/guest_type": "PVH\n"}, "PVH"),
    ({"/proc/xen/privcmd": ""}, "not readable"),
])
def test_is_pv_dom0_reasons(tmp_path, files, why):
    root = str(tmp_path)
    for path, text in files.items():
        write(root, path, text)
    dom0, reason = kexec.is_pv_dom0(Host(run=None, root=root))
    assert dom0 is False and why in reason


def test_record_history_is_bounded(tmp_path):
    root = make_dom0(str(tmp_path), initrd_size=4096)
    host = host_for(root, FakeXen(root))
    for _round in range(kexec.HISTORY_MAX + 5):
        run(root, host, state="reloaded")
    rec = record_of(root)
    assert len(rec["history"]) == kexec.HISTORY_MAX and rec["swaps"] == kexec.HISTORY_MAX + 5


def test_failed_load_that_toggled_leaves_loaded_unknown(dom0):
    """kexec exits non-zero but the bit moved: a hypercall happened; count it, loaded unknown."""
    root, fake, host = dom0

    def half_failing(argv):
        if "-p" in argv and "-S" not in argv and "-u" not in argv:
            fake(argv)
            return CommandResult(1, "", "kexec: something failed after the hypercall")
        return fake(argv)

    with pytest.raises(kexec.KexecLoadError):
        run(root, host_for(root, half_failing))
    rec = record_of(root)
    assert rec["swaps"] == 1 and rec["loaded"] is None
    state = kexec.load_state(host, kexec.status_bit(host))
    assert state["loaded"] is None and state["consistent"] is True
    assert run(root, host)["changed"] is True  # unknown → load again
