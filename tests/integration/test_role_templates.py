# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kdump role's templates rendered by Ansible with dom0-like inputs (the dom0 path cannot
run in a container): the kdump-tools file is read back by /bin/sh like kdump-config does,
the GRUB override is sourced like grub-mkconfig does, and the verification logic is run on
ready / pending / broken dom0 cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("role-render")
    # verify.j2 calls the collection's makedump_args_problems filter: the checkout as xenkdump.fleet
    subprocess.run([str(REPO / "molecule" / "common" / "link-collection.sh")], check=True, stdout=subprocess.DEVNULL)
    env = dict(os.environ, PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".build" / "collections"))
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), str(HERE / "role" / "render.yml"),
                           "-e", "xenkdump_repo=%s" % REPO, "-e", "out=%s" % out],
                          cwd=str(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                          universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return out


def sh(script: str, env=None) -> str:
    return subprocess.run(["/bin/sh", "-c", script], stdout=subprocess.PIPE, check=True,
                          universal_newlines=True, env=env or {"PATH": "/usr/bin:/bin"}).stdout


def source(path: Path, *names: str) -> list:
    fmt = "|".join(["%s"] * len(names))
    out = sh('set -eu; . "%s"; printf "%s" %s' % (path, fmt, " ".join('"${%s-UNSET}"' % n for n in names)))
    return out.split("|")


def test_kdump_tools_is_shell_and_quotes_survive(out):
    for target in ("local", "nfs", "ssh"):
        text = (out / ("kdump-tools." + target)).read_text()
        for line in text.splitlines():
            if line and not line.startswith("#"):
                assert " = " not in line and line.split("=", 1)[0].isupper(), line
    assert source(out / "kdump-tools.local", "USE_KDUMP", "MAKEDUMP_ARGS", "KDUMP_COREDIR", "KDUMP_DUMP_DMESG",
                  "KDUMP_NUM_DUMPS", "KDUMP_CMDLINE", "KDUMP_CMDLINE_APPEND", "SSH", "NFS", "KDUMP_COMPRESSION") == [
        "1", "-c -d 0", "/srv/crash dumps/$HOST", "0", "3",
        "root=/dev/vda ro console=ttyS0,115200 irqpoll nr_cpus=1 reset_devices systemd.unit=kdump-tools-dump.service",
        "", "UNSET", "UNSET", "zstd"]
    assert source(out / "kdump-tools.ssh", "SSH", "SSH_KEY", "HOSTTAG", "KDUMP_COREDIR", "NFS") == [
        "kdump@dumps.example.org", "/root/.ssh/kdump_id_ed25519", "hostname", "/srv/crash dumps/$HOST", "UNSET"]
    assert source(out / "kdump-tools.nfs", "NFS", "NFS_TIMEO", "NFS_RETRANS", "KDUMP_COREDIR", "SSH") == [
        "nfs.example.org:/srv/crash dumps/$HOST", "600", "3", "/var/crash", "UNSET"]


KDUMP_TOOLS_CFG = 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT crashkernel=384M-:128M"\n'


@pytest.mark.parametrize("linux, default, want_default, want_linux", [
    ("", "quiet", "quiet", " "),
    ("console=tty0 crashkernel=256M", "", " ", "console=tty0"),
    ("a=*", "quiet splash", "quiet splash", "a=*"),
])
def test_grub_override_strips_crashkernel_for_xen_entries_only(out, tmp_path, linux, default, want_default, want_linux):
    kd = tmp_path / "kdump-tools.cfg"
    kd.write_text(KDUMP_TOOLS_CFG)
    (tmp_path / "a=x").write_text("")  # a glob that would match if the override globbed
    script = ('cd "%s"; GRUB_CMDLINE_LINUX="%s"; GRUB_CMDLINE_LINUX_DEFAULT="%s"; . "%s"; . "%s"; '
              'printf "%%s|%%s|%%s" "$GRUB_CMDLINE_LINUX_DEFAULT" "$GRUB_CMDLINE_LINUX_XEN_REPLACE_DEFAULT" '
              '"$GRUB_CMDLINE_LINUX_XEN_REPLACE"; case $- in *f*) echo "|noglob left on";; esac'
              % (tmp_path, linux, default, kd, out / "grub-xen-override.cfg"))
    plain, xen_default, xen_linux = sh(script).split("|")
    assert "crashkernel=384M-:128M" in plain  # plain Linux entries keep kdump-tools' setting
    assert xen_default == want_default
    assert xen_linux == want_linux


def test_units_and_hook(out):
    unit = (out / "xenkdump-load.service").read_text()
    # no Condition on /proc/xen: at boot the unit may start before xenfs is mounted (the loader decides)
    assert not [line for line in unit.splitlines() if line.startswith("Condition")], unit
    for needle in ("Type=oneshot", "RemainAfterExit=yes",
                   "After=proc-xen.mount xenstored.service xen-init-dom0.service",
                   "ExecStart=/usr/libexec/xenkdump/xenkdump-load start /etc/xenkdump/crash-kernel.json",
                   "ExecStop=/usr/libexec/xenkdump/xenkdump-load stop /etc/xenkdump/crash-kernel.json"):
        assert needle in unit
    assert "ExecCondition=/usr/libexec/xenkdump/xenkdump-load is-not-dom0" in (out / "kdump-tools-xen.conf").read_text()
    subprocess.run(["/bin/sh", "-n", str(out / "kernel-postinst-hook")], check=True)


def verify(out, name):
    return json.loads((out / ("verify-%s.json" % name)).read_text())


def test_verify_ready_dom0(out):
    v = verify(out, "ready")
    assert v["ok"] is True and v["problems"] == [] and v["pending"] == [] and v["is_dom0"] is True


def test_verify_pending_reboot_is_not_a_failure(out):
    v = verify(out, "pending-reboot")
    assert v["ok"] is True, v
    assert any("next boot" in p for p in v["pending"]) and any("not loaded" in p for p in v["pending"])


def test_verify_missing_region_without_planned_reboot_fails(out):
    v = verify(out, "missing-no-reboot-planned")
    assert v["ok"] is False
    assert any("no crash region" in p and "no crashkernel=" in p for p in v["problems"]), v
    assert any("not loaded into Xen" in p for p in v["problems"])


def test_verify_region_too_small(out):
    v = verify(out, "too-small")
    assert v["problems"] == ["crash region is 128 MB, 230 MB needed"]


def test_verify_capture_config_that_writes_empty_dumps(out):
    problems = " / ".join(verify(out, "bad-capture")["problems"])
    assert "USE_KDUMP is not 1" in problems
    assert '"KEY = value"' in problems
    assert "-d 31" in problems and "empty dump" in problems
    assert "hvc0" in problems
    assert "not loaded into Xen" in problems


def test_verify_foreign_toggle(out):
    assert any("status bit disagrees" in p for p in verify(out, "foreign-toggle")["problems"])


CAPTURE_CASES = json.loads((HERE / "role" / "capture-cases.json").read_text())


@pytest.mark.parametrize("case", CAPTURE_CASES, ids=lambda c: c["name"])
def test_capture_plan_reaches_kdump_tools(out, case):
    """MAKEDUMP_ARGS as kdump-config reads it (the shell), from the capture_plan filter."""
    path = out / ("kdump-tools.capture-" + case["name"])
    assert source(path, "MAKEDUMP_ARGS", "KDUMP_NUM_DUMPS") == [case["want"], "3"]
    # and the comment names the mode it came from
    assert "(mode: %s)" % ("explicit" if case["vars"].get("xenkdump_makedump_args") else
                           ("non-dom0" if not case["facts"]["is_dom0"] else
                            ("xen-dom0" if "-X" in case["want"] else "full"))) in path.read_text()


@pytest.mark.parametrize("name, args", [("ready-lzo", "-l -X -d 1"), ("ready-zstd", "-z -X -d 1"),
                                        ("old-xen-syms-default", "-c -X --xen-syms /usr/lib/debug/xen-syms")])
def test_verify_accepts_what_works_on_xen(out, name, args):
    v = verify(out, name)
    assert v["ok"] is True and v["problems"] == [], v


def test_verify_shows_mode_and_room(out):
    v = verify(out, "ready-lzo")
    assert v["capture"] == {"mode": "xen-dom0", "args": "-l -X -d 1", "reason": "auto: makedumpfile 1.7.2: lzo"}
    assert v["room"]["verdict"] == "ok" and v["room"]["need_mib"] == 1322 and v["room"]["free_mib"] == 2400
    warn = verify(out, "ready-zstd")
    assert warn["ok"] is True and any(n.startswith("dump room: does not fit") for n in warn["notes"])
    assert verify(out, "ready")["capture"] == {"mode": None, "args": None, "reason": None}


@pytest.mark.parametrize("name, needle", [
    ("syms-level-31", "dump level 31 needs dom0's Linux vmcoreinfo, which a Xen dump lacks (--xen-syms does not provide it)"),
    ("elf-compressed", "refuses -E (ELF output) with a compression flag"),
    ("zstd-not-built", "built without zstd"),
])
def test_verify_flags_what_fails_on_xen(out, name, needle):
    v = verify(out, name)
    assert v["ok"] is False and any(needle in p for p in v["problems"]), v
