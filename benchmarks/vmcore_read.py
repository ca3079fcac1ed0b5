# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How much of a big dump vmcore_info reads, and how long it takes, against ``readelf -n``.

Builds a 64 GiB sparse, Xen-shaped ELF core (headers and notes like the real Xen 4.17 dump:
per-CPU CORE + Xen CRASH_REGS notes, CRASH_INFO, VMCOREINFO_XEN; PT_LOADs that cover 64 GiB)
with truncate, so it costs a few KiB of disk, then:

* runs ``elfcore.inspect_dump`` and prints the bytes it read (its counting reader), the bytes
  the process read according to /proc/self/io (rchar: includes nothing else of note here),
  and the wall time (best of N);
* runs ``readelf -n`` on the same file and prints its wall time and, when strace is installed,
  the bytes its read()/pread() calls returned;
* builds a flattened kdump-compressed dump shaped like the one kdump-tools saved on the real
  Xen 4.17 host (176 MB, one 4 KiB data block per page: ``--flat-pages 43000``) and prints what
  verifying it costs: every 16-byte data header is read (the end marker can only be found by
  following them), page bodies never are.  This file cannot stay sparse (a header every
  4112 bytes touches every disk block): it takes ~180 MB in the temp directory while it runs.

Usage: .venv/bin/python benchmarks/vmcore_read.py [--size-gib 64] [--cpus 16] [--repeat 5] [--keep]
Not a test: timing depends on the machine.  The unit tests assert only the byte budget.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))

# conftest makes ansible_collections.xenkdump.fleet importable
import conftest  # noqa: E402,F401  pylint: disable=unused-import
import coredump_builder as cb  # noqa: E402
from ansible_collections.xenkdump.fleet.plugins.module_utils import elfcore  # noqa: E402

GiB = 1 << 30


def rchar() -> int:
    with open("/proc/self/io") as handle:
        for line in handle:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return -1


def build(path: str, size_gib: int, cpus: int) -> int:
    # Like a real x86 host: low 640 KiB, then RAM from 1 MiB with the crash region left out,
    # then the rest above 4 GiB.
    total = size_gib * GiB
    loads = [(0x0, 0x9FC00), (0x100000, 0x3F00000), (0x14000000, 0xC0000000 - 0x14000000)]
    loads.append((0x100000000, total - sum(memsz for _paddr, memsz in loads)))
    head, size = cb.xen_core(nr_cpus=cpus, loads=loads)
    cb.write_sparse(path, head, size)
    return size


def strace_bytes(argv):
    if not shutil.which("strace"):
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as log:
        subprocess.run(["strace", "-f", "-e", "trace=read,pread64", "-o", log.name] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        total = 0
        for line in log:
            match = re.search(r"^\d*\s*p?read(?:64)?\((\d+),.*=\s+(\d+)$", line.strip())
            if match and match.group(1) not in ("0",):
                total += int(match.group(2))
        return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=int, default=64)
    parser.add_argument("--cpus", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--flat-pages", type=int, default=43000,
                        help="pages in the flattened dump (0: skip that part)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="vmcore-bench-")
    path = os.path.join(workdir, "vmcore")
    try:
        size = build(path, args.size_gib, args.cpus)
        on_disk = os.stat(path).st_blocks * 512
        print("core: %s  apparent size %d bytes (%.1f GiB), on disk %d bytes, %d CPUs"
              % (path, size, size / GiB, on_disk, args.cpus))

        best = None
        report = None
        io_delta = None
        for _round in range(args.repeat):
            before = rchar()
            start = time.perf_counter()
            report = elfcore.inspect_dump(path, expect="xen")
            elapsed = time.perf_counter() - start
            io_delta = rchar() - before
            best = elapsed if best is None else min(best, elapsed)
        assert report is not None
        print("vmcore_info: valid=%s Xen %s, %d CPUs, %d CRASH_REGS, %d PT_LOADs covering %d bytes"
              % (report["valid"], report["xen"]["version"], report["nr_cpus"], report["xen"]["crash_regs"],
                 report["pt_load_count"], report["memory_bytes"]))
        print("vmcore_info: bytes_read=%d (counting reader), process rchar delta=%d, best of %d: %.2f ms"
              % (report["bytes_read"], io_delta, args.repeat, best * 1000))

        if shutil.which("readelf"):
            best_re = None
            for _round in range(args.repeat):
                start = time.perf_counter()
                out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True, check=False)
                elapsed = time.perf_counter() - start
                best_re = elapsed if best_re is None else min(best_re, elapsed)
            notes = len(re.findall(r"^\s+(?:CORE|Xen|VMCOREINFO_XEN)\s+0x", out.stdout, re.M))
            print("readelf -n: rc=%d, %d notes listed, best of %d: %.2f ms (process start included)"
                  % (out.returncode, notes, args.repeat, best_re * 1000))
            traced = strace_bytes(["readelf", "-n", path])
            if traced is not None:
                print("readelf -n: bytes returned by read()/pread() (strace, all fds but stdin, "
                      "shared libraries included): %d" % traced)
        else:
            print("readelf not installed: comparison skipped")
        if args.flat_pages:
            flat = os.path.join(workdir, "dump.flat")
            fsize, blocks = cb.write_sparse_flat_kdump(flat, args.flat_pages)
            best_flat = None
            freport = None
            for _round in range(args.repeat):
                start = time.perf_counter()
                freport = elfcore.inspect_dump(flat, expect="xen")
                elapsed = time.perf_counter() - start
                best_flat = elapsed if best_flat is None else min(best_flat, elapsed)
            assert freport is not None
            print("flattened dump: %d bytes, %d data blocks, %d dumpable pages: valid=%s, bytes_read=%d "
                  "(%.2f%% of the file), best of %d: %.1f ms"
                  % (fsize, blocks, freport["kdump"]["dumpable_pages"], freport["valid"], freport["bytes_read"],
                     100.0 * freport["bytes_read"] / fsize, args.repeat, best_flat * 1000))
        budget_ok = report["bytes_read"] < (1 << 20)
        print("budget (< 1 MiB read for a %d GiB core): %s" % (args.size_gib, "OK" if budget_ok else "EXCEEDED"))
        return 0 if budget_ok and report["valid"] else 1
    finally:
        if args.keep:
            print("kept", path)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
