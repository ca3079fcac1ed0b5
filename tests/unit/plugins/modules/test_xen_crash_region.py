# -*- coding: utf-8 -*-
"""The real xen_crash_region module with explicit inputs (runs on any host, like the controller)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


from conftest import REPO

import modrun

from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel as ck
from ansible_collections.xenkdump.fleet.plugins.modules import xen_crash_region

FIXTURE_LINE = "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M crashkernel=256M@64M loglvl=all guest_loglvl=all noreboot"


def run_module(capsys, args):
    return modrun.run_module(capsys, xen_crash_region.main, args)


def explicit(**kw):
    args = {
        "total_memory_mb": 3071,
        "nr_cpus": 2,
        "xen_commandline": FIXTURE_LINE,
        "dom0_cmdline": "root=/dev/vda ro console=hvc0",
        "reserved_mb": 256,
    }
    args.update(kw)
    return args


def test_fixture_host(capsys):
    rc, result = run_module(capsys, explicit())
    assert rc == 0, result
    assert result["changed"] is False and result["inputs_source"] == "explicit"
    assert result["verdict"] == "ok"
    assert result["current"] == "256M@64M" and result["current_size_mb"] == 256
    assert result["reserved_mb"] == 256 and result["required_mb"] <= 256
    assert result["change"] == {"option": "crashkernel", "value": "256M@64M", "state": "unchanged"}
    assert result["reboot_required"] is False
    assert result["reasons"]


def test_check_mode_gives_the_same_plan(capsys):
    _rc, normal = run_module(capsys, explicit())
    rc, checked = run_module(capsys, dict(explicit(), _ansible_check_mode=True))
    assert rc == 0 and checked["changed"] is False
    for key in ("recommended", "verdict", "change", "reasons", "sizing"):
        assert checked[key] == normal[key]


MEMORIES = [2048, 3071, 4096, 8192, 16384, 65536, 262144, 1048576, 2097152, 4194304]
CPUS = [1, 2, 64, 512]


@pytest.mark.parametrize("mem", MEMORIES)
@pytest.mark.parametrize("cpus", CPUS)
def test_fleet_table_missing_reservation(capsys, mem, cpus):
    rc, result = run_module(capsys, explicit(total_memory_mb=mem, nr_cpus=cpus, xen_commandline="console=com1 dom0_mem=2G", reserved_mb=0))
    assert rc == 0, result
    assert result["verdict"] == "missing"
    value = result["recommended"]
    assert value.endswith(",below=4G")
    parsed = ck.parse(value)
    assert ck.reserved_mb(parsed, mem) == result["recommended_size_mb"]
    assert result["recommended_size_mb"] >= result["required_mb"] >= ck.SIZING["floor_mb"]
    assert result["recommended_size_mb"] % ck.SIZING["round_mb"] == 0
    assert result["recommended_size_mb"] <= 1024  # always fits below 4 GiB easily
    assert result["change"] == {"option": "crashkernel", "value": value, "state": "present"}
    assert result["reboot_required"] is True
    # applying the recommendation and rebooting gives verdict ok and no further change
    rc, after = run_module(
        capsys,
        explicit(total_memory_mb=mem, nr_cpus=cpus, xen_commandline="console=com1 crashkernel=" + value, reserved_mb=result["recommended_size_mb"]),
    )
    assert after["verdict"] == "ok", after["reasons"]
    assert after["change"]["state"] == "unchanged" and after["reboot_required"] is False


def test_fleet_table_is_monotonic(capsys):
    sizes = []
    for mem in MEMORIES:
        _rc, result = run_module(capsys, explicit(total_memory_mb=mem, nr_cpus=64, xen_commandline=""))
        sizes.append(result["recommended_size_mb"])
    assert sizes == sorted(sizes)
    assert sizes[0] == 176 and sizes[-1] > 256


@pytest.mark.parametrize(
    "args,code",
    [
        ({"size": "512Q"}, "XK201"),
        ({"size": "0-:256M,below=4G"}, "XK204"),
        ({"size": "512M@5G"}, "XK211"),
        ({"total_memory_mb": 0}, "XK210"),
        ({"nr_cpus": 0}, "XK210"),
        ({"headroom_mb": -1}, "XK210"),
    ],
)
def test_bad_input_fails_cleanly(capsys, args, code):
    rc, result = run_module(capsys, explicit(**args))
    assert rc == 1
    assert result["failed"] is True and result["error_code"] == code
    assert "Fix:" in result["msg"] and "Traceback" not in json.dumps(result)


@pytest.mark.skipif(os.path.exists("/proc/xen") or os.path.exists("/sys/hypervisor/type"), reason="expects a machine that is not running under Xen")
def test_missing_inputs_on_a_non_dom0_fail_with_xk212(capsys):
    rc, result = run_module(capsys, {"total_memory_mb": 4096})
    assert rc == 1 and result["error_code"] == "XK212"
    assert "nr_cpus" in result["msg"] and "xen_commandline" in result["msg"]


def test_runs_as_a_standalone_process_on_the_controller(tmp_path):
    """The module file itself, as Ansible would run it on localhost, with an args file."""
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": explicit(total_memory_mb=262144, nr_cpus=64, xen_commandline="", reserved_mb=None)}))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "plugins", "modules", "xen_crash_region.py"), str(args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "missing" and result["recommended"] == "192M,below=4G"


def test_print_figures_table(capsys):
    """Host RAM -> recommended value -> MiB (printed with -s for the report)."""
    rows = ck.figures_table(MEMORIES, nr_cpus=64)
    with capsys.disabled():
        print("\nhost RAM MiB | recommended | MiB | need MiB")
        for row in rows:
            print("%12d | %-15s | %4d | %4d" % (row["total_memory_mb"], row["recommended"], row["recommended_size_mb"], row["required_mb"]))
    assert [r["recommended_size_mb"] for r in rows] == sorted(r["recommended_size_mb"] for r in rows)
