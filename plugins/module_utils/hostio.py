# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How logic reaches the host: a filesystem root and a command runner.

Logic never imports AnsibleModule.  It receives a :class:`Host`: ``root`` (``/`` on a real
host, a fixture sysroot in unit tests) and ``run``, a callable that takes an argv list and
returns a :class:`CommandResult`.  Modules build one with :func:`host_from_module`.
Commands are always argv lists; nothing here goes through a shell.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import time
from typing import Any, Callable, List, NamedTuple, Optional, Sequence

from ansible_collections.xenkdump.fleet.plugins.module_utils import errors


class CommandResult(NamedTuple):
    rc: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], CommandResult]

DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
                "/opt/xensource/libexec")


class Host(object):
    """A host as logic sees it."""

    def __init__(self, run: Runner, root: str = "/", path: Sequence[str] = DEFAULT_PATH) -> None:
        self.run = run
        self.root = root
        self.path = tuple(path)

    def p(self, path: str) -> str:
        """Map an absolute host path into ``root``."""
        if self.root in ("", "/"):
            return path
        return os.path.join(self.root, path.lstrip("/"))

    def exists(self, path: str) -> bool:
        return os.path.exists(self.p(path))

    def read(self, path: str, limit: Optional[int] = None) -> Optional[str]:
        """Text of a file, or None when it does not exist or cannot be read."""
        try:
            with open(self.p(path), "r", encoding="utf-8", errors="replace") as handle:
                return handle.read() if limit is None else handle.read(limit)
        except (IOError, OSError):
            return None

    def listdir(self, path: str) -> List[str]:
        try:
            return sorted(os.listdir(self.p(path)))
        except (IOError, OSError):
            return []

    def which(self, name: str) -> Optional[str]:
        """Absolute host path of an executable, searched in ``path``; None when absent."""
        for directory in self.path:
            candidate = os.path.join(directory, name)
            real = self.p(candidate)
            if os.path.isfile(real) and os.access(real, os.X_OK):
                return candidate
        return None


def host_from_module(module: Any, root: str = "/") -> Host:
    """A Host whose runner is ``module.run_command`` (argv list, no shell)."""

    def run(argv: Sequence[str]) -> CommandResult:
        rc, out, err = module.run_command(list(argv), check_rc=False)
        return CommandResult(rc, out, err)

    return Host(run=run, root=root)


# ---------------------------------------------------------------------------------------------
# Reading and writing files safely: only regular files, bounded sizes, clear errors
# ---------------------------------------------------------------------------------------------

class NotARegularFile(errors.XenKdumpError):
    code = "XK010"
    title = "Path is not a regular file"
    remedy = ("Point path: at the regular file itself (a symlink to one is fine); FIFOs, devices, "
              "sockets and directories are refused so that nothing blocks or reads without end.")


class FileTooLarge(errors.XenKdumpError):
    code = "XK011"
    title = "File is larger than a configuration file can be"
    remedy = ("Check that path: names the right file; a bootloader configuration file is a few KiB. "
              "Shrink it by hand if it really is that large.")


class FileReadError(errors.XenKdumpError):
    code = "XK013"
    title = "Cannot read the file"
    remedy = ("Make the file readable for the connecting user (become: true) and fix the path: a symlink "
              "loop or a path through a non-directory cannot be read.")


class FileWriteError(errors.XenKdumpError):
    code = "XK012"
    title = "Cannot write the file"
    remedy = ("Nothing was changed. Make the directory writable for the connecting user (become: true), "
              "and the file changeable (lsattr; chattr -i for an immutable file; a read-only mount), "
              "then run the task again.")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str, shown: Optional[str] = None) -> int:
    """A read-only fd of the regular file ``path`` (symlinks followed).

    Opened with O_NONBLOCK so a FIFO cannot block the open, and checked with fstat on the
    opened fd (no race between a check and the open). Raises :class:`NotARegularFile`;
    OSError for a missing or unreadable file.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP):      # a socket (or a FIFO-like device) cannot be opened
            try:
                mode = os.stat(path).st_mode
            except OSError:
                raise exc
            if not stat.S_ISREG(mode):
                raise NotARegularFile("%s is %s, not a regular file." % (shown or path, _kind(mode)),
                                      path=shown or path)
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile("%s is %s, not a regular file." % (shown or path, _kind(mode)),
                                  path=shown or path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular_bytes(path: str, limit: int, shown: Optional[str] = None) -> bytes:
    """Bytes of the regular file ``path``, refusing more than ``limit`` bytes (:class:`FileTooLarge`)."""
    fd = open_regular(path, shown)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge("%s is larger than %d bytes." % (shown or path, limit), path=shown or path)
    return data


class StagedWrite(NamedTuple):
    shown: str      # the path as the user gave it
    target: str     # the file really replaced (a symlink's target)
    tmp: str        # the temp file holding the new content, beside target


def _write_error(shown: str, target: str, step: str, exc: OSError) -> FileWriteError:
    via = "" if os.path.abspath(shown) == target else " (symlink to %s)" % target
    return FileWriteError("Cannot write %s%s: could not %s: %s." % (shown, via, step, exc.strerror or exc),
                          path=shown, target=target, errno=exc.errno)


def stage_write(path: str, data: bytes, shown: Optional[str] = None,
                prepare: Optional[Callable[[str, str], None]] = None) -> StagedWrite:
    """First half of :func:`atomic_write`: the temp file, complete, beside the target.

    A symlink is kept: its target is what gets replaced (as lineinfile/template do). The temp file
    gets the old file's mode and owner, then ``prepare(tmp, target)`` runs (e.g. the SELinux
    context). An immutable or append-only target, or a read-only mount, is found here (opening
    it for writing fails; nothing is written to it), so no file of a set is replaced when one of
    them cannot be. Raises :class:`FileWriteError`; no temp file is left behind then.
    """
    shown = shown or path
    target = os.path.realpath(path)
    directory = os.path.dirname(target) or "."
    tmp = None
    step = "open %s for writing" % target
    try:
        try:
            probe = os.open(target, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
            os.close(probe)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EACCES,):   # EPERM: immutable/append-only; EROFS: read-only mount
                raise
        step = "create a temp file in %s" % directory
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(target))
        step = "write the temp file %s" % tmp
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            old: Optional[os.stat_result] = os.stat(target)
        except FileNotFoundError:
            old = None
        if old is not None:
            step = "copy mode/owner of %s to the temp file" % target
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
            if (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                os.chown(tmp, old.st_uid, old.st_gid)
        if prepare is not None:
            step = "set the security context of the temp file"
            prepare(tmp, target)
    except OSError as exc:
        discard_write(tmp)
        raise _write_error(shown, target, step, exc)
    return StagedWrite(shown, target, tmp)


def commit_write(staged: StagedWrite) -> str:
    """Second half: rename the temp file over the target; returns the target."""
    try:
        os.rename(staged.tmp, staged.target)
    except OSError as exc:
        discard_write(staged.tmp)
        raise _write_error(staged.shown, staged.target, "rename the temp file over %s" % staged.target, exc)
    return staged.target


def discard_write(tmp: Optional[str]) -> None:
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def atomic_write(path: str, data: bytes, shown: Optional[str] = None,
                 prepare: Optional[Callable[[str, str], None]] = None) -> str:
    """Replace the file ``path`` with ``data`` atomically (temp file + rename, mode/owner kept,
    a symlink's target edited); return the path really written. Raises :class:`FileWriteError`."""
    return commit_write(stage_write(path, data, shown, prepare))


def backup_copy(path: str, shown: Optional[str] = None) -> str:
    """A copy of ``path`` (a symlink's target) named like AnsibleModule.backup_local names it."""
    shown = shown or path
    target = os.path.realpath(path)
    dest = "%s.%s.%s" % (target, os.getpid(), time.strftime("%Y-%m-%d@%H:%M:%S~", time.localtime()))
    try:
        shutil.copy2(target, dest)
    except (OSError, shutil.Error) as exc:
        raise FileWriteError("Cannot back up %s to %s: %s." % (shown, dest, getattr(exc, "strerror", None) or exc),
                             path=shown, target=target)
    return dest
