# -*- coding: utf-8 -*-
"""The real xen_cmdline module, run in-process on temp copies (path: points at them)."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from ansible.module_utils.testing import patch_module_args

from conftest import REPO

from ansible_collections.xenkdump.fleet.plugins.modules import xen_cmdline

sys.path.insert(0, os.path.join(REPO, "tests", "unit", "plugins", "module_utils"))
from test_cmdline_corpus import REFUSE_CASES, V, source_with, write_tree  # noqa: E402

DATA = os.path.join(REPO, "tests", "unit", "data")


def run(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            xen_cmdline.main()
    return exc.value.code, json.loads(capsys.readouterr().out)


def snapshot(paths):
    return {p: (open(p, "rb").read(), os.stat(p).st_mtime_ns) for p in paths}


def debian_tree(tmp_path):
    src = os.path.join(DATA, "grub", "debian12", "etc", "default")
    dst = tmp_path / "etc" / "default"
    shutil.copytree(src, str(dst))
    os.chmod(str(dst / "grub"), 0o640)
    return str(dst / "grub")


def test_grub_set_check_mode_idempotent_backup(capsys, tmp_path):
    path = debian_tree(tmp_path)
    files = [path] + [os.path.join(path + ".d", n) for n in os.listdir(path + ".d")]
    before = snapshot(files)
    args = {"option": "crashkernel", "value": "256M<4G", "path": path, "distro_family": "Debian"}
    rc, res = run(capsys, dict(args, _ansible_check_mode=True))
    assert rc == 0 and res["changed"] is True
    assert res["cmdline"] == "crashkernel=256M<4G" and res["files_changed"] == [path]
    assert snapshot(files) == before                          # check mode: 0 bytes written
    assert len(res["diff"]) == 2 and res["diff"][1]["before_header"] == path
    assert res["bootloader"]["kind"] == "grub"

    rc, res = run(capsys, dict(args, backup=True))
    assert rc == 0 and res["changed"] is True and res["file"] == path
    assert os.path.exists(res["backup_file"])
    assert open(res["backup_file"], "rb").read() == before[path][0]
    assert os.stat(path).st_mode & 0o777 == 0o640             # mode kept
    vals = source_with("bash", path)
    assert vals[V] == "crashkernel=256M\\<4G"
    assert "crashkernel=384M-:128M" in vals["GRUB_CMDLINE_LINUX_DEFAULT"]  # kdump-tools' untouched
    assert res["diff"][0]["after"] == "crashkernel=256M<4G\n"

    after_first = snapshot(files)
    rc, res = run(capsys, args)
    assert rc == 0 and res["changed"] is False and res["files_changed"] == []
    assert snapshot(files) == after_first

    rc, res = run(capsys, dict(args, state="absent"))
    assert res["changed"] is True and res["cmdline"] == ""
    rc, res = run(capsys, dict(args, state="absent"))
    assert res["changed"] is False


@pytest.mark.parametrize("case", REFUSE_CASES, ids=[c[0] for c in REFUSE_CASES])
def test_refused_file_untouched(capsys, tmp_path, case):
    _id, main, snippets = case
    path = write_tree(str(tmp_path), main, snippets)
    files = [path] + [os.path.join(path + ".d", n) for n in os.listdir(path + ".d")]
    before = snapshot(files)
    rc, res = run(capsys, {"option": "crashkernel", "value": "256M<4G", "path": path,
                           "bootloader": "grub", "backup": True})
    assert rc == 1 and res["failed"] is True
    assert res["error_code"].startswith("XK30") and "Fix:" in res["msg"]
    assert snapshot(files) == before
    assert sorted(os.listdir(os.path.dirname(path))) == ["grub", "grub.d"]  # no temp/backup left


def test_xen_cfg_via_auto_path(capsys, tmp_path):
    cfg = tmp_path / "xen.cfg"
    shutil.copy(os.path.join(DATA, "xen_cfg", "debian-efi-xen.cfg"), str(cfg))
    rc, res = run(capsys, {"option": "crashkernel", "value": "256M<4G", "path": str(cfg),
                           "_ansible_check_mode": True})
    assert rc == 0 and res["changed"] and res["bootloader"]["kind"] == "xen_cfg"
    assert res["regenerate"] == []
    rc, res = run(capsys, {"option": "crashkernel", "value": "256M<4G", "path": str(cfg)})
    assert "crashkernel=256M<4G" in cfg.read_text()
    rc, res = run(capsys, {"option": "crashkernel", "value": "256M<4G", "path": str(cfg)})
    assert res["changed"] is False


def test_xen_cmdline_tool(capsys, tmp_path):
    tool = tmp_path / "xen-cmdline"
    shutil.copy(os.path.join(DATA, "xen_cfg", "xen-cmdline-double"), str(tool))
    state = tmp_path / "xen-cmdline.state"
    state.write_text("dom0_mem=4304M,max:4304M crashkernel=128M watchdog\n")
    args = {"option": "crashkernel", "value": "256M,below=4G", "path": str(tool)}
    rc, res = run(capsys, dict(args, _ansible_check_mode=True))
    assert res["changed"] and res["commands"] == [[str(tool), "--set-xen", "crashkernel=256M,below=4G"]]
    assert state.read_text() == "dom0_mem=4304M,max:4304M crashkernel=128M watchdog\n"
    rc, res = run(capsys, args)
    assert res["cmdline"] == "dom0_mem=4304M,max:4304M crashkernel=256M,below=4G watchdog"
    rc, res = run(capsys, args)
    assert res["changed"] is False


def test_bad_value_fails_cleanly(capsys, tmp_path):
    path = write_tree(str(tmp_path), "")
    rc, res = run(capsys, {"option": "crashkernel", "value": "256M 4G", "path": path})
    assert rc == 1 and res["error_code"] == "XK300" and "position 4" in res["msg"]
