# -*- coding: utf-8 -*-
"""Issue 17: malformed and hostile inputs for xen_cmdline, xen_crash_region and vmcore_info.

Every case runs the real module in-process (tests/unit/modrun.py) and asserts:
* no traceback (a module result, never an exception), and on failure a clear msg with an XK code;
* the bytes of every file in the test tree unchanged when the module fails or runs in check mode
  (and no temp file left behind);
* bounded work: bytes read are counted (vmcore_info's own ``bytes_read``; special files are refused
  before any read), and a generous wall-clock limit is only a hang guard.

GRUB values are checked with the real /bin/sh (dash) and the real ``grub-script-check``.
xen.cfg edits are checked against a byte-for-byte transcription of Xen's reader
(xen/common/efi/boot.c: pre_parse() and get_value()), written here independently of the module.
"""

from __future__ import annotations

import errno
import math
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest

from conftest import REPO

from ansible_collections.xenkdump.fleet.plugins.module_utils import cmdline, hostio
from ansible_collections.xenkdump.fleet.plugins.modules import vmcore_info, xen_cmdline, xen_crash_region

sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
sys.path.insert(0, os.path.join(REPO, "tests", "unit", "plugins", "module_utils"))
import coredump_builder as cb  # noqa: E402
from modrun import run_module  # noqa: E402
from test_cmdline_corpus import source_with  # noqa: E402

V = "GRUB_CMDLINE_XEN_DEFAULT"
X = "GRUB_CMDLINE_XEN"
HANG_GUARD_S = 120      # only against hangs; the cases take milliseconds to a few seconds


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def tree_state(root: str) -> Dict[str, Tuple[str, bytes]]:
    """Every entry under root: kind and content (a symlink: its target; a FIFO: nothing read)."""
    out: Dict[str, Tuple[str, bytes]] = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(base, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[full] = ("link", os.readlink(full).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as handle:
                    out[full] = ("file", handle.read())
            elif stat.S_ISDIR(st.st_mode):
                out[full] = ("dir", b"")
            else:
                out[full] = ("special", b"%o" % stat.S_IFMT(st.st_mode))
    return out


def run_guarded(capsys, main, args):
    """run_module with a hang guard: a module that blocks fails the test instead of the run."""
    box: Dict[str, object] = {}

    def target():
        try:
            box["result"] = run_module(capsys, main, args)
        except BaseException as exc:  # noqa: B902 - reported below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive(), "module did not return within %d s (hang)" % HANG_GUARD_S
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    rc, res = box["result"]  # type: ignore[misc]
    return rc, res, time.monotonic() - start


def assert_clean_failure(rc, res, codes):
    assert rc == 1 and res.get("failed") is True, res
    assert "exception" not in res and "Traceback" not in res["msg"], res
    assert res.get("error_code") in codes, res
    assert "[%s]" % res["error_code"] in res["msg"] and "Fix:" in res["msg"], res["msg"]


def assert_no_traceback(rc, res):
    assert rc in (0, 1), res
    assert "exception" not in res, res
    if rc:
        assert res.get("error_code", "").startswith("XK"), res
        assert "Fix:" in res["msg"], res


# ---------------------------------------------------------------------------------------------
# GRUB's lexer, for the escapes the module writes (grub-core/script/yylex.l: outside quotes a
# backslash takes the next character literally; $ starts an expansion, ' and " open strings)
# ---------------------------------------------------------------------------------------------

def grub_word_literal(word: str) -> Optional[str]:
    """The text GRUB gets for an unquoted word made of plain characters and backslash escapes;
    None when it holds anything GRUB would expand or quote."""
    out = []
    i = 0
    while i < len(word):
        char = word[i]
        if char == "\\":
            if i + 1 >= len(word):
                return None
            out.append(word[i + 1])
            i += 2
            continue
        if char in "$'\"<>|&;(){} \t\n#" or char in "*?[":
            return None
        out.append(char)
        i += 1
    return "".join(out)


def grub_check(checker: str, tmp_path, line: str) -> int:
    cfg = tmp_path / "grub-check.cfg"
    cfg.write_text("menuentry 'Xen' {\n\tmultiboot2 /boot/xen.gz placeholder %s\n}\n" % line)
    return subprocess.run([checker, str(cfg)], capture_output=True, check=False, timeout=20).returncode


# ---------------------------------------------------------------------------------------------
# 1. GRUB values: what GRUB's lexer yields is exactly the value (real dash + grub-script-check)
# ---------------------------------------------------------------------------------------------

_SPECIALS = "$'<>|&;{}()*?[]~!#^`%+@,.:=/-_"
GRUB_VALUES = sorted(set(
    ["a%sb" % c for c in _SPECIALS] + ["%sx" % c for c in _SPECIALS] + ["x%s" % c for c in _SPECIALS]
    + ["256M<4G", "0-:256M<4G", "$x", "${x}", "$(reboot)", "`reboot`", "a;reboot", "'q'", "it's",
       "a&&b", "x|y", "{a}", "#c", "café", "100%", "$", "''", "$'x'", "a$b$c", "<", ">>", "${a:-b}"]))
GRUB_START = {
    "dq": 'GRUB_CMDLINE_XEN_DEFAULT="dom0_mem=1G"\n',
    "sq": "GRUB_CMDLINE_XEN_DEFAULT='dom0_mem=1G'\n",
    "unquoted": "GRUB_CMDLINE_XEN_DEFAULT=dom0_mem=1G\n",
}
GRUB_VALUE_CASES = [(v, s) for v in GRUB_VALUES for s in sorted(GRUB_START)]


@pytest.mark.parametrize("value,start", GRUB_VALUE_CASES, ids=["%r-%s" % c for c in GRUB_VALUE_CASES])
def test_grub_value_reaches_xen_exactly(capsys, tmp_path, grub_script_check, value, start):
    path = tmp_path / "grub"
    path.write_text(GRUB_START[start])
    args = {"option": "opt", "value": value, "path": str(path), "distro_family": "Debian"}
    before = tree_state(str(tmp_path))
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, dict(args, _ansible_check_mode=True))
    assert rc == 0 and res["changed"] is True, res
    assert tree_state(str(tmp_path)) == before                   # check mode wrote nothing
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, args)
    assert rc == 0 and res["changed"] is True, res
    sourced = source_with("dash", str(path))[V]                   # what grub-mkconfig gets
    tokens = cmdline.tokenize(sourced)
    mine = [t for t in tokens if t.startswith("opt=")]
    assert len(mine) == 1, tokens
    assert grub_word_literal(mine[0]) == "opt=" + value, mine      # GRUB's lexer yields the value
    assert grub_check(grub_script_check, tmp_path, sourced) == 0, sourced
    assert res["cmdline"] == "dom0_mem=1G opt=" + value
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, args)     # idempotent
    assert rc == 0 and res["changed"] is False, res


def test_grub_script_check_catches_what_the_old_escaping_wrote(tmp_path, grub_script_check):
    """The checks above can fail: the old output is rejected by the real grub-script-check."""
    assert grub_check(grub_script_check, tmp_path, "crashkernel=256M\\\\<4G") != 0    # 256M\<4G escaped by <>|&;{} only
    assert grub_check(grub_script_check, tmp_path, "opt=it's") != 0                   # ' was not escaped
    assert grub_check(grub_script_check, tmp_path, "opt=a${b") != 0                   # $ was not escaped
    assert grub_check(grub_script_check, tmp_path, "opt=a{b") != 0                     # { was not escaped
    assert grub_check(grub_script_check, tmp_path, "opt=it\\'s opt2=a\\$\\{b") == 0
    assert grub_word_literal("opt=$x") is None and grub_word_literal("opt=\\$x") == "opt=$x"


REFUSED_VALUES = [
    ("crashkernel", "256M\\<4G"), ("crashkernel", "0-:256M\\<4G"), ("opt", "\\$x"), ("opt", "a\\"),
    ("opt", "\\\\"), ("opt", "\\'"), ("opt", "a\\nb"), ("crashkernel", "crashkernel=256M<4G"),
    ("crashkernel", "crashkernel="), ("crashkernel", "crashkernel=crashkernel=1G"), ("dom0_mem", "dom0_mem=1G"),
    ("opt", "a b"), ("opt", 'a"b'), ("opt", "a\tb"), ("opt", "a\x7fb"), ("opt", "\n"),
    ("bad name", "1"), ("", "1"), ("opt$", "1"), ("opt;reboot", None),
]


def test_nul_in_value_refused_by_the_logic():
    # (a NUL in a module argument is refused by AnsibleModule's own syslog logging before the module runs)
    with pytest.raises(cmdline.CmdlineOptionError):
        cmdline.validate_option("opt", "a\x00b")


@pytest.mark.parametrize("option,value", REFUSED_VALUES, ids=[repr(c) for c in REFUSED_VALUES])
@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "run"])
def test_grub_refused_values_write_nothing(capsys, tmp_path, option, value, check_mode):
    path = tmp_path / "grub"
    path.write_text(GRUB_START["dq"])
    before = tree_state(str(tmp_path))
    args = {"option": option, "value": value, "path": str(path), "distro_family": "Debian",
            "_ansible_check_mode": check_mode}
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, args)
    assert_clean_failure(rc, res, ("XK300",))
    assert tree_state(str(tmp_path)) == before


# ---------------------------------------------------------------------------------------------
# 2. symlinks are kept, their targets edited
# ---------------------------------------------------------------------------------------------

def _grub_link_tree(tmp_path, kind):
    real = tmp_path / "real"
    real.mkdir()
    etc = tmp_path / "etc" / "default"
    (etc / "grub.d").mkdir(parents=True)
    target = real / "grub-default"
    target.write_text('GRUB_DEFAULT=0\nGRUB_CMDLINE_XEN_DEFAULT="dom0_mem=1G crashkernel=128M"\n')
    os.chmod(str(target), 0o640)
    main = etc / "grub"
    if kind == "absolute":
        os.symlink(str(target), str(main))
    elif kind == "relative":
        os.symlink(os.path.relpath(str(target), str(etc)), str(main))
    elif kind == "chain":
        os.symlink(str(target), str(real / "hop"))
        os.symlink(str(real / "hop"), str(main))
    elif kind == "snippet":
        main.write_text("GRUB_DEFAULT=0\n")
        snippet = real / "xen.cfg"
        snippet.write_text('GRUB_CMDLINE_XEN_DEFAULT="crashkernel=128M"\n')
        target.unlink()
        target = snippet
        os.chmod(str(target), 0o640)
        os.symlink(str(snippet), str(etc / "grub.d" / "50-xen.cfg"))
    return str(main), str(target)


@pytest.mark.parametrize("kind", ["absolute", "relative", "chain", "snippet"])
@pytest.mark.parametrize("backup", [False, True])
def test_symlinked_grub_file_keeps_its_link(capsys, tmp_path, kind, backup):
    main, target = _grub_link_tree(tmp_path, kind)
    links = {p: os.readlink(p) for p, (k, _b) in tree_state(str(tmp_path)).items() if k == "link"}
    args = {"option": "crashkernel", "value": "256M<4G", "path": main, "distro_family": "Debian", "backup": backup}
    before = tree_state(str(tmp_path))
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, dict(args, _ansible_check_mode=True))
    assert rc == 0 and res["changed"] and tree_state(str(tmp_path)) == before
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, args)
    assert rc == 0 and res["changed"], res
    for link, dest in links.items():
        assert os.path.islink(link) and os.readlink(link) == dest        # the links are still links
    with open(target) as handle:
        assert "crashkernel=256M\\<4G" in handle.read()                 # ... and the target changed
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    if backup:
        assert all(os.path.isfile(b) and not os.path.islink(b) for b in res["backup_files"].values())
    leftovers = [p for p in tree_state(str(tmp_path)) if os.path.basename(p).startswith(".")]
    assert leftovers == []


def test_symlinked_xen_cfg_keeps_its_link(capsys, tmp_path):
    real = tmp_path / "esp-real.cfg"
    real.write_text("[global]\ndefault=xen\n[xen]\noptions=console=com1\nkernel=vmlinuz\n")
    link = tmp_path / "xen.cfg"
    os.symlink(str(real), str(link))
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, {"option": "crashkernel", "value": "256M<4G",
                                                         "path": str(link), "bootloader": "xen_cfg"})
    assert rc == 0 and res["changed"], res
    assert os.path.islink(str(link)) and "crashkernel=256M<4G" in real.read_text()


# ---------------------------------------------------------------------------------------------
# 3. special files: refused before a byte is read (FIFO, devices, sockets, directories)
# ---------------------------------------------------------------------------------------------

def _special(tmp_path, kind, name="grub"):
    path = str(tmp_path / name)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero-link":
        os.symlink("/dev/zero", path)
    elif kind == "dev-null-link":
        os.symlink("/dev/null", path)
    elif kind == "dev-urandom-link":
        os.symlink("/dev/urandom", path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.close()
    elif kind == "directory":
        os.mkdir(path)
    elif kind == "fifo-link":
        os.mkfifo(path + ".fifo")
        os.symlink(path + ".fifo", path)
    return path


SPECIAL_KINDS = ["fifo", "dev-zero-link", "dev-null-link", "dev-urandom-link", "socket", "directory", "fifo-link"]


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
@pytest.mark.parametrize("bootloader", ["auto", "grub", "xen_cfg"])
def test_xen_cmdline_special_path_refused(capsys, tmp_path, kind, bootloader):
    path = _special(tmp_path, kind)
    before = tree_state(str(tmp_path))
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, {"option": "crashkernel", "value": "256M<4G", "path": path,
                                                         "bootloader": bootloader, "distro_family": "Debian"})
    assert_clean_failure(rc, res, ("XK010",))
    assert tree_state(str(tmp_path)) == before


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "dev-urandom-link", "socket", "fifo-link"])
def test_xen_cmdline_special_grub_d_snippet_refused(capsys, tmp_path, kind):
    main = tmp_path / "grub"
    main.write_text(GRUB_START["dq"])
    (tmp_path / "grub.d").mkdir()
    _special(tmp_path / "grub.d", kind, "50-xen.cfg")
    before = tree_state(str(tmp_path))
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, {"option": "crashkernel", "value": "256M<4G",
                                                         "path": str(main), "distro_family": "Debian"})
    assert_clean_failure(rc, res, ("XK010",))
    assert "50-xen.cfg" in res["msg"]
    assert tree_state(str(tmp_path)) == before


@pytest.mark.parametrize("where", ["main", "snippet"])
@pytest.mark.parametrize("kind", ["loop", "through-file"])
def test_unreadable_file_is_not_taken_for_absent(capsys, tmp_path, where, kind):
    main = tmp_path / "grub"
    (tmp_path / "grub.d").mkdir()
    (tmp_path / "plain").write_text("x")
    victim = str(main) if where == "main" else str(tmp_path / "grub.d" / "50-xen.cfg")
    if where == "snippet":
        main.write_text(GRUB_START["dq"])
    if kind == "loop":
        os.symlink(victim, victim)
    else:
        os.symlink(str(tmp_path / "plain" / "sub"), victim)
    before = tree_state(str(tmp_path))
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, {"option": "crashkernel", "value": "256M<4G",
                                                         "path": str(main), "bootloader": "grub",
                                                         "distro_family": "Debian"})
    assert_clean_failure(rc, res, ("XK013",))
    assert tree_state(str(tmp_path)) == before


def test_dangling_snippet_is_skipped_like_grub_mkconfig(capsys, tmp_path):
    main = tmp_path / "grub"
    main.write_text(GRUB_START["dq"])
    (tmp_path / "grub.d").mkdir()
    os.symlink(str(tmp_path / "nowhere"), str(tmp_path / "grub.d" / "50-xen.cfg"))
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, {"option": "crashkernel", "value": "256M<4G",
                                                         "path": str(main), "distro_family": "Debian",
                                                         "_ansible_check_mode": True})
    assert rc == 0 and res["changed"] is True, res


def test_read_regular_bytes_reads_at_most_limit_plus_one(tmp_path, monkeypatch):
    """Work bound: a file over the limit costs limit+1 bytes, a special file 0 bytes."""
    big = tmp_path / "big"
    big.write_bytes(b"A=1\n" * (1 << 18))             # 1 MiB
    reads: List[int] = []
    real_fdopen = os.fdopen

    class Counting(object):
        def __init__(self, handle):
            self._h = handle

        def read(self, n=-1):
            data = self._h.read(n)
            reads.append(len(data))
            return data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._h.close()

    monkeypatch.setattr(hostio.os, "fdopen", lambda fd, *a, **k: Counting(real_fdopen(fd, *a, **k)))
    with pytest.raises(hostio.FileTooLarge):
        hostio.read_regular_bytes(str(big), cmdline.MAX_CONFIG_BYTES)
    assert sum(reads) == cmdline.MAX_CONFIG_BYTES + 1
    reads.clear()
    with pytest.raises(hostio.NotARegularFile):
        hostio.read_regular_bytes(_special(tmp_path, "dev-zero-link", "z"), cmdline.MAX_CONFIG_BYTES)
    assert reads == []


@pytest.mark.parametrize("size", [cmdline.MAX_CONFIG_BYTES + 1, 1 << 20, 8 << 20])
def test_oversized_grub_file_refused(capsys, tmp_path, size):
    path = tmp_path / "grub"
    path.write_bytes((b"A=1\n" * (size // 4 + 1))[:size])
    before = tree_state(str(tmp_path))
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, {"option": "crashkernel", "value": "256M<4G",
                                                         "path": str(path), "distro_family": "Debian"})
    assert_clean_failure(rc, res, ("XK011",))
    assert tree_state(str(tmp_path)) == before


# ---------------------------------------------------------------------------------------------
# 4. files that cannot be written: a clear XK012, nothing replaced, no temp file left
# ---------------------------------------------------------------------------------------------

def _raise(err, what):
    def fail(*_a, **_k):
        raise OSError(err, os.strerror(err), what)
    return fail


WRITE_FAILURES = [
    ("unwritable-dir", "mkstemp", errno.EACCES),
    ("read-only-fs-temp", "mkstemp", errno.EROFS),
    ("immutable-file", "probe", errno.EPERM),
    ("read-only-mount", "probe", errno.EROFS),
    ("rename-eperm", "rename", errno.EPERM),
    ("rename-ebusy", "rename", errno.EBUSY),
    ("disk-full", "fsync", errno.ENOSPC),
    ("chown-eperm", "chown", errno.EPERM),
]


@pytest.mark.parametrize("name,where,err", WRITE_FAILURES, ids=[w[0] for w in WRITE_FAILURES])
@pytest.mark.parametrize("two_files", [False, True], ids=["one-file", "main-and-snippet"])
def test_write_failures_are_clear_and_change_nothing(capsys, tmp_path, monkeypatch, name, where, err, two_files):
    main = tmp_path / "grub"
    main.write_text('GRUB_CMDLINE_XEN="crashkernel=64M"\n' if two_files else GRUB_START["dq"])
    if two_files:
        (tmp_path / "grub.d").mkdir()
        (tmp_path / "grub.d" / "xen.cfg").write_text('GRUB_CMDLINE_XEN_DEFAULT="crashkernel=128M"\n')
    before = tree_state(str(tmp_path))
    calls = {"n": 0}
    if where == "mkstemp":
        monkeypatch.setattr(hostio.tempfile, "mkstemp", _raise(err, str(tmp_path)))
    elif where == "probe":
        real_open = os.open

        def probing_open(path, flags, *a, **k):
            if flags & os.O_WRONLY and not flags & os.O_CREAT:
                calls["n"] += 1
                if calls["n"] == (2 if two_files else 1):
                    raise OSError(err, os.strerror(err), path)
            return real_open(path, flags, *a, **k)
        monkeypatch.setattr(hostio.os, "open", probing_open)
    elif where == "rename":
        monkeypatch.setattr(hostio.os, "rename", _raise(err, str(main)))
    elif where == "fsync":
        monkeypatch.setattr(hostio.os, "fsync", _raise(err, str(main)))
    elif where == "chown":
        monkeypatch.setattr(hostio.os, "getuid", lambda: 12345)
        monkeypatch.setattr(hostio.os, "chown", _raise(err, str(main)))
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, {"option": "crashkernel", "value": "256M<4G",
                                                         "path": str(main), "distro_family": "Debian"})
    monkeypatch.undo()
    assert_clean_failure(rc, res, ("XK012",))
    assert os.strerror(err) in res["msg"]
    if where == "rename" and two_files:
        pass    # the first rename failed: nothing was replaced either
    assert tree_state(str(tmp_path)) == before              # no file replaced, no temp file left


# ---------------------------------------------------------------------------------------------
# 5. shell files built to exhaust the reader: bounded depth, linear time, bounded expansion
# ---------------------------------------------------------------------------------------------

PATHOLOGICAL = [
    ("nested-default-3000", 'X="' + "${a:-" * 3000 + "}" * 3000 + '"\n', ("XK301",)),
    ("nested-default-unquoted", "X=" + "${a:-" * 3000 + "}" * 3000 + "\n", ("XK301",)),
    ("nested-cmdsubst-3000", "X=" + "$(" * 3000 + ")" * 3000 + "\n", ("XK301",)),
    ("nested-dq-cmdsubst", "X=" + '"$(' * 2000 + ')"' * 2000 + "\n", ("XK301",)),
    ("nested-xen-var", 'GRUB_CMDLINE_XEN_DEFAULT="' + "${a:-" * 3000 + "}" * 3000 + '"\n', ("XK301",)),
    ("unclosed-3000", 'X="' + "${a:-" * 3000 + '"\n', ("XK301",)),
    ("doubling-refs", "A=x\n" + 'A="$A$A"\n' * 40 + 'GRUB_CMDLINE_XEN_DEFAULT="$A"\n', ("XK302",)),
    ("doubling-unused", "A=x\n" + 'A="$A$A"\n' * 40 + 'GRUB_CMDLINE_XEN_DEFAULT="a"\n', None),
    ("many-assignments", "A=1\n" * 60000, None),
    ("long-line", 'GRUB_CMDLINE_LINUX="' + "x" * 200000 + '"\n', None),
    ("many-comments", "#" * 100 + "\n" * 2000 + "# c\n" * 20000, None),
    ("many-refs", "A=abcdefgh\n" + 'B="$A"\n' * 20000 + 'GRUB_CMDLINE_XEN_DEFAULT="$B"\n', None),
    ("many-tokens", 'GRUB_CMDLINE_XEN_DEFAULT="' + " ".join("o%d=1" % i for i in range(20000)) + '"\n', None),
]


@pytest.mark.parametrize("name,text,codes", PATHOLOGICAL, ids=[p[0] for p in PATHOLOGICAL])
def test_pathological_shell_files(capsys, tmp_path, name, text, codes):
    path = tmp_path / "grub"
    path.write_text(text)
    before = tree_state(str(tmp_path))
    args = {"option": "crashkernel", "value": "256M<4G", "path": str(path), "distro_family": "Debian",
            "_ansible_check_mode": True}
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, args)
    if codes is None:
        assert rc == 0 and res["changed"] is True, res
    else:
        assert_clean_failure(rc, res, codes)
        assert " line " in res["msg"]
    assert tree_state(str(tmp_path)) == before


def test_line_numbers_are_linear_not_quadratic(tmp_path, monkeypatch):
    """Work bound: lexing N lines scans the text a constant number of times (no count from 0 per token)."""
    scanned = {"chars": 0}
    real_count = str.count

    class Text(str):
        def count(self, *a):  # pragma: no cover - only called by a quadratic implementation
            scanned["chars"] += (a[2] if len(a) > 2 else len(self)) - (a[1] if len(a) > 1 else 0)
            return real_count(self, *a)

    text = Text("A=1\n" * 20000 + "GRUB_CMDLINE_XEN_DEFAULT=\"a\"\n")
    lexer = cmdline._Lexer(text, "grub")
    tokens = lexer.tokens()
    assert len(tokens) >= 40000
    assert scanned["chars"] <= 2 * len(text)


# ---------------------------------------------------------------------------------------------
# 6. xen.cfg: read exactly as Xen's EFI loader reads it
# ---------------------------------------------------------------------------------------------

def _xen_isspace(c: int) -> bool:
    return c in (9, 10, 11, 12, 13, 32, 160)          # xen/lib/ctype.c: _S


def _xen_iscntrl(c: int) -> bool:
    return c < 32 or c == 127                          # xen/lib/ctype.c: _C


def xen_pre_parse(data: bytes) -> bytearray:
    """boot.c pre_parse(), newest behaviour (an unterminated last line is ignored)."""
    buf = bytearray(data)
    start, comment = True, False
    for i, c in enumerate(buf):
        if _xen_iscntrl(c):
            comment, start = False, True
            buf[i] = 0
        elif comment or (start and _xen_isspace(c)):
            buf[i] = 0
        elif c == ord("#") or (start and c == ord(";")):
            comment = True
            buf[i] = 0
        else:
            start = False
    if buf and buf[-1]:
        pos = len(buf)
        while pos and buf[pos - 1]:
            pos -= 1
            buf[pos] = 0
    return buf


def _strlen(buf: bytearray, ptr: int) -> int:
    end = buf.find(0, ptr)
    return (len(buf) if end < 0 else end) - ptr


def xen_get_value(buf: bytearray, section: Optional[bytes], item: bytes) -> Optional[bytes]:
    """boot.c get_value(), transcribed."""
    ptr, end = 0, len(buf)
    slen = len(section) if section else 0
    ilen = len(item)
    match = not slen
    while ptr < end:
        c = buf[ptr]
        if c == 0:
            ptr += 1
            continue
        if c == ord("["):
            if slen:
                if match:
                    return None
                ptr += 1
                match = bytes(buf[ptr:ptr + slen]) == section and ptr + slen < end and buf[ptr + slen] == ord("]")
        elif match and bytes(buf[ptr:ptr + ilen]) == item and ptr + ilen < end and buf[ptr + ilen] == ord("="):
            ptr += ilen + 1
            while ptr < end and buf[ptr] and _xen_isspace(buf[ptr]):
                ptr += 1
            return bytes(buf[ptr:ptr + _strlen(buf, ptr)])
        ptr += _strlen(buf, ptr)
        ptr += 1
    return None


def xen_boot_options(text: str, section: Optional[str] = None) -> List[str]:
    """The options= tokens Xen boots with (efi_start(): section from [global] default= unless given)."""
    buf = xen_pre_parse(text.encode("utf-8"))
    sec = section.encode() if section else xen_get_value(buf, b"global", b"default")
    opts = xen_get_value(buf, sec, b"options")
    return cmdline.tokenize(opts.decode("utf-8")) if opts is not None else []


G = "[global]\ndefault=xen\n"
XEN_CFG_CASES = [
    # (id, text, expected error code or None)
    ("plain", G + "\n[xen]\noptions=console=com1\nkernel=vmlinuz\n", None),
    ("duplicate-section", G + "[xen]\noptions=a=1\n[xen]\noptions=b=2 crashkernel=64M\n", None),
    ("duplicate-section-second-has-none", G + "[xen]\n[xen]\noptions=b=2\n", None),
    ("second-global-has-default", "[global]\n[xen]\noptions=a\n[global]\ndefault=xen\n", "XK304"),
    ("first-global-empty-then-default", "[global]\n;default=xen\n[global]\ndefault=xen\n[xen]\noptions=a\n", "XK304"),
    ("section-without-bracket", G + "[xen\noptions=a=1\n[xen]\noptions=b=2\n", None),
    ("only-section-without-bracket", G + "[xen\noptions=a=1\n", "XK304"),
    ("nul-in-options", G + "[xen]\noptions=a=1\x00kernel=evil\n", "XK304"),
    ("nul-in-comment", G + "[xen]\n# c\x00options=evil\noptions=a\n", "XK304"),
    ("comment-after-options", G + "[xen]\noptions=a=1 # crashkernel=1G\n", None),
    ("hash-glued", G + "[xen]\noptions=a=1#crashkernel=1G\n", None),
    ("semicolon-comment", G + "[xen]\n;options=x=1\noptions=y=2\n", None),
    ("leading-blanks", G + "[xen]\n   options=a=1\n", None),
    ("blank-before-equals", G + "[xen]\noptions =a=1\n", None),
    ("crlf", "[global]\r\ndefault=xen\r\n[xen]\r\noptions=a=1\r\nkernel=k\r\n", None),
    ("lone-cr", G + "[xen]\noptions=a=1\rkernel=x\n", "XK304"),
    ("tab-inside-options", G + "[xen]\noptions=a=1\tb=2\n", "XK304"),
    ("tab-leading", G + "[xen]\n\toptions=a=1\n", None),
    ("tab-in-comment", G + "[xen]\noptions=a=1 # x\ty\n", None),
    ("vt", G + "[xen]\noptions=a=1\x0bb\n", "XK304"),
    ("ff", G + "\x0c[xen]\noptions=a=1\n", "XK304"),
    ("del", G + "[xen]\noptions=a=1\x7f\n", "XK304"),
    ("no-final-newline", G + "[xen]\noptions=a=1", None),
    ("default-trailing-blank", "[global]\ndefault=xen \n[xen]\noptions=a\n", "XK304"),
    ("default-leading-blank", "[global]\ndefault= xen\n[xen]\noptions=a\n", "XK304"),
    ("default-missing-section", "[global]\ndefault=nope\n[xen]\noptions=a\n", "XK304"),
    ("no-global", "[xen]\noptions=a\n", "XK304"),
    ("empty", "", "XK304"),
    ("header-trailing-text", G + "[xen] trailing\noptions=a=1\n", None),
    ("header-blank-inside", G + "[ xen]\noptions=a=1\n", "XK304"),
    ("two-options-lines", G + "[xen]\noptions=a\noptions=b\n", "XK304"),
    ("options-in-global", "[global]\noptions=g=1\ndefault=xen\n[xen]\noptions=x=1\n", None),
    ("non-ascii-comment", G + "# café ünï\n[xen]\noptions=a=1\n", None),
    ("non-ascii-value", G + "[xen]\noptions=x=café\n", None),
    ("section-ends-at-next-header", G + "[xen]\n[xen2]\noptions=a=1\n", None),
    ("empty-options", G + "[xen]\noptions=\nkernel=k\n", None),
    ("blank-options", G + "[xen]\noptions=    \n", None),
    ("long-options", G + "[xen]\noptions=" + " ".join("o%d=1" % i for i in range(3000)) + "\n", None),
    ("default-comment", "[global]\ndefault=xen # the one\n[xen]\noptions=a\n", "XK304"),
    ("default-glued-comment", "[global]\ndefault=xen#x\n[xen]\noptions=a\n", None),
    ("header-no-final-newline", G + "[xen]", None),
    ("global-after-xen", "[xen]\noptions=a=1\n[global]\ndefault=xen\n", None),
]
XEN_CFG_EDITS = [("crashkernel", "256M<4G", "present"), ("crashkernel", None, "absent"), ("dom0_mem", "2G,max:2G", "present")]
XEN_CFG_MATRIX = [(c, e) for c in XEN_CFG_CASES for e in XEN_CFG_EDITS]


@pytest.mark.parametrize("case,edit", XEN_CFG_MATRIX, ids=["%s-%s-%s" % (c[0], e[0], e[2]) for c, e in XEN_CFG_MATRIX])
def test_xen_cfg_as_xen_reads_it(capsys, tmp_path, case, edit):
    _id, text, code = case
    option, value, state = edit
    path = tmp_path / "xen.cfg"
    path.write_bytes(text.encode("utf-8"))
    before = tree_state(str(tmp_path))
    args = {"option": option, "value": value, "state": state, "path": str(path), "bootloader": "xen_cfg"}
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, dict(args, _ansible_check_mode=True))
    assert tree_state(str(tmp_path)) == before
    if code is not None:
        assert_clean_failure(rc, res, (code,))
        rc, res, _t = run_guarded(capsys, xen_cmdline.main, args)
        assert_clean_failure(rc, res, (code,))
        assert tree_state(str(tmp_path)) == before
        return
    assert rc == 0, res
    old_tokens = xen_boot_options(text)
    if text.endswith(("\n", "\r")):
        assert res["cmdline_before"] == " ".join(old_tokens)
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, args)
    assert rc == 0, res
    new_text = path.read_bytes().decode("utf-8")
    got = xen_boot_options(new_text)
    desired = cmdline.format_option(option, value)
    mine = [t for t in got if cmdline.split_option(t)[0] == option]
    assert mine == ([desired] if state == "present" else []), (got, new_text)
    expected_others = [t for t in (old_tokens if text.endswith(("\n", "\r")) else got)
                       if cmdline.split_option(t)[0] != option]
    assert [t for t in got if cmdline.split_option(t)[0] != option] == expected_others
    if new_text.endswith(("\n", "\r")):
        assert res["cmdline"] == " ".join(got)
    else:                       # unchanged and unterminated: Xen versions differ on the last line
        assert not res["changed"] and any("no newline" in n for n in res["notes"])
    if res["changed"]:
        assert new_text.endswith("\n")
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, args)
    assert rc == 0 and res["changed"] is False, (res, new_text)


def test_xen_cfg_duplicate_section_note(capsys, tmp_path):
    path = tmp_path / "xen.cfg"
    path.write_text(G + "[xen]\noptions=a=1\n[xen]\noptions=b=2\n")
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, {"option": "crashkernel", "value": "256M<4G",
                                                         "path": str(path), "bootloader": "xen_cfg"})
    assert rc == 0 and any("appears again" in n for n in res["notes"])
    assert path.read_text().endswith("[xen]\noptions=b=2\n")       # the copy Xen never reads is left alone


def test_xen_cfg_hash_in_value_refused(capsys, tmp_path):
    path = tmp_path / "xen.cfg"
    path.write_text(G + "[xen]\noptions=a=1\n")
    before = tree_state(str(tmp_path))
    rc, res, _t = run_guarded(capsys, xen_cmdline.main, {"option": "opt", "value": "a#b", "path": str(path),
                                                         "bootloader": "xen_cfg"})
    assert_clean_failure(rc, res, ("XK304",))
    assert tree_state(str(tmp_path)) == before


# ---------------------------------------------------------------------------------------------
# 7. xen_crash_region: impossible plans and numbers that break arithmetic
# ---------------------------------------------------------------------------------------------

BIG = int("9" * 400)
HOSTS = [2048, 8192, 65536]
IMPOSSIBLE_SIZES = ["5G,below=4G", "4G,below=4G", "4096M<4G", "5G<4G", "0M", "0", "0K", "0x0", "0B",
                    "0-1G:128M", "1T", "64T", "16384M,below=16G", "2G<1G", "0-:5G<4G"]


def _region_args(**kw):
    args = {"total_memory_mb": 8192, "nr_cpus": 4, "xen_commandline": "console=com1 dom0_mem=2G"}
    args.update(kw)
    return args


def _is_impossible(size, host):
    from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel as ck
    parsed = ck.parse(size)
    mb = ck.reserved_mb(parsed, host)
    if mb == 0 or mb >= host:
        return True
    place = parsed.placement
    return place is not None and place.kind == "below" and mb * ck.MIB >= place.address


REGION_CASES = [(s, h, b) for s in IMPOSSIBLE_SIZES for h in HOSTS for b in (True, False)]


@pytest.mark.parametrize("size,host,below", REGION_CASES, ids=["%s-%d-%s" % c for c in REGION_CASES])
def test_crash_region_never_plans_the_impossible(capsys, size, host, below):
    rc, res, _t = run_guarded(capsys, xen_crash_region.main, _region_args(size=size, total_memory_mb=host,
                                                                          below_4g=below))
    assert_no_traceback(rc, res)
    if _is_impossible(size, host):
        assert_clean_failure(rc, res, ("XK213", "XK211"))
    elif rc == 0:
        assert res["change"]["state"] in ("present", "unchanged")
        assert 0 < res["recommended_size_mb"] < host


BAD_NUMBERS = [
    ("headroom_pct", "nan"), ("headroom_pct", "inf"), ("headroom_pct", "-inf"), ("headroom_pct", "1e400"),
    ("headroom_pct", "-1"), ("headroom_pct", "1001"),
    ("total_memory_mb", BIG), ("nr_cpus", BIG), ("reserved_mb", BIG), ("kernel_init_size", BIG),
    ("initrd_size", BIG), ("headroom_mb", BIG), ("total_memory_mb", -BIG), ("headroom_mb", -1),
    ("total_memory_mb", 2 ** 64), ("kernel_init_size", 2 ** 64 + 1), ("reserved_mb", -1), ("nr_cpus", 0),
]


@pytest.mark.parametrize("name,value", BAD_NUMBERS, ids=["%s=%s" % (n, str(v)[:12]) for n, v in BAD_NUMBERS])
def test_crash_region_bad_numbers(capsys, name, value):
    rc, res, _t = run_guarded(capsys, xen_crash_region.main, _region_args(**{name: value}))
    assert_clean_failure(rc, res, ("XK210",))


@pytest.mark.parametrize("pct,mb", [(1000.0, 0), (500.0, 2000), (0.0, 4000), (900.0, 3000)])
def test_crash_region_headroom_cannot_push_past_its_limit(capsys, pct, mb):
    rc, res, _t = run_guarded(capsys, xen_crash_region.main, _region_args(total_memory_mb=1 << 20, nr_cpus=64,
                                                                          headroom_pct=pct, headroom_mb=mb))
    assert_no_traceback(rc, res)
    if rc == 0:
        assert res["recommended_size_mb"] * 1024 * 1024 < 4 << 30
    else:
        assert res["error_code"] == "XK213"


DOUBLED = ["crashkernel=crashkernel=256M<4G", "crashkernel=crashkernel=256M,below=4G", "crashkernel=crashkernel=",
           "crashkernel=crashkernel=0-:256M<4G", "dom0_mem=1G crashkernel=crashkernel=512M",
           "crashkernel=256M,below=4G crashkernel=crashkernel=256M,below=4G"]


@pytest.mark.parametrize("line", DOUBLED)
@pytest.mark.parametrize("reserved", [None, 0, 256])
def test_crash_region_doubled_option_is_never_ok(capsys, line, reserved):
    args = _region_args(xen_commandline=line)
    if reserved is not None:
        args["reserved_mb"] = reserved
    rc, res, _t = run_guarded(capsys, xen_crash_region.main, args)
    assert rc == 0, res
    assert res["verdict"] != "ok" and "XK201" in (res["current_error"] or ""), res
    assert res["change"]["state"] == "present" and not res["change"]["value"].startswith("crashkernel=")


# ---------------------------------------------------------------------------------------------
# 8. vmcore_info: special files, zero tails, PT_NOTE bombs: bounded reads
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", SPECIAL_KINDS)
@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "run"])
def test_vmcore_info_special_path(capsys, tmp_path, kind, check_mode):
    path = _special(tmp_path, kind, "dump.202611261152")
    before = tree_state(str(tmp_path))
    rc, res, _t = run_guarded(capsys, vmcore_info.main, {"path": path, "_ansible_check_mode": check_mode})
    if kind == "directory":
        assert_clean_failure(rc, res, ("XK511",))
    else:
        assert_clean_failure(rc, res, ("XK010",))
    assert tree_state(str(tmp_path)) == before


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "socket", "fifo-link"])
def test_vmcore_info_crash_dir_skips_special_files(capsys, tmp_path, kind):
    sub = tmp_path / "202611261152"
    sub.mkdir()
    _special(sub, kind, "dump.202611261152")
    rc, res, _t = run_guarded(capsys, vmcore_info.main, {"path": str(tmp_path)})
    assert rc == 1 and res["error_code"] in ("XK511", "XK010"), res


def _flat_kdump():
    image = cb.kdump_compressed(notes=cb.xen_notes(2), nr_cpus=2)
    return image if isinstance(image, bytes) else image[0]


@pytest.mark.parametrize("tail", [16, 4096, 1 << 20, 64 << 20, 1 << 30])
@pytest.mark.parametrize("end_marker", [False, True])
def test_flattened_zero_tail_is_not_walked(capsys, tmp_path, tail, end_marker):
    stream = cb.flatten(_flat_kdump(), end_marker=False)
    path = str(tmp_path / "dump.202611261152")
    with open(path, "wb") as handle:
        handle.write(stream)
        handle.truncate(len(stream) + tail)            # a zero-filled (sparse) tail
        if end_marker:
            handle.seek(len(stream) + tail)
            handle.write(struct.pack(">qq", -1, -1))
    rc, res, _t = run_guarded(capsys, vmcore_info.main, {"path": path})
    assert_clean_failure(rc, res, ("XK512",))
    assert res["valid"] is False and any("size 0" in p for p in res["problems"]), res["problems"]
    assert res["bytes_read"] <= len(stream) + (4 << 20)                # O(headers), not O(tail)


def _note_bomb(path, count, region=8 << 20, shift=0, filesz=None):
    phoff = 64
    data_at = -(-(phoff + 56 * count) // 4096) * 4096
    filesz = region if filesz is None else filesz
    head = bytearray(cb.ehdr(cb.ET_CORE, count, phoff=phoff))
    for i in range(count):
        head += cb.phdr(cb.PT_NOTE, data_at + (i * shift) % max(1, region - filesz + 1), 0, 0, filesz, filesz, flags=0)
    cb.write_sparse(path, bytes(head), data_at + region)
    return data_at + region


@pytest.mark.parametrize("count,shift,filesz", [
    (2, 0, None), (100, 0, None), (1000, 0, None), (65000, 0, None), (65535, 0, None),
    (65000, 1, (8 << 20) - 4096), (1000, 4096, 4 << 20), (65000, 8, 4096 * 1024),
])
def test_pt_note_bomb_reads_bounded(capsys, tmp_path, count, shift, filesz):
    path = str(tmp_path / "vmcore")
    size = _note_bomb(path, count, shift=shift, filesz=filesz)
    rc, res, _t = run_guarded(capsys, vmcore_info.main, {"path": path})
    assert_no_traceback(rc, res)
    assert rc == 1 and res["error_code"] == "XK512", res.get("problems")
    # the headers once, and at most the 8 MiB note budget, plus a little
    assert res["bytes_read"] <= 64 + 56 * count + (8 << 20) + (1 << 20), (res["bytes_read"], size)


# ---------------------------------------------------------------------------------------------
# 9. hypothesis: random hostile values never traceback, never write in check mode
# ---------------------------------------------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_VALUE_CHARS = st.text(alphabet="ab01$'\\\"<>|&;{}()*?[]~!#^`%+@,.:=/- \t\x00\x7fé", min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(value=_VALUE_CHARS)
def test_hypothesis_grub_values(value):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "grub")
        with open(path, "w") as handle:
            handle.write(GRUB_START["dq"])
        try:
            plan = cmdline.plan_grub_edit(cmdline.read_grub_files(cmdline.Host(run=None), path), "opt", value)
        except cmdline.CmdlineOptionError as exc:
            assert exc.code == "XK300"
            return
        new = plan.new_texts[path]
        with open(path, "w") as handle:
            handle.write(new)
        sourced = source_with("dash", path)[V]
        mine = [t for t in cmdline.tokenize(sourced) if t.startswith("opt=")]
        assert [grub_word_literal(t) for t in mine] == ["opt=" + value]


@settings(max_examples=80, deadline=None)
@given(size=st.text(alphabet="0123456789MGKTB<@,-:belowx", min_size=1, max_size=14),
       host=st.integers(min_value=1, max_value=1 << 22))
def test_hypothesis_planner_feasible_or_refused(size, host):
    from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel as ck
    try:
        plan = ck.plan(host, 2, None, size=size, below_4g=False)
    except ck.XenKdumpError as exc:
        assert exc.code.startswith("XK2")
        return
    if plan.change["state"] == "present":
        assert 0 < plan.recommended_size_mb < host
        parsed = ck.parse(plan.recommended)
        if parsed.placement is not None and parsed.placement.kind == "below":
            assert plan.recommended_size_mb * ck.MIB < parsed.placement.address


def test_corpus_size():
    cases = (len(GRUB_VALUE_CASES) + 2 * len(REFUSED_VALUES) + 8 + 1 + 3 * len(SPECIAL_KINDS) + 5 + 3
             + 2 * len(WRITE_FAILURES) + 5 + len(PATHOLOGICAL) + len(XEN_CFG_MATRIX) + len(REGION_CASES)
             + len(BAD_NUMBERS) + 4 + 3 * len(DOUBLED) + 2 * len(SPECIAL_KINDS) + 4 + 10 + 8)
    assert cases >= 300, cases
    assert not math.isnan(cases)
