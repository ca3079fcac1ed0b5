# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xenkdump-load: load the crash kernel into the Xen hypervisor at boot.

Installed by the xenkdump.fleet.kdump role as the ExecStart/ExecStop of
xenkdump-load.service.  It reads /etc/xenkdump/crash-kernel.json (templated by the role
from what xen_crash_kernel computed), runs kexec with an argv list (never a shell),
and keeps the SAME loader record as the xen_crash_kernel module
(/run/xenkdump/crash-kernel.json, see docs/architecture.md), so that xen_facts,
xen_crash_kernel and `systemctl status xenkdump-load` tell one story.

Why not trust `kexec -S -p`: on Xen it reads a slot-position bit that toggles on every
load AND unload.  The record's `swaps` counter (loads + unloads since boot) is what
tells whether the bit means "loaded".

Commands:
  start            on a dom0: wait for the Xen control interface, load unless the record
                   shows the same kernel/initrd/append already loaded this boot; elsewhere
                   say so and exit 0
  stop             unload (only when the record says loaded)
  reload           unload + load
  reload-if-changed  load again when the kernel/initrd/append differ from the record
                   (the kernel postinst hook calls this)
  status           print the record; exit 0 when loaded, 3 when not
  is-not-dom0      exit 0 on a host that is not a Xen dom0, 1 on a dom0
                   (ExecCondition of the kdump-tools.service drop-in)
"""

import datetime
import hashlib
import json
import os
import subprocess
import sys
import time

# The environment overrides exist for the tests (tests/integration/test_xenkdump_load.py).
CONFIG = os.environ.get("XENKDUMP_LOAD_CONFIG", "/etc/xenkdump/crash-kernel.json")
RECORD = os.environ.get("XENKDUMP_LOAD_RECORD", "/run/xenkdump/crash-kernel.json")
CAPS = os.environ.get("XENKDUMP_LOAD_CAPS", "/proc/xen/capabilities")
SYS_HYPERVISOR = os.environ.get("XENKDUMP_LOAD_SYS_HYPERVISOR", "/sys/hypervisor")
PRIVCMD = os.environ.get("XENKDUMP_LOAD_PRIVCMD", "/dev/xen/privcmd")
BOOT_ID = os.environ.get("XENKDUMP_LOAD_BOOT_ID", "/proc/sys/kernel/random/boot_id")
HISTORY_MAX = 50
RECORD_VERSION = 1


def log(msg):
    sys.stderr.write("xenkdump-load: %s\n" % msg)
    sys.stderr.flush()


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def is_dom0():
    """Xen dom0?  /proc/xen/capabilities says so once xenfs is mounted; early in boot it is not
    (Debian mounts it in the xen init script, after basic.target, where kdump-tools.service has
    already run), so also accept what the kernel's Xen sysfs shows from the start: hypervisor
    type "xen" and domain handle (uuid) all zeros, which only domain 0 has."""
    caps = _read(CAPS)
    if caps is not None and caps != "":
        return "control_d" in caps
    if _read(os.path.join(SYS_HYPERVISOR, "type")) != "xen":
        return False
    uuid = _read(os.path.join(SYS_HYPERVISOR, "uuid"))
    return uuid is not None and uuid.replace("-", "").strip("0") == "" and len(uuid) > 0


def boot_id():
    try:
        with open(BOOT_ID) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return ""


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_config(path=CONFIG):
    with open(path) as handle:
        cfg = json.load(handle)
    if not isinstance(cfg, dict):
        raise ValueError("%s: not a JSON object" % path)
    release = os.uname().release
    kernel = (cfg.get("kernel") or "/boot/vmlinuz-{release}").replace("{release}", release)
    cfg["kernel"] = kernel
    initrd = cfg.get("initrd")
    if initrd is None:
        # like xen_crash_kernel: kdump-tools' crash initrd when present, else the boot initrd
        candidates = cfg.get("initrd_candidates") or [
            "/var/lib/kdump/initrd.img-{release}", "/boot/initrd.img-{release}"]
        candidates = [c.replace("{release}", release) for c in candidates]
        initrd = next((c for c in candidates if os.path.exists(c)), candidates[-1])
    else:
        initrd = initrd.replace("{release}", release)
    cfg["initrd"] = initrd or None
    if not isinstance(cfg.get("append", ""), str):
        raise ValueError("%s: 'append' must be a string" % path)
    for token in (cfg.get("append") or "").split():
        if token.startswith("console=hvc") or token.startswith("earlyprintk=xen"):
            raise ValueError("%s: append contains %r, which hangs a crash kernel" % (path, token))
    cfg["record"] = cfg.get("record") or RECORD
    return cfg


def read_record(path):
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("boot_id") != boot_id():
        return None  # a record from another boot says nothing about this one
    return record


def write_record(record, path):
    record = dict(record)
    record["history"] = list(record.get("history") or [])[-HISTORY_MAX:]
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as handle:
        handle.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def kexec_path(cfg):
    if cfg.get("kexec"):
        return cfg["kexec"]
    # the same search order as the modules (module_utils/hostio.py DEFAULT_PATH)
    for directory in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        candidate = os.path.join(directory, "kexec")
        if os.access(candidate, os.X_OK):
            return candidate
    raise ValueError("kexec not found (install kexec-tools)")


def load_argv(cfg):
    """The same argv as xen_crash_kernel (module_utils/kexec.py load_argv)."""
    argv = [kexec_path(cfg), "-p", cfg["kernel"]]
    if cfg.get("initrd"):
        argv.append("--initrd=%s" % cfg["initrd"])
    argv.append("--append=%s" % (cfg.get("append") or ""))
    return argv


def run(argv, quiet=False):
    if not quiet:
        log("running %s" % " ".join(argv))
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    if not quiet:
        for line in proc.stdout.strip().splitlines():
            log("  %s" % line)
    return proc.returncode, proc.stdout


def status_bit(cfg):
    """Raw exit status of `kexec -S -p`: on Xen a slot-position bit, not "loaded"."""
    rc, _out = run([kexec_path(cfg), "-S", "-p"], quiet=True)
    return rc if rc in (0, 1) else None


def wait_for_xen(seconds):
    """Wait for the Xen control interface (privcmd) that kexec's libxenctrl opens."""
    deadline = time.monotonic() + seconds
    while True:
        if os.path.exists(PRIVCMD):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(1)


FINGERPRINT_KEYS = ("kernel", "kernel_sha256", "initrd", "initrd_sha256", "append")


def fingerprint(cfg):
    for key in ("kernel", "initrd"):
        if cfg.get(key) and not os.path.isfile(cfg[key]):
            raise ValueError("%s %s does not exist" % (key, cfg[key]))
    return {
        "kernel": cfg["kernel"],
        "kernel_sha256": sha256(cfg["kernel"]),
        "initrd": cfg.get("initrd") or None,
        "initrd_sha256": sha256(cfg["initrd"]) if cfg.get("initrd") else None,
        "append": cfg.get("append") or "",
    }


def consistent(record, bit):
    """Does the slot bit agree with the record's parity (swaps + parity_offset)?"""
    if record is None or bit is None:
        return None
    expected = (int(record.get("swaps", 0)) + int(record.get("parity_offset", 0))) % 2
    return expected == bit


def base_record(record, bit):
    """This boot's record, or a fresh one (same shape as module_utils/kexec.py base_record)."""
    if record is None:
        return {"version": RECORD_VERSION, "boot_id": boot_id(), "loaded": False, "kernel": None,
                "kernel_sha256": None, "initrd": None, "initrd_sha256": None, "append": None,
                "argv": None, "swaps": 0, "parity_offset": bit or 0, "history": [
                    {"op": "start", "time": now(), "status_bit": bit,
                     "note": "first record of this boot; offset = bit seen (%s) [xenkdump-load]" % bit}]}
    record = json.loads(json.dumps(record))
    record.setdefault("history", [])
    record.setdefault("swaps", 0)
    if consistent(record, bit) is False:
        record["history"].append({"op": "resync", "time": now(), "status_bit": bit,
                                  "note": "another tool toggled the slot bit; loaded image unknown"})
        record["parity_offset"] = (bit - int(record["swaps"])) % 2
        record["loaded"] = None
    return record


def execute(cfg, action, argv, record, wanted):
    """One load/unload; the record is updated even when kexec fails (history says so)."""
    bit_before = status_bit(cfg)
    rc, _out = run(argv)
    bit_after = status_bit(cfg)
    toggled = None if bit_before is None or bit_after is None else bit_before != bit_after
    record["history"].append({"op": action, "time": now(), "rc": rc, "status_bit_before": bit_before,
                              "status_bit_after": bit_after, "by": "xenkdump-load"})
    if rc == 0 or toggled:
        record["swaps"] = int(record.get("swaps", 0)) + 1
        if action == "load":
            record["loaded"] = True
            record.update({k: (wanted or {}).get(k) for k in FINGERPRINT_KEYS})
        else:
            record["loaded"] = False
            record.update({k: None for k in FINGERPRINT_KEYS})
        record["argv"] = list(argv)
        if rc != 0:
            record["loaded"] = None
    elif toggled is False and rc == 0:
        log("warning: kexec -S -p stayed %s: this kexec may not have reached the hypervisor" % bit_after)
    write_record(record, cfg["record"])
    return rc


def cmd_start(cfg, force=False, only_if_changed=False):
    wait = int(cfg.get("wait_seconds", 120))
    if not wait_for_xen(wait):
        log("Xen dom0, but %s is still missing after %ss (xen-privcmd not loaded?): nothing loaded"
            % (PRIVCMD, wait))
        return 1
    wanted = fingerprint(cfg)
    bit = status_bit(cfg)
    record = read_record(cfg["record"])
    agrees = consistent(record, bit)
    same = (record is not None and record.get("loaded") and agrees is not False
            and all(record.get(k) == wanted[k] for k in FINGERPRINT_KEYS))
    if same and not force:
        log("crash kernel %s already loaded into Xen this boot (record %s, swaps=%s)"
            % (wanted["kernel"], cfg["record"], record.get("swaps")))
        return 0
    if only_if_changed and not (record is not None and record.get("loaded")):
        log("no crash kernel loaded this boot: a kernel hook does not load one (systemctl start the unit)")
        return 0
    record = base_record(record, bit)
    rc = execute(cfg, "load", load_argv(cfg), record, wanted)
    if rc != 0:
        log("loading the crash kernel into Xen failed (rc=%d)" % rc)
        return rc
    log("crash kernel %s loaded into Xen (swaps=%d)" % (wanted["kernel"], record["swaps"]))
    return 0


def cmd_stop(cfg):
    record = read_record(cfg["record"])
    if record is None or record.get("loaded") is False:
        log("no crash kernel loaded by this project this boot: nothing to unload")
        return 0
    record = base_record(record, status_bit(cfg))
    rc = execute(cfg, "unload", [kexec_path(cfg), "-p", "-u"], record, None)
    if rc == 0:
        log("crash kernel unloaded from Xen")
    return rc


def cmd_status():
    record = read_record(RECORD)
    print(json.dumps(record, indent=2, sort_keys=True) if record else "no record this boot")
    return 0 if record and record.get("loaded") else 3


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    command = argv[1]
    config = argv[2] if len(argv) > 2 else CONFIG
    if command == "is-not-dom0":
        if is_dom0():
            log("Xen dom0: the crash kernel is loaded into the hypervisor by xenkdump-load.service;"
                " kdump-tools' own load is skipped")
            return 1
        return 0
    if command == "status":
        return cmd_status()
    if command in ("start", "reload", "reload-if-changed", "stop") and not is_dom0():
        # before reading the config: on a non-dom0 the role writes none (nothing to load)
        log("not a Xen dom0 (%s, %s/uuid): nothing to %s" % (CAPS, SYS_HYPERVISOR, command))
        return 0
    try:
        cfg = load_config(config)
        if command == "start":
            return cmd_start(cfg)
        if command == "reload":
            return cmd_start(cfg, force=True)
        if command == "reload-if-changed":
            return cmd_start(cfg, only_if_changed=True)
        if command == "stop":
            return cmd_stop(cfg)
    except (IOError, OSError, ValueError) as exc:
        log(str(exc))
        return 1
    log("unknown command %r (start|stop|reload|reload-if-changed|status|is-not-dom0)" % command)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
