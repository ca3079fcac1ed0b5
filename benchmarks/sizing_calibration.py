# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smallest Xen crash region that still yields a valid dump, found by bisection on the Xen lab.

For each host shape (memory MiB x CPUs) it boots the same lab disk with Xen reserving a given
``crashkernel=<S>M,below=4G``, lets the role's boot unit load the crash kernel it ships, runs
``playbooks/fire_drill.yml`` (``xl debug-keys C``, capture by kdump-tools with the role's
settings, reboot, ``vmcore_info`` on the new dump) and calls the size good when the drill
reports a valid, non-empty dump.  It then prints minimum vs ``xen_crash_region``'s
recommendation vs the anchors' flat values.

How a size is set without running update-grub (~200 s under TCG) for every try: once, after the
role converged the host, the Xen ``multiboot2`` lines of /boot/grub/grub.cfg get
``crashkernel=${xenkdump_calib}`` and each try sets that GRUB environment variable with
``grub-editenv``.  Xen then really reserves exactly that region (checked in ``xl dmesg``).

A try fails when: the boot unit cannot load the crash kernel (kexec finds no room), the crash
kernel panics (seen on the serial console: the try stops at once), the console stays silent for
``--idle-timeout`` seconds before makedumpfile started (a hang; while it copies it prints nothing),
the host is not back in ``--timeout`` seconds, or the drill's dump is missing, empty or invalid.

Usage (see docs/performance.md):
  .venv/bin/python benchmarks/sizing_calibration.py [--configs 2048x1,4096x2,8192x2] [--step 16]
Results go to benchmarks/results/sizing-calibration.json (every try, appended as it finishes;
a rerun resumes from it unless --fresh).  The lab instance is named by --instance (default
bench) and stopped at the end (--keep leaves it running).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LAB = os.path.join(REPO, "lab", "lab")
RESULTS = os.path.join(HERE, "results", "sizing-calibration.json")
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))

# The anchors' flat value: XCP-ng/XenServer, and RHEL for 2-64 GiB (docs/sizing.md has the sources).
FLAT_ANCHOR_MB = 256

GRUB_HACK = r'''
set -e
cfg=/boot/grub/grub.cfg
grep -q load_env "$cfg"
python3 - "$cfg" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
out = []
n = 0
for line in s.splitlines(True):
    if re.match(r"\s*multiboot2?\s+\S*xen", line):
        n += 1
        if "crashkernel=" in line:
            line = re.sub(r"crashkernel=\S+", "crashkernel=${xenkdump_calib}", line)
        else:
            line = line.rstrip("\n") + " crashkernel=${xenkdump_calib}\n"
    out.append(line)
if not n:
    sys.exit("no Xen multiboot line in " + p)
open(p + ".calib", "w").write("".join(out))
EOF
mv /boot/grub/grub.cfg.calib "$cfg"
grep -c 'crashkernel=${xenkdump_calib}' "$cfg"
mkdir -p /var/lib/xenkdump-bench && touch /var/lib/xenkdump-bench/grub-hacked
'''


def log(msg: str) -> None:
    print("[calib %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Lab:
    def __init__(self, name: str) -> None:
        self.name = name

    def env(self, mem: Optional[int] = None, cpus: Optional[int] = None, **extra: str) -> Dict[str, str]:
        e = dict(os.environ, XENKDUMP_LAB_NAME=self.name)
        if mem:
            e["XENKDUMP_LAB_MEM"] = str(mem)
        if cpus:
            e["XENKDUMP_LAB_CPUS"] = str(cpus)
        e.update(extra)
        return e

    def run(self, *args: str, mem: Optional[int] = None, cpus: Optional[int] = None,
            check: bool = True, timeout: Optional[float] = None, **extra: str) -> str:
        p = subprocess.run([LAB] + list(args), env=self.env(mem, cpus, **extra), check=False,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("lab/lab %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr[-2000:]))
        return p.stdout

    def ssh(self, cmd: str, check: bool = True, timeout: float = 300) -> Tuple[int, str]:
        p = subprocess.run([LAB, "ssh", cmd], env=self.env(), stdout=subprocess.PIPE, check=False,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise RuntimeError("lab ssh %r failed (%d): %s" % (cmd, p.returncode, p.stdout[-2000:]))
        return p.returncode, p.stdout

    def path(self) -> str:
        return self.run("path").strip()

    def inventory(self) -> str:
        return self.run("inventory").strip()

    def running(self) -> bool:
        return subprocess.run([LAB, "status"], env=self.env(), stdout=subprocess.DEVNULL, check=False,
                              stderr=subprocess.DEVNULL).returncode == 0

    def kill(self) -> None:
        # The guest is wedged (crash kernel panicked or hung): no clean poweroff is possible.
        self.run("stop", check=False, XENKDUMP_LAB_STOP_TIMEOUT="1")


def ansible_env() -> Dict[str, str]:
    return dict(os.environ, PATH=os.path.join(REPO, ".venv", "bin") + os.pathsep + os.environ["PATH"],
                ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
                ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_PIPELINING="True",
                ANSIBLE_RETRY_FILES_ENABLED="False")


def playbook(inv: str, book: str, *extra: str, logfile: str, timeout: Optional[float] = None,
             procs: Optional[List[subprocess.Popen]] = None) -> int:
    """Run a playbook; ``procs`` receives the Popen so another thread can kill it."""
    with open(logfile, "w") as fh:
        p = subprocess.Popen(["ansible-playbook", "-i", inv, os.path.join(REPO, "playbooks", book)] + list(extra),
                             env=ansible_env(), stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
        if procs is not None:
            procs.append(p)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return -9


def prepare(lab: Lab, mem: int, cpus: int, outdir: str) -> None:
    """A converged host (site.yml with its reboot) whose grub.cfg takes the size from grubenv."""
    if not lab.running():
        disk = os.path.join(lab.path(), "overlay.qcow2")
        if os.path.exists(disk):
            log("starting the kept disk of '%s'" % lab.name)
            lab.run("start", mem=mem, cpus=cpus)
        else:
            log("fresh lab instance '%s'" % lab.name)
            lab.run("up", mem=mem, cpus=cpus)
    rc, dummy = lab.ssh("test -e /var/lib/xenkdump-bench/grub-hacked", check=False)
    if rc == 0:
        log("instance already prepared")
        return
    t0 = time.time()
    log("converging the host with site.yml (installs kdump-tools, loader, region; reboots once)")
    rc = playbook(lab.inventory(), "site.yml", "-e", "xenkdump_reboot_ok=true",
                  logfile=os.path.join(outdir, "prepare-site.log"))
    if rc != 0:
        raise RuntimeError("site.yml failed while preparing; see %s/prepare-site.log" % outdir)
    log("converged in %.0f s; pointing grub.cfg's Xen lines at $xenkdump_calib" % (time.time() - t0))
    lab.ssh(GRUB_HACK)


class Console:
    """Follows the serial log from an offset; flags a crash-kernel panic and silence."""

    PANIC = re.compile(r"Kernel panic - not syncing|Out of memory and no killable processes")
    # makedumpfile prints nothing while it copies: from here on silence is not a hang (an 8 GiB
    # host under TCG takes over ten minutes); the drill's own timeout still applies.
    CAPTURE = re.compile(r"running makedumpfile")

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self.last_growth = time.time()
        self.panic: Optional[str] = None
        self.capturing = False

    def poll(self) -> None:
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return
        if size > self.offset:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                text = fh.read().decode("utf-8", "replace")
            self.offset = size
            self.last_growth = time.time()
            if self.CAPTURE.search(text):
                self.capturing = True
            m = self.PANIC.search(text)
            if m and not self.panic:
                line = text[m.start():].splitlines()[0]
                self.panic = line.strip()


def try_size(lab: Lab, mem: int, cpus: int, size_mb: int, args: argparse.Namespace, outdir: str) -> Dict[str, Any]:
    value = "%dM,below=4G" % size_mb
    res: Dict[str, Any] = {"memory_mb": mem, "cpus": cpus, "size_mb": size_mb, "crashkernel": value,
                           "started": datetime.datetime.now().isoformat(timespec="seconds")}
    t0 = time.time()
    if lab.running():
        lab.ssh("grub-editenv /boot/grub/grubenv set xenkdump_calib=%s && sync" % value)
        lab.run("stop")
    else:
        # the previous try left it stopped (killed after a panic): set the size on the next boot
        lab.run("start", mem=mem, cpus=cpus)
        lab.ssh("grub-editenv /boot/grub/grubenv set xenkdump_calib=%s && sync" % value)
        lab.run("stop")
    lab.run("start", mem=mem, cpus=cpus)
    res["boot_s"] = round(time.time() - t0)
    dummy, dmesg = lab.ssh("xl dmesg | grep -E 'Kdump: [0-9]+MB|Command line' || true")
    res["xen_says"] = " | ".join(l.strip() for l in dmesg.splitlines())
    if "Kdump: %dMB" % size_mb not in dmesg:
        raise RuntimeError("Xen did not reserve %d MiB (grubenv not applied?): %s" % (size_mb, dmesg))
    dummy, unit = lab.ssh("systemctl is-active xenkdump-load.service; kexec -S -p; echo status=$?; "
                          "journalctl -b -u xenkdump-load.service --no-pager -o cat | tail -n 5", check=False)
    res["load"] = unit.strip().splitlines()
    # what xen_crash_region sizes from on this host: the running kernel's init_size (bzImage
    # header at 0x260) and kdump-tools' crash initrd
    dummy, sizes = lab.ssh("r=$(uname -r); od -An -tu4 -j608 -N4 /boot/vmlinuz-$r; "
                           "stat -c %s /var/lib/kdump/initrd.img-$r", check=False)
    nums = [int(x) for x in sizes.split() if x.isdigit()]
    if len(nums) == 2:
        res["kernel_init_size"], res["initrd_size"] = nums
    if not unit.startswith("active"):
        res.update(outcome="fail", reason="crash kernel not loaded: " + " / ".join(res["load"][-3:]))
        res["total_s"] = round(time.time() - t0)
        return res
    lab.ssh("rm -rf /var/crash/2[0-9]* || true", check=False)
    console = Console(os.path.join(lab.path(), "serial.log"))
    report_dir = os.path.join(outdir, "reports-%d-%d-%d" % (mem, cpus, size_mb))
    host = lab.name
    inv = lab.inventory()
    result: Dict[str, Any] = {}
    procs: List[subprocess.Popen] = []

    def drill() -> None:
        result["rc"] = playbook(inv, "fire_drill.yml", "-e", "xenkdump_fire_drill_hosts=" + host,
                                "-e", "xenkdump_fire_drill_confirm=" + host,
                                "-e", "xenkdump_fire_drill_timeout=%d" % args.timeout,
                                "-e", "xenkdump_fire_drill_report_dir=" + report_dir,
                                logfile=os.path.join(outdir, "drill-%d-%d-%d.log" % (mem, cpus, size_mb)),
                                timeout=args.timeout + 300, procs=procs)

    th = threading.Thread(target=drill, daemon=True)
    t_crash = time.time()
    th.start()
    stopped = None
    while th.is_alive():
        th.join(5)
        console.poll()
        if console.panic:
            stopped = "crash kernel panicked: " + console.panic
        elif (not console.capturing and time.time() - console.last_growth > args.idle_timeout
              and time.time() - t_crash > 120):
            stopped = "console silent for %d s" % args.idle_timeout
        if stopped:
            log(stopped + "; stopping the guest and the drill")
            lab.kill()
            for proc in procs:  # the drill would wait for the host to come back until its timeout
                proc.kill()
            th.join(60)
            break
    res["drill_s"] = round(time.time() - t_crash)
    report_path = os.path.join(report_dir, "fire-drill-%s.json" % host)
    report = {}
    if os.path.exists(report_path):
        with open(report_path) as fh:
            report = json.load(fh)
    keys = ("dump", "size_bytes", "format", "kind", "valid", "problems", "xen_version", "cpus", "crash_to_back_seconds")
    res["report"] = {k: report.get(k) for k in keys if k in report}
    ok = (stopped is None and result.get("rc") == 0 and report.get("valid") is True
          and (report.get("size_bytes") or 0) > 0)
    res["outcome"] = "pass" if ok else "fail"
    if not ok:
        res["reason"] = stopped or ("fire drill rc=%s, dump valid=%s size=%s problems=%s"
                                    % (result.get("rc"), report.get("valid"), report.get("size_bytes"),
                                       report.get("problems")))
    if lab.running():
        lab.ssh("rm -rf /var/crash/2[0-9]* || true", check=False)
    res["total_s"] = round(time.time() - t0)
    return res


def load_results(path: str) -> List[Dict[str, Any]]:
    if os.path.exists(path):
        with open(path) as fh:
            return json.load(fh).get("tries", [])
    return []


def save_results(path: str, tries: List[Dict[str, Any]], summary: List[Dict[str, Any]]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        json.dump({"tries": tries, "summary": summary}, fh, indent=1)
        fh.write("\n")
    os.replace(path + ".tmp", path)


def recommendation(mem: int, cpus: int, tries: List[Dict[str, Any]]) -> Dict[str, Any]:
    """What xen_crash_region recommends for that host: with the kernel init_size and crash initrd
    size read on the lab host during the tries (as the module reads them), else its estimates."""
    import conftest  # noqa: F401  (makes ansible_collections.xenkdump.fleet importable)
    from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel
    seen = [t for t in tries if t.get("initrd_size")]
    kw = {}
    if seen:
        kw = {"kernel_init_size": seen[-1]["kernel_init_size"], "initrd_size": seen[-1]["initrd_size"]}
    r = crashkernel.size_region(mem, cpus, **kw)
    return {"required_mb": r.required_mb, "recommended_mb": r.recommended_mb, "inputs": kw or "estimates"}


def search(known: Dict[int, str], guess: int, step: int, floor: int, ceiling: int) -> Optional[int]:
    """Next size to try, or None when the minimum is pinned to one step."""
    passes = sorted(s for s, o in known.items() if o == "pass")
    fails = sorted(s for s, o in known.items() if o == "fail")
    hi = passes[0] if passes else None
    lo = max((f for f in fails if hi is None or f < hi), default=None)
    if hi is None and lo is None:
        return guess
    if hi is None:  # only failures so far: go up, doubling the distance each time
        assert lo is not None
        nxt = lo + max(step, 2 * (lo - min(fails)))
        return min(nxt, ceiling) if lo < ceiling else None
    if lo is None:  # only passes so far: go down, doubling the distance each time
        nxt = hi - max(step, 2 * (max(passes) - hi))
        return max(nxt, floor) if hi > floor else None
    if hi - lo <= step:
        return None
    mid = (lo + hi) // 2
    return mid - mid % step if (mid - mid % step) > lo else lo + step


def summarise(tries: List[Dict[str, Any]], configs: List[Tuple[int, int]], step: int) -> List[Dict[str, Any]]:
    out = []
    for mem, cpus in configs:
        mine = [t for t in tries if t["memory_mb"] == mem and t["cpus"] == cpus]
        passes = sorted(t["size_mb"] for t in mine if t["outcome"] == "pass")
        fails = sorted(t["size_mb"] for t in mine if t["outcome"] == "fail")
        hi = passes[0] if passes else None
        lo = max((f for f in fails if hi is None or f < hi), default=None)
        rec = recommendation(mem, cpus, tries)
        row = {"memory_mb": mem, "cpus": cpus, "min_pass_mb": hi, "max_fail_mb": lo,
               "pinned": hi is not None and lo is not None and hi - lo <= step, "tries": len(mine),
               "recommended_mb": rec["recommended_mb"], "model_required_mb": rec["required_mb"],
               "model_inputs": rec["inputs"]}
        if hi:
            row["recommended_over_min"] = round(rec["recommended_mb"] / hi, 2)
            row["anchor_256_over_min"] = round(FLAT_ANCHOR_MB / hi, 2)
        out.append(row)
    return out


def all_shapes(tries: List[Dict[str, Any]], configs: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
    """Every shape tried so far plus this run's: the saved summary covers them all."""
    return sorted(set(configs) | {(t["memory_mb"], t["cpus"]) for t in tries})


def print_table(summary: List[Dict[str, Any]]) -> None:
    print()
    print("host RAM  CPUs  smallest good  largest bad  recommended  rec/min  flat 256M/min  tries")
    for r in summary:
        print("%6d MiB %4d  %9s    %9s    %7d MiB  %7s  %13s  %5d" % (
            r["memory_mb"], r["cpus"],
            "%d MiB" % r["min_pass_mb"] if r["min_pass_mb"] else "-",
            "%d MiB" % r["max_fail_mb"] if r["max_fail_mb"] else "-",
            r["recommended_mb"], r.get("recommended_over_min", "-"), r.get("anchor_256_over_min", "-"),
            r["tries"]))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="2048x1,8192x2,4096x2,2048x2,4096x1,8192x1",
                    help="host shapes as MEMxCPUS, MiB (default: 2/4/8 GiB x 1-2 CPUs)")
    ap.add_argument("--step", type=int, default=16, help="resolution in MiB (default 16)")
    ap.add_argument("--guess", type=int, default=160, help="first size tried for the first shape")
    ap.add_argument("--floor", type=int, default=64)
    ap.add_argument("--ceiling", type=int, default=512)
    ap.add_argument("--max-tries", type=int, default=6, help="per shape")
    ap.add_argument("--timeout", type=int, default=1500, help="seconds for a drill to come back")
    ap.add_argument("--idle-timeout", type=int, default=600, help="seconds of console silence = hung")
    ap.add_argument("--instance", default="bench")
    ap.add_argument("--results", default=RESULTS)
    ap.add_argument("--fresh", action="store_true", help="forget earlier tries in --results")
    ap.add_argument("--keep", action="store_true", help="leave the lab instance running")
    ap.add_argument("--summary-only", action="store_true", help="print the table from --results")
    args = ap.parse_args(argv)
    configs = []
    for c in args.configs.split(","):
        m, dummy, n = c.partition("x")
        configs.append((int(m), int(n)))
    tries = [] if args.fresh else load_results(args.results)
    if args.summary_only:
        print_table(summarise(tries, configs, args.step))
        return 0
    outdir = os.path.join(REPO, ".build", "bench", "sizing")
    os.makedirs(outdir, exist_ok=True)
    lab = Lab(args.instance)
    t_all = time.time()
    try:
        prepare(lab, configs[0][0], configs[0][1], outdir)
        guess = args.guess
        for mem, cpus in configs:
            n = 0
            while n < args.max_tries:
                known = {t["size_mb"]: t["outcome"] for t in tries if t["memory_mb"] == mem and t["cpus"] == cpus}
                nxt = search(known, guess, args.step, args.floor, args.ceiling)
                if nxt is None:
                    break
                log("%d MiB x %d CPUs: trying crashkernel=%dM,below=4G (known: %s)" % (
                    mem, cpus, nxt, ", ".join("%d %s" % kv for kv in sorted(known.items())) or "nothing"))
                res = try_size(lab, mem, cpus, nxt, args, outdir)
                why = (": " + res["reason"]) if res.get("reason") else ""
                log("  -> %s in %d s%s" % (res["outcome"], res["total_s"], why))
                tries.append(res)
                save_results(args.results, tries, summarise(tries, all_shapes(tries, configs), args.step))
                n += 1
            row = summarise(tries, [(mem, cpus)], args.step)[0]
            if row["min_pass_mb"]:
                guess = row["min_pass_mb"]
    finally:
        if not args.keep:
            lab.run("stop", check=False)
    save_results(args.results, tries, summarise(tries, all_shapes(tries, configs), args.step))
    print_table(summarise(tries, configs, args.step))
    print("\ntotal %.0f s; every try: %s" % (time.time() - t_all, os.path.relpath(args.results, REPO)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
