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


def capture_facts(free_mib, xen_version="4.17.7", kexec_version="2.0.25"):
    """The ready dom0 with what xen_facts gathers for the capture side (Debian 12's makedumpfile,
    two guests, a dump target), as the module returns them."""
    from ansible_collections.xenkdump.fleet.plugins.module_utils import known_issues
    wanted = ck.plan_from_facts(facts(False, 0, None))
    f = facts(True, wanted.recommended_size_mb, True, XEN_LINE + " crashkernel=" + wanted.recommended)
    f.update(xen_version=xen_version, host_memory_mb=32768, host_free_memory_mb=8000, dom0_memory_mb=1024,
             domains=[{"name": "web01", "domid": 1, "mem_mb": 4096, "vcpus": 2, "state": "-b----"},
                      {"name": "db", "domid": 2, "mem_mb": 16384, "vcpus": 8, "state": "r-----"}],
             max_pfn=(32768 + 2048) * 256,
             kexec={"present": True, "path": "/usr/sbin/kexec", "version": kexec_version, "xen_support": True},
             makedumpfile={"present": True, "path": "/usr/bin/makedumpfile", "version": "1.7.2", "known": True,
                           "reason": "", "compressors": {"zlib": True, "lzo": True, "snappy": False, "zstd": False}},
             dump_target={"path": "/var/crash", "exists": True, "statvfs_path": "/var/crash",
                          "free_bytes": free_mib * 1024 * 1024, "total_bytes": 4 * free_mib * 1024 * 1024,
                          "dumps": [], "dumps_count": 0, "dumps_truncated": False, "error": ""})
    f["known_issues"] = known_issues.find(known_issues.component_versions(f))
    return f


def capture_scenario(f):
    return {
        "xen_facts": {"changed": False, "ansible_facts": {"xenkdump": f}},
        "xen_crash_region": {"failed": True, "msg": "must not be called: the filter plans the region"},
        "xen_crash_kernel": {"changed": False, "action": "none", "append": APPEND, "argv": [],
                             "kexec": {"path": "/usr/sbin/kexec"}},
        "xen_cmdline": {"failed": True, "msg": "must not be called"},
    }


def test_dom0_with_guests_gets_lzo_without_the_guests(tmp_path):
    result, calls, out = run_role(tmp_path, capture_scenario(capture_facts(free_mib=100 * 1024)))
    facts_calls = [c for c in calls if c["module"] == "xen_facts"]
    assert facts_calls and all(c["params"]["dump_path"] == "/var/crash" for c in facts_calls)
    verify = result["verify"]
    assert verify["capture"]["mode"] == "xen-dom0" and verify["capture"]["args"] == "-l -X -d 1"
    # dom0 1024 + Xen's own (32768 - 8000 - 1024 - 20480 = 3264) MiB + descriptors/bitmaps
    assert verify["room"]["verdict"] == "ok" and 4288 < verify["room"]["need_mib"] < 4400
    assert 'MAKEDUMP_ARGS="-l -X -d 1"' in out or "MAKEDUMP_ARGS=\\\"-l -X -d 1\\\"" in out


def refused(tmp_path, scenario, *extra):
    try:
        run_role(tmp_path, scenario, *extra)
    except AssertionError as exc:  # run_role asserts rc == 0 and shows the output
        return str(exc)
    return None


def test_too_small_dump_target_is_refused_before_anything_is_written(tmp_path):
    out = refused(tmp_path, capture_scenario(capture_facts(free_mib=2000)), "-e", "xenkdump_capture_mode=full")
    assert out is not None and "[XK703]" in out
    assert "up to 24" in out and "has 2000 MiB free" in out and "xenkdump_capture_mode: xen-dom0" in out
    assert "Nothing was changed" in out
    # refused in the pre-flight: no reading of the host's files, no package, no write
    for task in ("Read how the host stands", "Install the kdump packages", "Write /etc/default/kdump-tools"):
        assert task not in out, task


def test_room_warn_goes_on(tmp_path):
    result, _calls, out = run_role(tmp_path, capture_scenario(capture_facts(free_mib=2000)),
                                   "-e", "xenkdump_capture_mode=full", "-e", "xenkdump_dump_room_check=warn")
    assert result["verify"]["room"]["verdict"] == "warn"
    assert any("dump room" in n for n in result["verify"]["notes"])


def test_known_bad_xen_is_refused_unless_ignored(tmp_path):
    f = capture_facts(free_mib=100 * 1024, xen_version="4.21.1-pre")
    out = refused(tmp_path / "a", capture_scenario(f))
    assert out is not None and "[XK710]" in out and "4.21.2" in out and "Nothing was changed" in out
    assert "Read how the host stands" not in out
    result, _calls, _out = run_role(tmp_path / "b", capture_scenario(f),
                                    "-e", '{"xenkdump_ignore_known_issues": ["xen-4.21-kexec-parked-cpus"]}')
    assert result["verify"]["capture"]["args"] == "-l -X -d 1"


def test_explicit_level_31_is_refused_on_a_dom0(tmp_path):
    out = refused(tmp_path, capture_scenario(capture_facts(free_mib=100 * 1024)),
                  "-e", "xenkdump_makedump_args='-c -d 31'")
    assert out is not None and "[XK701]" in out and "Read how the host stands" not in out
