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

import os
from typing import Any, Callable, List, NamedTuple, Optional, Sequence


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
