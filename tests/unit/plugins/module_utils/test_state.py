# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""state.read_state on a sysroot with a scripted command runner (argv lists, no shell)."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.xenkdump.fleet.plugins.module_utils import state
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import CommandResult, Host

UID = os.getuid()
GID = os.getgid()


def make_host(tmp_path, answers=None):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nme:x:%d:%d::/:/bin/sh\n" % (UID, GID))
    (root / "etc/group").write_text("root:x:0:\nus:x:%d:\n" % GID)
    for tool in ("dpkg-query", "rpm", "debconf-show", "systemctl"):
        (root / "usr/bin").mkdir(parents=True, exist_ok=True)
        (root / "usr/bin" / tool).write_text("")
        (root / "usr/bin" / tool).chmod(0o755)
    calls = []

    def run(argv):
        calls.append(list(argv))
        for prefix, res in (answers or {}).items():
            if os.path.basename(argv[0]) == prefix:
                return res
        return CommandResult(0, "", "")

    return Host(run=run, root=str(root)), root, calls


def write(root, path, text, mode=0o644):
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    p.chmod(mode)
    return p


def test_files_exact_comparison(tmp_path):
    host, root, dummy = make_host(tmp_path)
    write(root, "/etc/a", "same\n")
    write(root, "/etc/b", "old\n")
    write(root, "/etc/c", "same\n", 0o600)
    (root / "etc/d").mkdir()
    res = state.read_state(host, files=[
        {"path": "/etc/a", "content": "same\n", "mode": "0644", "owner": "me", "group": "us"},
        {"path": "/etc/b", "content": "new\n", "mode": "0644"},
        {"path": "/etc/c", "content": "same\n", "mode": "0644"},
        {"path": "/etc/d", "content": "x"},
        {"path": "/etc/missing", "sha256": hashlib.sha256(b"x").hexdigest()},
        {"path": "/etc/a2", "content": "same\n"},
    ])
    f = res["files"]
    assert f["/etc/a"]["drift"] is False and f["/etc/a"]["reasons"] == []
    assert f["/etc/a"]["sha256"] == hashlib.sha256(b"same\n").hexdigest()
    assert f["/etc/b"]["reasons"] == ["content differs"]
    assert f["/etc/c"]["reasons"] == ["mode is 0600, wanted 0644"]
    assert f["/etc/d"]["reasons"] == ["not a regular file"]
    assert f["/etc/missing"]["reasons"] == ["missing"] and f["/etc/missing"]["exists"] is False
    assert res["drifted_paths"] == ["/etc/a2", "/etc/b", "/etc/c", "/etc/d", "/etc/missing"]
    assert res["drift"] is True


def test_owner_and_group(tmp_path):
    host, root, dummy = make_host(tmp_path)
    write(root, "/etc/a", "x")
    res = state.read_state(host, files=[{"path": "/etc/a", "content": "x", "owner": "root" if UID else "me",
                                         "group": "nosuchgroup"}])
    reasons = res["files"]["/etc/a"]["reasons"]
    if UID:
        assert any(r.startswith("owner is uid") for r in reasons)
    assert any(r.startswith("group is gid") and "nosuchgroup" in r for r in reasons)
    ok = state.read_state(host, files=[{"path": "/etc/a", "content": "x", "owner": str(UID), "group": str(GID)}])
    assert ok["drift"] is False


def test_directories(tmp_path):
    host, root, dummy = make_host(tmp_path)
    (root / "var/crash").mkdir(parents=True)
    (root / "var/crash").chmod(0o700)
    write(root, "/etc/notdir", "")
    res = state.read_state(host, directories=[{"path": "/var/crash", "mode": "0755"}, {"path": "/etc/notdir"},
                                              {"path": "/nope"}, {"path": "/etc", "owner": "me"}])
    d = res["directories"]
    assert d["/var/crash"]["reasons"] == ["mode is 0700, wanted 0755"]
    assert d["/etc/notdir"]["reasons"] == ["not a directory"]
    assert d["/nope"]["reasons"] == ["missing"]
    assert d["/etc"]["drift"] is False


def test_packages_dpkg(tmp_path):
    out = "kexec-tools installed\nkdump-tools config-files\nmakedumpfile installed\n"
    host, dummy, calls = make_host(tmp_path, {"dpkg-query": CommandResult(1, out, "dpkg-query: no packages found matching nfs-common\n")})
    res = state.read_state(host, packages=["kexec-tools", "kdump-tools", "makedumpfile", "nfs-common"], pkg_mgr="apt")
    assert res["packages"]["missing"] == ["kdump-tools", "nfs-common"]
    assert res["packages"]["installed"] == ["kexec-tools", "makedumpfile"]
    assert calls == [["/usr/bin/dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n",
                      "kexec-tools", "kdump-tools", "makedumpfile", "nfs-common"]]
    assert res["drift"] is True


def test_packages_rpm(tmp_path):
    out = "kexec-tools\npackage makedumpfile is not installed\n"
    host, dummy, calls = make_host(tmp_path, {"rpm": CommandResult(1, out, "")})
    res = state.read_state(host, packages=["kexec-tools", "makedumpfile"], pkg_mgr="zypper")
    assert res["packages"]["missing"] == ["makedumpfile"]
    assert calls[0][:4] == ["/usr/bin/rpm", "-q", "--qf", "%{NAME}\n"]


def test_debconf(tmp_path):
    out = ("* kexec-tools/load_kexec: false\n  kexec-tools/use_grub_config: true\n"
           "* kdump-tools/use_kdump: true\n")
    host, dummy, calls = make_host(tmp_path, {"debconf-show": CommandResult(0, out, "")})
    answers = [{"name": "kexec-tools", "question": "kexec-tools/load_kexec", "value": "false"},
               {"name": "kexec-tools", "question": "kexec-tools/use_grub_config", "value": "false"},
               {"name": "kdump-tools", "question": "kdump-tools/use_kdump", "value": "true"}]
    res = state.read_state(host, debconf=answers)
    assert calls == [["/usr/bin/debconf-show", "kdump-tools", "kexec-tools"]]
    assert res["debconf"]["kexec-tools/load_kexec"]["drift"] is False
    assert res["debconf"]["kexec-tools/use_grub_config"] == {"current": "true", "wanted": "false", "drift": True}
    assert res["debconf_drift"] is True and res["drift"] is True


def test_units(tmp_path):
    out = ("Id=xenkdump-load.service\nUnitFileState=enabled\nActiveState=active\n\n"
           "Id=kdump-tools.service\nUnitFileState=disabled\nActiveState=inactive\n")
    host, dummy, calls = make_host(tmp_path, {"systemctl": CommandResult(0, out, "")})
    res = state.read_state(host, units=["xenkdump-load.service", "kdump-tools.service"])
    assert res["units"]["xenkdump-load.service"] == {"unit_file_state": "enabled", "active_state": "active"}
    assert res["units"]["kdump-tools.service"]["unit_file_state"] == "disabled"
    assert calls == [["/usr/bin/systemctl", "show", "--property=Id,UnitFileState,ActiveState",
                      "xenkdump-load.service", "kdump-tools.service"]]
    assert res["drift"] is False  # units are reported, not judged


def test_no_systemd_no_tools(tmp_path):
    host, root, calls = make_host(tmp_path)
    for tool in ("dpkg-query", "debconf-show", "systemctl"):
        (root / "usr/bin" / tool).unlink()
    res = state.read_state(host, packages=["kexec-tools"], debconf=[{"name": "k", "question": "k/q", "value": "1"}],
                           units=["x.service"])
    assert res["packages"]["missing"] == ["kexec-tools"] and calls == []
    assert res["debconf"]["k/q"]["drift"] is True
    assert res["units"]["x.service"]["error"] == "no systemctl"


@pytest.mark.parametrize("kwargs, needle", [
    ({"files": [{"path": "etc/x", "content": ""}]}, "absolute path"),
    ({"files": [{"path": "/etc/x"}]}, "needs content or sha256"),
    ({"files": [{"path": "/etc/x", "content": "", "mode": "644x"}]}, "not an octal"),
    ({"files": [{"path": "/etc/x", "content": "", "mode": "17777"}]}, "out of range"),
    ({"files": ["/etc/x"]}, "must be dicts"),
    ({"directories": [{"mode": "0755"}]}, "absolute path"),
    ({"packages": ["x"], "pkg_mgr": "pacman"}, "not supported"),
    ({"debconf": [{"name": "x", "value": "1"}]}, "needs a question"),
])
def test_bad_input(tmp_path, kwargs, needle):
    host, dummy, dummy2 = make_host(tmp_path)
    with pytest.raises(state.StateInputError) as exc:
        state.read_state(host, **kwargs)
    assert needle in str(exc.value) and "[XK601]" in str(exc.value)


LOAD_KEXEC = {"path": "/etc/default/kexec", "regexp": "^LOAD_KEXEC=", "line": "LOAD_KEXEC=false"}


@pytest.mark.parametrize("text, drift", [
    ("# Defaults for kexec initscript\nLOAD_KEXEC=false\nUSE_GRUB_CONFIG=false\n", False),
    ("LOAD_KEXEC=true\nUSE_GRUB_CONFIG=false\n", True),
    ("LOAD_KEXEC=false\r\n", False),                 # lineinfile ignores the line ending
    ("LOAD_KEXEC=false\nLOAD_KEXEC=true\n", True),   # the last match is the one that counts
    ("LOAD_KEXEC=true\nLOAD_KEXEC=false", True),     # ... and lineinfile adds its missing newline
    ("# LOAD_KEXEC=false\n", True),                  # a comment does not match ^LOAD_KEXEC=
    ("", True),
    ("USE_GRUB_CONFIG=false\nLOAD_KEXEC=false", True),
    ("LOAD_KEXEC=false\rUSE_GRUB_CONFIG=false\r", False),  # old Mac line ends: universal newlines
])
def test_lines_judged_as_lineinfile_judges_them(tmp_path, text, drift):
    host, root, dummy = make_host(tmp_path)
    write(root, "/etc/default/kexec", text)
    res = state.read_state(host, lines=[LOAD_KEXEC])
    entry = res["lines"]["/etc/default/kexec"]
    assert entry["exists"] is True and entry["drift"] is drift, entry
    assert res["drift"] is drift
    assert ("/etc/default/kexec" in res["drifted_paths"]) is drift


def test_lines_missing_file_and_no_regexp(tmp_path):
    host, root, dummy = make_host(tmp_path)
    write(root, "/etc/x.conf", "a=1\nb=2\n")
    res = state.read_state(host, lines=[LOAD_KEXEC, {"path": "/etc/x.conf", "line": "b=2"},
                                        {"path": "/etc/x.conf", "line": "c=3"}])
    assert res["lines"]["/etc/default/kexec"] == {"exists": False, "drift": True, "reasons": ["missing"]}
    x = res["lines"]["/etc/x.conf"]
    assert x["exists"] is True and x["drift"] is True and x["reasons"] == ["wants 'c=3'"]


@pytest.mark.parametrize("spec, needle", [
    ({"path": "etc/kexec", "line": "x"}, "absolute path"),
    ({"path": "/etc/kexec"}, "needs one line"),
    ({"path": "/etc/kexec", "line": "a\nb"}, "needs one line"),
    ({"path": "/etc/kexec", "line": "x", "regexp": "(["}, "does not compile"),
    ("LOAD_KEXEC=false", "must be dicts"),
])
def test_lines_bad_input(tmp_path, spec, needle):
    host, dummy, dummy2 = make_host(tmp_path)
    with pytest.raises(state.StateInputError) as exc:
        state.read_state(host, lines=[spec])
    assert needle in str(exc.value) and "[XK601]" in str(exc.value)
