# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a hypervisor crash costs with guests running: dump bytes and crash-to-back seconds per
capture mode, measured on the Xen lab with fill guests (issue 14).

For every (capture mode x guest memory) it:
  1. sets the role's capture mode (``site.yml -e xenkdump_capture_mode=MODE``; converged, no reboot),
  2. starts the lab's fill guests (``lab/lab guests start N MIB``: PV domUs whose every page holds
     incompressible data, like a real guest's),
  3. runs ``playbooks/fire_drill.yml`` (``xl debug-keys C``; the crash kernel captures with the role's
     MAKEDUMP_ARGS; the host reboots; ``vmcore_info`` verifies the dump),
  4. reads the crash boot's journal for makedumpfile's own time (``running makedumpfile`` ->
     ``saved vmcore``) and the drill report for bytes, validity, what the dump holds, crash-to-back.
Every try is appended to benchmarks/results/capture.json as it finishes; a summary table and a
projection to fleet-sized hosts (from the measured per-MiB throughput of each mode) are printed.

Usage (see docs/performance.md):
  .venv/bin/python benchmarks/capture.py [--guests 0,1024,3072] [--modes full,xen-dom0] [--mem 6144]
The lab instance is named by --instance (default capture) and stopped at the end (--keep leaves it).
Figures, not pass/fail: a try that fails is recorded with its reason.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LAB = os.path.join(REPO, "lab", "lab")
RESULTS = os.path.join(HERE, "results", "capture.json")
GUEST_MB = 1024          # one fill guest holds at most this much; more memory = more guests


def log(msg: str) -> None:
    print("[capture %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Lab(object):
    def __init__(self, name: str, mem: int, cpus: int, dump_mb: int) -> None:
        self.env = dict(os.environ, XENKDUMP_LAB_NAME=name, XENKDUMP_LAB_MEM=str(mem),
                        XENKDUMP_LAB_CPUS=str(cpus), XENKDUMP_LAB_DUMP_MB=str(dump_mb))

    def run(self, *args: str, timeout: float = 3600) -> str:
        return subprocess.run([LAB] + list(args), env=self.env, check=True, timeout=timeout,
                              stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()

    def ssh(self, cmd: str, timeout: float = 300) -> str:
        return self.run("ssh", cmd, timeout=timeout)


def ansible_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.update(ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_PIPELINING="True", ANSIBLE_RETRY_FILES_ENABLED="False")
    env["PATH"] = os.path.join(REPO, ".venv", "bin") + os.pathsep + env.get("PATH", "")
    return env


def playbook(inv: str, book: str, *extra: str, logfile: str, timeout: float = 3600) -> int:
    with open(logfile, "w") as fh:
        return subprocess.run(["ansible-playbook", "-i", inv, os.path.join(REPO, "playbooks", book)] + list(extra),
                              env=ansible_env(), stdout=fh, stderr=subprocess.STDOUT, timeout=timeout).returncode


def capture_seconds(lab: Lab) -> Optional[Dict[str, Any]]:
    """makedumpfile's own time in the crash boot, from its journal (the previous boot)."""
    try:
        text = lab.ssh("journalctl -b -1 -o short-unix --no-pager -u kdump-tools-dump.service")
    except subprocess.CalledProcessError:
        return None
    start = end = None
    args = None
    for line in text.splitlines():
        m = re.match(r"^(\d+\.\d+) ", line)
        if not m:
            continue
        if "running makedumpfile" in line and "--dump-dmesg" not in line and start is None:
            start = float(m.group(1))
            a = re.search(r"running makedumpfile (.*?) /proc/vmcore", line)
            args = a.group(1) if a else None
        if start is not None and re.search(r"saved vmcore|failed", line):
            end = float(m.group(1))
    if start is None or end is None:
        return None
    return {"makedumpfile_seconds": round(end - start, 1), "makedumpfile_args": args}


def one_try(lab: Lab, inv: str, mode: str, guest_mb: int, outdir: str) -> Dict[str, Any]:
    rec: Dict[str, Any] = {"mode": mode, "guest_mb": guest_mb,
                           "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    tag = "%s-%d" % (mode, guest_mb)
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag)
    log("%s: setting the capture mode (converged site.yml)" % tag)
    # a mode is a xenkdump_capture_mode value, or "args=<MAKEDUMP_ARGS>" for xenkdump_makedump_args
    setting = ({"xenkdump_makedump_args": mode[5:]} if mode.startswith("args=")
               else {"xenkdump_capture_mode": mode, "xenkdump_makedump_args": ""})
    rc = playbook(inv, "site.yml", "-e", json.dumps(setting), "-e", "xenkdump_reboot_ok=true",
                  logfile=os.path.join(outdir, "mode-%s.log" % tag))
    if rc != 0:
        rec["error"] = "site.yml with capture mode %s failed (rc %d)" % (mode, rc)
        return rec
    rec["makedump_args_configured"] = lab.ssh("sed -n 's/^MAKEDUMP_ARGS=//p' /etc/default/kdump-tools").strip('"')
    lab.run("guests", "stop")
    n = (guest_mb + GUEST_MB - 1) // GUEST_MB
    if n:
        t = time.time()
        lab.run("guests", "start", str(n), str(guest_mb // n), timeout=1800)
        rec["guests_fill_seconds"] = round(time.time() - t)
    rec["xl_info_before"] = dict(re.findall(r"^(total_memory|free_memory)\s*:\s*(\d+)",
                                            lab.ssh("xl info"), re.M))
    log("%s: fire drill with %d guest(s), %d MiB" % (tag, n, guest_mb))
    reports = os.path.join(outdir, "reports-%s" % tag)
    host = lab.env["XENKDUMP_LAB_NAME"]
    t = time.time()
    rc = playbook(inv, "fire_drill.yml", "-e", "xenkdump_fire_drill_hosts=%s" % host,
                  "-e", "xenkdump_fire_drill_confirm=%s" % host, "-e", "xenkdump_drill_allow_guests=true",
                  "-e", "xenkdump_fire_drill_timeout=5400", "-e", "xenkdump_fire_drill_report_dir=%s" % reports,
                  logfile=os.path.join(outdir, "drill-%s.log" % tag), timeout=7200)
    rec["drill_wall_seconds"] = round(time.time() - t)
    report_path = os.path.join(reports, "fire-drill-%s.json" % host)
    if rc != 0 or not os.path.exists(report_path):
        rec["error"] = "fire drill failed (rc %d); log %s" % (rc, os.path.join(outdir, "drill-%s.log" % tag))
        return rec
    with open(report_path) as fh:
        report = json.load(fh)
    rec.update({k: report.get(k) for k in ("valid", "size_bytes", "format", "crash_to_back_seconds",
                                           "host_memory_mb", "dump_bytes_per_host_ram", "contents", "problems")})
    rec.update(capture_seconds(lab) or {})
    lab.ssh("rm -rf /var/crash/2*")   # room for the next try
    return rec


def load(path: str) -> List[Dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return json.load(fh).get("tries", [])


def save(path: str, tries: List[Dict[str, Any]]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        json.dump({"benchmark": "capture", "tries": tries}, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(path + ".tmp", path)


def table(tries: List[Dict[str, Any]]) -> None:
    print("\n%-9s %6s %6s %10s %9s %9s %7s  %s" % ("mode", "guests", "valid", "dump MiB", "mdf s", "crash->back",
                                                  "of RAM", "args"))
    for t in tries:
        if t.get("error"):
            print("%-9s %6d  error: %s" % (t["mode"], t["guest_mb"], t["error"]))
            continue
        print("%-9s %6d %6s %10.1f %9s %9s %6.1f%%  %s" % (
            t["mode"], t["guest_mb"], t.get("valid"), (t.get("size_bytes") or 0) / 1048576.0,
            t.get("makedumpfile_seconds"), t.get("crash_to_back_seconds"),
            100.0 * float(t.get("dump_bytes_per_host_ram") or 0), t.get("makedumpfile_args")))


def projection(tries: List[Dict[str, Any]], dom0_mb: int = 4096) -> None:
    """Fleet-sized hosts from the measured rates: full mode writes host RAM in use (guests'
    pages are incompressible), xen-dom0 mode writes dom0 + Xen whatever the guests hold."""
    good = [t for t in tries if not t.get("error") and t.get("valid") and t.get("makedumpfile_seconds")]
    full = [t for t in good if t["mode"] == "full" and t["guest_mb"] > 0]
    xen = [t for t in good if t["mode"] in ("xen-dom0", "auto")]
    if not full or not xen:
        print("\nprojection: needs a valid full-mode try with guests and a valid xen-dom0 try")
        return
    f = max(full, key=lambda t: t["guest_mb"])
    # full mode: time and bytes grow with the guest memory; the rate is per MiB of guest memory
    f0 = min((t for t in good if t["mode"] == "full"), key=lambda t: t["guest_mb"])
    extra_s = float(f["makedumpfile_seconds"]) - (float(f0["makedumpfile_seconds"]) if f0 is not f else 0.0)
    extra_b = float(f["size_bytes"]) - (float(f0["size_bytes"]) if f0 is not f else 0.0)
    per_mib_s = extra_s / f["guest_mb"] if f0 is not f else float(f["makedumpfile_seconds"]) / f["guest_mb"]
    per_mib_b = extra_b / f["guest_mb"] if f0 is not f else float(f["size_bytes"]) / f["guest_mb"]
    x = max(xen, key=lambda t: t["guest_mb"])
    print("\nprojection (guests fill 90%% of RAM, dom0 %d MiB; rates measured on this lab under TCG: "
          "full mode %.3f s and %.0f bytes per MiB of guest memory; xen-dom0 mode: %.0f s, %.1f MiB, flat)"
          % (dom0_mb, per_mib_s, per_mib_b, float(x["makedumpfile_seconds"]), float(x["size_bytes"]) / 1048576))
    print("%10s %16s %16s %16s %16s" % ("host", "full: dump GiB", "full: hours", "xen-dom0: GiB", "xen-dom0: min"))
    for gib in (64, 256, 512, 1024, 2048):
        guest_mib = gib * 1024 * 0.9
        print("%7d GiB %16.1f %16.2f %16.2f %16.1f" % (
            gib, guest_mib * per_mib_b / 2 ** 30, guest_mib * per_mib_s / 3600.0,
            float(x["size_bytes"]) / 2 ** 30 * dom0_mb / 1024.0,
            float(x["makedumpfile_seconds"]) * dom0_mb / 1024.0 / 60.0))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--guests", default="0,1024,3072", help="guest memory totals in MiB, comma separated")
    ap.add_argument("--modes", default="full,xen-dom0",
                    help="xenkdump_capture_mode values, or args=<MAKEDUMP_ARGS>, separated by ';' or ','")
    ap.add_argument("--mem", type=int, default=6144, help="lab host memory, MiB")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--dump-mb", type=int, default=16384, help="size of the lab's dump disk (/var/crash)")
    ap.add_argument("--instance", default="capture")
    ap.add_argument("--results", default=RESULTS)
    ap.add_argument("--keep", action="store_true", help="leave the lab instance running")
    ap.add_argument("--report-only", action="store_true", help="print the table from the results file")
    args = ap.parse_args(argv)
    tries = load(args.results)
    if args.report_only:
        table(tries)
        projection(tries)
        return 0
    outdir = os.path.join(REPO, ".build", "bench-capture")
    os.makedirs(outdir, exist_ok=True)
    lab = Lab(args.instance, args.mem, args.cpus, args.dump_mb)
    try:
        inv = lab.run("up", timeout=3600)
        log("converging the lab host (site.yml, reboots once)")
        if playbook(inv, "site.yml", "-e", "xenkdump_reboot_ok=true", logfile=os.path.join(outdir, "converge.log")):
            log("site.yml failed: %s" % os.path.join(outdir, "converge.log"))
            return 1
        modes = [m.strip() for m in (args.modes.split(";") if ";" in args.modes else args.modes.split(","))]
        for mode in [m for m in modes if m]:
            for guest_mb in [int(g) for g in args.guests.split(",")]:
                rec = one_try(lab, inv, mode, guest_mb, outdir)
                rec["lab"] = {"mem": args.mem, "cpus": args.cpus, "suite": os.environ.get("XENKDUMP_LAB_SUITE", "bookworm")}
                tries.append(rec)
                save(args.results, tries)
                table([rec])
    finally:
        if not args.keep:
            try:
                lab.run("down", timeout=120)
            except Exception:   # the try records already hold what happened
                pass
    table(tries)
    projection(tries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
