# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/kdump/files/xenkdump-load (the boot-time loader) run as a real process against a
kexec test double that behaves like Xen's kexec status op (the slot-position bit toggles on
every load AND unload, measured in tests/fixtures/xen-4.17-dom0/kexec-status-toggle.txt).

The record it writes is read back with the collection's own module_utils/kexec.load_state,
the code behind xen_facts and xen_crash_kernel: the unit and the modules must agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.xenkdump.fleet.plugins.module_utils import kexec
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import CommandResult, Host

REPO = Path(__file__).resolve().parents[2]
LOADER = REPO / "roles" / "kdump" / "files" / "xenkdump-load.py"

FAKE_KEXEC = r'''#!%(python)s
import json, sys
state_file = %(state)r
try:
    state = json.load(open(state_file))
except Exception:
    state = {"bit": 0, "loaded": False, "image": None, "calls": []}
args = sys.argv[1:]
state["calls"].append(args)
rc = 0
if args == ["-S", "-p"]:
    rc = state["bit"]
elif args == ["-p", "-u"]:
    state["bit"] ^= 1; state["loaded"] = False; state["image"] = None
elif args[:1] == ["-p"]:
    state["bit"] ^= 1; state["loaded"] = True; state["image"] = args[1:]
else:
    rc = 2
json.dump(state, open(state_file, "w"))
sys.exit(rc)
'''


class Rig(object):
    def __init__(self, tmp: Path, dom0: bool = True, xenfs: bool = True, uuid: str = "") -> None:
        self.tmp = tmp
        self.root = tmp / "sysroot"
        (self.root / "proc/sys/kernel/random").mkdir(parents=True)
        (self.root / "proc/sys/kernel/random/boot_id").write_text("11111111-2222-3333-4444-555555555555\n")
        (self.root / "proc/xen").mkdir(parents=True)
        if xenfs:  # early in boot xenfs is not mounted yet: /proc/xen is an empty directory
            (self.root / "proc/xen/capabilities").write_text("control_d\n" if dom0 else "")
        # The kernel's Xen sysfs, there from the first instant: dom0's domain handle is all zeros.
        (self.root / "sys/hypervisor").mkdir(parents=True)
        (self.root / "sys/hypervisor/type").write_text("xen\n")
        (self.root / "sys/hypervisor/uuid").write_text(
            (uuid or ("00000000-0000-0000-0000-000000000000" if dom0 else "6b1d3c1e-2f0a-4f7e-9a51-0c1d2e3f4a5b")) + "\n")
        (self.root / "dev/xen").mkdir(parents=True)
        (self.root / "dev/xen/privcmd").write_text("")
        (self.root / "boot").mkdir()
        self.kernel = self.root / "boot/vmlinuz-test"
        self.initrd = self.root / "boot/initrd.img-test"
        self.kernel.write_bytes(b"kernel-v1" * 100)
        self.initrd.write_bytes(b"initrd-v1" * 100)
        self.state = tmp / "kexec-state.json"
        self.fake = tmp / "kexec"
        self.fake.write_text(FAKE_KEXEC % {"python": sys.executable, "state": str(self.state)})
        self.fake.chmod(0o755)
        self.config = tmp / "crash-kernel.json"
        self.write_config("root=/dev/vda ro console=ttyS0,115200 irqpoll nr_cpus=1 reset_devices")

    def write_config(self, append: str, **extra) -> None:
        cfg = {"version": 1, "kexec": str(self.fake), "kernel": str(self.kernel), "initrd": str(self.initrd),
               "append": append, "record": str(self.root / "run/xenkdump/crash-kernel.json"), "wait_seconds": 2}
        cfg.update(extra)
        self.config.write_text(json.dumps(cfg))

    def run(self, *args: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, XENKDUMP_LOAD_CAPS=str(self.root / "proc/xen/capabilities"),
                   XENKDUMP_LOAD_SYS_HYPERVISOR=str(self.root / "sys/hypervisor"),
                   XENKDUMP_LOAD_PRIVCMD=str(self.root / "dev/xen/privcmd"),
                   XENKDUMP_LOAD_BOOT_ID=str(self.root / "proc/sys/kernel/random/boot_id"),
                   XENKDUMP_LOAD_RECORD=str(self.root / "run/xenkdump/crash-kernel.json"))
        return subprocess.run([sys.executable, str(LOADER)] + list(args), env=env, stdout=subprocess.PIPE, check=False,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60)

    def xen(self) -> dict:
        return json.loads(self.state.read_text())

    def loads(self) -> int:
        return sum(1 for c in self.xen()["calls"] if c[:1] == ["-p"] and c != ["-p", "-u"])

    def module_view(self) -> dict:
        """What xen_facts / xen_crash_kernel conclude from the unit's record and the bit."""
        host = Host(run=lambda argv: CommandResult(0, "", ""), root=str(self.root))
        return kexec.load_state(host, self.xen()["bit"], "/run/xenkdump/crash-kernel.json")


def test_start_loads_and_modules_agree(tmp_path):
    rig = Rig(tmp_path)
    res = rig.run("start", str(rig.config))
    assert res.returncode == 0, res.stderr
    assert rig.xen()["loaded"] is True
    assert rig.xen()["image"] == [str(rig.kernel), "--initrd=%s" % rig.initrd,
                                  "--append=root=/dev/vda ro console=ttyS0,115200 irqpoll nr_cpus=1 reset_devices"]
    view = rig.module_view()
    assert view["loaded"] is True and view["source"] == "record" and view["consistent"] is True, view
    record = view["record"]
    assert record["swaps"] == 1 and record["parity_offset"] == 0
    assert record["argv"] == [str(rig.fake), "-p"] + rig.xen()["image"]
    assert record["argv"] == kexec.load_argv(str(rig.fake), str(rig.kernel), str(rig.initrd), record["append"])
    import hashlib
    assert record["kernel_sha256"] == hashlib.sha256(rig.kernel.read_bytes()).hexdigest()
    # the module's planner sees nothing to do for the same inputs
    wanted = {k: record[k] for k in kexec.FINGERPRINT_KEYS}
    assert kexec.plan("loaded", view, wanted)["action"] == "none"


def test_second_start_is_a_no_op(tmp_path):
    rig = Rig(tmp_path)
    assert rig.run("start", str(rig.config)).returncode == 0
    res = rig.run("start", str(rig.config))
    assert res.returncode == 0 and "already loaded" in res.stderr
    assert rig.loads() == 1
    assert rig.module_view()["record"]["swaps"] == 1


def test_parity_offset_when_someone_toggled_before_us(tmp_path):
    rig = Rig(tmp_path)
    rig.state.write_text(json.dumps({"bit": 1, "loaded": False, "image": None, "calls": []}))  # a stray unload
    assert rig.run("start", str(rig.config)).returncode == 0
    view = rig.module_view()
    assert view["record"]["parity_offset"] == 1 and view["consistent"] is True and view["loaded"] is True


def test_foreign_toggle_is_detected_and_start_loads_again(tmp_path):
    rig = Rig(tmp_path)
    assert rig.run("start", str(rig.config)).returncode == 0
    st = rig.xen()
    st["bit"] ^= 1  # e.g. kdump-tools unloaded behind our back
    rig.state.write_text(json.dumps(st))
    assert rig.module_view()["consistent"] is False
    assert rig.run("start", str(rig.config)).returncode == 0
    assert rig.loads() == 2
    view = rig.module_view()
    assert view["consistent"] is True and view["loaded"] is True
    assert any(h.get("op") == "resync" for h in view["record"]["history"])


def test_reload_if_changed_after_kernel_update_then_stop(tmp_path):
    rig = Rig(tmp_path)
    assert rig.run("reload-if-changed", str(rig.config)).returncode == 0
    assert rig.loads() == 0  # a hook never loads what the unit did not load
    assert rig.run("start", str(rig.config)).returncode == 0
    assert rig.run("reload-if-changed", str(rig.config)).returncode == 0
    assert rig.loads() == 1  # nothing changed
    rig.initrd.write_bytes(b"initrd-v2" * 100)  # update-initramfs rewrote it
    assert rig.run("reload-if-changed", str(rig.config)).returncode == 0
    assert rig.loads() == 2
    view = rig.module_view()
    assert view["record"]["swaps"] == 2 and view["consistent"] is True
    assert rig.run("stop", str(rig.config)).returncode == 0
    view = rig.module_view()
    assert view["loaded"] is False and view["consistent"] is True and rig.xen()["loaded"] is False


def test_not_a_dom0(tmp_path):
    rig = Rig(tmp_path, dom0=False)
    assert rig.run("is-not-dom0").returncode == 0
    res = rig.run("start", str(rig.config))
    # a domU: nothing to load, and not a failed unit
    assert res.returncode == 0 and "not a Xen dom0" in res.stderr
    assert not rig.state.exists()
    # the role writes no loader config on a non-dom0: the unit still starts and stops cleanly
    for cmd in ("start", "stop", "reload"):
        res = rig.run(cmd, str(tmp_path / "no-such-config.json"))
        assert res.returncode == 0 and "not a Xen dom0" in res.stderr, (cmd, res.stderr)
    dom0 = Rig(tmp_path / "d0")
    res = dom0.run("is-not-dom0")
    assert res.returncode == 1 and "skipped" in res.stderr


def test_early_boot_before_xenfs_is_mounted(tmp_path):
    """Seen on the lab: kdump-tools.service (Before=basic.target) and a unit conditioned on
    /proc/xen/capabilities ran before Debian's xen.service mounted xenfs, so the dom0 was taken
    for a non-dom0.  The sysfs domain handle tells them apart from the start."""
    dom0 = Rig(tmp_path / "d0", xenfs=False)
    assert dom0.run("is-not-dom0").returncode == 1
    res = dom0.run("start", str(dom0.config))
    assert res.returncode == 0, res.stderr
    assert dom0.xen()["loaded"] is True
    domu = Rig(tmp_path / "du", dom0=False, xenfs=False)
    assert domu.run("is-not-dom0").returncode == 0
    assert domu.run("start", str(domu.config)).returncode == 0 and not domu.state.exists()
    bare = Rig(tmp_path / "bm", dom0=False, xenfs=False)
    (bare.root / "sys/hypervisor/type").write_text("")
    (bare.root / "sys/hypervisor/uuid").unlink()
    assert bare.run("is-not-dom0").returncode == 0


def test_dom0_without_privcmd_fails_the_unit(tmp_path):
    rig = Rig(tmp_path)
    (rig.root / "dev/xen/privcmd").unlink()
    res = rig.run("start", str(rig.config))
    assert res.returncode == 1 and "privcmd" in res.stderr and not rig.state.exists()


def test_refuses_hvc0_and_missing_kernel(tmp_path):
    rig = Rig(tmp_path)
    rig.write_config("root=/dev/vda console=hvc0")
    res = rig.run("start", str(rig.config))
    assert res.returncode == 1 and "hvc0" in res.stderr
    rig.write_config("root=/dev/vda", kernel=str(rig.root / "boot/vmlinuz-missing"))
    res = rig.run("start", str(rig.config))
    assert res.returncode == 1 and "does not exist" in res.stderr
    assert not rig.state.exists()


def test_release_placeholder_and_initrd_candidates(tmp_path):
    rig = Rig(tmp_path)
    release = os.uname().release
    (rig.root / ("boot/vmlinuz-%s" % release)).write_bytes(b"k" * 10)
    (rig.root / ("boot/initrd.img-%s" % release)).write_bytes(b"i" * 10)
    rig.write_config("root=/dev/vda ro", kernel=str(rig.root / "boot/vmlinuz-{release}"), initrd=None,
                     initrd_candidates=[str(rig.root / "var/lib/kdump/initrd.img-{release}"),
                                        str(rig.root / "boot/initrd.img-{release}")])
    assert rig.run("start", str(rig.config)).returncode == 0
    assert rig.xen()["image"][:2] == [str(rig.root / ("boot/vmlinuz-%s" % release)),
                                      "--initrd=%s" % (rig.root / ("boot/initrd.img-%s" % release))]
