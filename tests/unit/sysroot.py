# -*- coding: utf-8 -*-
"""A fake host for unit tests: a sysroot directory plus a runner that answers commands.

API (small on purpose; every engineer's tests may use it)::

    from sysroot import build, xen417_dom0, FakeRunner, fixture

    host = build(tmp_path, files={"/proc/cmdline": "ro quiet\\n"},
                 executables=["/usr/sbin/xl"],
                 answers={"xl info": "...", "xl dmesg": (1, "", "xencall: error ...")})
    host.run(["/usr/sbin/xl", "info"])      # -> CommandResult from answers
    host.runner.calls                        # [("xl", "info"), ...] every argv seen

    host = xen417_dom0(tmp_path)             # the real Xen 4.17.7 / Debian 12 dom0 fixtures
    host = xen417_dom0(tmp_path, files={"/proc/xen/capabilities": None},   # None = remove
                       answers={"kexec --print-ckr-size": None})             # None = remove

* ``files``: host path -> text (written under ``root``); ``None`` removes the entry.
* ``executables``: host paths created as small executable stubs (so ``Host.which`` finds them).
* ``answers``: command key -> answer.  The key is the argv with ``argv[0]`` reduced to its
  basename, joined by single spaces (``"/sbin/kexec -S -p"`` matches ``"kexec -S -p"``).
  An answer is a ``str`` (stdout, rc 0), a tuple ``(rc, stdout, stderr)``, a
  ``CommandResult``, or a callable ``argv -> any of those``.  A command with no answer gets
  rc 127 and "command not found" on stderr, the way a shell would say it.
* In :func:`xen417_dom0` every command in ``answers`` also gets its executable created
  (``xl`` in /usr/sbin, ``kexec`` in /sbin; plus /usr/sbin/update-grub), unless
  ``answers[cmd]`` is None or the path is listed in ``missing``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import CommandResult, Host

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures")
XEN417 = os.path.join(FIXTURES, "xen-4.17-dom0")
MAKEDUMPFILE_DEB12 = os.path.join(FIXTURES, "debian12-makedumpfile")   # makedumpfile -v of 1.7.2-1
SYNTHETIC = os.path.join(FIXTURES, "synthetic")                         # hand-made, real formats

Answer = Union[str, Tuple[int, str, str], CommandResult, Callable[[Sequence[str]], Any]]

DEBIAN12_OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""

# Where each command's executable lives on a Debian dom0.
COMMAND_PATHS = {"xl": "/usr/sbin/xl", "kexec": "/sbin/kexec", "kdump-config": "/usr/sbin/kdump-config",
                 "makedumpfile": "/usr/bin/makedumpfile"}


def fixture(name: str, directory: str = XEN417) -> str:
    """Text of a fixture file (default: tests/fixtures/xen-4.17-dom0/<name>)."""
    with open(os.path.join(directory, name), encoding="utf-8") as handle:
        return handle.read()


def command_key(argv: Sequence[str]) -> str:
    """``["/sbin/kexec", "-S", "-p"]`` -> ``"kexec -S -p"``."""
    argv = list(argv)
    if not argv:
        return ""
    return " ".join([os.path.basename(argv[0])] + argv[1:])


def _as_result(answer: Any) -> CommandResult:
    if isinstance(answer, CommandResult):
        return answer
    if isinstance(answer, str):
        return CommandResult(0, answer, "")
    if isinstance(answer, tuple) and len(answer) == 3:
        return CommandResult(int(answer[0]), answer[1], answer[2])
    raise TypeError("bad fake answer: %r" % (answer,))


class FakeRunner(object):
    """Callable runner: answers argv from a dict; records every call in ``calls``."""

    def __init__(self, answers: Optional[Dict[str, Answer]] = None) -> None:
        self.answers: Dict[str, Answer] = dict(answers or {})
        self.calls: List[Tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        if isinstance(argv, str):
            raise AssertionError("commands must be argv lists, got a string: %r" % argv)
        key = command_key(argv)
        self.calls.append(tuple(key.split(" ")) if key else ())
        if key not in self.answers:
            return CommandResult(127, "", "%s: command not found" % (argv[0] if argv else ""))
        answer = self.answers[key]
        if callable(answer) and not isinstance(answer, (str, tuple)):
            answer = answer(list(argv))
        return _as_result(answer)

    def ran(self, key: str) -> int:
        """How many times the command ``key`` (same form as answers' keys) was run."""
        return sum(1 for call in self.calls if " ".join(call) == key)


class FakeHost(Host):
    """A :class:`Host` on a sysroot whose ``runner`` (a :class:`FakeRunner`) is reachable."""

    def __init__(self, runner: FakeRunner, root: str) -> None:
        super().__init__(run=runner, root=root)
        self.runner = runner


def write_files(root: Union[str, "os.PathLike[str]"], files: Dict[str, Optional[str]]) -> None:
    """Write host-path -> text under ``root`` (None entries are skipped)."""
    for path, text in files.items():
        if text is None:
            continue
        real = os.path.join(str(root), path.lstrip("/"))
        os.makedirs(os.path.dirname(real), exist_ok=True)
        with open(real, "w", encoding="utf-8") as handle:
            handle.write(text)


def make_executables(root: Union[str, "os.PathLike[str]"], paths: Iterable[str]) -> None:
    for path in paths:
        real = os.path.join(str(root), path.lstrip("/"))
        os.makedirs(os.path.dirname(real), exist_ok=True)
        with open(real, "w", encoding="utf-8") as handle:
            handle.write("#!/bin/sh\necho 'fake %s: answers come from tests/unit/sysroot.py' >&2\nexit 99\n"
                         % os.path.basename(path))
        os.chmod(real, 0o755)


def build(root: Union[str, "os.PathLike[str]"], files: Optional[Dict[str, Optional[str]]] = None,
          executables: Iterable[str] = (), answers: Optional[Dict[str, Answer]] = None) -> FakeHost:
    """A :class:`FakeHost` on ``root`` with these files, executables and command answers."""
    os.makedirs(str(root), exist_ok=True)
    write_files(root, files or {})
    make_executables(root, executables)
    return FakeHost(FakeRunner({k: v for k, v in (answers or {}).items() if v is not None}), str(root))


def xen417_files() -> Dict[str, Optional[str]]:
    """The files of the real Xen 4.17.7 + Debian 12 PV dom0 (os-release hand-written)."""
    return {
        "/proc/xen/capabilities": fixture("proc-xen-capabilities.txt"),
        "/sys/hypervisor/type": fixture("sys-hypervisor-type.txt"),
        "/proc/cmdline": fixture("dom0-proc-cmdline.txt"),
        "/proc/iomem": fixture("dom0-proc-iomem.txt"),
        "/sys/kernel/kexec_crash_loaded": fixture("sys-kernel-kexec_crash_loaded.txt"),
        "/sys/kernel/kexec_crash_size": fixture("sys-kernel-kexec_crash_size.txt"),
        "/etc/os-release": DEBIAN12_OS_RELEASE,
        "/etc/default/grub": 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n',
        "/proc/sys/kernel/random/boot_id": "3f1c1d1e-0b7a-4c55-9d21-5a0f3c2b9e01\n",
    }


def xen417_answers() -> Dict[str, Answer]:
    """Command answers of the same dom0, from the recorded outputs.

    ``xl dmesg`` is the recorded Xen boot console (``xen-console-boot.txt``);
    ``kexec --print-ckr-size`` is 268435456 — the 256 MiB the same host's ``Kdump:`` line
    reports (not itself a recorded output); ``kexec -S -p`` is the fresh-boot value 0;
    ``makedumpfile -v`` is Debian 12's makedumpfile 1.7.2-1 (the lab's), recorded with its exit
    status in ``tests/fixtures/debian12-makedumpfile``.
    """
    xl_list = fixture("xl-list.txt")
    return {
        "xl info": fixture("xl-info.txt"),
        "xl list": xl_list,
        "xl list 0": xl_list,
        "xl dmesg": fixture("xen-console-boot.txt"),
        "kexec --version": fixture("kexec-version.txt"),
        "kexec --help": fixture("kexec-help.txt"),
        "kexec --print-ckr-size": "268435456\n",
        "kexec -S -p": (0, "", ""),
        "makedumpfile -v": (int(fixture("makedumpfile-v.rc", MAKEDUMPFILE_DEB12)),
                            fixture("makedumpfile-v.txt", MAKEDUMPFILE_DEB12),
                            fixture("makedumpfile-v.stderr.txt", MAKEDUMPFILE_DEB12)),
    }


def xen417_dom0(root: Union[str, "os.PathLike[str]"], files: Optional[Dict[str, Optional[str]]] = None,
                answers: Optional[Dict[str, Optional[Answer]]] = None,
                missing: Iterable[str] = ()) -> FakeHost:
    """The fixture dom0, with ``files``/``answers`` overriding (None removes an entry) and the
    executables in ``missing`` (host paths, e.g. "/sbin/kexec") left out."""
    all_files: Dict[str, Optional[str]] = xen417_files()
    all_files.update(files or {})
    all_answers: Dict[str, Optional[Answer]] = dict(xen417_answers())
    all_answers.update(answers or {})
    commands = sorted({key.split(" ", 1)[0] for key, value in all_answers.items() if value is not None})
    missing = set(missing)
    exes = [COMMAND_PATHS.get(cmd, "/usr/bin/" + cmd) for cmd in commands]
    exes += ["/usr/sbin/update-grub"]
    exes = [path for path in exes if path not in missing]
    return build(root, files=all_files, executables=exes,
                 answers={k: v for k, v in all_answers.items() if v is not None})
