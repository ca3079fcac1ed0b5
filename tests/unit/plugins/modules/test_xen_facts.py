# -*- coding: utf-8 -*-
"""The real xen_facts module, run on this machine (a test host that is not a Xen dom0).

The facts logic on a dom0 is tested on the real fixtures in
tests/unit/plugins/module_utils/test_xen.py (gather() on a fixture sysroot); here the module
itself runs for real: argument parsing, check mode, exit_json / fail_json shapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


from conftest import REPO

import modrun

from ansible_collections.xenkdump.fleet.plugins.modules import xen_facts

pytestmark = pytest.mark.skipif(
    os.path.exists("/proc/xen") or os.path.exists("/sys/hypervisor/type"),
    reason="these tests expect a machine that is not running under Xen")


def run_module(capsys, args):
    return modrun.run_module(capsys, xen_facts.main, args)


def test_reports_not_dom0_without_failing(capsys):
    rc, result = run_module(capsys, {})
    assert rc == 0
    assert result["changed"] is False
    assert "failed" not in result or result["failed"] is False
    facts = result["xen"]
    assert result["ansible_facts"]["xenkdump"] == facts
    assert facts["is_xen"] is False and facts["is_dom0"] is False
    assert facts["guest_type"] == "none"
    assert facts["reason"].startswith("not running under Xen: /sys/hypervisor/type absent")
    assert facts["crash_region"]["source"] == "none"
    assert facts["host_memory_mb"] is None
    with open("/proc/cmdline") as handle:
        assert facts["dom0_cmdline"] == handle.read().strip()


def test_check_mode_same_answer(capsys):
    _rc, normal = run_module(capsys, {})
    rc, checked = run_module(capsys, {"_ansible_check_mode": True})
    assert rc == 0 and checked["changed"] is False
    assert checked["xen"] == normal["xen"]


def test_require_dom0_fails_cleanly(capsys):
    rc, result = run_module(capsys, {"require_dom0": True})
    assert rc == 1
    assert result["failed"] is True
    assert result["error_code"] == "XK102"
    assert result["msg"].startswith("require_dom0 is set but this host is not a Xen dom0: not running under Xen")
    assert "Fix: Run this on the Xen control domain" in result["msg"]
    assert "Traceback" not in json.dumps(result)


def test_bad_option_is_rejected(capsys):
    rc, result = run_module(capsys, {"require_dom0": "perhaps"})
    assert rc == 1 and result["failed"] is True
    assert "require_dom0" in result["msg"]


def test_runs_as_a_module_file():
    """The module file itself, as Ansible runs it (a process, args in a JSON file)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO, ".build", "collections")] + sys.path)
    args = json.dumps({"ANSIBLE_MODULE_ARGS": {}})
    proc = subprocess.run([sys.executable, os.path.join(REPO, "plugins", "modules", "xen_facts.py")],
                          input=args, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["changed"] is False and result["xen"]["is_dom0"] is False


def test_dump_path_is_measured_on_any_host(capsys, tmp_path):
    (tmp_path / "202611261412").mkdir()
    (tmp_path / "202611261412" / "dump.202611261412").write_bytes(b"x" * 4096)
    rc, result = run_module(capsys, {"dump_path": str(tmp_path)})
    assert rc == 0
    target = result["xen"]["dump_target"]
    st = os.statvfs(str(tmp_path))
    assert target["path"] == str(tmp_path) and target["exists"] is True
    assert target["total_bytes"] == st.f_blocks * st.f_frsize
    assert target["dumps"][0]["name"] == "202611261412" and target["dumps"][0]["bytes"] == 4096
    assert result["xen"]["domains"] is None and result["xen"]["known_issues"] == []
