# -*- coding: utf-8 -*-
"""tokenize/options, detect_bootloader, GRUB files as Debian/Ubuntu/openSUSE ship them,
EFI xen.cfg and the XCP-ng xen-cmdline tool (through its test double)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

from conftest import REPO, XEN417

from ansible_collections.xenkdump.fleet.plugins.module_utils import cmdline, hostio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cmdline_corpus import V, X, check_edit, files_of, source_with  # noqa: E402

DATA = os.path.join(REPO, "tests", "unit", "data")
GRUB = os.path.join(DATA, "grub")
XEN_CFG = os.path.join(DATA, "xen_cfg")
DOUBLE = os.path.join(XEN_CFG, "xen-cmdline-double")


def real_run(argv):
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, check=False)
    except OSError as exc:
        return hostio.CommandResult(127, "", str(exc))
    return hostio.CommandResult(proc.returncode, proc.stdout, proc.stderr)


# ---------------------------------------------------------------------------------------------
# tokenize / options
# ---------------------------------------------------------------------------------------------

def test_tokenize_real_xen_cmdline():
    with open(os.path.join(XEN417, "xl-info.txt")) as handle:
        line = next(l for l in handle if l.startswith("xen_commandline")).split(":", 1)[1]
    toks = cmdline.tokenize(line)
    opts = cmdline.options(toks)
    assert opts["crashkernel"] == "256M@64M"
    assert "noreboot" in opts and opts["noreboot"] is None
    assert opts["dom0_mem"] == "1024M,max:1024M"


def test_tokenize_quotes_and_whitespace():
    assert cmdline.tokenize('  a=1\tb="x y"  "c=d e" f\n') == ['a=1', 'b="x y"', '"c=d e"', 'f']
    assert cmdline.tokenize("") == []
    assert cmdline.options(cmdline.tokenize('b="x y" "c=d e" k=v=w')) == {
        "b": "x y", "c": "d e", "k": "v=w"}


def test_options_last_wins_and_flags():
    opts = cmdline.options(["dom0_mem=1G", "noreboot", "dom0_mem=2G", "x="])
    assert opts == {"noreboot": None, "dom0_mem": "2G", "x": ""}
    assert list(opts) == ["noreboot", "dom0_mem", "x"]


@given(st.lists(st.from_regex(r"[a-z_]{1,6}(=[A-Za-z0-9,<>@:.]{0,6})?", fullmatch=True),
                max_size=10), st.sampled_from([" ", "  ", "\t", " \n "]))
def test_tokenize_roundtrip(tokens, sep):
    assert cmdline.tokenize(sep.join(tokens)) == tokens


# ---------------------------------------------------------------------------------------------
# detect_bootloader
# ---------------------------------------------------------------------------------------------

def make_root(tmp_path, files, executables=()):
    for rel, text in files.items():
        full = tmp_path / rel.lstrip("/")
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(text)
    for rel in executables:
        full = tmp_path / rel.lstrip("/")
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text("#!/bin/sh\n")
        full.chmod(0o755)
    return hostio.Host(run=real_run, root=str(tmp_path))


def test_detect_xcpng(tmp_path):
    host = make_root(tmp_path, {"/etc/default/grub": ""}, [cmdline.XEN_CMDLINE_TOOL])
    got = cmdline.detect_bootloader(host, "XCP-ng")
    assert got["kind"] == "xen_cmdline" and got["path"] == cmdline.XEN_CMDLINE_TOOL
    assert got["regenerate"] == []


def test_detect_efi_xen_cfg_only_when_efi_booted(tmp_path):
    files = {"/boot/efi/EFI/debian/xen.cfg": "[global]\ndefault=x\n", "/etc/default/grub": ""}
    host = make_root(tmp_path, files, ["/usr/sbin/update-grub"])
    got = cmdline.detect_bootloader(host, "Debian")
    assert got["kind"] == "grub" and "did not boot via EFI" in got["reason"]
    (tmp_path / "sys/firmware/efi").mkdir(parents=True)
    got = cmdline.detect_bootloader(host, "Debian")
    assert got == {"kind": "xen_cfg", "path": "/boot/efi/EFI/debian/xen.cfg", "regenerate": [],
                   "files": ["/boot/efi/EFI/debian/xen.cfg"], "reason": got["reason"]}
    make_root(tmp_path, {"/boot/efi/EFI/xen/xen.cfg": ""})
    assert cmdline.detect_bootloader(host, "Debian")["path"] == "/boot/efi/EFI/xen/xen.cfg"


def test_detect_grub_debian(tmp_path):
    host = make_root(tmp_path, {"/etc/default/grub": "", "/etc/default/grub.d/xen.cfg": "",
                                "/etc/default/grub.d/kdump-tools.cfg": "",
                                "/etc/default/grub.d/notes.txt": ""}, ["/usr/sbin/update-grub"])
    got = cmdline.detect_bootloader(host, "Debian")
    assert got["kind"] == "grub" and got["regenerate"] == ["update-grub"]
    assert got["files"] == ["/etc/default/grub", "/etc/default/grub.d/kdump-tools.cfg",
                            "/etc/default/grub.d/xen.cfg"]


@pytest.mark.parametrize("family", ["Suse", "RedHat"])
def test_detect_grub_suse_redhat(tmp_path, family):
    host = make_root(tmp_path, {"/etc/default/grub": "", "/boot/grub2/grub.cfg": ""},
                     ["/usr/sbin/grub2-mkconfig"])
    got = cmdline.detect_bootloader(host, family)
    assert got["regenerate"] == ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"]


def test_detect_unknown(tmp_path):
    got = cmdline.detect_bootloader(make_root(tmp_path, {}), "Debian")
    assert got["kind"] == "unknown" and got["path"] is None and got["regenerate"] == []
    assert "none of" in got["reason"]


# ---------------------------------------------------------------------------------------------
# GRUB default files as the distributions ship them
# ---------------------------------------------------------------------------------------------

def copy_distro(tmp_path, distro, snippets=None):
    src = os.path.join(GRUB, distro, "etc", "default")
    dst = tmp_path / "etc" / "default"
    (dst / "grub.d").mkdir(parents=True)
    shutil.copy(os.path.join(src, "grub"), str(dst / "grub"))
    for name in (snippets if snippets is not None else
                 os.listdir(os.path.join(src, "grub.d")) if os.path.isdir(os.path.join(src, "grub.d"))
                 else []):
        shutil.copy(os.path.join(src, "grub.d", name), str(dst / "grub.d" / name))
    return str(dst / "grub")


DISTROS = [("debian12", []), ("debian12", ["kdump-tools.cfg"]), ("debian12", ["xen.cfg"]),
           ("debian12", ["kdump-tools.cfg", "xen.cfg"]), ("ubuntu2204", None),
           ("ubuntu2204", ["init-select.cfg"]), ("opensuse155", [])]


@pytest.mark.parametrize("distro,snippets", DISTROS)
def test_distro_files_set_and_remove(tmp_path, distro, snippets, grub_script_check):
    path = copy_distro(tmp_path, distro, snippets)
    linux_before = source_with("bash", path)["GRUB_CMDLINE_LINUX_DEFAULT"]
    result = check_edit(path, "crashkernel", "256M<4G")
    assert result.changed
    assert "crashkernel=256M<4G" in result.after_cmdline.split()
    assert source_with("bash", path)["GRUB_CMDLINE_LINUX_DEFAULT"] == linux_before
    vals = source_with("bash", path)
    cfg = tmp_path / "grub.cfg"                # the line 20_linux_xen writes must parse in GRUB
    cfg.write_text("multiboot2 /boot/xen.gz placeholder %s %s\n" % (vals[X], vals[V]))
    assert subprocess.run([grub_script_check, str(cfg)], check=False).returncode == 0
    check_edit(path, "dom0_mem", "2048M,max:2048M")
    check_edit(path, "crashkernel", None, "absent")
    check_edit(path, "dom0_mem", None, "absent")


def test_debian_kdump_tools_linux_line_never_touched(tmp_path):
    path = copy_distro(tmp_path, "debian12", ["kdump-tools.cfg", "xen.cfg"])
    snippet = os.path.join(os.path.dirname(path), "grub.d", "kdump-tools.cfg")
    original = open(snippet, "rb").read()
    result = cmdline.plan_grub_edit(files_of(path), "crashkernel", "256M<4G")
    assert list(result.new_texts) == [path]          # no Xen assignment anywhere: main file
    assert result.new_texts[path].endswith('\nGRUB_CMDLINE_XEN_DEFAULT="crashkernel=256M\\<4G"\n')
    assert result.before_cmdline == "" and result.after_cmdline == "crashkernel=256M<4G"
    absent = cmdline.plan_grub_edit(files_of(path), "crashkernel", None, "absent")
    assert absent.changed is False                   # the Linux crashkernel= is not ours
    assert open(snippet, "rb").read() == original


def test_ubuntu_edits_the_snippet_that_decides(tmp_path):
    path = copy_distro(tmp_path, "ubuntu2204")
    result = cmdline.plan_grub_edit(files_of(path), "crashkernel", "256M<4G")
    xen_cfg = os.path.join(os.path.dirname(path), "grub.d", "xen.cfg")
    assert list(result.new_texts) == [xen_cfg] and result.file == xen_cfg
    assert ('GRUB_CMDLINE_XEN_DEFAULT="dom0_mem=2048M,max:2048M dom0_max_vcpus=2 '
            'crashkernel=256M\\<4G"\n') in result.new_texts[xen_cfg]


def test_opensuse_replaces_escaped_value_in_place(tmp_path):
    path = copy_distro(tmp_path, "opensuse155")
    result = cmdline.plan_grub_edit(files_of(path), "crashkernel", "256M<4G")
    assert 'GRUB_CMDLINE_XEN_DEFAULT="vga=gfx-1024x768x16 crashkernel=256M\\<4G"\n' in \
        result.new_texts[path]
    # the shell keeps the backslash of \< in double quotes; GRUB script drops it, Xen gets <
    assert result.before_cmdline == "vga=gfx-1024x768x16 crashkernel=232M<4G"
    # the Linux line keeps its own two crashkernel= options
    assert "crashkernel=205M,high crashkernel=72M,low" in result.new_texts[path]


def test_effective_xen_cmdline(tmp_path):
    path = copy_distro(tmp_path, "debian12", [])
    with open(path, "a") as handle:
        handle.write('GRUB_CMDLINE_XEN="console=com1 com1=115200"\n'
                     'GRUB_CMDLINE_XEN_DEFAULT="dom0_mem=1G crashkernel=256M\\<4G"\n')
    host = hostio.Host(run=real_run, root=str(tmp_path))
    assert cmdline.effective_xen_cmdline(host) == \
        "console=com1 com1=115200 dom0_mem=1G crashkernel=256M<4G"
    assert cmdline.effective_xen_cmdline(host, "GRUB_CMDLINE_XEN") == "console=com1 com1=115200"


def test_bad_option_rejected():
    for option, value in (("crash kernel", "1"), ("", None), ("a", "x y"), ("a", 'q"'),
                          ("a", "x\n")):
        with pytest.raises(cmdline.CmdlineOptionError):
            cmdline.plan_grub_edit([("/etc/default/grub", "")], option, value)


# ---------------------------------------------------------------------------------------------
# EFI xen.cfg
# ---------------------------------------------------------------------------------------------

def read(name):
    with open(os.path.join(XEN_CFG, name)) as handle:
        return handle.read()


def test_xen_cfg_default_section():
    text = read("debian-efi-xen.cfg")
    res = cmdline.plan_xen_cfg_edit("/x", text, "crashkernel", "256M<4G")
    new = res.new_texts["/x"]
    assert "options=console=vga,com1 com1=115200,8n1 dom0_mem=1024M,max:1024M noreboot " \
           "crashkernel=256M<4G\n" in new
    # the rescue section is left alone
    assert "dom0_mem=1024M,max:1024M crashkernel=128M noreboot" in new
    assert res.after_cmdline.endswith("crashkernel=256M<4G") and res.regenerate == []
    again = cmdline.plan_xen_cfg_edit("/x", new, "crashkernel", "256M<4G")
    assert again.changed is False


def test_xen_cfg_all_sections_and_absent():
    text = read("debian-efi-xen.cfg")
    res = cmdline.plan_xen_cfg_edit("/x", text, "crashkernel", "256M<4G", section="all")
    new = res.new_texts["/x"]
    assert new.count("crashkernel=256M<4G") == 2 and "crashkernel=128M" not in new
    gone = cmdline.plan_xen_cfg_edit("/x", new, "crashkernel", None, "absent", section="all")
    assert "crashkernel" not in gone.new_texts["/x"]
    assert gone.new_texts["/x"].count("\n") == text.count("\n")


def test_xen_cfg_adds_options_line_and_keeps_comments():
    text = read("no-options.cfg")
    new = cmdline.plan_xen_cfg_edit("/x", text, "noreboot", None).new_texts["/x"]
    assert "[xen]\noptions=noreboot\nkernel=vmlinuz root=/dev/sda2 ro   # dom0 kernel\n" in new
    assert "; a comment line" in new


def test_xen_cfg_duplicates_collapsed_last_kept():
    text = read("dup-crashkernel.cfg")
    res = cmdline.plan_xen_cfg_edit("/x", text, "crashkernel", "256M<4G")
    assert res.before_cmdline == "crashkernel=64M console=com1 crashkernel=128M@64M " \
                                 "com1=115200 crashkernel=192M"
    assert res.after_cmdline == "console=com1 com1=115200 crashkernel=256M<4G"
    assert "# three, last wins" in res.new_texts["/x"]


@pytest.mark.parametrize("text,section,fragment", [
    ("[x]\noptions=a\n", None, "no default="),
    ("[global]\ndefault=nope\n[x]\noptions=a\n", None, "no section [nope]"),
    ("[global]\ndefault=x\n[x]\noptions=a\noptions=b\n", None, "2 options= lines"),
    ("[global]\ndefault=x\n[x]\noptions=a\tb\n", None, "tab"),
    ("[global]\ndefault=x\n[x]\noptions=a\n", "y", "no section [y]"),
])
def test_xen_cfg_refused(text, section, fragment):
    with pytest.raises(cmdline.XenCfgError) as exc:
        cmdline.plan_xen_cfg_edit("/x", text, "crashkernel", "1M", section=section)
    assert fragment in exc.value.message


# ---------------------------------------------------------------------------------------------
# XCP-ng xen-cmdline (test double of the real script, which cannot run here)
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def xcpng(tmp_path):
    tool = tmp_path / "xen-cmdline"
    shutil.copy(DOUBLE, str(tool))
    (tmp_path / "xen-cmdline.state").write_text(
        "dom0_mem=4304M,max:4304M watchdog ucode=scan dom0_max_vcpus=1-16 crashkernel=256M,below=4G "
        "console=vga vga=mode-0x0311 crashkernel=512M\n")
    return hostio.Host(run=real_run), str(tool)


def test_xen_cmdline_tool_set_collapses(xcpng):
    host, tool = xcpng
    plan = cmdline.plan_xen_cmdline_tool(host, "crashkernel", "256M<4G", tool=tool)
    assert plan.commands == [[tool, "--delete-xen", "crashkernel"],
                             [tool, "--set-xen", "crashkernel=256M<4G"]]
    after = cmdline.run_xen_cmdline_tool(host, plan.commands, tool=tool)
    assert after == plan.after_cmdline
    assert cmdline.tokenize(after).count("crashkernel=256M<4G") == 1
    again = cmdline.plan_xen_cmdline_tool(host, "crashkernel", "256M<4G", tool=tool)
    assert again.changed is False and again.commands == []


def test_xen_cmdline_tool_flag_and_absent(xcpng):
    host, tool = xcpng
    plan = cmdline.plan_xen_cmdline_tool(host, "watchdog", None, "absent", tool=tool)
    assert plan.commands == [[tool, "--delete-xen", "watchdog"]]
    assert "watchdog" not in cmdline.run_xen_cmdline_tool(host, plan.commands, tool=tool).split()
    plan = cmdline.plan_xen_cmdline_tool(host, "noreboot", None, tool=tool)
    assert cmdline.run_xen_cmdline_tool(host, plan.commands, tool=tool).endswith(" noreboot")


def test_xen_cmdline_tool_failure(tmp_path):
    host = hostio.Host(run=real_run)
    with pytest.raises(cmdline.XenCmdlineToolError):
        cmdline.plan_xen_cmdline_tool(host, "a", None, tool=str(tmp_path / "missing"))
