# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real vmcore_info module on dumps in tmp_path (the real Xen fixtures and generated ones)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest


import coredump_builder as cb
from conftest import REPO, XEN417

import modrun

from ansible_collections.xenkdump.fleet.plugins.modules import vmcore_info

VMCORE_FULL_SIZE = 2952261632


def run_module(capsys, args):
    return modrun.run_module(capsys, vmcore_info.main, args)


@pytest.fixture
def xen_vmcore(tmp_path):
    path = str(tmp_path / "vmcore")
    shutil.copyfile(os.path.join(XEN417, "vmcore-head.bin"), path)
    os.truncate(path, VMCORE_FULL_SIZE)
    return path


def test_real_xen_vmcore(capsys, xen_vmcore):
    rc, result = run_module(capsys, {"path": xen_vmcore, "expect": "xen"})
    assert rc == 0 and result["changed"] is False and not result.get("failed")
    assert result["valid"] is True and result["problems"] == []
    assert result["xen"]["version"] == "4.17" and result["nr_cpus"] == 2
    assert result["xen"]["crash_regs"] == 2 and result["pt_load_count"] == 4
    assert result["size"] == VMCORE_FULL_SIZE and 0 < result["bytes_read"] < 1 << 20
    assert result["contents"]["source"] == "pt_load" and result["contents"]["pages_present"] == 720764
    assert result["candidates"] == [xen_vmcore]


def test_check_mode_identical(capsys, xen_vmcore):
    _rc, normal = run_module(capsys, {"path": xen_vmcore})
    rc, checked = run_module(capsys, {"path": xen_vmcore, "_ansible_check_mode": True})
    assert rc == 0 and checked["changed"] is False
    for key in ("invocation",):
        normal.pop(key, None)
        checked.pop(key, None)
    assert checked == normal
    assert os.path.getsize(xen_vmcore) == VMCORE_FULL_SIZE     # nothing touched


def test_truncated_flattened_dump_fails_with_report(capsys, tmp_path):
    crash = tmp_path / "crash" / "202611261152"
    crash.mkdir(parents=True)
    shutil.copyfile(os.path.join(XEN417, "flat-kdump-dump-head.bin"), str(crash / "dump.202611261152"))
    (crash / "dmesg.202611261152").write_text("[ 0.0] Linux version ...\n")
    rc, result = run_module(capsys, {"path": str(tmp_path / "crash")})
    assert rc == 1 and result["failed"] is True and result["changed"] is False
    assert result["error_code"] == "XK512" and "[XK512] Fix:" in result["msg"]
    assert "truncated" in result["msg"]
    assert result["path"].endswith("dump.202611261152")
    assert result["format"] == "flattened" and result["inner_format"] == "kdump-compressed"
    assert result["truncated"] is True and result["is_xen"] is True and result["kdump"]["nr_cpus"] == 2
    # what it holds: the header facts are there, the cut 1st bitmap cannot be counted
    contents = result["contents"]
    assert (contents["dump_level"], contents["page_size"], contents["max_mapnr"]) == (0, 4096, 0x140000)
    assert contents["pages_present"] is None and contents["domu_pages_excluded"] is None
    assert "1st bitmap (163840 bytes at byte 12288) is cut short" in result["msg"]


def test_flattened_xen_dump_with_domu_pages_excluded(capsys, tmp_path):
    """-c -X -d 1 on a 16 MiB host: pfns 1000..1999 (a domU) left out of the 2nd bitmap."""
    mapnr = 4096
    image = cb.kdump_compressed(notes=cb.xen_notes(), max_mapnr=mapnr, dumpable_pages=3096, dump_level=1,
                                bitmap1=cb.pfn_bitmap([(0, mapnr)], mapnr),
                                bitmap2=cb.pfn_bitmap([(0, 1000), (2000, mapnr)], mapnr))
    (tmp_path / "dump.202611261152").write_bytes(cb.flatten(image))
    rc, result = run_module(capsys, {"path": str(tmp_path), "expect": "xen"})
    assert rc == 0 and result["valid"] is True, result.get("msg")
    contents = result["contents"]
    assert sorted(contents) == sorted(["source", "dump_level", "page_size", "max_mapnr", "pages_present",
                                       "pages_dumped", "pages_excluded", "present_bytes", "dumped_bytes",
                                       "present_mib", "dumped_mib", "dumped_pct", "bytes_per_present_mib",
                                       "domu_pages_excluded", "note"])
    assert (contents["pages_present"], contents["pages_dumped"], contents["pages_excluded"]) == (4096, 3096, 1000)
    assert contents["present_mib"] == 16.0 and contents["dumped_pct"] == 75.59
    assert contents["domu_pages_excluded"] is True and contents["source"] == "bitmaps"


def test_report_only(capsys, tmp_path):
    (tmp_path / "dump.1").write_bytes(b"")
    rc, result = run_module(capsys, {"path": str(tmp_path / "dump.1"), "fail_on_invalid": False})
    assert rc == 0 and not result.get("failed")
    assert result["valid"] is False and result["empty"] is True and result["format"] == "empty"
    assert result["problems"][0].startswith("empty")


def test_empty_dump_fails_by_default(capsys, tmp_path):
    (tmp_path / "dump.1").write_bytes(b"")
    rc, result = run_module(capsys, {"path": str(tmp_path)})
    assert rc == 1 and result["error_code"] == "XK512" and "empty" in result["msg"]


def test_expect_xen_on_linux_dump(capsys, tmp_path):
    head, size = cb.linux_core()
    path = cb.write_sparse(str(tmp_path / "vmcore"), head, size)
    rc, result = run_module(capsys, {"path": path, "expect": "xen"})
    assert rc == 1 and "expected a Xen hypervisor dump" in result["msg"]
    rc, result = run_module(capsys, {"path": path, "expect": "linux"})
    assert rc == 0 and result["linux"]["osrelease"] == "6.1.0-56-amd64" and result["kind"] == "linux"


def test_missing_path_and_empty_directory(capsys, tmp_path):
    rc, result = run_module(capsys, {"path": str(tmp_path / "nope")})
    assert rc == 1 and result["error_code"] == "XK510" and "No such file" in result["msg"]
    rc, result = run_module(capsys, {"path": str(tmp_path)})
    assert rc == 1 and result["error_code"] == "XK511"


def test_patterns_option(capsys, tmp_path):
    head, size = cb.xen_core()
    cb.write_sparse(str(tmp_path / "host1.img"), head, size)
    rc, result = run_module(capsys, {"path": str(tmp_path), "patterns": ["*.img"]})
    assert rc == 0 and result["valid"] and result["path"].endswith("host1.img")


def test_bad_choice_is_an_argument_error(capsys, tmp_path):
    rc, result = run_module(capsys, {"path": str(tmp_path), "expect": "windows"})
    assert rc == 1 and "expect" in result["msg"]


def test_module_as_a_script(tmp_path):
    """Run the module file the way Ansible's AnsiballZ wrapper ends up running it."""
    head, size = cb.xen_core(nr_cpus=8)
    path = cb.write_sparse(str(tmp_path / "vmcore"), head, size)
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"path": path}}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, os.path.join(REPO, "plugins", "modules", "vmcore_info.py"), str(args)],
                         capture_output=True, text=True, env=env, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["valid"] and result["nr_cpus"] == 8 and result["xen"]["crash_regs"] == 8
