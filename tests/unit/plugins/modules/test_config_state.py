# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""config_state's real main(), in-process, on real files."""

from __future__ import annotations

from ansible_collections.xenkdump.fleet.plugins.modules import config_state
from modrun import run_module


def test_module_reads_and_never_changes(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("hello\n")
    f.chmod(0o644)
    before = f.stat()
    rc, res = run_module(capsys, config_state.main, {
        "files": [{"path": str(f), "content": "hello\n", "mode": "0644"},
                  {"path": str(tmp_path / "g"), "content": "x"}],
        "directories": [{"path": str(tmp_path), "mode": "%04o" % (tmp_path.stat().st_mode & 0o7777)}],
        "_ansible_check_mode": True,
    })
    assert rc == 0 and res["changed"] is False
    assert res["files"][str(f)]["drift"] is False
    assert res["files"][str(tmp_path / "g")]["reasons"] == ["missing"]
    assert res["drifted_paths"] == [str(tmp_path / "g")]
    assert res["directories"][str(tmp_path)]["drift"] is False
    assert f.stat().st_mtime_ns == before.st_mtime_ns and not (tmp_path / "g").exists()


def test_module_bad_input_fails_with_code(tmp_path, capsys):
    rc, res = run_module(capsys, config_state.main, {"files": [{"path": "relative"}]})
    assert rc == 1 and res["failed"] is True and res["error_code"] == "XK601"
