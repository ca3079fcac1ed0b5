# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel / Xen command lines, and where the bootloader keeps the Xen one.

* :func:`tokenize` / :func:`options` split a command line the way Linux and Xen do.
* :func:`detect_bootloader` decides where the Xen command line lives on a host
  (XCP-ng ``xen-cmdline``, an EFI ``xen.cfg``, or GRUB's ``/etc/default/grub`` files).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from ansible_collections.xenkdump.fleet.plugins.module_utils import errors
from ansible_collections.xenkdump.fleet.plugins.module_utils import hostio
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import Host

XEN_CMDLINE_TOOL = "/opt/xensource/libexec/xen-cmdline"
GRUB_DEFAULT = "/etc/default/grub"
GRUB_DEFAULT_D = "/etc/default/grub.d"
EFI_DIR = "/boot/efi/EFI"
EFI_FIRMWARE = "/sys/firmware/efi"

_WS = " \t\n\r\v\f"

# Bounds that keep hostile files cheap: a bootloader configuration file is a few KiB.
MAX_CONFIG_BYTES = 256 << 10        # larger files are refused (hostio.FileTooLarge, XK011)
MAX_NESTING = 64                    # ${...} / $(...) / "..." nested deeper: refused (XK301)
MAX_VALUE_CHARS = 1 << 16           # a shell variable longer than this cannot be followed
MAX_EVAL_CHARS = 1 << 24            # characters all assignments of the files may produce


# ---------------------------------------------------------------------------------------------
# Command line tokens
# ---------------------------------------------------------------------------------------------

def tokenize(line: str) -> List[str]:
    """Split a kernel/Xen command line into tokens, as Linux's ``next_arg()`` does.

    Tokens are separated by whitespace; a double quote toggles "inside quotes", where
    whitespace does not split (``opt="a b"`` and ``"opt=a b"`` are one token each).  The
    token text is returned verbatim (quotes kept); :func:`options` strips them.
    """
    tokens: List[str] = []
    current: List[str] = []
    in_quote = False
    started = False
    for char in line or "":
        if char == '"':
            in_quote = not in_quote
            current.append(char)
            started = True
        elif char in _WS and not in_quote:
            if started:
                tokens.append("".join(current))
                current = []
                started = False
        else:
            current.append(char)
            started = True
    if started:
        tokens.append("".join(current))
    return tokens


def split_option(token: str) -> Tuple[str, Optional[str]]:
    """``key=value`` → (key, value), ``flag`` → (flag, None); quotes stripped like the kernel."""
    text = token
    if text.startswith('"'):
        text = text[1:]
        if text.endswith('"'):
            text = text[:-1]
    if "=" not in text:
        return text, None
    key, value = text.split("=", 1)
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        value = value[1:-1]
    elif value.startswith('"'):
        value = value[1:]
    return key, value


def options(tokens: Sequence[str]) -> Dict[str, Optional[str]]:
    """key → value (None for a flag such as ``noreboot``); the last occurrence wins."""
    result: Dict[str, Optional[str]] = {}
    for token in tokens:
        key, value = split_option(token)
        if key in result:
            del result[key]  # keep dict order = order of the winning occurrence
        result[key] = value
    return result


# ---------------------------------------------------------------------------------------------
# Bootloader detection
# ---------------------------------------------------------------------------------------------

def grub_files(host: Host, default: str = GRUB_DEFAULT) -> List[str]:
    """``/etc/default/grub`` then ``/etc/default/grub.d/*.cfg`` in glob (sorted) order."""
    files = [default]
    directory = default + ".d"
    for name in host.listdir(directory):
        if name.endswith(".cfg") and not name.startswith("."):
            files.append(directory.rstrip("/") + "/" + name)
    return files


def efi_xen_cfgs(host: Host) -> List[str]:
    """Every ``/boot/efi/EFI/*/xen.cfg`` present (sorted)."""
    found: List[str] = []
    for vendor in host.listdir(EFI_DIR):
        candidate = EFI_DIR + "/" + vendor + "/xen.cfg"
        if os.path.isfile(host.p(candidate)):
            found.append(candidate)
    return found


def grub_regenerate(host: Host, distro_family: str) -> List[str]:
    """argv that turns /etc/default/grub into grub.cfg on this host ([] when unknown)."""
    family = (distro_family or "").lower()
    if family in ("debian", "ubuntu") and host.which("update-grub"):
        return ["update-grub"]
    mkconfig = host.which("grub2-mkconfig") and "grub2-mkconfig" or (
        host.which("grub-mkconfig") and "grub-mkconfig")
    if family in ("suse", "redhat") or (mkconfig == "grub2-mkconfig"):
        candidates = ["/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"]
    else:
        candidates = ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"]
    cfg = next((c for c in candidates if host.exists(c)), candidates[0])
    if not mkconfig:
        if family in ("suse", "redhat"):
            mkconfig = "grub2-mkconfig"
        elif host.which("update-grub"):
            return ["update-grub"]
        else:
            return []
    return [mkconfig, "-o", cfg]


def detect_bootloader(host: Host, distro_family: str) -> Dict[str, Any]:
    """Where does this host keep the Xen command line?

    Returns ``{"kind": "grub"|"xen_cfg"|"xen_cmdline"|"unknown", "path": str|None,
    "regenerate": [argv] ([] when nothing), "files": [all files considered], "reason": str}``.
    Order: XCP-ng's ``xen-cmdline`` tool, then an EFI ``xen.cfg`` when the host booted via
    EFI, then GRUB's default files.
    """
    if host.exists(XEN_CMDLINE_TOOL):
        return {"kind": "xen_cmdline", "path": XEN_CMDLINE_TOOL, "regenerate": [],
                "files": [XEN_CMDLINE_TOOL],
                "reason": "%s exists (XCP-ng / Citrix Hypervisor)" % XEN_CMDLINE_TOOL}
    cfgs = efi_xen_cfgs(host)
    efi_booted = host.exists(EFI_FIRMWARE)
    if cfgs and efi_booted:
        preferred = EFI_DIR + "/xen/xen.cfg"
        path = preferred if preferred in cfgs else cfgs[0]
        return {"kind": "xen_cfg", "path": path, "regenerate": [], "files": cfgs,
                "reason": "booted via EFI (%s exists) and %s exists" % (EFI_FIRMWARE, path)}
    if host.exists(GRUB_DEFAULT):
        files = grub_files(host)
        regen = grub_regenerate(host, distro_family)
        reason = "%s exists" % GRUB_DEFAULT
        if cfgs:
            reason += "; %s ignored: host did not boot via EFI (%s absent)" % (
                ", ".join(cfgs), EFI_FIRMWARE)
        return {"kind": "grub", "path": GRUB_DEFAULT, "regenerate": regen, "files": files,
                "reason": reason}
    considered = [XEN_CMDLINE_TOOL, EFI_DIR + "/*/xen.cfg", GRUB_DEFAULT]
    if cfgs:
        reason = "%s found but the host did not boot via EFI (%s absent), and no %s" % (
            ", ".join(cfgs), EFI_FIRMWARE, GRUB_DEFAULT)
    else:
        reason = "none of %s exists" % ", ".join(considered)
    return {"kind": "unknown", "path": None, "regenerate": [], "files": cfgs or [],
            "reason": reason}


# ---------------------------------------------------------------------------------------------
# Errors (XK300-XK399)
# ---------------------------------------------------------------------------------------------

class CmdlineOptionError(errors.XenKdumpError):
    code = "XK300"
    title = "Invalid Xen command line option"
    remedy = ("Give the option name as letters, digits, '_', '-' or '.', and a value without "
              "whitespace, double quotes or control characters (omit value for a flag).")


class GrubParseError(errors.XenKdumpError):
    code = "XK301"
    title = "GRUB default file cannot be parsed safely"
    remedy = ("Fix the named line by hand (balance the quotes, drop here-documents, 'source'/'eval' "
              "or CRLF line endings), or set the option yourself and run the regenerate command.")


class GrubUnsafeAssignmentError(errors.XenKdumpError):
    code = "XK302"
    title = "GRUB Xen variable is set in a way the module cannot follow"
    remedy = ("Rewrite the named line as a plain top-level assignment such as "
              "GRUB_CMDLINE_XEN_DEFAULT=\"$GRUB_CMDLINE_XEN_DEFAULT opt=value\" (no if/&&, command "
              "substitution, +=, unset or read), then run the module again.")


class GrubNotEditableError(errors.XenKdumpError):
    code = "XK303"
    title = "Xen option comes from a place the module will not edit"
    remedy = ("The option reaches the Xen line through another shell variable or a computed value; "
              "move it into a literal GRUB_CMDLINE_XEN_DEFAULT / GRUB_CMDLINE_XEN assignment by hand.")


class XenCfgError(errors.XenKdumpError):
    code = "XK304"
    title = "EFI xen.cfg cannot be edited safely"
    remedy = ("Make sure xen.cfg has a [global] section with default=<section>, that section exists "
              "and has at most one options= line without tabs; or pass section: explicitly.")


class XenCmdlineToolError(errors.XenKdumpError):
    code = "XK305"
    title = "xen-cmdline failed"
    remedy = ("Run /opt/xensource/libexec/xen-cmdline --list-xen by hand on the host to see why; "
              "it must be able to read and write the host's grub.cfg files.")


class BootloaderUnknownError(errors.XenKdumpError):
    code = "XK306"
    title = "Cannot tell where this host keeps the Xen command line"
    remedy = ("Pass bootloader: (grub, xen_cfg or xen_cmdline) and path: to the module, or install "
              "the bootloader configuration first.")


class ConfigFileMissingError(errors.XenKdumpError):
    code = "XK307"
    title = "Bootloader configuration file is missing"
    remedy = "Point path: at the existing file (for GRUB: /etc/default/grub), or create it first."


class EditVerificationError(errors.XenKdumpError):
    code = "XK308"
    title = "Edited file would not give the expected Xen command line"
    remedy = ("Nothing was written. Edit the named file by hand and report this file as a bug "
              "with the error data.")


XEN_VARS = ("GRUB_CMDLINE_XEN", "GRUB_CMDLINE_XEN_DEFAULT")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OPT_RE = re.compile(r"[A-Za-z0-9_.\-]+\Z")


def validate_option(option: str, value: Optional[str]) -> None:
    """Raise CmdlineOptionError for a name/value that cannot be written as one token."""
    if not option or not _OPT_RE.match(option):
        bad = next((c for c in option if not _OPT_RE.match(c)), "") if option else ""
        raise CmdlineOptionError(
            "Option name %r is not valid%s." % (
                option, (": character %r at position %d" % (bad, option.index(bad))) if bad else
                " (empty)"))
    if value is None:
        return
    for pos, char in enumerate(value):
        if char in _WS or char == '"' or ord(char) < 32 or ord(char) == 127:
            raise CmdlineOptionError(
                "Value %r for option %s has %r at position %d." % (value, option, char, pos))
    if "\\" in value:
        raise CmdlineOptionError(
            "Value %r for option %s has a backslash at position %d: give the value exactly as Xen "
            "must receive it (e.g. 256M<4G, not 256M\\<4G); the module adds GRUB's escaping itself."
            % (value, option, value.index("\\")), option=option, value=value)
    if value.startswith(option + "="):
        raise CmdlineOptionError(
            "Value %r for option %s starts with '%s=': the line would read %s=%s, which Xen does not "
            "understand. Give only what follows '%s=' (e.g. %r)."
            % (value, option, option, option, value, option, value[len(option) + 1:]),
            option=option, value=value)


def format_option(option: str, value: Optional[str]) -> str:
    return option if value is None else "%s=%s" % (option, value)


_GRUB_PLAIN = re.compile(r"[A-Za-z0-9_.,:=/@%+\-]")


def grub_escape(token: str) -> str:
    """Text to put in a GRUB_CMDLINE_XEN* value so grub.cfg parses it back to ``token``.

    20_linux_xen copies the value verbatim into grub.cfg, where GRUB's own lexer reads it:
    a bare '<' is a syntax error (grub-script-check), '$' expands a variable at boot, a
    single quote opens a string, '\\' escapes the next character.  So every ASCII character
    but letters, digits and ``_.,:=/@%+-`` gets a backslash: ``crashkernel=256M<4G`` is
    written ``crashkernel=256M\\<4G`` (what SUSE's YaST writes too), ``a$b`` ``a\\$b``.
    Outside quotes GRUB reads ``\\c`` as ``c`` for any c, so the lexer yields ``token``.
    """
    return "".join("\\" + c if ord(c) < 128 and not _GRUB_PLAIN.match(c) else c for c in token)


def grub_unescape(token: str) -> str:
    """What Xen receives for a token of grub.cfg (backslash escapes removed)."""
    return re.sub(r"\\(.)", r"\1", token)


# ---------------------------------------------------------------------------------------------
# A small, strict POSIX-sh reader for /etc/default/grub and grub.d/*.cfg
#
# grub-mkconfig (#!/bin/sh: dash on Debian/Ubuntu) sources these files in order.  We read them
# the same way, but only far enough to follow *plain top-level assignments*; everything that
# could change a Xen variable in a way we cannot follow is refused, naming file and line.
# Every character of an evaluated value remembers where it came from (file, byte span,
# quoting context, the variable whose assignment holds it), so an edit is a set of exact
# source-span deletions/insertions that keep comments, quoting and $VAR references intact.
# ---------------------------------------------------------------------------------------------

class Origin(NamedTuple):
    file: str          # host path of the file
    start: int         # source span [start, end) in the file text
    end: int
    ctx: str           # "dq" | "sq" | "unq"
    var: str           # variable whose assignment holds this text
    stmt: int          # global index of that assignment


EChar = Tuple[str, Optional[Origin]]      # evaluated character and where it came from


class Part(object):
    """One piece of a shell word."""
    __slots__ = ("kind", "text", "chars", "start", "end", "ctx")

    def __init__(self, kind: str, start: int, end: int, ctx: str, text: str = "",
                 chars: Optional[List[Tuple[str, int, int]]] = None) -> None:
        self.kind = kind          # lit | param | complex
        self.text = text          # param name / complex description
        self.chars = chars or []  # lit: (char, start, end)
        self.start = start
        self.end = end
        self.ctx = ctx


class Word(object):
    __slots__ = ("parts", "start", "end", "line", "close_quote")

    def __init__(self, parts: List[Part], start: int, end: int, line: int) -> None:
        self.parts = parts
        self.start = start
        self.end = end
        self.line = line
        # offset of the closing quote when the word ends in a quoted string, and which quote
        self.close_quote: Optional[Tuple[int, str]] = None

    def literal_prefix(self) -> str:
        out = []
        for part in self.parts:
            if part.kind != "lit":
                break
            out.extend(c for c, _s, _e in part.chars)
        return "".join(out)

    def is_plain_literal(self) -> bool:
        return all(p.kind == "lit" for p in self.parts)

    def unquoted_text(self) -> str:
        return "".join(c for p in self.parts if p.kind == "lit" for c, _s, _e in p.chars)


class Token(NamedTuple):
    kind: str                 # word | op | nl
    value: Any                # Word for word, str for op
    line: int


_META = set(" \t\n;&|<>()")


class _Lexer(object):
    def __init__(self, text: str, fname: str) -> None:
        self.text = text
        self.fname = fname
        self.n = len(text)
        self.depth = 0
        # offsets of the newlines: line_of() is a bisection, not a count from the start
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def line_of(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    @contextlib.contextmanager
    def _nested(self, i: int) -> Iterator[None]:
        """One level deeper for the construct at i, bounded by MAX_NESTING."""
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise self.fail(i, "quotes and expansions nested more than %d deep" % MAX_NESTING)
            yield
        finally:
            self.depth -= 1

    def fail(self, pos: int, what: str) -> "GrubParseError":
        return GrubParseError("%s line %d: %s." % (self.fname, self.line_of(pos), what),
                              file=self.fname, line=self.line_of(pos))

    # -- skipping nested constructs ----------------------------------------------------------
    def skip_single(self, i: int) -> int:
        """i at opening '; return index after closing '."""
        j = self.text.find("'", i + 1)
        if j < 0:
            raise self.fail(i, "unbalanced single quote (no closing ')")
        return j + 1

    def skip_double(self, i: int) -> int:
        with self._nested(i):
            return self._skip_double(i)

    def _skip_double(self, i: int) -> int:
        j = i + 1
        while j < self.n:
            c = self.text[j]
            if c == "\\":
                j += 2
                continue
            if c == '"':
                return j + 1
            if c == "`":
                j = self.skip_backtick(j)
                continue
            if c == "$" and j + 1 < self.n and self.text[j + 1] in "({":
                j = self.skip_dollar(j)
                continue
            j += 1
        raise self.fail(i, 'unbalanced double quote (no closing ")')

    def skip_backtick(self, i: int) -> int:
        j = i + 1
        while j < self.n:
            c = self.text[j]
            if c == "\\":
                j += 2
                continue
            if c == "`":
                return j + 1
            j += 1
        raise self.fail(i, "unbalanced backquote (no closing `)")

    def skip_dollar(self, i: int) -> int:
        """i at '$' followed by '(' or '{'; return index after the matching close."""
        with self._nested(i):
            return self._skip_dollar(i)

    def _skip_dollar(self, i: int) -> int:
        opener = self.text[i + 1]
        closer = ")" if opener == "(" else "}"
        depth = 0
        j = i + 1
        while j < self.n:
            c = self.text[j]
            if c == "\\":
                j += 2
                continue
            if c == "'" and opener == "(":
                j = self.skip_single(j)
                continue
            if c == '"':
                j = self.skip_double(j)
                continue
            if c == "`":
                j = self.skip_backtick(j)
                continue
            if c == "$" and j + 1 < self.n and self.text[j + 1] in "({":
                j = self.skip_dollar(j)
                continue
            if c == opener:
                depth += 1
            elif c == closer:
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        raise self.fail(i, "unbalanced %s (no closing %s)" % ("$" + opener, closer))

    # -- words ---------------------------------------------------------------------------------
    def dollar(self, i: int, ctx: str, parts: List[Part]) -> int:
        """i at '$'. Append a part; return the new index."""
        text = self.text
        nxt = text[i + 1] if i + 1 < self.n else ""
        if nxt == "(":
            end = self.skip_dollar(i)
            kind = "arithmetic $((...))" if text.startswith("$((", i) else "command substitution $(...)"
            parts.append(Part("complex", i, end, ctx, kind))
            return end
        if nxt == "{":
            end = self.skip_dollar(i)
            inner = text[i + 2:end - 1]
            if _NAME_RE.match(inner):
                parts.append(Part("param", i, end, ctx, inner))
            else:
                parts.append(Part("complex", i, end, ctx, "parameter expansion ${%s}" % inner))
            return end
        if nxt and (nxt.isalpha() or nxt == "_"):
            j = i + 1
            while j < self.n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            parts.append(Part("param", i, j, ctx, text[i + 1:j]))
            return j
        if nxt and nxt in "@*#?$!-0123456789":
            parts.append(Part("complex", i, i + 2, ctx, "special parameter $" + nxt))
            return i + 2
        if ctx == "unq" and nxt == "'":
            end = i + 1
            j = i + 2
            while j < self.n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            if j >= self.n:
                raise self.fail(i, "unbalanced $'...' quote")
            end = j + 1
            parts.append(Part("complex", i, end, ctx, "ANSI-C quoting $'...'"))
            return end
        if ctx == "unq" and nxt == '"':
            end = self.skip_double(i + 1)
            parts.append(Part("complex", i, end, ctx, 'locale quoting $"..."'))
            return end
        self._lit(parts, ctx, "$", i, i + 1)
        return i + 1

    @staticmethod
    def _lit(parts: List[Part], ctx: str, char: str, start: int, end: int) -> None:
        if parts and parts[-1].kind == "lit" and parts[-1].ctx == ctx and parts[-1].end == start:
            parts[-1].chars.append((char, start, end))
            parts[-1].end = end
        else:
            parts.append(Part("lit", start, end, ctx, chars=[(char, start, end)]))

    def word(self, i: int) -> Tuple[Word, int]:
        text = self.text
        start = i
        parts: List[Part] = []
        close_quote: Optional[Tuple[int, str]] = None
        while i < self.n:
            c = text[i]
            if c in _META:
                break
            close_quote = None
            if c == "\\":
                if i + 1 < self.n and text[i + 1] == "\n":
                    i += 2                      # line continuation
                    continue
                if i + 1 >= self.n:
                    self._lit(parts, "unq", "\\", i, i + 1)
                    i += 1
                    continue
                self._lit(parts, "unq", text[i + 1], i, i + 2)
                i += 2
            elif c == "'":
                end = self.skip_single(i)
                for k in range(i + 1, end - 1):
                    self._lit(parts, "sq", text[k], k, k + 1)
                if end - 1 == i + 1:            # '' : empty, keep a marker part
                    parts.append(Part("lit", i + 1, i + 1, "sq"))
                close_quote = (end - 1, "'")
                i = end
            elif c == '"':
                i = self.double(i, parts)
                close_quote = (i - 1, '"')
            elif c == "$":
                i = self.dollar(i, "unq", parts)
            elif c == "`":
                end = self.skip_backtick(i)
                parts.append(Part("complex", i, end, "unq", "command substitution `...`"))
                i = end
            elif c == "~":
                parts.append(Part("complex", i, i + 1, "unq", "unquoted ~ (tilde expansion)"))
                i += 1
            else:
                self._lit(parts, "unq", c, i, i + 1)
                i += 1
        word = Word(parts, start, i, self.line_of(start))
        word.close_quote = close_quote
        return word, i

    def double(self, i: int, parts: List[Part]) -> int:
        """i at opening "; parse to the closing quote; return index after it."""
        text = self.text
        j = i + 1
        empty = True
        while j < self.n:
            c = text[j]
            if c == '"':
                if empty:
                    parts.append(Part("lit", i + 1, i + 1, "dq"))
                return j + 1
            empty = False
            if c == "\\" and j + 1 < self.n and text[j + 1] in '$`"\\\n':
                if text[j + 1] != "\n":
                    self._lit(parts, "dq", text[j + 1], j, j + 2)
                j += 2
            elif c == "$":
                j = self.dollar(j, "dq", parts)
            elif c == "`":
                end = self.skip_backtick(j)
                parts.append(Part("complex", j, end, "dq", "command substitution `...`"))
                j = end
            else:
                self._lit(parts, "dq", c, j, j + 1)
                j += 1
        raise self.fail(i, 'unbalanced double quote (no closing ")')

    # -- tokens --------------------------------------------------------------------------------
    def tokens(self) -> List[Token]:
        text = self.text
        out: List[Token] = []
        i = 0
        while i < self.n:
            c = text[i]
            if c in " \t":
                i += 1
                continue
            if c == "\\" and text.startswith("\\\n", i):
                i += 2
                continue
            if c == "#":
                j = text.find("\n", i)
                i = self.n if j < 0 else j
                continue
            if c == "\n":
                out.append(Token("nl", "\n", self.line_of(i)))
                i += 1
                continue
            if c in ";&|<>()":
                for op in ("<<<", "<<-", "&&", "||", ";;", ";&", "<<", ">>", ">&", "<&", ">|",
                           "<>", "<(", ">(", "&>", ";", "&", "|", "<", ">", "(", ")"):
                    if text.startswith(op, i):
                        break
                if op in ("<<", "<<-"):
                    raise self.fail(i, "here-document (%s) is not supported" % op)
                if op in ("<(", ">("):
                    raise self.fail(i, "process substitution %s...) is not supported" % op)
                if (op == "(" and out and out[-1].kind == "word" and out[-1].value.end == i
                        and text[i - 1] == "="):
                    raise self.fail(i, "array assignment NAME=(...) is not supported")
                out.append(Token("op", op, self.line_of(i)))
                i += len(op)
                continue
            word, i = self.word(i)
            out.append(Token("word", word, word.line))
        return out


class Command(object):
    """A simple command: assignments/words/redirections, and how it is reached."""

    def __init__(self, words: List[Word], line: int, depth: int) -> None:
        self.words = words
        self.line = line
        self.depth = depth
        self.joined = False        # part of && || | & lists
        self.redirected = False

    @property
    def persistent(self) -> bool:
        return self.depth == 0 and not self.joined


_RESERVED_OPEN = ("if", "while", "until", "for", "select", "{")
_RESERVED_CLOSE = ("fi", "done", "}")
_RESERVED_MID = ("then", "else", "elif", "do", "!", "function")


def _commands(tokens: List[Token], lexer: _Lexer) -> List[Command]:
    cmds: List[Command] = []
    depth = 0
    case_depth = 0
    current: Optional[Command] = None
    pending_join = False
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok.kind == "nl" or (tok.kind == "op" and tok.value in (";", ";;", ";&")):
            current = None
            pending_join = False
            i += 1
            continue
        if tok.kind == "op":
            if tok.value in ("&&", "||", "|", "&"):
                if current is not None:
                    current.joined = True
                pending_join = tok.value != "&"
                current = None
            elif tok.value == "(":
                depth += 1
                current = None
            elif tok.value == ")":
                if case_depth == 0:
                    depth = max(depth - 1, 0)
                current = None
            else:                               # redirection: eat its target word
                if current is None:
                    current = Command([], tok.line, depth + case_depth)
                    current.joined = pending_join
                    cmds.append(current)
                current.redirected = True
                if i + 1 < n and tokens[i + 1].kind == "word":
                    i += 1
            i += 1
            continue
        word = tok.value
        text = word.unquoted_text() if word.is_plain_literal() else None
        if current is None and text is not None:
            if text == "case":
                case_depth += 1
            elif text == "esac" and case_depth:
                case_depth -= 1
                i += 1
                continue
            if text in _RESERVED_OPEN:
                depth += 1
                i += 1
                continue
            if text in _RESERVED_CLOSE:
                depth = max(depth - 1, 0)
                i += 1
                continue
            if text in _RESERVED_MID:
                if text == "!":
                    pending_join = True     # negated: treated like a && / || list
                i += 1
                continue
        elif current is not None and text == "esac" and case_depth:
            case_depth -= 1
            current = None
            i += 1
            continue
        if current is None:
            current = Command([], tok.line, depth + case_depth)
            current.joined = pending_join
            cmds.append(current)
        current.words.append(word)
        i += 1
    return cmds


class Assignment(NamedTuple):
    name: str
    word: Word            # whole NAME=value word
    value_parts: List[Part]
    op: str               # "=" or "+="
    file: str
    line: int
    stmt: int


def _split_assignment(word: Word) -> Optional[Tuple[str, str, List[Part]]]:
    """NAME=value word → (name, op, value parts); None when not an assignment word."""
    if not word.parts or word.parts[0].kind != "lit" or word.parts[0].ctx != "unq":
        return None
    first = word.parts[0]
    chars = first.chars
    k = 0
    while k < len(chars) and (chars[k][0].isalnum() or chars[k][0] == "_"):
        k += 1
    name = "".join(c for c, _s, _e in chars[:k])
    if not name or not _NAME_RE.match(name) or k >= len(chars):
        return None
    if chars[k][0] == "=":
        op, skip = "=", k + 1
    elif chars[k][0] == "+" and k + 1 < len(chars) and chars[k + 1][0] == "=":
        op, skip = "+=", k + 2
    else:
        return None
    # every char of the name must be a plain unescaped char
    if any(e - s != 1 for _c, s, e in chars[:skip]):
        return None
    rest = chars[skip:]
    parts: List[Part] = []
    if rest:
        parts.append(Part("lit", rest[0][1], first.end, "unq", chars=list(rest)))
    parts.extend(word.parts[1:])
    return name, op, parts


class _Bad(object):
    """A variable whose value cannot be followed (and why)."""

    def __init__(self, why: str) -> None:
        self.why = why


Value = Union[List[EChar], _Bad]

_MODIFYING_BUILTINS = ("unset", "read", "export", "readonly", "declare", "typeset", "local",
                       "getopts", "printf", "mapfile", "readarray", "let")
_REFUSED_COMMANDS = (".", "source", "eval", "exec", "exit", "return")


class GrubAnalysis(object):
    """Result of reading the GRUB default files in the order grub-mkconfig sources them."""

    def __init__(self) -> None:
        self.files: List[Tuple[str, str]] = []
        self.env: Dict[str, Value] = {}
        self.last: Dict[str, Tuple[Assignment, List[EChar]]] = {}
        self.assignments: List[Assignment] = []

    def value(self, var: str) -> List[EChar]:
        val = self.env.get(var, [])
        if isinstance(val, _Bad):
            raise GrubUnsafeAssignmentError("%s cannot be evaluated: %s." % (var, val.why),
                                            variable=var)
        return val

    def text(self, var: str) -> str:
        return "".join(c for c, _o in self.value(var))


def _eval_parts(parts: List[Part], env: Dict[str, Value], fname: str, line: int, var: str,
                stmt: int, budget: Optional[List[int]] = None) -> Value:
    """The value of an assignment; ``budget`` ([characters left]) bounds the work of all of them."""
    out: List[EChar] = []
    for part in parts:
        if part.kind == "lit":
            for char, start, end in part.chars:
                out.append((char, Origin(fname, start, end, part.ctx, var, stmt)))
        elif part.kind == "param":
            ref = env.get(part.text, [])
            if isinstance(ref, _Bad):
                return _Bad("%s line %d uses $%s, and %s" % (fname, line, part.text, ref.why))
            if len(out) + len(ref) > MAX_VALUE_CHARS:
                return _Bad("%s line %d: %s would be longer than %d characters"
                            % (fname, line, var, MAX_VALUE_CHARS))
            out.extend(ref)
        else:
            return _Bad("%s line %d: %s" % (fname, line, part.text))
    if budget is not None:
        budget[0] -= len(out)
        if budget[0] < 0:
            raise GrubParseError("%s line %d: the assignments of these files expand to more than %d "
                                 "characters; the module will not follow them." % (fname, line, MAX_EVAL_CHARS),
                                 file=fname, line=line)
    return out


def _unsafe(var: str, fname: str, line: int, why: str) -> GrubUnsafeAssignmentError:
    return GrubUnsafeAssignmentError("%s line %d: %s %s; the module cannot tell what value it "
                                     "ends up with." % (fname, line, var, why),
                                     file=fname, line=line, variable=var)


def analyze_grub(files: Sequence[Tuple[str, str]], xen_vars: Sequence[str] = XEN_VARS
                 ) -> GrubAnalysis:
    """Follow the assignments of ``files`` (path, text) in order, as grub-mkconfig sources them."""
    result = GrubAnalysis()
    stmt = 0
    budget = [MAX_EVAL_CHARS]
    for fname, text in files:
        result.files.append((fname, text))
        if "\r" in text:
            line = text.count("\n", 0, text.index("\r")) + 1
            raise GrubParseError("%s line %d: carriage return (CRLF line ending); /bin/sh would "
                                 "keep it in the value." % (fname, line), file=fname, line=line)
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            raise GrubParseError("%s line %d: NUL byte." % (fname, line), file=fname, line=line)
        lexer = _Lexer(text, fname)
        for cmd in _commands(lexer.tokens(), lexer):
            stmt += 1
            assigns: List[Tuple[str, str, List[Part], Word]] = []
            rest: List[Word] = []
            for word in cmd.words:
                split = _split_assignment(word) if not rest else None
                if split is not None:
                    assigns.append((split[0], split[1], split[2], word))
                else:
                    rest.append(word)
            cmd_name = rest[0].unquoted_text() if rest and rest[0].is_plain_literal() else None
            if cmd_name in _REFUSED_COMMANDS:
                raise GrubParseError("%s line %d: '%s' runs other code the module cannot follow."
                                     % (fname, cmd.line, cmd_name), file=fname, line=cmd.line)
            # ${VAR=...} / ${VAR:=...} anywhere assign as a side effect
            for word in cmd.words:
                for part in word.parts:
                    if part.kind == "complex" and part.text.startswith("parameter expansion ${"):
                        inner = part.text[len("parameter expansion ${"):]
                        for var in xen_vars:
                            if re.match(re.escape(var) + r":?[=?]", inner):
                                raise _unsafe(var, fname, cmd.line, "is assigned by ${%s...}" % var)
            export_assigns: List[Tuple[str, str, List[Part], Word]] = []
            if cmd_name == "export" and cmd.persistent and not cmd.redirected and not assigns:
                for word in rest[1:]:
                    split = _split_assignment(word)
                    if split is not None:
                        export_assigns.append((split[0], split[1], split[2], word))
                    elif not word.is_plain_literal() or not _NAME_RE.match(word.unquoted_text()):
                        export_assigns = []
                        break
                else:
                    rest = []
            # who does this command touch?
            bare: List[str] = []
            if rest:
                if cmd_name in _MODIFYING_BUILTINS or cmd_name == "export":
                    for word in rest[1:]:
                        text_w = word.literal_prefix()
                        name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text_w)
                        if name:
                            bare.append(name.group(0))
                if cmd_name and _NAME_RE.match(cmd_name):
                    bare.append(cmd_name)       # e.g. the variable of `for VAR in ...`
            for var in xen_vars:
                if var in bare:
                    raise _unsafe(var, fname, cmd.line, "is changed by '%s'" % " ".join(
                        w.unquoted_text() for w in cmd.words[:3]))
            clean = cmd.persistent and not cmd.redirected and not rest
            for name, op, parts, word in assigns + export_assigns:
                if not clean:
                    why = ("is assigned inside if/case/loop/function or a subshell"
                           if cmd.depth else
                           "is assigned in a && / || / | / & list" if cmd.joined else
                           "has a redirection on its assignment" if cmd.redirected else
                           "is assigned only for the command '%s'" % (cmd_name or "?"))
                    if name in xen_vars:
                        raise _unsafe(name, fname, cmd.line, why)
                    result.env[name] = _Bad("%s line %d: %s %s" % (fname, cmd.line, name, why))
                    continue
                if op == "+=":
                    why = "uses '+=', which /bin/sh (dash) does not understand"
                    if name in xen_vars:
                        raise _unsafe(name, fname, cmd.line, why)
                    result.env[name] = _Bad("%s line %d: %s %s" % (fname, cmd.line, name, why))
                    continue
                if (name, word) in [(a[0], a[3]) for a in export_assigns] and name in xen_vars:
                    if any(p.ctx == "unq" and p.kind != "lit" for p in parts):
                        raise _unsafe(name, fname, cmd.line,
                                      "is exported with an unquoted expansion")
                value = _eval_parts(parts, result.env, fname, cmd.line, name, stmt, budget)
                if isinstance(value, _Bad) and name in xen_vars:
                    raise _unsafe(name, fname, cmd.line, "cannot be evaluated (%s)" % value.why)
                result.env[name] = value
                assignment = Assignment(name, word, parts, op, fname, cmd.line, stmt)
                result.assignments.append(assignment)
                if name in xen_vars and not isinstance(value, _Bad):
                    result.last[name] = (assignment, value)
    return result


def tokenize_echars(chars: List[EChar]) -> List[List[EChar]]:
    """:func:`tokenize` over evaluated characters, keeping each character's origin."""
    tokens: List[List[EChar]] = []
    current: List[EChar] = []
    in_quote = False
    for item in chars:
        char = item[0]
        if char == '"':
            in_quote = not in_quote
            current.append(item)
        elif char in _WS and not in_quote:
            if current:
                tokens.append(current)
                current = []
        else:
            current.append(item)
    if current:
        tokens.append(current)
    return tokens


def _ttext(token: List[EChar]) -> str:
    return "".join(c for c, _o in token)


def _dq(text: str) -> str:
    """Escape for inside double quotes; a backslash before an ordinary char stays as is."""
    return re.sub(r'[\\](?=[\\"$`]|\Z)|["$`]', lambda m: "\\" + m.group(0), text)


def _quote_for(ctx: str, text: str) -> str:
    if ctx == "dq":
        return _dq(text)
    if ctx == "sq":
        return text.replace("'", "'\\''")
    if re.match(r"[A-Za-z0-9_@%+=:,./\-]*\Z", text):
        return text
    return '"%s"' % _dq(text)


def effective_xen_cmdline(host: Host, variable: str = "GRUB_CMDLINE_XEN_DEFAULT",
                          path: str = GRUB_DEFAULT) -> str:
    """What GRUB would put on the Xen line of the default entry (``variable`` last).

    Debian's 20_linux_xen passes "${GRUB_CMDLINE_XEN} ${GRUB_CMDLINE_XEN_DEFAULT}" to the
    default entries and "${GRUB_CMDLINE_XEN}" alone to recovery entries; with
    ``variable="GRUB_CMDLINE_XEN"`` this returns the recovery line.
    """
    analysis = analyze_grub(read_grub_files(host, path))
    return _effective(analysis, variable)


def _effective(analysis: GrubAnalysis, variable: str = "GRUB_CMDLINE_XEN_DEFAULT") -> str:
    names = ["GRUB_CMDLINE_XEN"] + (["GRUB_CMDLINE_XEN_DEFAULT"]
                                    if variable == "GRUB_CMDLINE_XEN_DEFAULT" else [])
    toks: List[str] = []
    for name in names:
        toks.extend(grub_unescape(t) for t in tokenize(analysis.text(name)))
    return " ".join(toks)


def read_text(host: Host, path: str) -> Optional[str]:
    """Exact text of a file (None when absent or unreadable); refuses non-UTF-8 content, and
    (before reading a byte) anything but a regular file (a FIFO would block, /dev/zero never
    ends: hostio.NotARegularFile) and files over MAX_CONFIG_BYTES (hostio.FileTooLarge)."""
    real = host.p(path)
    try:
        data = hostio.read_regular_bytes(real, MAX_CONFIG_BYTES, shown=path)
    except FileNotFoundError:
        return None             # absent, or a dangling symlink (grub-mkconfig's [ -e ] skips it too)
    except (IOError, OSError) as exc:
        # unreadable, a symlink loop: never taken for "absent", which would silently change the result
        raise hostio.FileReadError("Cannot read %s: %s." % (path, exc.strerror or exc), path=path,
                                   errno=exc.errno)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise GrubParseError("%s line %d: byte 0x%02x is not UTF-8." % (path, line, data[exc.start]),
                             file=path, line=line)


def read_grub_files(host: Host, path: str = GRUB_DEFAULT) -> List[Tuple[str, str]]:
    """(path, text) of the main default file and every grub.d/*.cfg, in sourcing order."""
    out: List[Tuple[str, str]] = []
    for name in grub_files(host, path):
        text = read_text(host, name)
        if text is None:
            if name == path:
                raise ConfigFileMissingError("%s does not exist." % path, file=path)
            continue
        out.append((name, text))
    return out


# ---------------------------------------------------------------------------------------------
# Editing GRUB default files
# ---------------------------------------------------------------------------------------------

class EditResult(object):
    """What an edit plan produces; the module writes ``new_texts`` (nothing in check mode)."""

    def __init__(self) -> None:
        self.kind = ""
        self.changed = False
        self.before_cmdline = ""
        self.after_cmdline = ""
        self.old_texts: Dict[str, str] = {}
        self.new_texts: Dict[str, str] = {}     # only files whose text changes
        self.file: Optional[str] = None         # the file holding the option (or edited first)
        self.regenerate: List[str] = []
        self.commands: List[List[str]] = []     # xen_cmdline: argv to run
        self.notes: List[str] = []

    def changed_files(self) -> List[str]:
        return [f for f in self.new_texts if self.new_texts[f] != self.old_texts.get(f)]


def _origin_desc(origin: Optional[Origin], analysis: GrubAnalysis) -> str:
    if origin is None:
        return "a computed value"
    line = next((a.line for a in analysis.assignments if a.stmt == origin.stmt), 0)
    return "the assignment of %s at %s line %d" % (origin.var, origin.file, line)


def _editable(token: List[EChar], xen_vars: Sequence[str]) -> Optional[Optional[Origin]]:
    """None when every char of ``token`` sits in a literal of a Xen variable; else the culprit."""
    for _c, origin in token:
        if origin is None or origin.var not in xen_vars:
            return origin if origin is not None else Origin("", 0, 0, "", "", -1)
    return None


def plan_grub_edit(files: Sequence[Tuple[str, str]], option: str, value: Optional[str],
                   state: str = "present", variable: str = "GRUB_CMDLINE_XEN_DEFAULT"
                   ) -> EditResult:
    """Compute the new texts of the GRUB default files so that ``option`` appears exactly once
    (``state=present``, in ``variable``) or nowhere (``state=absent``) on the Xen line."""
    validate_option(option, value)
    if variable not in XEN_VARS:
        raise CmdlineOptionError("variable %r is not a Xen command line variable (use one of %s)."
                                 % (variable, ", ".join(XEN_VARS)))
    result = EditResult()
    result.kind = "grub"
    result.old_texts = dict(files)
    analysis = analyze_grub(files)
    values = {v: analysis.value(v) for v in XEN_VARS}
    toks = {v: tokenize_echars(values[v]) for v in XEN_VARS}
    result.before_cmdline = _effective(analysis)
    desired = grub_escape(format_option(option, value))

    def key_of(tok: List[EChar]) -> str:
        return split_option(_ttext(tok))[0]

    occurrences = [(v, idx, t) for v in XEN_VARS for idx, t in enumerate(toks[v])
                   if key_of(t) == option]
    kept: Optional[Tuple[str, int, List[EChar]]] = None
    if state == "present":
        own = [o for o in occurrences if o[0] == variable
               and all(orig is not None and orig.var == variable for _c, orig in o[2])]
        if own:
            kept = own[-1]
        if kept is not None and _ttext(kept[2]) == desired:
            others = [o for o in occurrences if o[2] is not kept[2]
                      and [x[1] for x in o[2]] != [x[1] for x in kept[2]]]
            if not others:
                result.file = kept[2][0][1].file if kept[2][0][1] else None
                result.after_cmdline = result.before_cmdline
                return result
    edits: Dict[str, Dict[Tuple[int, int], str]] = {}

    def add_edit(origin: Origin, text: str, start: Optional[int] = None) -> None:
        span = (origin.start if start is None else start, origin.end if start is None else start)
        per = edits.setdefault(origin.file, {})
        if span in per and per[span] != text:
            raise GrubNotEditableError("%s: the same text is needed for two different edits "
                                       "(option %s is shared between the Xen variables)."
                                       % (origin.file, option))
        per[span] = text

    for var, idx, tok in occurrences:
        if kept is not None and tok is kept[2]:
            continue
        culprit = _editable(tok, XEN_VARS)
        if culprit is not None:
            raise GrubNotEditableError(
                "%s=... contains %r, which comes from %s." % (
                    var, _ttext(tok), "a computed value" if culprit.stmt < 0
                    else _origin_desc(culprit, analysis)),
                option=option, variable=var)
        for _c, origin in tok:
            add_edit(origin, "")
        # one run of separating whitespace: before the token, or after it when it is first
        chars = values[var]
        first_pos = next(k for k in range(len(chars)) if chars[k] is tok[0])
        last_pos = next(k for k in range(len(chars)) if chars[k] is tok[-1])
        run: List[EChar] = []
        k = first_pos - 1
        while k >= 0 and chars[k][0] in _WS:
            run.append(chars[k])
            k -= 1
        if k < 0:
            run = []
            k = last_pos + 1
            while k < len(chars) and chars[k][0] in _WS:
                run.append(chars[k])
                k += 1
        for _c, origin in run:
            if origin is not None and origin.var in XEN_VARS:
                add_edit(origin, "")

    target_file: Optional[str] = None
    if state == "present":
        if kept is not None:
            tok = kept[2]
            first = tok[0][1]
            if first is None or any(o is None for _c, o in tok):
                raise GrubNotEditableError("%s=... contains %r, which comes from a computed value."
                                           % (variable, _ttext(tok)), option=option)
            add_edit(first, _quote_for(first.ctx, desired))
            for _c, origin in tok[1:]:
                add_edit(origin, "")  # type: ignore[arg-type]
            target_file = first.file
        elif variable in analysis.last:
            assignment, val = analysis.last[variable]
            # value as it will be after the deletions above (same assignment only matters)
            remaining = [c for c, o in val if not (o is not None and o.file in edits
                                                   and (o.start, o.end) in edits[o.file])]
            sep = " " if remaining and remaining[-1] not in _WS else ""
            word = assignment.word
            parts = [p for p in word.parts if p.start < p.end]
            if parts and parts[-1].kind == "param" and word.close_quote is not None \
                    and parts[-1].end == word.close_quote[0] and not sep:
                sep = " "       # "$VAR" + "opt" would read $VARopt
            if word.close_quote is not None:
                pos, quote = word.close_quote
                text = _quote_for("dq" if quote == '"' else "sq", sep + desired)
                add_edit(Origin(assignment.file, pos, pos, "", variable, assignment.stmt), text,
                         start=pos)
            else:
                add_edit(Origin(assignment.file, word.end, word.end, "", variable,
                                assignment.stmt), '"%s"' % _quote_for("dq", sep + desired),
                         start=word.end)
            target_file = assignment.file
        else:
            main, text = files[0]
            addition = ("" if not text or text.endswith("\n") else "\n") + '%s="%s"\n' % (
                variable, _quote_for("dq", desired))
            add_edit(Origin(main, len(text), len(text), "", variable, -1), addition,
                     start=len(text))
            target_file = main
    else:
        target_file = next(iter(edits), None)

    new_texts: Dict[str, str] = {}
    for fname, text in files:
        per = edits.get(fname)
        if not per:
            continue
        spans = sorted(per.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        out: List[str] = []
        pos = 0
        for (start, end), repl in spans:
            if start < pos:
                raise GrubNotEditableError("%s: overlapping edits at offset %d." % (fname, start))
            out.append(text[pos:start])
            out.append(repl)
            pos = end
        out.append(text[pos:])
        new = "".join(out)
        if new != text:
            new_texts[fname] = new
    result.new_texts = new_texts
    result.file = target_file
    result.changed = bool(new_texts)

    # Verify: read the edited files again and compare the token lists with the expectation.
    new_files = [(f, new_texts.get(f, t)) for f, t in files]
    after = analyze_grub(new_files)
    for var in XEN_VARS:
        expected = [_ttext(t) for t in toks[var] if key_of(t) != option]
        if state == "present" and var == variable:
            if kept is not None:
                before_kept = [t for t in toks[var][:kept[1]] if key_of(t) != option]
                expected.insert(len(before_kept), desired)
            else:
                expected.append(desired)
        got = tokenize(after.text(var))
        if got != expected:
            raise EditVerificationError(
                "After the edit %s would be %r, expected %r." % (var, " ".join(got),
                                                                 " ".join(expected)),
                variable=var, got=got, expected=expected)
    result.after_cmdline = _effective(after)
    return result


# ---------------------------------------------------------------------------------------------
# EFI xen.cfg  ([global] default=<section>; per-section options=)
#
# Read exactly as Xen's EFI loader reads it (xen/common/efi/boot.c):
# pre_parse() turns every control character (tab, CR, NUL included) into an end of line, drops
# blanks at the start of a line, a ';' at the start of a line and everything from a '#' anywhere
# to the end of the line; get_value(section, item) then walks the remaining runs of text: a run
# starting with '[' ends the section being read (so only the FIRST [name] of a name counts, and a
# '[xen' without ']' ends a section without starting one), and the first 'item=' of the section
# wins. default= is looked up in the first [global] only.
# ---------------------------------------------------------------------------------------------

def _cfg_cntrl(char: str) -> bool:
    return ord(char) < 32 or ord(char) == 127


_CFG_SPACE = " \t\n\v\f\r"


class _CfgRun(NamedTuple):
    start: int      # span [start, end) in the text of a run of text Xen keeps
    end: int
    text: str


def _cfg_runs(text: str) -> List[_CfgRun]:
    """The runs of text pre_parse() leaves between the NULs it writes (one per logical line)."""
    runs: List[_CfgRun] = []
    start, comment = True, False
    begin = -1
    for idx, char in enumerate(text):
        if _cfg_cntrl(char):
            keep = False
            start, comment = True, False
        elif comment or (start and char in _CFG_SPACE):
            keep = False
        elif char == "#" or (start and char == ";"):
            keep = False
            comment = True
        else:
            keep = True
            start = False
        if keep and begin < 0:
            begin = idx
        elif not keep and begin >= 0:
            runs.append(_CfgRun(begin, idx, text[begin:idx]))
            begin = -1
    if begin >= 0:
        runs.append(_CfgRun(begin, len(text), text[begin:]))
    return runs


def _cfg_header(run: _CfgRun, section: str) -> bool:
    return run.text.startswith("[" + section + "]")


def xen_cfg_get(text: str, section: Optional[str], item: str) -> Optional[Tuple[int, int]]:
    """Xen's get_value(): the span of the value of the first ``item=`` of ``section`` (None: the
    whole file, as Xen does when [global] has no default=), leading blanks skipped; None if absent."""
    runs = _cfg_runs(text)
    match = section is None
    for run in runs:
        if run.text.startswith("["):
            if section is None:
                continue
            if match:
                return None
            match = _cfg_header(run, section)
            continue
        if match and run.text.startswith(item + "="):
            start = run.start + len(item) + 1
            while start < run.end and text[start] in _CFG_SPACE:
                start += 1
            return start, run.end
    return None


def xen_cfg_sections(text: str) -> Tuple[Optional[str], List[str]]:
    """(what Xen's [global] default= names, or None; the section names in file order, once each)."""
    span = xen_cfg_get(text, "global", "default")
    default = None if span is None else text[span[0]:span[1]]
    sections: List[str] = []
    for run in _cfg_runs(text):
        if run.text.startswith("[") and "]" in run.text:
            name = run.text[1:run.text.index("]")]
            if name != "global" and name not in sections:
                sections.append(name)
    return default, sections


def xen_cfg_options(text: str, section: str) -> Optional[str]:
    span = xen_cfg_get(text, section, "options")
    return None if span is None else text[span[0]:span[1]]


def _cfg_line_no(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def plan_xen_cfg_edit(path: str, text: str, option: str, value: Optional[str],
                      state: str = "present", section: Optional[str] = None) -> EditResult:
    """Edit ``options=`` of the section ``[global] default=`` names (``section: all``: every
    section but [global]; or the named one), as Xen's EFI loader reads the file."""
    validate_option(option, value)
    if value is not None and "#" in value:
        raise XenCfgError("Value %r for option %s has '#' at position %d: Xen's EFI loader reads '#' "
                          "anywhere in xen.cfg as the start of a comment and would drop the rest of "
                          "the line." % (value, option, value.index("#")), file=path, option=option)
    result = EditResult()
    result.kind = "xen_cfg"
    result.file = path
    result.old_texts = {path: text}
    for pos, char in enumerate(text):
        if _cfg_cntrl(char) and char not in "\n\t" and not (char == "\r" and text.startswith("\r\n", pos)):
            raise XenCfgError("%s line %d: control character %r; Xen's EFI loader ends the line there and "
                              "reads what follows as a line of its own, which this module will not "
                              "edit around." % (path, _cfg_line_no(text, pos), char),
                              file=path, line=_cfg_line_no(text, pos))
    runs = _cfg_runs(text)
    for run in runs:
        if run.end < len(text) and text[run.end] == "\t":
            raise XenCfgError("%s line %d: a tab after %r; Xen's EFI loader ends the line at a tab and "
                              "reads the rest as a line of its own." % (path, _cfg_line_no(text, run.end), run.text),
                              file=path, line=_cfg_line_no(text, run.end))
    globals_ = [r for r in runs if _cfg_header(r, "global")]
    default_span = xen_cfg_get(text, "global", "default")
    default = None if default_span is None else text[default_span[0]:default_span[1]]
    _default_in_later, sections = xen_cfg_sections(text)
    if section in (None, "", "default"):
        if default is None:
            later = [r for r in runs if r.text.startswith("default=")]
            raise XenCfgError("%s has no default= in its first [global] section%s, so the section Xen "
                              "boots cannot be told." % (path, (" (line %d has one, but Xen reads only "
                                                                "the first [global])" % _cfg_line_no(text, later[0].start))
                                                         if later and globals_ else ""), file=path)
        if default != default.rstrip(_CFG_SPACE) or text[default_span[0] - 1] != "=":
            raise XenCfgError("%s line %d: default=%r has blanks around the section name; Xen versions "
                              "differ in how they read it." % (path, _cfg_line_no(text, default_span[0]), default),
                              file=path)
        targets = [default]
    elif section == "all":
        targets = list(sections)
    else:
        targets = [section]
    for target in targets:
        if target not in sections:
            raise XenCfgError("%s has no section [%s] (sections: %s)." % (
                path, target, ", ".join(sections) or "none"), file=path, section=target)
    desired = format_option(option, value)
    base = default if default in sections else targets[0] if targets else None
    result.before_cmdline = " ".join(tokenize(xen_cfg_options(text, base) or "")) if base else ""
    edits: Dict[Tuple[int, int], str] = {}
    for target in targets:
        headers = [k for k, r in enumerate(runs) if _cfg_header(r, target)]
        first = headers[0]
        if len(headers) > 1:
            result.notes.append("%s: section [%s] appears again at line %s; Xen reads only the first (line %d)"
                                % (path, target, ", ".join(str(_cfg_line_no(text, runs[k].start)) for k in headers[1:]),
                                   _cfg_line_no(text, runs[first].start)))
        body = []
        for run in runs[first + 1:]:
            if run.text.startswith("["):
                break
            body.append(run)
        opts = [r for r in body if r.text.startswith("options=")]
        if len(opts) > 1:
            raise XenCfgError("%s lines %s: section [%s] has %d options= lines; Xen uses only the "
                              "first." % (path, ", ".join(str(_cfg_line_no(text, o.start)) for o in opts), target,
                                          len(opts)), file=path, section=target)
        if not opts:
            if state == "absent":
                continue
            header = runs[first]
            eol = text.find("\n", header.end)
            if eol < 0:
                edits[(len(text), len(text))] = "\noptions=" + desired + "\n"
            else:
                edits[(eol + 1, eol + 1)] = "options=" + desired + "\n"
            continue
        run = opts[0]
        vstart = run.start + len("options=")
        value_text = text[vstart:run.end]
        toks = tokenize(value_text)
        keys = [split_option(t)[0] for t in toks]
        hits = [k for k, name in enumerate(keys) if name == option]
        if state == "present":
            if len(hits) == 1 and toks[hits[0]] == desired:
                continue
            new = [t for k, t in enumerate(toks) if k not in hits[:-1]]
            if hits:
                keep = hits[-1] - len(hits[:-1])
                new[keep] = desired
            else:
                new.append(desired)
        else:
            if not hits:
                continue
            new = [t for k, t in enumerate(toks) if k not in hits]
        lead = value_text[:len(value_text) - len(value_text.lstrip(" "))]
        trail = value_text[len(value_text.rstrip(" ")):]
        edits[(vstart, run.end)] = lead + " ".join(new) + trail
    out: List[str] = []
    pos = 0
    for (start, end), repl in sorted(edits.items()):
        out.append(text[pos:start])
        out.append(repl)
        pos = end
    out.append(text[pos:])
    new_text = "".join(out)
    if text and not text.endswith(("\n", "\r")) and new_text == text:
        result.notes.append("%s has no newline at its end: newer Xen versions ignore its last line ('No newline "
                            "at end of config file, last line will be ignored'); end it with a newline" % path)
    if new_text != text and new_text and not new_text.endswith("\n"):
        new_text += "\n"       # an unterminated last line is ignored by newer Xen: terminate it
    if new_text != text:
        result.new_texts = {path: new_text}
        result.changed = True
    result.after_cmdline = " ".join(tokenize(xen_cfg_options(new_text, base) or "")) if base else ""
    return result


# ---------------------------------------------------------------------------------------------
# XCP-ng / Citrix Hypervisor: /opt/xensource/libexec/xen-cmdline
# ---------------------------------------------------------------------------------------------

def xen_cmdline_tool_list(host: Host, tool: str = XEN_CMDLINE_TOOL) -> str:
    result = host.run([tool, "--list-xen"])
    if result.rc != 0:
        raise XenCmdlineToolError("'%s --list-xen' failed (rc=%d): %s" % (
            tool, result.rc, (result.stderr or result.stdout).strip()), rc=result.rc)
    return " ".join(tokenize(result.stdout))


def plan_xen_cmdline_tool(host: Host, option: str, value: Optional[str], state: str = "present",
                          tool: str = XEN_CMDLINE_TOOL) -> EditResult:
    """Decide which ``xen-cmdline`` calls make the option appear once / nowhere.

    Nothing is changed here; ``result.commands`` lists the argv to run (none in check mode).
    """
    validate_option(option, value)
    result = EditResult()
    result.kind = "xen_cmdline"
    result.file = tool
    before = xen_cmdline_tool_list(host, tool)
    result.before_cmdline = before
    toks = tokenize(before)
    hits = [k for k, t in enumerate(toks) if split_option(t)[0] == option]
    desired = format_option(option, value)
    after = list(toks)
    if state == "present":
        if len(hits) == 1 and toks[hits[0]] == desired:
            result.after_cmdline = before
            return result
        if len(hits) > 1:
            result.commands.append([tool, "--delete-xen", option])
            after = [t for k, t in enumerate(toks) if k not in hits] + [desired]
        elif hits:
            after[hits[0]] = desired
        else:
            after.append(desired)
        result.commands.append([tool, "--set-xen", desired])
    elif hits:
        result.commands.append([tool, "--delete-xen", option])
        after = [t for k, t in enumerate(toks) if k not in hits]
    result.after_cmdline = " ".join(after)
    result.changed = bool(result.commands)
    return result


def run_xen_cmdline_tool(host: Host, commands: Sequence[Sequence[str]],
                         tool: str = XEN_CMDLINE_TOOL) -> str:
    """Run the planned xen-cmdline calls; return the Xen line the tool reports afterwards."""
    for argv in commands:
        res = host.run(list(argv))
        if res.rc != 0:
            raise XenCmdlineToolError("'%s' failed (rc=%d): %s" % (
                " ".join(argv), res.rc, (res.stderr or res.stdout).strip()), rc=res.rc)
    return xen_cmdline_tool_list(host, tool)
