# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit report as a person sees it: rendered by the real playbook tasks, loaded in a real
headless Chromium, rows and cells asserted on the DOM the browser built, screenshot kept in
tests/output/audit-report.png.  Also runs playbooks/audit.yml itself (in check mode) against
this machine (not a Xen dom0) and an unreachable host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
OUTPUT = REPO / "tests" / "output"
VENV_BIN = Path(sys.executable).parent


def _chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _env() -> Dict[str, str]:
    link = REPO / "molecule" / "common" / "link-collection.sh"
    subprocess.run([str(link)], check=True, stdout=subprocess.DEVNULL)
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(REPO / ".build" / "collections")
    env["PATH"] = "%s:%s" % (VENV_BIN, env.get("PATH", ""))
    env["ANSIBLE_NOCOLOR"] = "1"
    env.pop("ANSIBLE_CONFIG", None)
    return env


def _playbook(args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    cmd = [str(VENV_BIN / "ansible-playbook")] + args
    proc = subprocess.run(cmd, cwd=str(cwd), env=_env(), stdout=subprocess.PIPE, check=False,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    return proc


def _browser(html: Path, *extra: str) -> str:
    chromium = _chromium()
    profile = tempfile.mkdtemp(prefix="xenkdump-chromium-")
    try:
        proc = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--user-data-dir=%s" % profile, "--window-size=1280,800"] + list(extra) + [html.as_uri()],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class _Rows(HTMLParser):
    """Collects <tr> of the audit table's tbody: attributes and (class, text) of each cell."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: List[Dict] = []
        self.counts: Dict[str, str] = {}
        self._in_body = False
        self._cell: Optional[Dict] = None
        self._count_id: Optional[str] = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append({"attrs": a, "cells": []})
        elif tag == "td" and self._in_body:
            self._cell = {"class": a.get("class", ""), "text": "", "pills": []}
            self.rows[-1]["cells"].append(self._cell)
        elif tag == "span" and self._cell is not None and "pill" in (a.get("class") or ""):
            self._cell["pills"].append(a["class"])
        elif tag == "b" and (a.get("id") or "").startswith("count-"):
            self._count_id = a["id"]

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._count_id:
            self.counts[self._count_id] = data.strip()
            self._count_id = None


needs_browser = pytest.mark.skipif(_chromium() is None, reason="chromium not installed (apt-get install chromium)")


@needs_browser
def test_report_in_headless_chromium(tmp_path):
    out = tmp_path / "report"
    proc = _playbook([str(HERE / "audit" / "render.yml"), "-e", "xenkdump_repo=%s" % REPO,
                      "-e", "xenkdump_audit_dir=%s" % out], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    html = out / "xenkdump-audit.html"
    data = json.loads((out / "xenkdump-audit.json").read_text())
    hosts = ["xen-a.example", "xen-b.example", "xen-c.example", "web-1.example", "xen-d.example"]
    assert [h["host"] for h in data["hosts"]] == hosts

    dom = _browser(html, "--dump-dom")
    parser = _Rows()
    parser.feed(dom)
    rows = {r["attrs"]["data-host"]: r for r in parser.rows}
    assert list(rows) == ["xen-a.example", "xen-b.example", "xen-c.example", "web-1.example", "xen-d.example"]
    for row in parser.rows:
        assert len(row["cells"]) == 10, row
    assert parser.counts == {"count-ok": "1", "count-warn": "1", "count-bad": "2", "count-na": "1"}

    def cell(host: str, cls: str) -> Dict:
        return next(c for c in rows[host]["cells"] if cls in c["class"].split())

    # healthy dom0: green everywhere
    assert rows["xen-a.example"]["attrs"]["class"] == "level-ok"
    assert cell("xen-a.example", "verdict")["pills"] == ["pill ok"]
    assert cell("xen-a.example", "reserved")["text"].strip() == "256 MB"
    assert cell("xen-a.example", "loaded")["text"].strip() == "yes"
    assert cell("xen-a.example", "action")["text"].strip() == "none"
    assert "xen-dom0, room ok" in cell("xen-a.example", "capture")["text"]
    # region too small: red verdict, reserved vs recommended shown, action says what to do
    assert rows["xen-b.example"]["attrs"]["class"] == "level-bad"
    assert cell("xen-b.example", "verdict")["text"].strip() == "too_small"
    assert cell("xen-b.example", "verdict")["pills"] == ["pill bad"]
    assert cell("xen-b.example", "reserved")["text"].strip() == "128 MB"
    assert "512 MB" in cell("xen-b.example", "recommended")["text"]
    assert "reboot" in cell("xen-b.example", "action")["text"]
    assert cell("xen-b.example", "capture")["pills"] == ["pill bad"]
    # region fine, not loaded: amber row
    assert rows["xen-c.example"]["attrs"]["class"] == "level-warn"
    assert cell("xen-c.example", "loaded")["pills"] == ["pill bad"]
    # not a dom0: grey, n/a
    assert rows["web-1.example"]["attrs"]["class"] == "level-na"
    assert cell("web-1.example", "dom0")["text"].strip() == "no"
    assert cell("web-1.example", "verdict")["text"].strip() == "n/a"
    # unreachable
    assert "unreachable" in cell("xen-d.example", "host")["text"]

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "audit-report.png"
    if shot.exists():
        shot.unlink()
    _browser(html, "--screenshot=%s" % shot, "--hide-scrollbars")
    assert shot.exists() and shot.stat().st_size > 20000  # a blank page is a few KB


def test_audit_playbook_check_mode_on_this_machine(tmp_path):
    """audit.yml against this machine (not a dom0) and a host that cannot be reached, in check mode."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[fleet]\n"
        "localhost ansible_connection=local ansible_python_interpreter=%s\n"
        "gone.invalid ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh ansible_ssh_timeout=3\n"
        % sys.executable)
    out = tmp_path / "report"
    proc = _playbook(["-i", str(inventory), str(REPO / "playbooks" / "audit.yml"), "--check",
                      "-e", "xenkdump_audit_dir=%s" % out], cwd=tmp_path)
    # the unreachable host makes the run exit non-zero (4); the report is still written
    assert proc.returncode in (0, 2, 4), proc.stdout[-3000:]
    data = json.loads((out / "xenkdump-audit.json").read_text())
    rows = {r["host"]: r for r in data["hosts"]}
    assert set(rows) == {"localhost", "gone.invalid"}, proc.stdout[-3000:]
    assert rows["localhost"]["reachable"] is True
    assert rows["localhost"]["is_dom0"] is False
    assert rows["localhost"]["level"] == "na"
    assert rows["localhost"]["action"].startswith("none: not a Xen dom0")
    assert rows["localhost"]["capture_mode"] == "non-dom0" and rows["localhost"]["planned_makedump_args"] == "-c -d 0"
    assert rows["localhost"]["room_verdict"] == "unchecked"
    assert rows["gone.invalid"]["reachable"] is False
    assert rows["gone.invalid"]["level"] == "bad"
    assert (out / "xenkdump-audit.html").read_text().count("<tr class=\"level-") == 2


def _dom0_facts(**over):
    facts = {"is_xen": True, "is_dom0": True, "guest_type": "PV", "reason": "", "xen_version": "4.17.7",
             "host_memory_mb": 3071, "host_free_memory_mb": 1758, "dom0_memory_mb": 1024, "domains": [],
             "crash_region": {"reserved": True, "size_mb": 256, "start_hex": "0x4000000"},
             "crash_kernel": {"loaded": True, "source": "record"},
             "makedumpfile": {"present": True, "version": "1.7.2", "known": True,
                              "compressors": {"zlib": True, "lzo": True, "snappy": False, "zstd": False}},
             "dump_target": {"path": "/var/crash", "free_bytes": 2400 * 1024 * 1024, "dumps": []},
             "known_issues": []}
    facts.update(over)
    return facts


def test_audit_row_makedump_args_and_room_on_a_dom0(tmp_path):
    """audit-row.j2 on dom0 facts: the shared MAKEDUMP_ARGS rule, the planned mode, the room, known issues."""
    small = _dom0_facts(dump_target={"path": "/var/crash", "free_bytes": 100 * 1024 * 1024, "dumps": []})
    bad_xen = _dom0_facts(xen_version="4.21.1", known_issues=[{
        "id": "xen-4.21-kexec-parked-cpus", "component": "xen", "version": "4.21.1", "affected": ["4.21.0", "4.21.1"],
        "fixed_in": ["4.21.2", "4.22.0"], "summary": "#GP", "fix": "update the hypervisor to Xen 4.21.2"}])
    cases = [{"name": "lzo", "facts": _dom0_facts(), "args": "-l -X -d 1"},
             {"name": "zstd", "facts": _dom0_facts(), "args": "-z -X -d 1"},
             {"name": "level31", "facts": _dom0_facts(), "args": "-c -d 31 --xen-syms /boot/xen-syms"},
             {"name": "small", "facts": small, "args": "-l -X -d 1"},
             {"name": "badxen", "facts": bad_xen, "args": "-l -X -d 1"}]
    out = tmp_path / "rows"
    out.mkdir()
    extra = tmp_path / "cases.json"
    extra.write_text(json.dumps({"cases": cases}))
    proc = _playbook([str(HERE / "audit" / "render-rows.yml"), "-e", "xenkdump_repo=%s" % REPO, "-e", "out=%s" % out,
                      "-e", "@%s" % extra], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    row = {c["name"]: json.loads((out / ("row-%s.json" % c["name"])).read_text()) for c in cases}
    assert row["lzo"]["capture_ok"] is True and row["lzo"]["level"] == "ok", row["lzo"]
    assert row["lzo"]["capture_mode"] == "xen-dom0" and row["lzo"]["planned_makedump_args"] == "-l -X -d 1"
    assert row["lzo"]["room_verdict"] == "ok" and row["lzo"]["dump_free_mib"] == 2400
    # zstd is fine on Xen, but this makedumpfile has no zstd
    assert row["zstd"]["capture_ok"] is False and "built without zstd" in row["zstd"]["capture_problems"][0]
    assert row["level31"]["capture_ok"] is False and "--xen-syms does not provide it" in row["level31"]["action"]
    assert row["small"]["room_verdict"] == "refuse" and row["small"]["level"] == "bad"
    assert "has 100 MiB free" in row["small"]["action"]
    assert row["badxen"]["known_issues"] == ["xen-4.21-kexec-parked-cpus"] and row["badxen"]["level"] == "bad"
    assert "update the hypervisor" in row["badxen"]["action"]
