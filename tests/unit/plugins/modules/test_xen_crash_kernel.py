# -*- coding: utf-8 -*-
"""The real xen_crash_kernel module.

* On this machine (not a Xen dom0): the real module, the real host, real commands.
* On a fixture dom0: the real module with only the Host seam pointed at a sysroot whose kexec
  answers through FakeXen (a test double of the hypervisor's crash-image slot; see
  tests/unit/plugins/module_utils/test_kexec_fakes.py).  The lab proves the real hypervisor.
"""

from __future__ import annotations

import json
import os
import sys

import pytest


from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "tests", "unit", "plugins", "module_utils"))

from test_kexec_fakes import KEXEC, MIB, RELEASE, FakeXen, host_for, make_dom0  # noqa: E402

import modrun

from ansible_collections.xenkdump.fleet.plugins.module_utils import kexec  # noqa: E402
from ansible_collections.xenkdump.fleet.plugins.modules import xen_crash_kernel  # noqa: E402

NOT_XEN = not os.path.exists("/proc/xen")


def run_module(capsys, args):
    return modrun.run_module(capsys, xen_crash_kernel.main, args)


# --------------------------------------------------------------------------- this real machine

@pytest.mark.skipif(not NOT_XEN, reason="expects a machine that is not a Xen PV guest")
def test_target_hypervisor_fails_clearly_here(capsys):
    rc, result = run_module(capsys, {"target": "hypervisor"})
    assert rc == 1 and result["failed"] is True
    assert result["error_code"] == "XK404"
    assert "/proc/xen does not exist" in result["msg"]
    assert "load into the running Linux kernel, not into Xen" in result["msg"]
    assert "Fix: " in result["msg"]


@pytest.mark.skipif(not NOT_XEN, reason="expects a machine that is not a Xen PV guest")
@pytest.mark.parametrize("state", ["loaded", "unloaded", "reloaded"])
@pytest.mark.parametrize("check", [False, True])
def test_target_auto_skips_here(capsys, state, check):
    rc, result = run_module(capsys, {"state": state, "_ansible_check_mode": check})
    assert rc == 0
    assert result["changed"] is False and result["skipped"] is True and result["target"] == "none"
    assert result["argv"] == [] and result["action"] == "none"
    assert not os.path.exists(kexec.RECORD_PATH)


def test_bad_arguments_fail_without_traceback(capsys):
    rc, result = run_module(capsys, {"state": "present"})
    assert rc == 1 and "value of state must be one of" in result["msg"]
    rc, result = run_module(capsys, {"min_free_mb": -1})
    assert rc == 1 and "min_free_mb must be 0 or more" in result["msg"]


# --------------------------------------------------------------------------- a fixture dom0

@pytest.fixture
def dom0(tmp_path, monkeypatch):
    root = make_dom0(str(tmp_path))
    fake = FakeXen(root)
    monkeypatch.setattr(xen_crash_kernel.hostio, "host_from_module", lambda module: host_for(root, fake))
    return root, fake


def test_module_load_idempotent_unload(capsys, dom0):
    root, fake = dom0
    rc, first = run_module(capsys, {"target": "hypervisor"})
    assert rc == 0, first
    assert first["changed"] is True and first["action"] == "load"
    assert first["argv"][:3] == [KEXEC, "-p", "/boot/vmlinuz-" + RELEASE]
    assert first["fit"]["available_mb"] == 256.0
    assert first["after"]["loaded"] is True and first["after"]["consistent"] is True
    real = os.path.join(root, kexec.RECORD_PATH.lstrip("/"))
    with open(real, encoding="utf-8") as handle:
        assert json.load(handle)["argv"] == first["argv"]
    assert oct(os.stat(real).st_mode & 0o777) == "0o644"
    assert [n for n in os.listdir(os.path.dirname(real)) if n.startswith(".crash-kernel.")] == []
    rc, second = run_module(capsys, {"target": "hypervisor"})
    assert rc == 0 and second["changed"] is False
    rc, gone = run_module(capsys, {"state": "unloaded"})
    assert rc == 0 and gone["changed"] is True and fake.loaded is None
    rc, again = run_module(capsys, {"state": "unloaded"})
    assert rc == 0 and again["changed"] is False


def test_module_mismatch_warns_and_reloads(capsys, dom0, monkeypatch):
    _root, fake = dom0
    # Other tests in the same process may import controller code, which flips module_utils'
    # warn() to the controller's Display; a real module run is always target-side.
    from ansible.module_utils import _internal
    monkeypatch.setattr(_internal, "is_controller", False)
    run_module(capsys, {})
    fake.external_load()
    rc, result = run_module(capsys, {})
    assert rc == 0 and result["changed"] is True and result["mismatch"] is True
    assert "another tool" in result["mismatch_detail"]
    assert "another tool" in json.dumps(result["warnings"])  # WarningSummary objects on ansible-core 2.19+
    assert fake.loaded == result["argv"]


def test_module_check_mode_predicts_and_touches_nothing(capsys, dom0):
    root, fake = dom0
    rc, predicted = run_module(capsys, {"_ansible_check_mode": True, "extra_append": "nousb"})
    assert rc == 0 and predicted["changed"] is True
    assert fake.mutating_calls() == [] and fake.bit == 0
    assert not os.path.exists(os.path.join(root, kexec.RECORD_PATH.lstrip("/")))
    rc, real = run_module(capsys, {"extra_append": "nousb"})
    assert real["argv"] == predicted["argv"] and real["changed"] is True


def test_module_too_big_fails_with_numbers(capsys, tmp_path, monkeypatch):
    root = make_dom0(str(tmp_path), initrd_size=220 * MIB)
    fake = FakeXen(root)
    monkeypatch.setattr(xen_crash_kernel.hostio, "host_from_module", lambda module: host_for(root, fake))
    rc, result = run_module(capsys, {})
    assert rc == 1 and result["error_code"] == "XK405"
    assert "220.0 MiB" in result["msg"] and "256.0 MiB" in result["msg"]
    assert result["error_data"]["available"] == 256 * MIB
    assert fake.mutating_calls() == []
