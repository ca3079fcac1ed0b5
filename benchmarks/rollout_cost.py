# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a converged ``site.yml`` run costs per host, against a facts-only play on the same host.

Runs, alternately and ``--runs`` times each, ``benchmarks/facts_only.yml`` (gather_facts, no
tasks) and ``playbooks/site.yml`` on a host where the role has already converged, through the
``ansible.posix.json`` callback, and prints:

* wall time of each run, the medians, and their ratio (goal: site.yml <= 3x facts-only);
* tasks the host ran (not skipped), and module round trips: tasks that executed a module on
  the host (controller-only actions such as set_fact, assert, debug, include_* do not count; a
  loop counts one per item that ran);
* the ten slowest tasks of the last site.yml run.

A converged run must report changed=0: the script fails otherwise (the figure would be wrong).

Usage: .venv/bin/python benchmarks/rollout_cost.py -i INVENTORY [--limit HOST] [--runs 3]
       (benchmarks/run prepares a converged lab instance and calls this)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from typing import Any, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Actions that run on the controller only (no round trip to the host).
LOCAL_ACTIONS = {
    "set_fact", "debug", "assert", "fail", "meta", "include_tasks", "import_tasks", "include_role",
    "import_role", "include_vars", "add_host", "group_by", "pause", "set_stats", "validate_argument_spec",
    "end_play", "end_host",
}


def short(action: str) -> str:
    return action.rsplit(".", 1)[-1]


def run(inv: str, book: str, limit: str, extra: List[str]) -> Tuple[float, Dict[str, Any]]:
    env = dict(os.environ, PATH=os.path.join(REPO, ".venv", "bin") + os.pathsep + os.environ["PATH"],
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_JSON_INDENT="0",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False",
               ANSIBLE_PIPELINING=os.environ.get("ANSIBLE_PIPELINING", "True"))
    argv = ["ansible-playbook", "-i", inv, book] + (["--limit", limit] if limit else []) + extra
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, check=False)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
        raise SystemExit("%s failed (rc %d)" % (book, p.returncode))
    return dt, json.loads(p.stdout[p.stdout.index("{"):])


def tally(doc: Dict[str, Any]) -> Dict[str, Any]:
    ran = trips = 0
    slow: List[Tuple[float, str]] = []
    for play in doc["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            dur = task["task"].get("duration", {})
            for host, res in task["hosts"].items():
                if res.get("skipped"):
                    continue
                ran += 1
                action = short(res.get("action", ""))
                if action in LOCAL_ACTIONS or res.get("_ansible_delegated_vars"):
                    continue
                if "results" in res:
                    trips += sum(1 for r in res["results"] if not r.get("skipped"))
                else:
                    trips += 1
            if dur.get("start") and dur.get("end"):
                fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
                secs = (datetime.strptime(dur["end"], fmt) - datetime.strptime(dur["start"], fmt)).total_seconds()
                slow.append((secs, name))
    stats = doc.get("stats", {})
    changed = sum(s.get("changed", 0) for s in stats.values())
    hosts = max(1, len(stats))
    return {"tasks_ran": ran / hosts, "round_trips": trips / hosts, "changed": changed,
            "slowest": sorted(slow, reverse=True)[:10]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-i", "--inventory", required=True)
    ap.add_argument("--limit", default="")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-e", "--extra-vars", action="append", default=[])
    args = ap.parse_args()
    extra = [x for e in args.extra_vars for x in ("-e", e)]
    facts_t: List[float] = []
    site_t: List[float] = []
    site = facts = {}
    for i in range(args.runs):
        dt, doc = run(args.inventory, os.path.join(HERE, "facts_only.yml"), args.limit, extra)
        facts_t.append(dt)
        facts = tally(doc)
        dt, doc = run(args.inventory, os.path.join(REPO, "playbooks", "site.yml"), args.limit, extra)
        site_t.append(dt)
        site = tally(doc)
        print("run %d: facts-only %.1f s, converged site.yml %.1f s (changed %d)"
              % (i + 1, facts_t[-1], site_t[-1], site["changed"]), flush=True)
        if site["changed"]:
            raise SystemExit("site.yml changed %d things: the host is not converged, the figure "
                             "would be wrong (run site.yml once first)" % site["changed"])
    f, s = statistics.median(facts_t), statistics.median(site_t)
    print()
    print("facts-only play:      median %6.1f s  (%s)" % (f, ", ".join("%.1f" % x for x in facts_t)))
    print("converged site.yml:   median %6.1f s  (%s)" % (s, ", ".join("%.1f" % x for x in site_t)))
    print("ratio site/facts:     %.2fx  (goal <= 3x)" % (s / f))
    print("per host: site.yml ran %d tasks, %d module round trips (facts-only: %d, %d)"
          % (site["tasks_ran"], site["round_trips"], facts["tasks_ran"], facts["round_trips"]))
    print("slowest tasks of the last site.yml run:")
    for secs, name in site["slowest"]:
        print("  %6.1f s  %s" % (secs, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
