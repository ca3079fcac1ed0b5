# -*- coding: utf-8 -*-
"""xen.py on the real Xen 4.17.7 dom0 fixtures and hand-made variants of them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from sysroot import build, fixture, xen417_answers, xen417_dom0

from ansible_collections.xenkdump.fleet.plugins.module_utils import xen
from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError

MIB = 1024 * 1024
BOOT_ID = "3f1c1d1e-0b7a-4c55-9d21-5a0f3c2b9e01"
XENCALL_ERR = ("xencall: error: Could not obtain handle on privileged command interface: "
               "No such file or directory\nlibxl: error: libxl.c:102:libxl_ctx_alloc: cannot open "
               "libxc handle: No such file or directory\ncannot init xl context\n")


# ----------------------------------------------------------------------------- parsers

def test_parse_xl_info_fixture():
    info = xen.parse_xl_info(fixture("xl-info.txt"))
    assert info["xen_version"] == "4.17.7"
    assert info["total_memory"] == 3071          # the host, not dom0's 1024
    assert info["free_memory"] == 1758
    assert info["nr_cpus"] == 2
    assert info["xen_major"] == 4 and info["xen_minor"] == 17
    assert info["xen_commandline"].startswith("console=com1 com1=115200,8n1 ")
    assert info["xen_commandline"].endswith("crashkernel=256M@64M loglvl=all guest_loglvl=all noreboot")
    assert info["xen_changeset"] == ""
    assert info["virt_caps"] == "pv hvm hap gnttab-v1 gnttab-v2"


@pytest.mark.parametrize("text,needle", [
    ("", "printed nothing"),
    ("   \n\n", "printed nothing"),
    ("xencall: error: Could not obtain handle\n", "lacks xen_version, nr_cpus, total_memory, free_memory (got keys: xencall)"),
    (fixture("xl-info.txt").replace("total_memory           : 3071", "total_memory           : lots"),
     "total_memory is 'lots'"),
    (fixture("xl-info.txt").replace("nr_cpus                : 2\n", ""), "lacks nr_cpus"),
    (fixture("xl-info.txt").replace("free_memory            : 1758", "free_memory            : 9999"),
     "free_memory 9999 MiB exceeds total_memory 3071"),
    (fixture("xl-info.txt").replace("nr_cpus                : 2", "nr_cpus                : 0"),
     "nr_cpus=0"),
    (fixture("xl-info.txt").replace("xen_version            : 4.17.7", "xen_version            : unstable"),
     "does not start with major.minor"),
    ("<html>\n<body>oops</body>\n", "line 1 is not 'key : value'"),
])
def test_parse_xl_info_garbled(text, needle):
    with pytest.raises(xen.XlInfoUnparsable) as err:
        xen.parse_xl_info(text)
    assert needle in str(err.value)
    assert "[XK100]" in str(err.value)


def test_parse_xl_info_version_from_major_minor():
    text = fixture("xl-info.txt").replace("xen_version            : 4.17.7\n", "")
    assert xen.parse_xl_info(text)["xen_version"] == "4.17.7"


@given(st.text(max_size=400))
def test_parse_xl_info_never_tracebacks(text):
    try:
        info = xen.parse_xl_info(text)
    except xen.XlInfoUnparsable:
        return
    assert isinstance(info["total_memory"], int) and info["total_memory"] >= info["free_memory"]


@given(st.lists(st.sampled_from(fixture("xl-info.txt").splitlines()), max_size=40))
def test_parse_xl_info_shuffled_lines(lines):
    """Any subset/reordering of real lines either parses to the real values or says what is missing."""
    try:
        info = xen.parse_xl_info("\n".join(lines))
    except xen.XlInfoUnparsable as exc:
        assert "lacks" in exc.detail or "printed nothing" in exc.detail
        return
    assert info["total_memory"] == 3071 and info["nr_cpus"] == 2


def test_parse_xl_list_fixture():
    rows = xen.parse_xl_list(fixture("xl-list.txt"))
    assert rows == [{"name": "Domain-0", "id": 0, "mem_mb": 1024, "vcpus": 2, "state": "r-----",
                     "time_s": 229.0}]
    assert xen.dom0_row(rows)["mem_mb"] == 1024


def test_parse_xl_list_many_domains():
    text = fixture("xl-list.txt") + "web 01                                       3  2048     4     -b----      12.5\n"
    rows = xen.parse_xl_list(text)
    assert [r["name"] for r in rows] == ["Domain-0", "web 01"]
    assert rows[1]["id"] == 3 and rows[1]["vcpus"] == 4


@pytest.mark.parametrize("text,needle", [
    ("", "printed nothing"),
    ("Name ID Mem VCPUs State Time(s)\nDomain-0 0 1024\n", "3 columns, expected 6"),
    ("Name ID Mem VCPUs State Time(s)\nDomain-0 zero 1024 2 r----- 1.0\n", "not numbers"),
])
def test_parse_xl_list_garbled(text, needle):
    with pytest.raises(xen.XlListUnparsable) as err:
        xen.parse_xl_list(text)
    assert needle in str(err.value) and "[XK103]" in str(err.value)


def test_parse_kdump_line_fixture():
    for name in ("xl-dmesg-kdump-lines.txt", "xen-console-boot.txt"):
        kdump = xen.parse_kdump_line(fixture(name))
        assert kdump == {"reserved": True, "size_bytes": 256 * MIB, "start": 0x4000000,
                         "line": "(XEN) Kdump: 256MB (262144kB) at 0x4000000", "failure": ""}


def test_parse_kdump_line_variants():
    # console_timestamps= prefix, and the %#lx form of newer Xen
    kdump = xen.parse_kdump_line("(XEN) [    0.000000] Kdump: 512MB (524288kB) at 0x2c000000\n")
    assert kdump["reserved"] and kdump["size_bytes"] == 512 * MIB and kdump["start"] == 0x2C000000
    failed = xen.parse_kdump_line("(XEN) Kdump: DISABLED (failed to reserve 256MB (262144kB) at 0x4000000)\n")
    assert failed["reserved"] is False and failed["size_bytes"] == 256 * MIB
    assert "could not reserve 256MB at 0x4000000" in failed["failure"]
    odd = xen.parse_kdump_line("(XEN) Kdump: No crash kernel reservation\n")
    assert odd["reserved"] is False and odd["size_bytes"] is None
    assert "No crash kernel reservation" in odd["failure"]
    assert xen.parse_kdump_line("(XEN) Xen version 4.17.7\n") is None
    assert xen.parse_kdump_line("") is None


def test_crashkernel_warnings_and_rotation():
    text = "(XEN) Command line: crashkernel=1G-:bad\n(XEN) crashkernel: ':' expected\n"
    assert xen.crashkernel_warnings(text) == ["crashkernel: ':' expected"]
    assert xen.console_rotated(text) is False
    assert xen.console_rotated(fixture("xen-console-boot.txt")) is False
    tail = "\n".join(fixture("xen-console-boot.txt").splitlines()[100:])
    assert xen.console_rotated(tail) is True
    assert xen.dmesg_commandline(fixture("xen-console-boot.txt")).endswith("noreboot")


OS_RELEASES = [
    ('ID=debian\nVERSION_ID="12"\n', "Debian"),
    ('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n', "Debian"),
    ('NAME="SLES"\nID="sles"\nID_LIKE="suse"\n', "Suse"),
    ('NAME="openSUSE Leap"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\n', "Suse"),
    ('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n', "RedHat"),
    ('ID="almalinux"\n', "RedHat"),
    ('ID=fedora\n', "RedHat"),
    ('NAME="CentOS Stream"\nID="centos"\n', "RedHat"),
    ('NAME="XCP-ng"\nID="xcp-ng"\nID_LIKE="centos rhel fedora"\n', "XCP-ng"),
    ('NAME="XenServer"\nID="xenenterprise"\n', "XCP-ng"),
    ('NAME="Citrix Hypervisor"\nID="something"\n', "XCP-ng"),
    ('ID=someos\nID_LIKE="rhel"\n', "RedHat"),
    ('ID=alpine\n', "unknown"),
    ("", "unknown"),
]


@pytest.mark.parametrize("text,family", OS_RELEASES)
def test_distro_family(text, family):
    assert xen.distro_family(text) == family


# ----------------------------------------------------------------------------- detect_guest

def test_detect_guest_fixture_dom0(tmp_path):
    guest = xen.detect_guest(xen417_dom0(tmp_path))
    assert guest["is_xen"] and guest["is_dom0"]
    assert guest["guest_type"] == "PV"
    assert guest["guest_type_source"].startswith("/proc/xen/capabilities")
    assert guest["reason"] == ""


def test_detect_guest_pvh_dom0(tmp_path):
    host = xen417_dom0(tmp_path, files={"/sys/hypervisor/guest_type": "PVH\n"})
    guest = xen.detect_guest(host)
    assert guest["is_dom0"] and guest["guest_type"] == "PVH"
    assert guest["guest_type_source"] == "/sys/hypervisor/guest_type"


def test_detect_guest_pv_domu(tmp_path):
    host = build(tmp_path, files={"/sys/hypervisor/type": "xen\n", "/proc/xen/capabilities": "",
                                  "/sys/hypervisor/guest_type": "PV\n"})
    guest = xen.detect_guest(host)
    assert guest["is_xen"] and not guest["is_dom0"] and guest["guest_type"] == "PV"
    assert "domU" in guest["reason"] and "no control_d" in guest["reason"]


def test_detect_guest_hvm_domu(tmp_path):
    host = build(tmp_path, files={"/sys/hypervisor/type": "xen\n", "/sys/hypervisor/guest_type": "HVM\n",
                                  "/sys/hypervisor/properties/features": "00000705\n",
                                  "/sys/class/dmi/id/sys_vendor": "Xen\n"})
    guest = xen.detect_guest(host)
    assert guest["is_xen"] and not guest["is_dom0"] and guest["guest_type"] == "HVM"
    assert "lacks XENFEAT_dom0" in guest["reason"]


def test_detect_guest_hvm_domu_without_xen_drivers(tmp_path):
    host = build(tmp_path, files={"/sys/class/dmi/id/sys_vendor": "Xen\n",
                                  "/sys/class/dmi/id/product_name": "HVM domU\n",
                                  "/proc/cpuinfo": "processor : 0\nflags : fpu sse2 hypervisor\n"})
    guest = xen.detect_guest(host)
    assert guest["is_xen"] and not guest["is_dom0"] and guest["guest_type"] == "HVM"
    assert "firmware tables" in guest["guest_type_source"]


def test_detect_guest_old_kernel_features(tmp_path):
    # no guest_type file: XENFEAT bits decide; bit 11 = dom0 (xenfs not mounted), bit 2 clear = PV
    host = build(tmp_path, files={"/sys/hypervisor/type": "xen\n",
                                  "/sys/hypervisor/properties/features": "%08x\n" % ((1 << 11) | 0x3)})
    guest = xen.detect_guest(host)
    assert guest["is_dom0"] and guest["guest_type"] == "PV"
    assert "XENFEAT_dom0" in guest["dom0_source"]
    assert guest["guest_type_source"].startswith("/sys/hypervisor/properties/features")


def test_detect_guest_bare_metal(tmp_path):
    host = build(tmp_path, files={"/proc/cpuinfo": "processor : 0\nflags : fpu sse2\n"})
    guest = xen.detect_guest(host)
    assert not guest["is_xen"] and not guest["is_dom0"] and guest["guest_type"] == "none"
    assert "bare metal" in guest["reason"]


def test_detect_guest_other_hypervisor(tmp_path):
    host = build(tmp_path, files={"/proc/cpuinfo": "flags : fpu hypervisor\n",
                                  "/sys/class/dmi/id/sys_vendor": "QEMU\n"})
    guest = xen.detect_guest(host)
    assert not guest["is_xen"] and "another hypervisor (DMI vendor 'QEMU')" in guest["reason"]


# ----------------------------------------------------------------------------- gather

CONTRACT_KEYS = {
    "is_xen", "is_dom0", "guest_type", "guest_type_source", "reason", "xen_version",
    "xen_commandline", "xen_cmdline_tokens", "xen_cmdline_options", "host_memory_mb",
    "host_free_memory_mb", "dom0_memory_mb", "nr_cpus", "crash_region", "kexec", "xl",
    "crash_kernel", "crash_images", "dom0_cmdline", "dom0_crashkernel", "distro_family", "bootloader",
}
REGION_KEYS = {"reserved", "size_bytes", "size_mb", "start", "start_hex", "source", "note"}


def test_gather_fixture_dom0(tmp_path):
    host = xen417_dom0(tmp_path)
    facts = xen.gather(host)
    assert CONTRACT_KEYS <= set(facts)
    assert REGION_KEYS <= set(facts["crash_region"])
    json.dumps(facts)  # plain data only
    assert facts["is_xen"] and facts["is_dom0"] and facts["guest_type"] == "PV"
    assert facts["xen_version"] == "4.17.7"
    assert facts["host_memory_mb"] == 3071 and facts["host_free_memory_mb"] == 1758
    assert facts["dom0_memory_mb"] == 1024 and facts["nr_cpus"] == 2
    assert facts["xen_cmdline_tokens"] == [
        "console=com1", "com1=115200,8n1", "dom0_mem=1024M,max:1024M", "crashkernel=256M@64M",
        "loglvl=all", "guest_loglvl=all", "noreboot"]
    assert facts["xen_cmdline_options"]["crashkernel"] == "256M@64M"
    assert facts["xen_cmdline_options"]["noreboot"] is None
    region = facts["crash_region"]
    assert region["reserved"] is True
    assert region["size_bytes"] == 268435456 and region["size_mb"] == 256
    assert region["start"] == 67108864 and region["start_hex"] == "0x4000000"
    assert region["source"] == "xl dmesg+kexec" and region["note"] == ""
    assert region["console_rotated"] is False
    assert facts["kexec"]["present"] and facts["kexec"]["version"] == "2.0.25"
    assert facts["kexec"]["xen_support"] is True
    assert facts["xl"] == {"present": True, "path": "/usr/sbin/xl", "package": "xen-utils-common"}
    assert facts["crash_kernel"]["status_bit"] == 0 and facts["crash_kernel"]["loaded"] is None
    assert facts["dom0_cmdline"] == "root=/dev/vda ro console=hvc0 earlyprintk=xen"
    assert facts["dom0_crashkernel"] is None
    assert facts["distro_family"] == "Debian"
    assert facts["bootloader"]["kind"] == "grub" and facts["bootloader"]["regenerate"] == ["update-grub"]
    assert facts["problems"] == []
    # read-only: exactly these commands, no load/unload
    ran = {" ".join(c) for c in host.runner.calls}
    assert ran <= {"xl info", "xl list", "xl dmesg", "kexec --version", "kexec --print-ckr-size",
                   "kexec -S -p", "makedumpfile -v"}
    assert host.runner.ran("xl list") == 1 and host.runner.ran("xl list 0") == 0
    assert host.runner.ran("xl info") == 1


def test_gather_reads_loader_record(tmp_path):
    record = {"boot_id": BOOT_ID, "loaded": True, "swaps": 1, "kernel": "/boot/vmlinuz"}
    host = xen417_dom0(tmp_path, files={"/run/xenkdump/crash-kernel.json": json.dumps(record)},
                       answers={"kexec -S -p": (1, "", "")})
    ck = xen.gather(host)["crash_kernel"]
    assert ck["loaded"] is True and ck["source"] == "record"
    assert ck["status_bit"] == 1 and ck["consistent"] is True


def test_gather_rotated_console_ring(tmp_path):
    tail = "\n".join(fixture("xen-console-boot.txt").splitlines()[100:]) + "\n"
    facts = xen.gather(xen417_dom0(tmp_path, answers={"xl dmesg": tail}))
    region = facts["crash_region"]
    assert region["console_rotated"] is True
    assert region["source"] == "kexec --print-ckr-size"
    assert region["reserved"] is True and region["size_mb"] == 256
    assert region["start"] is None and region["start_hex"] is None
    assert "rotated" in region["note"] and "conring_size=" in region["note"]


def test_gather_rotated_and_no_kexec(tmp_path):
    tail = "\n".join(fixture("xen-console-boot.txt").splitlines()[100:]) + "\n"
    facts = xen.gather(xen417_dom0(tmp_path, answers={"xl dmesg": tail}, missing=["/sbin/kexec"]))
    region = facts["crash_region"]
    assert region["reserved"] is None and region["source"] == "none"
    assert "kexec --print-ckr-size" in region["note"] and "conring_size=" in region["note"]
    assert any("kexec-tools is not installed: install package kexec-tools" in p for p in facts["problems"])


def test_gather_no_kexec_tools(tmp_path):
    host = xen417_dom0(tmp_path, missing=["/sbin/kexec"])
    facts = xen.gather(host)
    assert facts["kexec"]["present"] is False and facts["kexec"]["package"] == "kexec-tools"
    assert facts["crash_region"]["source"] == "xl dmesg" and facts["crash_region"]["size_mb"] == 256
    assert facts["crash_kernel"]["status_bit"] is None
    assert any("install package kexec-tools" in p for p in facts["problems"])
    assert not any(c[0] == "kexec" for c in host.runner.calls)


def test_gather_kexec_without_xen_support(tmp_path):
    host = xen417_dom0(tmp_path, answers={"kexec -S -p": (255, "", ""), "kexec --print-ckr-size": "0\n"})
    facts = xen.gather(host)
    assert facts["kexec"]["xen_support"] is False
    assert any("without Xen support" in p for p in facts["problems"])
    # its "0" comes from dom0's /proc/iomem, not from Xen: the Kdump line stands
    assert facts["crash_region"]["source"] == "xl dmesg" and facts["crash_region"]["size_mb"] == 256
    assert ("kexec", "--print-ckr-size") not in host.runner.calls


def test_gather_no_xl(tmp_path):
    host = xen417_dom0(tmp_path, missing=["/usr/sbin/xl"],
                       files={"/sys/hypervisor/version/major": "4\n", "/sys/hypervisor/version/minor": "17\n",
                              "/sys/hypervisor/version/extra": ".7\n"})
    facts = xen.gather(host)
    assert facts["is_dom0"] and facts["xl"]["present"] is False
    assert facts["xen_version"] == "4.17.7"          # from /sys/hypervisor/version
    assert facts["host_memory_mb"] is None and facts["xen_commandline"] is None
    assert facts["crash_region"]["source"] == "kexec --print-ckr-size"
    assert any("install package xen-utils-common (and xen-utils-4.17" in p for p in facts["problems"])
    assert not any(c[0] == "xl" for c in host.runner.calls)


@pytest.mark.parametrize("os_release,package", [
    ('ID="opensuse-leap"\n', "xen-tools"),
    ('ID="xcp-ng"\nID_LIKE="centos"\n', "xen-dom0-tools"),
    ('ID="rocky"\n', "xen-runtime"),
])
def test_gather_xl_package_per_family(tmp_path, os_release, package):
    facts = xen.gather(xen417_dom0(tmp_path, files={"/etc/os-release": os_release}, missing=["/usr/sbin/xl"]))
    assert facts["xl"]["package"] == package
    assert any("install package %s" % package in p for p in facts["problems"])


def test_gather_xl_fails(tmp_path):
    host = xen417_dom0(tmp_path, answers={"xl info": (1, "", XENCALL_ERR)})
    with pytest.raises(xen.XlCommandFailed) as err:
        xen.gather(host)
    msg = str(err.value)
    assert "'xl info' exited 1: xencall: error: Could not obtain handle" in msg
    assert "[XK101]" in msg and "privcmd" in msg
    assert isinstance(err.value, XenKdumpError)


def test_gather_garbled_xl_info(tmp_path):
    host = xen417_dom0(tmp_path, answers={"xl info": "host: x\n\x00\x01garbage without colon\n"})
    with pytest.raises(xen.XlInfoUnparsable) as err:
        xen.gather(host)
    assert "line 2" in str(err.value)


def test_gather_xl_list_without_dom0(tmp_path):
    host = xen417_dom0(tmp_path, answers={"xl list": "Name ID Mem VCPUs State Time(s)\nvm 5 512 1 -b---- 1.0\n"})
    with pytest.raises(xen.XlListUnparsable) as err:
        xen.gather(host)
    assert "no row with ID 0" in str(err.value)


def test_gather_xl_dmesg_fails_is_a_problem(tmp_path):
    facts = xen.gather(xen417_dom0(tmp_path, answers={"xl dmesg": (1, "", "libxl: error: cannot read\n")}))
    assert any("'xl dmesg' exited 1" in p for p in facts["problems"])
    assert facts["crash_region"]["source"] == "kexec --print-ckr-size"
    assert facts["crash_region"]["console_rotated"] is None


def test_gather_kdump_disabled(tmp_path):
    dmesg = fixture("xen-console-boot.txt").replace(
        "(XEN) Kdump: 256MB (262144kB) at 0x4000000",
        "(XEN) Kdump: DISABLED (failed to reserve 256MB (262144kB) at 0x4000000)")
    facts = xen.gather(xen417_dom0(tmp_path, answers={"xl dmesg": dmesg, "kexec --print-ckr-size": "0\n"}))
    region = facts["crash_region"]
    assert region["reserved"] is False and region["size_bytes"] == 0
    assert region["source"] == "xl dmesg+kexec"
    assert "could not reserve 256MB at 0x4000000" in region["note"]
    assert any("no crash region reserved" in p for p in facts["problems"])


def test_gather_crashkernel_reserved_nothing(tmp_path):
    dmesg = fixture("xen-console-boot.txt").replace("(XEN) Kdump: 256MB (262144kB) at 0x4000000\n", "")
    dmesg = dmesg.replace("crashkernel=256M@64M", "crashkernel=8G-:bad")
    dmesg = dmesg.replace("(XEN) Xen-e820 RAM map:", "(XEN) crashkernel: ':' expected\n(XEN) Xen-e820 RAM map:")
    info = fixture("xl-info.txt").replace("crashkernel=256M@64M", "crashkernel=8G-:bad")
    facts = xen.gather(xen417_dom0(tmp_path, answers={"xl dmesg": dmesg, "xl info": info,
                                                      "kexec": None, "kexec --print-ckr-size": None}))
    region = facts["crash_region"]
    assert region["reserved"] is False and region["source"] == "xl dmesg"
    assert region["console_rotated"] is False
    assert region["warnings"] == ["crashkernel: ':' expected"]
    assert "crashkernel=8G-:bad is on the Xen command line but Xen reserved nothing" in region["note"]


def test_gather_no_crashkernel_at_all(tmp_path):
    """The lab's fresh state: no crashkernel= on the Xen line, no Kdump: line, ckr size 0."""
    dmesg = fixture("xen-console-boot.txt").replace("(XEN) Kdump: 256MB (262144kB) at 0x4000000\n", "")
    dmesg = dmesg.replace(" crashkernel=256M@64M", "")
    info = fixture("xl-info.txt").replace(" crashkernel=256M@64M", "")
    facts = xen.gather(xen417_dom0(tmp_path, answers={"xl dmesg": dmesg, "xl info": info,
                                                      "kexec --print-ckr-size": "0\n"}))
    assert "crashkernel" not in facts["xen_cmdline_options"]
    region = facts["crash_region"]
    assert region["reserved"] is False and region["size_bytes"] == 0
    assert region["source"] == "xl dmesg+kexec"
    assert region["note"].startswith("no crashkernel= on the Xen command line: add one")
    assert any("no crash region reserved: nothing can be loaded and a hypervisor crash will not be "
               "dumped (no crashkernel= on the Xen command line" in p for p in facts["problems"])


def test_gather_sizes_disagree_trusts_kexec(tmp_path):
    facts = xen.gather(xen417_dom0(tmp_path, answers={"kexec --print-ckr-size": "134217728\n"}))
    region = facts["crash_region"]
    assert region["size_mb"] == 128 and region["start"] == 0x4000000
    assert "trusting kexec" in region["note"]


def test_gather_dom0_crashkernel_is_a_problem(tmp_path):
    host = xen417_dom0(tmp_path, files={"/proc/cmdline": "root=/dev/vda ro crashkernel=384M-:128M\n"})
    facts = xen.gather(host)
    assert facts["dom0_crashkernel"] == "384M-:128M"
    assert any("PV dom0 kernel ignores it" in p for p in facts["problems"])


def test_gather_pvh_dom0(tmp_path):
    facts = xen.gather(xen417_dom0(tmp_path, files={"/sys/hypervisor/guest_type": "PVH\n"}))
    assert facts["is_dom0"] and facts["guest_type"] == "PVH"
    assert facts["host_memory_mb"] == 3071
    assert any("will not load into the hypervisor here (/sys/hypervisor/guest_type is PVH" in p
               for p in facts["problems"])


@pytest.mark.parametrize("files", [
    {"/sys/hypervisor/type": "xen\n", "/proc/xen/capabilities": "", "/sys/hypervisor/guest_type": "PV\n",
     "/sys/hypervisor/version/major": "4\n", "/sys/hypervisor/version/minor": "17\n"},
    {"/sys/hypervisor/type": "xen\n", "/sys/hypervisor/guest_type": "HVM\n",
     "/sys/hypervisor/properties/features": "00000705\n"},
    {"/proc/cpuinfo": "flags : fpu\n"},
], ids=["pv-domU", "hvm-domU", "bare-metal"])
def test_gather_not_dom0_runs_no_xen_command(tmp_path, files):
    answers = dict(xen417_answers())
    host = build(tmp_path, files=dict(files, **{"/etc/os-release": 'ID=debian\n'}),
                 executables=["/usr/sbin/xl", "/sbin/kexec"], answers=answers)
    facts = xen.gather(host)
    assert facts["is_dom0"] is False and facts["reason"]
    assert facts["host_memory_mb"] is None and facts["crash_region"]["source"] == "none"
    assert not any(c[0] == "xl" for c in host.runner.calls)
    assert ("kexec", "--print-ckr-size") not in host.runner.calls
    if "guest_type" in str(files) and "PV" in files.get("/sys/hypervisor/guest_type", ""):
        assert facts["xen_version"] == "4.17"
    with pytest.raises(xen.NotDom0) as err:
        xen.require_dom0(facts)
    assert "[XK102]" in str(err.value) and facts["reason"] in str(err.value)


def test_require_dom0_passes_on_dom0(tmp_path):
    xen.require_dom0(xen.gather(xen417_dom0(tmp_path)))


@given(st.integers(min_value=1, max_value=1 << 24), st.integers(min_value=0, max_value=1 << 40),
       st.booleans(), st.booleans())
def test_parse_kdump_line_roundtrip(pages, start_page, timestamp, failed):
    """Lines printed with Xen's own format strings parse back to the same numbers."""
    size, start = pages * 4096, start_page * 4096
    body = "%dMB (%dkB) at 0x%x" % (size >> 20, size >> 10, start)
    if failed:
        body = "DISABLED (failed to reserve %s)" % body
    prefix = "(XEN) [  12.345678] " if timestamp else "(XEN) "
    kdump = xen.parse_kdump_line("(XEN) Bootloader: GRUB\n%sKdump: %s\n" % (prefix, body))
    assert kdump["reserved"] is (not failed)
    assert kdump["size_bytes"] == size and kdump["start"] == start
