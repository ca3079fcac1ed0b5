# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kdump role's dom0 path, which no container can take (no Xen), driven on this machine in
check mode with stand-ins for the Xen modules (config_state, read-only, is the real one; the crash
region is planned by the real crash_region filter from the stand-in facts) answering in their documented shapes
(tests/integration/dom0/stub_module.py). What is under test is the ROLE: which module it calls
with what, what it decides (reboot, load), and what its verification reports. The modules'
own logic is tested in tests/unit; the real thing runs in the Xen lab (tests/e2e)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "dom0"
VENV_BIN = Path(sys.executable).parent
from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel as ck

XEN_LINE = "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M noreboot"
APPEND = "root=/dev/vda ro console=ttyS0,115200 irqpoll nr_cpus=1 reset_devices systemd.unit=kdump-tools-dump.service"


def facts(reserved, size_mb, loaded, xen_commandline=XEN_LINE):
    return {"is_xen": True, "is_dom0": True, "guest_type": "PV", "reason": "", "xen_version": "4.17.7",
            "xen_commandline": xen_commandline,
            "host_memory_mb": 3071, "nr_cpus": 2, "dom0_cmdline": "root=/dev/vda ro console=hvc0 earlyprintk=xen",
            "crash_region": {"reserved": reserved, "size_mb": size_mb, "start": 67108864 if reserved else None},
            "crash_kernel": {"loaded": loaded, "source": "record" if loaded is not None else "none",
                             "status_bit": 1 if loaded else 0, "consistent": True if loaded is not None else None},
            "dom0_crashkernel": None, "distro_family": "Debian",
            "bootloader": {"kind": "grub", "path": "/etc/default/grub", "regenerate": ["update-grub"]}}


def run_role(tmp_path: Path, scenario: dict, *extra: str):
    coll = tmp_path / "collections" / "ansible_collections" / "xenkdump" / "fleet"
    (coll / "plugins" / "modules").mkdir(parents=True)
    (coll / "meta").mkdir()
    shutil.copy(REPO / "galaxy.yml", coll / "galaxy.yml")
    shutil.copy(REPO / "meta" / "runtime.yml", coll / "meta" / "runtime.yml")
    os.symlink(REPO / "roles", coll / "roles")
    for name in ("xen_facts", "xen_crash_region", "xen_cmdline", "xen_crash_kernel", "vmcore_info"):
        shutil.copy(HERE / "stub_module.py", coll / "plugins" / "modules" / (name + ".py"))
    # config_state only reads: the real one runs (in check mode, on this machine's files)
    shutil.copy(REPO / "plugins" / "modules" / "config_state.py", coll / "plugins" / "modules" / "config_state.py")
    os.symlink(REPO / "plugins" / "module_utils", coll / "plugins" / "module_utils")
    os.symlink(REPO / "plugins" / "filter", coll / "plugins" / "filter")
    scen = tmp_path / "scenario.json"
    scen.write_text(json.dumps(scenario))
    log = tmp_path / "calls.jsonl"
    result = tmp_path / "result.json"
    env = dict(os.environ, PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"), XENKDUMP_STUB_SCENARIO=str(scen),
               XENKDUMP_STUB_LOG=str(log))
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(HERE / "site.yml"), "--check",
                           "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", "result_file=%s" % result]
                          + list(extra), cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, check=False,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-5000:]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return json.loads(result.read_text()), calls, proc.stdout


def test_fresh_dom0_sets_crashkernel_and_waits_for_the_reboot(tmp_path):
    fresh = facts(False, 0, None)
    plan = ck.plan_from_facts(fresh)
    assert plan.verdict == "missing" and plan.change["state"] == "present"
    scenario = {
        "xen_facts": {"changed": False, "ansible_facts": {"xenkdump": fresh}},
        "xen_crash_region": {"failed": True, "msg": "must not be called: the filter plans the region"},
        "xen_crash_kernel": {"failed": True, "msg": "Xen reserved no crash region [XK4xx]", "error_code": "XK400"},
        "xen_cmdline": {"changed": True, "cmdline": XEN_LINE + " crashkernel=" + plan.recommended, "file": "/etc/default/grub",
                        "regenerate": ["update-grub"]},
    }
    result, calls, out = run_role(tmp_path, scenario)
    cmdline = [c for c in calls if c["module"] == "xen_cmdline"]
    assert len(cmdline) == 1
    assert cmdline[0]["params"]["option"] == "crashkernel"
    assert cmdline[0]["params"]["value"] == plan.recommended and plan.recommended.endswith(",below=4G")
    assert cmdline[0]["params"]["state"] == "present"
    assert cmdline[0]["params"]["backup"] is True
    assert not any(c["module"] == "xen_crash_region" for c in calls)
    assert not any(c["module"] == "xen_crash_kernel" and not c["check_mode"] for c in calls)
    assert result["reboot_required"] is True
    assert result["append"] == ""
    verify = result["verify"]
    assert verify["is_dom0"] is True
    assert any("next boot" in p for p in verify["pending"]), verify
    assert any("not loaded" in p for p in verify["pending"]), verify
    assert not any("crash region" in p or "not loaded" in p for p in verify["problems"]), verify
    assert "RUNNING HANDLER [xenkdump.fleet.kdump : Regenerate the boot loader configuration]" in out
    assert "Reboot it (or set xenkdump_reboot_ok: true)" in out


def test_ready_dom0_changes_no_boot_option_and_uses_the_derived_append(tmp_path):
    wanted = ck.plan_from_facts(facts(False, 0, None))
    ready = facts(True, wanted.recommended_size_mb, True, XEN_LINE + " crashkernel=" + wanted.recommended)
    assert ck.plan_from_facts(ready).change["state"] == "unchanged"
    scenario = {
        "xen_facts": {"changed": False, "ansible_facts": {"xenkdump": ready}},
        "xen_crash_region": {"failed": True, "msg": "must not be called: the filter plans the region"},
        "xen_crash_kernel": {"changed": False, "action": "none", "append": APPEND, "argv": [],
                             "kexec": {"path": "/usr/sbin/kexec"}},
        "xen_cmdline": {"failed": True, "msg": "must not be called"},
    }
    result, calls, out = run_role(tmp_path, scenario, "-e", "xenkdump_crash_extra_append=mce=off")
    assert not any(c["module"] == "xen_cmdline" for c in calls)
    plans = [c for c in calls if c["module"] == "xen_crash_kernel"]
    assert plans[0]["params"]["state"] == "loaded" and plans[0]["params"]["target"] == "hypervisor"
    assert plans[0]["params"]["capture_unit"] == "kdump-tools-dump.service"
    assert plans[0]["params"]["extra_append"] == "mce=off"
    assert plans[-1]["params"]["append"] == APPEND  # the confirmation uses what the unit was given
    assert result["append"] == APPEND
    assert result["reboot_required"] is False
    verify = result["verify"]
    assert verify["pending"] == []
    assert not any("crash region" in p or "not loaded" in p for p in verify["problems"]), verify
    # the GRUB override is new on this machine, so update-grub is due (from xen_facts' bootloader)
    assert "TASK [xenkdump.fleet.kdump : Keep crashkernel= off dom0's Linux line on Xen boot entries" in out


def test_not_a_dom0_with_require_dom0_fails_with_the_reason(tmp_path):
    f = facts(False, 0, None)
    f.update(is_dom0=False, is_xen=False, reason="not running under Xen")
    scenario = {"xen_facts": {"changed": False, "ansible_facts": {"xenkdump": f}}}
    failure = None
    try:
        run_role(tmp_path, scenario, "-e", "xenkdump_require_dom0=true")
    except AssertionError as exc:  # run_role asserts rc == 0 and shows the output
        failure = str(exc)
    assert failure is not None and "not running under Xen" in failure
    assert "xenkdump_require_dom0 is true" in failure
