# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kdump role manages, as it is on the host now, in one read-only pass.

The role renders every file it manages on the controller and asks :func:`read_state` (through
the ``config_state`` module) which of them differ from the host, which packages are missing,
which debconf answers differ, and how its units stand.  Writes then happen only where
something differs, so a converged host costs one round trip here instead of one or two per
file (measured in benchmarks/rollout_cost.py).  Nothing here writes; the comparison is
exact (sha256 of the content, mode, owner, group), never a remembered stamp.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import Host


class StateInputError(XenKdumpError):
    code = "XK601"
    title = "config_state: bad input"
    remedy = ("Give each file a path and either content or sha256, modes as octal strings "
              "(\"0644\"), and package managers apt, dpkg, zypper, dnf, yum or rpm.")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _ids(host: Host, db: str) -> Dict[str, int]:
    """name -> id from the host's /etc/passwd or /etc/group (numeric names map to themselves)."""
    out: Dict[str, int] = {}
    for line in (host.read(db) or "").splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            out.setdefault(parts[0], int(parts[2]))
    return out


def _mode(value: Optional[str], what: str) -> Optional[int]:
    if value in (None, ""):
        return None
    text = str(value)
    try:
        mode = int(text, 8)
    except ValueError:
        raise StateInputError("%s: mode %r is not an octal number." % (what, value))
    if mode < 0 or mode > 0o7777:
        raise StateInputError("%s: mode %r is out of range." % (what, value))
    return mode


def _owner_drift(host: Host, st: os.stat_result, owner: Optional[str], group: Optional[str],
                 users: Dict[str, int], groups: Dict[str, int]) -> List[str]:
    reasons = []
    if owner:
        uid = int(owner) if owner.isdigit() else users.get(owner)
        if uid is None or st.st_uid != uid:
            reasons.append("owner is uid %d, wanted %s" % (st.st_uid, owner))
    if group:
        gid = int(group) if group.isdigit() else groups.get(group)
        if gid is None or st.st_gid != gid:
            reasons.append("group is gid %d, wanted %s" % (st.st_gid, group))
    return reasons


def file_state(host: Host, spec: Dict[str, Any], users: Dict[str, int], groups: Dict[str, int]) -> Dict[str, Any]:
    path = spec.get("path")
    if not path or not str(path).startswith("/"):
        raise StateInputError("files: every entry needs an absolute path, got %r." % (path,))
    if spec.get("content") is None and not spec.get("sha256"):
        raise StateInputError("files: %s needs content or sha256." % path)
    wanted = spec.get("sha256") or sha256_text(spec["content"])
    mode = _mode(spec.get("mode"), path)
    res: Dict[str, Any] = {"exists": False, "drift": True, "reasons": [], "wanted_sha256": wanted}
    real = host.p(path)
    try:
        st = os.lstat(real)
    except OSError:
        res["reasons"].append("missing")
        return res
    if not stat.S_ISREG(st.st_mode):
        res["exists"] = True
        res["reasons"].append("not a regular file")
        return res
    res["exists"] = True
    digest = hashlib.sha256()
    try:
        with open(real, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
    except (IOError, OSError) as exc:
        res["reasons"].append("unreadable: %s" % exc)
        return res
    res["sha256"] = digest.hexdigest()
    if res["sha256"] != wanted:
        res["reasons"].append("content differs")
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        res["reasons"].append("mode is %04o, wanted %04o" % (stat.S_IMODE(st.st_mode), mode))
    res["reasons"].extend(_owner_drift(host, st, spec.get("owner"), spec.get("group"), users, groups))
    res["drift"] = bool(res["reasons"])
    return res


def directory_state(host: Host, spec: Dict[str, Any], users: Dict[str, int], groups: Dict[str, int]) -> Dict[str, Any]:
    path = spec.get("path")
    if not path or not str(path).startswith("/"):
        raise StateInputError("directories: every entry needs an absolute path, got %r." % (path,))
    mode = _mode(spec.get("mode"), path)
    res: Dict[str, Any] = {"exists": False, "drift": True, "reasons": []}
    try:
        st = os.stat(host.p(path))
    except OSError:
        res["reasons"].append("missing")
        return res
    res["exists"] = True
    if not stat.S_ISDIR(st.st_mode):
        res["reasons"].append("not a directory")
        return res
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        res["reasons"].append("mode is %04o, wanted %04o" % (stat.S_IMODE(st.st_mode), mode))
    res["reasons"].extend(_owner_drift(host, st, spec.get("owner"), spec.get("group"), users, groups))
    res["drift"] = bool(res["reasons"])
    return res


def _nl_split(text: str) -> List[str]:
    """Lines split on "\n" only, each keeping its "\n" (the last one may have none)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def line_state(host: Host, specs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Per path: would ``ansible.builtin.lineinfile`` (state=present, no create) change it?

    A line spec has ``path``, ``line`` and optionally ``regexp``.  Like lineinfile, the last
    line matching ``regexp`` (else the last line equal to ``line``) must be exactly ``line``
    followed by a newline; with neither, lineinfile would append it.  Several specs may name
    one path; the result is per path.  tests/integration/test_lines_vs_lineinfile.py holds the
    real lineinfile to this.
    """
    out: Dict[str, Any] = {}
    for spec in specs:
        if not isinstance(spec, dict):
            raise StateInputError("lines: entries must be dicts, got %r." % (spec,))
        path, line, regexp = spec.get("path"), spec.get("line"), spec.get("regexp")
        if not path or not str(path).startswith("/"):
            raise StateInputError("lines: every entry needs an absolute path, got %r." % (path,))
        if line is None or "\n" in str(line):
            raise StateInputError("lines: %s needs one line (no newline), got %r." % (path, line))
        try:
            pattern = re.compile(regexp) if regexp else None
        except re.error as exc:
            raise StateInputError("lines: %s: regexp %r does not compile (%s)." % (path, regexp, exc))
        res = out.setdefault(path, {"exists": False, "drift": False, "reasons": []})
        text = host.read(path)
        if text is None:
            res["drift"] = True
            if "missing" not in res["reasons"]:
                res["reasons"].append("missing")
            continue
        res["exists"] = True
        # As lineinfile reads it: universal newlines (host.read translated \r\n and \r), each
        # line with its "\n"; the line it keeps must be exactly ``line`` + "\n".
        current = _nl_split(text)
        at = -1
        for index, cur in enumerate(current):
            if pattern is not None and pattern.search(cur):
                at = index
        if at < 0:
            for index, cur in enumerate(current):
                if cur.rstrip("\r\n") == line:
                    at = index
        if at < 0 or current[at] != line + "\n":
            res["drift"] = True
            now = current[at].rstrip("\n") if at >= 0 else None
            res["reasons"].append("wants %r%s" % (line, "" if now is None else (
                " (now %r)" % now if now != line else " (no newline after it)")))
    return out


def package_state(host: Host, packages: Sequence[str], pkg_mgr: str) -> Dict[str, Any]:
    names = [p for p in packages if p]
    if not names:
        return {"installed": [], "missing": [], "tool": None}
    if pkg_mgr in ("apt", "dpkg"):
        tool = host.which("dpkg-query")
        argv = [tool or "dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n"] + names
        installed = set()
        if tool:
            res = host.run(argv)  # exits 1 when a package is unknown: that is an answer
            for line in res.stdout.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == "installed":
                    installed.add(parts[0].split(":")[0])
    elif pkg_mgr in ("zypper", "dnf", "yum", "rpm"):
        tool = host.which("rpm")
        installed = set()
        if tool:
            res = host.run([tool, "-q", "--qf", "%{NAME}\n"] + names)
            installed = {line.strip() for line in res.stdout.splitlines()
                         if line.strip() and " " not in line.strip()}
    else:
        raise StateInputError("packages: package manager %r is not supported." % pkg_mgr)
    missing = [n for n in names if n not in installed]
    return {"installed": sorted(set(names) - set(missing)), "missing": missing, "tool": tool}


def debconf_state(host: Host, answers: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Current debconf answers via ``debconf-show <package>...`` (one command)."""
    if not answers:
        return {}
    tool = host.which("debconf-show")
    current: Dict[str, str] = {}
    if tool:
        pkgs = sorted({a["name"] for a in answers if a.get("name")})
        res = host.run([tool] + pkgs)
        for line in res.stdout.splitlines():
            # "* kexec-tools/load_kexec: false" (the * marks an answer that was seen/set)
            text = line.strip().lstrip("*").strip()
            if ":" in text:
                key, dummy, value = text.partition(":")
                current[key.strip()] = value.strip()
    out = {}
    for a in answers:
        q = a.get("question")
        if not q:
            raise StateInputError("debconf: every answer needs a question.")
        wanted = str(a.get("value", ""))
        have = current.get(q)
        out[q] = {"current": have, "wanted": wanted, "drift": have != wanted}
    return out


def unit_state(host: Host, units: Sequence[str]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    names = [u for u in units if u]
    tool = host.which("systemctl")
    if not names:
        return out
    if not tool:
        return {u: {"unit_file_state": None, "active_state": None, "error": "no systemctl"} for u in names}
    res = host.run([tool, "show", "--property=Id,UnitFileState,ActiveState"] + names)
    parsed: List[Dict[str, str]] = []
    for block in res.stdout.split("\n\n"):
        props = {}
        for line in block.splitlines():
            key, dummy, value = line.partition("=")
            if key:
                props[key] = value
        if props:
            parsed.append(props)
    # systemctl show prints one block per unit, in argument order
    for name, props in zip(names, parsed):
        out[name] = {"unit_file_state": props.get("UnitFileState") or None,
                     "active_state": props.get("ActiveState") or None}
    for name in names[len(parsed):]:
        out[name] = {"unit_file_state": None, "active_state": None,
                     "error": (res.stderr or "").strip() or "no answer from systemctl"}
    return out


def read_state(host: Host, files: Sequence[Dict[str, Any]] = (), directories: Sequence[Dict[str, Any]] = (),
               packages: Sequence[str] = (), pkg_mgr: str = "apt", debconf: Sequence[Dict[str, Any]] = (),
               units: Sequence[str] = (), lines: Sequence[Dict[str, Any]] = ()) -> Dict[str, Any]:
    users = _ids(host, "/etc/passwd")
    groups = _ids(host, "/etc/group")
    fstate = {f["path"] if isinstance(f, dict) and f.get("path") else str(f): None for f in files}
    for spec in files:
        if not isinstance(spec, dict):
            raise StateInputError("files: entries must be dicts, got %r." % (spec,))
        fstate[spec["path"]] = file_state(host, spec, users, groups)
    dstate = {}
    for spec in directories:
        if not isinstance(spec, dict):
            raise StateInputError("directories: entries must be dicts, got %r." % (spec,))
        dstate[spec["path"]] = directory_state(host, spec, users, groups)
    pstate = package_state(host, packages, pkg_mgr) if packages else {"installed": [], "missing": [], "tool": None}
    dc = debconf_state(host, debconf)
    ustate = unit_state(host, units)
    lstate = line_state(host, lines)
    drifted = sorted([p for p, s in fstate.items() if s and s["drift"]] + [p for p, s in dstate.items() if s["drift"]]
                     + [p for p, s in lstate.items() if s["drift"] and p not in fstate])
    return {
        "files": fstate,
        "directories": dstate,
        "packages": pstate,
        "debconf": dc,
        "units": ustate,
        "lines": lstate,
        "drifted_paths": drifted,
        "debconf_drift": any(v["drift"] for v in dc.values()),
        "drift": bool(drifted or pstate["missing"] or any(v["drift"] for v in dc.values())
                      or any(v["drift"] for v in lstate.values())),
    }
