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

sys.path.insert(0, HERE)
from sizing_calibration import playbook  # noqa: E402  (the same ansible-playbook runner and environment)


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


def save(path: str, new: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Append one try to the results file as it is now (other runs may have added theirs; notes kept)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    doc: Dict[str, Any] = {"benchmark": "capture", "tries": []}
    if os.path.exists(path):
        with open(path) as fh:
            doc = json.load(fh)
    doc.setdefault("tries", []).append(new)
    with open(path + ".tmp", "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(path + ".tmp", path)
    return doc["tries"]


def table(tries: List[Dict[str, Any]]) -> None:
    head = ("mode", "guests", "valid", "dump MiB", "mdf s", "crash->back", "of RAM", "args")
    print("\n%-9s %6s %6s %10s %9s %9s %7s  %s" % head)
    for t in tries:
        if t.get("error"):
            print("%-9s %6d  error: %s" % (t["mode"], t["guest_mb"], t["error"]))
            continue
        print("%-9s %6d %6s %10.1f %9s %9s %6.1f%%  %s" % (
            t["mode"], t["guest_mb"], t.get("valid"), (t.get("size_bytes") or 0) / 1048576.0,
            t.get("makedumpfile_seconds"), t.get("crash_to_back_seconds"),
            100.0 * float(t.get("dump_bytes_per_host_ram") or 0), t.get("makedumpfile_args")))


def projection(tries: List[Dict[str, Any]], dom0_mb: int = 4096) -> None:
    """Fleet-sized hosts from the measured rates.  full mode: a per-MiB-of-host cost (the empty
    host's time and bytes: zlib over Xen's zero pages) plus a per-MiB-of-guest cost (the 3 GiB
    try minus the empty one: incompressible pages).  xen-dom0 mode: the guest-laden try, scaled
    by dom0's size (it writes dom0 + Xen whatever the guests hold)."""
    good = [t for t in tries if not t.get("error") and t.get("valid") and t.get("makedumpfile_seconds")]
    full = sorted((t for t in good if t["mode"] == "full"), key=lambda t: t["guest_mb"])
    xen = [t for t in good if t["mode"] in ("xen-dom0", "auto") and t["guest_mb"] > 0]
    if len(full) < 2 or full[0]["guest_mb"] != 0 or not xen:
        print("\nprojection: needs full-mode tries with and without guests and a xen-dom0 try with guests")
        return
    f0, f = full[0], full[-1]
    host_mib = float(f0.get("host_memory_mb") or 6143)
    base_s, base_b = float(f0["makedumpfile_seconds"]) / host_mib, float(f0["size_bytes"]) / host_mib
    guest_s = (float(f["makedumpfile_seconds"]) - float(f0["makedumpfile_seconds"])) / f["guest_mb"]
    guest_b = (float(f["size_bytes"]) - float(f0["size_bytes"])) / f["guest_mb"]
    x = max(xen, key=lambda t: t["guest_mb"])
    lab_dom0 = 1024.0
    print("\nprojection (guests fill 90%% of RAM, dom0 %d MiB; makedumpfile time at this lab's TCG rates: full "
          "%.3f s/MiB of host + %.3f s/MiB of guests, xen-dom0 %.1f s per GiB of dom0 + the full mode's per-MiB cost over Xen's free memory; "
          "real hardware is faster, the ratio carries over)" % (dom0_mb, base_s, guest_s, float(x["makedumpfile_seconds"])))
    head = ("host", "full: dump GiB", "full: hours", "xen-dom0: GiB", "xen-dom0: min", "ratio")
    print("%10s %14s %12s %16s %16s %8s" % head)
    for gib in (64, 256, 512, 1024, 2048):
        host, guests = gib * 1024.0, gib * 1024.0 * 0.9
        fs = base_s * host + guest_s * guests
        fb = base_b * host + guest_b * guests
        # + Xen's free memory (host - guests - dom0): makedumpfile cannot tell it free (pre-XSA-402
        # page-state bits, measured) and reads it, as -c -d 0 reads the empty host's zero pages
        free = max(0.0, host - guests - dom0_mb)
        xs = float(x["makedumpfile_seconds"]) * dom0_mb / lab_dom0 + base_s * free
        xb = float(x["size_bytes"]) * dom0_mb / lab_dom0
        row = (gib, fb / 2 ** 30, fs / 3600.0, xb / 2 ** 30, xs / 60.0, fs / xs)
        print("%7d GiB %14.1f %12.2f %16.2f %16.1f %7.0fx" % row)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
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
                tries = save(args.results, rec)
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
