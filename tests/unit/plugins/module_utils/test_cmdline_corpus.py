# -*- coding: utf-8 -*-
"""Malformed and tricky GRUB default files: each one is either edited correctly -- checked by
sourcing the result with bash AND dash (grub-mkconfig's /bin/sh) and comparing token lists
with the original's -- or refused with a XenKdumpError (the module test checks the file stays
byte-identical).  Also a hypothesis generator of assignments in every quoting style."""

from __future__ import annotations

import os
import subprocess
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.xenkdump.fleet.plugins.module_utils import cmdline, errors

V = "GRUB_CMDLINE_XEN_DEFAULT"
X = "GRUB_CMDLINE_XEN"
WATCHED = (X, V, "GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT", "GRUB_DEFAULT", "GRUB_CMDLINE_LINUX_XEN_REPLACE_DEFAULT")


def write_tree(root: str, main: str, snippets: Optional[Dict[str, str]] = None, binary: bool = False) -> str:
    """Write <root>/etc/default/grub (+ grub.d/*) and return the main file's path."""
    ddir = os.path.join(root, "etc", "default")
    os.makedirs(os.path.join(ddir, "grub.d"), exist_ok=True)
    path = os.path.join(ddir, "grub")
    with open(path, "wb") as handle:
        handle.write(main if isinstance(main, bytes) else main.encode("utf-8"))
    for name, text in (snippets or {}).items():
        with open(os.path.join(ddir, "grub.d", name), "wb") as handle:
            handle.write(text.encode("utf-8"))
    return path


def source_with(shell: str, main_path: str) -> Dict[str, str]:
    """Source the main file and grub.d/*.cfg like grub-mkconfig does; return watched vars."""
    script = 'set -e; { . "$1"; for f in "$1".d/*.cfg; do if [ -e "$f" ]; then . "$f"; fi; done; }' ' >/dev/null 2>&1; ' + "; ".join(
        'printf "%%s\\001" "$%s"' % v for v in WATCHED
    )
    proc = subprocess.run(
        [shell, "-c", script, "_", main_path], capture_output=True, check=False, timeout=20, env={"PATH": "/usr/bin:/bin", "LANG": "C"}
    )
    assert proc.returncode == 0, (shell, proc.stderr)
    values = proc.stdout.decode("utf-8").split("\x01")[:-1]
    return dict(zip(WATCHED, values))


def files_of(main_path: str) -> List[Tuple[str, str]]:
    host = cmdline.Host(run=None, root="/")  # type: ignore[arg-type]
    return cmdline.read_grub_files(host, main_path)


def apply(result: cmdline.EditResult) -> None:
    for fname, text in result.new_texts.items():
        with open(fname, "w", encoding="utf-8") as handle:
            handle.write(text)


def check_edit(main_path: str, option: str, value: Optional[str], state: str = "present", variable: str = V) -> cmdline.EditResult:
    """Plan, write, and verify with bash and dash against the original's values."""
    before = {sh: source_with(sh, main_path) for sh in ("bash", "dash")}
    result = cmdline.plan_grub_edit(files_of(main_path), option, value, state, variable)
    apply(result)
    desired = cmdline.grub_escape(cmdline.format_option(option, value))
    for shell in ("bash", "dash"):
        after = source_with(shell, main_path)
        for var in WATCHED:
            if var not in (X, V):
                assert after[var] == before[shell][var], (shell, var)
                continue
            old = [t for t in cmdline.tokenize(before[shell][var]) if cmdline.split_option(t)[0] != option]
            new = cmdline.tokenize(after[var])
            mine = [t for t in new if cmdline.split_option(t)[0] == option]
            assert [t for t in new if cmdline.split_option(t)[0] != option] == old, (shell, var)
            if state == "present" and var == variable:
                assert mine == [desired], (shell, var, new)
            else:
                assert mine == [], (shell, var, new)
        # the module's own evaluation agrees with the shells
        effective = [cmdline.grub_unescape(t) for t in cmdline.tokenize(after[X]) + cmdline.tokenize(after[V])]
        assert " ".join(effective) == result.after_cmdline
    again = cmdline.plan_grub_edit(files_of(main_path), option, value, state, variable)
    assert again.changed is False and again.new_texts == {}
    return result


# (id, main file, grub.d snippets, option, value, state, variable)
EDIT_CASES = [
    ("empty-file", "", {}, "crashkernel", "256M<4G", "present", V),
    ("only-comments", "# nothing\n#GRUB_CMDLINE_XEN_DEFAULT=\"x\"\n", {}, "crashkernel", "256M<4G", "present", V),
    ("empty-dq", 'GRUB_CMDLINE_XEN_DEFAULT=""\n', {}, "crashkernel", "256M<4G", "present", V),
    ("empty-sq", "GRUB_CMDLINE_XEN_DEFAULT=''\n", {}, "crashkernel", "256M<4G", "present", V),
    ("empty-unquoted", "GRUB_CMDLINE_XEN_DEFAULT=\n", {}, "crashkernel", "256M<4G", "present", V),
    ("unquoted-value", "GRUB_CMDLINE_XEN_DEFAULT=dom0_mem=1G\n", {}, "crashkernel", "256M<4G", "present", V),
    ("dq-replace", 'GRUB_CMDLINE_XEN_DEFAULT="dom0_mem=1G crashkernel=128M noreboot"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("sq-replace", "GRUB_CMDLINE_XEN_DEFAULT='crashkernel=128M dom0_mem=1G'\n", {}, "crashkernel", "256M<4G", "present", V),
    ("dup-same-var", 'GRUB_CMDLINE_XEN_DEFAULT="crashkernel=1M a=1 crashkernel=2M b crashkernel=3M"\n', {}, "crashkernel", "256M<4G", "present", V),
    (
        "both-vars",
        'GRUB_CMDLINE_XEN="crashkernel=1M com1=115200"\nGRUB_CMDLINE_XEN_DEFAULT="crashkernel=2M"\n',
        {},
        "crashkernel",
        "256M<4G",
        "present",
        V,
    ),
    (
        "only-in-xen",
        'GRUB_CMDLINE_XEN="console=com1 crashkernel=1M"\nGRUB_CMDLINE_XEN_DEFAULT="dom0_mem=1G"\n',
        {},
        "crashkernel",
        "256M<4G",
        "present",
        V,
    ),
    ("escaped-quotes", 'GRUB_CMDLINE_XEN_DEFAULT="opt=\\"a b\\" x=1"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("mixed-quoting", "GRUB_CMDLINE_XEN_DEFAULT=\"a \"'b c'\" d\"\n", {}, "crashkernel", "256M<4G", "present", V),
    (
        "self-ref-snippet",
        'GRUB_CMDLINE_XEN_DEFAULT="dom0_mem=1G"\n',
        {"50-x.cfg": 'GRUB_CMDLINE_XEN_DEFAULT="$GRUB_CMDLINE_XEN_DEFAULT crashkernel=1M"\n'},
        "crashkernel",
        "256M<4G",
        "present",
        V,
    ),
    (
        "braced-ref",
        'GRUB_CMDLINE_XEN_DEFAULT="a"\nGRUB_CMDLINE_XEN_DEFAULT="${GRUB_CMDLINE_XEN_DEFAULT} b"\n',
        {},
        "crashkernel",
        "256M<4G",
        "present",
        V,
    ),
    ("other-var-ref", 'COMMON="dom0_mem=1G"\nGRUB_CMDLINE_XEN_DEFAULT="$COMMON"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("trailing-comment", 'GRUB_CMDLINE_XEN_DEFAULT="a" # crashkernel=1M in a comment\n', {}, "crashkernel", "256M<4G", "present", V),
    ("trailing-ws-in-quotes", 'GRUB_CMDLINE_XEN_DEFAULT="a  "\n', {}, "crashkernel", "256M<4G", "present", V),
    ("indented", '   GRUB_CMDLINE_XEN_DEFAULT="a crashkernel=9M"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("semicolons", 'A=1; GRUB_CMDLINE_XEN_DEFAULT="a"; B=2\n', {}, "crashkernel", "256M<4G", "present", V),
    ("two-assignments-one-line", 'A=1 GRUB_CMDLINE_XEN_DEFAULT="crashkernel=1M"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("continuation-in-dq", 'GRUB_CMDLINE_XEN_DEFAULT="a \\\ncrashkernel=1M b"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("continuation-in-word", "GRUB_CMDLINE_XEN_DEFAULT=crash\\\nkernel=1M\n", {}, "crashkernel", "256M<4G", "present", V),
    ("export", 'export GRUB_CMDLINE_XEN_DEFAULT="a crashkernel=1M"\n', {}, "crashkernel", "256M<4G", "present", V),
    (
        "dead-assignment",
        'GRUB_CMDLINE_XEN_DEFAULT="crashkernel=1M"\nGRUB_CMDLINE_XEN_DEFAULT="dom0_mem=1G"\n',
        {},
        "crashkernel",
        "256M<4G",
        "present",
        V,
    ),
    ("escaped-dollar", 'GRUB_CMDLINE_XEN_DEFAULT="\\$notavar x"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("tabs", '\tGRUB_CMDLINE_XEN_DEFAULT="a\tcrashkernel=1M\tb"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("hash-in-quotes", 'GRUB_CMDLINE_XEN_DEFAULT="a#b crashkernel=1M"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("dq-inside-sq", "GRUB_CMDLINE_XEN_DEFAULT='opt=\"a b\" c'\n", {}, "crashkernel", "256M<4G", "present", V),
    ("flag-add", 'GRUB_CMDLINE_XEN="console=com1"\n', {}, "noreboot", None, "present", X),
    ("flag-remove", 'GRUB_CMDLINE_XEN="noreboot console=com1 noreboot"\n', {}, "noreboot", None, "absent", X),
    ("unrelated-case", 'case "$X" in\n  a) B=1 ;;\n  *) B=2 ;;\nesac\nGRUB_CMDLINE_XEN_DEFAULT="x"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("unrelated-function", 'f() {\n  B=$(date)\n}\nGRUB_CMDLINE_XEN_DEFAULT="x"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("unrelated-and-list", '[ -x /nonexistent ] && B=1\nGRUB_CMDLINE_XEN_DEFAULT="x"\n', {}, "crashkernel", "256M<4G", "present", V),
    (
        "var-read-elsewhere",
        'GRUB_CMDLINE_XEN_DEFAULT="x"\necho "$GRUB_CMDLINE_XEN_DEFAULT" > /dev/null\n',
        {},
        "crashkernel",
        "256M<4G",
        "present",
        V,
    ),
    ("no-trailing-newline", 'GRUB_TIMEOUT=5', {}, "crashkernel", "256M<4G", "present", V),
    ("unicode-comment", '# Xen-Einstellungen für den Hypervisor — ü\nGRUB_CMDLINE_XEN_DEFAULT="x"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("self-ref-unset", 'GRUB_CMDLINE_XEN_DEFAULT="$GRUB_CMDLINE_XEN_DEFAULT"\n', {}, "crashkernel", "256M<4G", "present", V),
    (
        "snippet-overrides-main",
        'GRUB_CMDLINE_XEN_DEFAULT="crashkernel=1M"\n',
        {"zz.cfg": 'GRUB_CMDLINE_XEN_DEFAULT="dom0_mem=2G"\n'},
        "crashkernel",
        "256M<4G",
        "present",
        V,
    ),
    ("escaped-lt-unquoted", "GRUB_CMDLINE_XEN_DEFAULT=crashkernel=1M\\<4G\n", {}, "crashkernel", "256M<4G", "present", V),
    ("absent-only-token", 'GRUB_CMDLINE_XEN_DEFAULT="crashkernel=1M"\n', {}, "crashkernel", None, "absent", V),
    (
        "absent-after-ref",
        'GRUB_CMDLINE_XEN_DEFAULT="a"\nGRUB_CMDLINE_XEN_DEFAULT="$GRUB_CMDLINE_XEN_DEFAULT crashkernel=1M"\n',
        {},
        "crashkernel",
        None,
        "absent",
        V,
    ),
    ("absent-nothing", 'GRUB_CMDLINE_XEN_DEFAULT="a"\n', {}, "crashkernel", None, "absent", V),
    (
        "long-line",
        'GRUB_CMDLINE_XEN_DEFAULT="%s crashkernel=1M"\n' % " ".join("o%d=%d" % (i, i) for i in range(300)),
        {},
        "crashkernel",
        "256M<4G",
        "present",
        V,
    ),
    ("split-token-across-quotes", 'GRUB_CMDLINE_XEN_DEFAULT=crash"kernel=1M b"\n', {}, "crashkernel", "256M<4G", "present", V),
    (
        "linux-crashkernel-untouched",
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet crashkernel=384M-:128M"\n',
        {"kdump-tools.cfg": 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT crashkernel=384M-:128M"\n'},
        "crashkernel",
        "256M<4G",
        "present",
        V,
    ),
    ("readonly-unrelated", 'readonly B=1\nGRUB_CMDLINE_XEN_DEFAULT="x"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("unset-unrelated", 'B=1\nunset B\nGRUB_CMDLINE_XEN_DEFAULT="x"\n', {}, "crashkernel", "256M<4G", "present", V),
    (
        "both-on-one-line",
        'GRUB_CMDLINE_XEN_DEFAULT="a crashkernel=1M" GRUB_CMDLINE_XEN="b crashkernel=2M"\n',
        {},
        "crashkernel",
        "256M<4G",
        "present",
        V,
    ),
    ("prefix-lookalikes", 'GRUB_CMDLINE_XEN_DEFAULT="crashkernel_x=1 crashkernelx crashkernel"\n', {}, "crashkernel", "256M<4G", "present", V),
    ("variable-xen", 'GRUB_CMDLINE_XEN_DEFAULT="crashkernel=1M"\n', {}, "crashkernel", "256M<4G", "present", X),
    ("quoted-value-in-token", 'GRUB_CMDLINE_XEN_DEFAULT="a"\n', {}, "loglvl", "all", "present", V),
    ("value-with-dollar", 'GRUB_CMDLINE_XEN_DEFAULT="a"\n', {}, "opt", "$x`y'z", "present", V),
    ("sq-value-with-quote", "GRUB_CMDLINE_XEN_DEFAULT='crashkernel=1M'\n", {}, "opt", "it's", "present", V),
    (
        "grub-d-many",
        "",
        {
            "10-a.cfg": 'GRUB_CMDLINE_XEN="crashkernel=1M"\n',
            "20-b.cfg": 'GRUB_CMDLINE_XEN_DEFAULT="x crashkernel=2M"\n',
            "30-c.cfg": 'GRUB_CMDLINE_XEN_DEFAULT="$GRUB_CMDLINE_XEN_DEFAULT y"\n',
        },
        "crashkernel",
        "512M",
        "present",
        V,
    ),
    ("non-cfg-ignored", 'GRUB_CMDLINE_XEN_DEFAULT="a"\n', {"README": "GRUB_CMDLINE_XEN_DEFAULT=$(boom)\n"}, "crashkernel", "256M<4G", "present", V),
]

# (id, main file, snippets, option, value): each must be refused
REFUSE_CASES = [
    ("cmdsubst", 'GRUB_CMDLINE_XEN_DEFAULT=$(echo crashkernel=1M)\n', {}),
    ("cmdsubst-in-dq", 'GRUB_CMDLINE_XEN_DEFAULT="a $(echo b)"\n', {}),
    ("backticks", 'GRUB_CMDLINE_XEN_DEFAULT=`echo a`\n', {}),
    ("unbalanced-dq", 'GRUB_CMDLINE_XEN_DEFAULT="a b\n', {}),
    ("unbalanced-sq", "GRUB_CMDLINE_XEN_DEFAULT='a b\n", {}),
    ("unbalanced-dq-elsewhere", 'GRUB_CMDLINE_XEN_DEFAULT="a"\nGRUB_TIMEOUT="5\n', {}),
    ("if-block", 'if true; then\n  GRUB_CMDLINE_XEN_DEFAULT="x"\nfi\n', {}),
    ("and-list", '[ -x /bin/true ] && GRUB_CMDLINE_XEN_DEFAULT="x"\n', {}),
    ("or-list", 'GRUB_CMDLINE_XEN_DEFAULT="x" || true\n', {}),
    ("plus-equals", 'GRUB_CMDLINE_XEN_DEFAULT="a"\nGRUB_CMDLINE_XEN_DEFAULT+=" b"\n', {}),
    ("unset", 'GRUB_CMDLINE_XEN_DEFAULT="a"\nunset GRUB_CMDLINE_XEN_DEFAULT\n', {}),
    ("read", 'read GRUB_CMDLINE_XEN_DEFAULT < /etc/hostname\n', {}),
    ("dot-source", '. /etc/default/other\nGRUB_CMDLINE_XEN_DEFAULT="a"\n', {}),
    ("source", 'source /etc/default/other\n', {}),
    ("eval", 'eval "GRUB_CMDLINE_XEN_DEFAULT=x"\n', {}),
    ("heredoc", 'cat <<EOF\nGRUB_CMDLINE_XEN_DEFAULT="x"\nEOF\n', {}),
    ("crlf", 'GRUB_CMDLINE_XEN_DEFAULT="a"\r\n', {}),
    ("assign-default-expansion", ': ${GRUB_CMDLINE_XEN_DEFAULT:=crashkernel=1M}\n', {}),
    ("complex-param", 'GRUB_CMDLINE_XEN_DEFAULT="${X:-crashkernel=1M}"\n', {}),
    ("tilde", 'GRUB_CMDLINE_XEN_DEFAULT=~/x\n', {}),
    ("positional", 'GRUB_CMDLINE_XEN_DEFAULT="$1 a"\n', {}),
    ("option-from-other-var", 'X="crashkernel=1M"\nGRUB_CMDLINE_XEN_DEFAULT="$X"\n', {}),
    ("option-value-from-other-var", 'SIZE=1M\nGRUB_CMDLINE_XEN_DEFAULT="crashkernel=$SIZE"\n', {}),
    ("function-body", 'f() {\n  GRUB_CMDLINE_XEN_DEFAULT="x"\n}\nf\n', {}),
    ("for-loop-var", 'for GRUB_CMDLINE_XEN_DEFAULT in a b; do :; done\n', {}),
    ("case-arm", 'case "$X" in\n  *) GRUB_CMDLINE_XEN_DEFAULT="x" ;;\nesac\n', {}),
    ("temporary-prefix", 'GRUB_CMDLINE_XEN_DEFAULT="x" true\n', {}),
    ("subshell", '(GRUB_CMDLINE_XEN_DEFAULT="x")\n', {}),
    ("pipeline", 'GRUB_CMDLINE_XEN_DEFAULT="x" | cat\n', {}),
    ("background", 'GRUB_CMDLINE_XEN_DEFAULT="x" &\n', {}),
    ("redirected", 'GRUB_CMDLINE_XEN_DEFAULT="x" > /dev/null\n', {}),
    ("ansi-c", "GRUB_CMDLINE_XEN_DEFAULT=$'a\\tb'\n", {}),
    ("locale-quote", 'GRUB_CMDLINE_XEN_DEFAULT=$"a b"\n', {}),
    ("unbalanced-backtick", 'GRUB_TIMEOUT=`echo 5\n', {}),
    ("non-utf8", b'# caf\xe9\nGRUB_CMDLINE_XEN_DEFAULT="a"\n', {}),
    ("arith", 'GRUB_CMDLINE_XEN_DEFAULT=$((1+2))\n', {}),
    ("declare", 'declare GRUB_CMDLINE_XEN_DEFAULT="x"\n', {}),
    ("typeset", 'typeset GRUB_CMDLINE_XEN="x"\n', {}),
    ("printf-v", 'printf -v GRUB_CMDLINE_XEN_DEFAULT %s x\n', {}),
    ("uses-conditional-var", 'if true; then B="x"; fi\nGRUB_CMDLINE_XEN_DEFAULT="$B"\n', {}),
    ("unbalanced-cmdsubst", 'GRUB_DEFAULT=$(echo a\n', {}),
    ("nul-byte", 'GRUB_CMDLINE_XEN_DEFAULT="a"\x00\n', {}),
    ("export-unquoted-expansion", 'export GRUB_CMDLINE_XEN_DEFAULT=$B\n', {}),
    ("exit", 'exit 0\nGRUB_CMDLINE_XEN_DEFAULT="a"\n', {}),
    ("array", 'GRUB_CMDLINE_XEN_DEFAULT=(a b)\n', {}),
    ("while-loop", 'while false; do GRUB_CMDLINE_XEN_DEFAULT=x; done\n', {}),
    ("negated", '! GRUB_CMDLINE_XEN_DEFAULT=x\n', {}),
    ("pattern-substitution", 'GRUB_CMDLINE_XEN_DEFAULT=a\nGRUB_CMDLINE_XEN_DEFAULT="${GRUB_CMDLINE_XEN_DEFAULT/a/b}"\n', {}),
    ("brace-group", '{ GRUB_CMDLINE_XEN_DEFAULT=x; }\n', {}),
    ("special-at", 'GRUB_CMDLINE_XEN_DEFAULT="$@"\n', {}),
    ("process-substitution", 'B=<(cat)\n', {}),
    ("dup-one-from-other-var", 'X="crashkernel=1M"\nGRUB_CMDLINE_XEN_DEFAULT="$X crashkernel=2M"\n', {}),
    ("backslash-at-eof-in-dq", 'GRUB_CMDLINE_XEN_DEFAULT="a \\', {}),
    ("bad-in-snippet", 'GRUB_CMDLINE_XEN_DEFAULT="a"\n', {"xen.cfg": 'GRUB_CMDLINE_XEN_DEFAULT="$(cat /x)"\n'}),
    ("unbalanced-in-snippet", 'GRUB_CMDLINE_XEN_DEFAULT="a"\n', {"xen.cfg": 'GRUB_DEFAULT="x\n'}),
    ("xen-plus-equals-in-snippet", "", {"50.cfg": 'GRUB_CMDLINE_XEN+=" a"\n'}),
]


@pytest.mark.parametrize("case", EDIT_CASES, ids=[c[0] for c in EDIT_CASES])
def test_edit_corpus(tmp_path, case):
    _id, main, snippets, option, value, state, variable = case
    path = write_tree(str(tmp_path), main, snippets)
    check_edit(path, option, value, state, variable)


@pytest.mark.parametrize("case", REFUSE_CASES, ids=[c[0] for c in REFUSE_CASES])
def test_refuse_corpus(tmp_path, case):
    _id, main, snippets = case
    path = write_tree(str(tmp_path), main, snippets)
    with pytest.raises(errors.XenKdumpError) as exc:
        cmdline.plan_grub_edit(files_of(path), "crashkernel", "256M<4G", "present", V)
    assert exc.value.code.startswith("XK30")
    assert " line " in exc.value.message or "comes from" in exc.value.message


def test_corpus_is_large_enough():
    assert len(EDIT_CASES) + len(REFUSE_CASES) >= 100


def test_refusal_names_file_and_line(tmp_path):
    path = write_tree(str(tmp_path), 'A=1\nB=2\nif true; then\n  GRUB_CMDLINE_XEN_DEFAULT="x"\nfi\n')
    with pytest.raises(cmdline.GrubUnsafeAssignmentError) as exc:
        cmdline.plan_grub_edit(files_of(path), "crashkernel", "256M<4G")
    assert "%s line 4:" % path in exc.value.message
    assert exc.value.data["line"] == 4


# ---------------------------------------------------------------------------------------------
# hypothesis: random tokens, random quoting per chunk, random spread over files
# ---------------------------------------------------------------------------------------------

_tok_chars = st.text(alphabet="abcxyz019_.,:@<>-=/'\"$`\\ #;&|()*?[]{}~!", min_size=1, max_size=6)
_plain = st.from_regex(r"[a-z][a-z0-9_]{0,5}(=[A-Za-z0-9<>@,:.\-]{1,6})?", fullmatch=True)


def _quote(chunk: str, style: str) -> str:
    if style == "dq":
        return '"%s"' % "".join("\\" + c if c in '\\"$`' else c for c in chunk)
    if style == "sq":
        return "'%s'" % chunk.replace("'", "'\\''")
    return "".join("\\" + c if not (c.isalnum() or c in "_=,.:@/-") else c for c in chunk)


@st.composite
def grub_trees(draw):
    tokens = draw(st.lists(st.one_of(_plain, st.just("crashkernel=1M"), st.just("crashkernel"), st.just("noreboot")), max_size=8))
    # spread tokens over up to 3 assignments (main file + snippets), self-referencing or not
    nfiles = draw(st.integers(1, 3))
    cuts = sorted(draw(st.lists(st.integers(0, len(tokens)), min_size=nfiles - 1, max_size=nfiles - 1)))
    groups = [tokens[a:b] for a, b in zip([0] + cuts, cuts + [len(tokens)])]
    texts = []
    for index, group in enumerate(groups):
        text = " ".join(group)
        style = draw(st.sampled_from(["dq", "sq", "unq", "mixed"]))
        if style == "mixed" and text:
            cut = draw(st.integers(0, len(text)))
            body = _quote(text[:cut], "sq") + _quote(text[cut:], "dq")
        else:
            body = _quote(text, style if style != "mixed" else "dq")
        prefix = ""
        if index > 0:
            prefix = draw(st.sampled_from(['"$GRUB_CMDLINE_XEN_DEFAULT "', '"${GRUB_CMDLINE_XEN_DEFAULT} "']))
        comment = draw(st.sampled_from(["", "  # note crashkernel=9M", "; B=1"]))
        texts.append("# file %d\nGRUB_CMDLINE_XEN_DEFAULT=%s%s%s\n" % (index, prefix, body or "''", comment))
    xen = draw(st.lists(st.one_of(_plain, st.just("crashkernel=2M")), max_size=3))
    texts[0] = 'GRUB_CMDLINE_XEN="%s"\n' % " ".join(xen) + texts[0]
    return texts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tree=grub_trees(),
    value=st.one_of(st.none(), st.sampled_from(["256M<4G", "1G,below=4G", "128M@64M"])),
    state=st.sampled_from(["present", "absent"]),
)
def test_hypothesis_edits_verified_by_shells(tmp_path_factory, tree, value, state):
    root = str(tmp_path_factory.mktemp("h"))
    snippets = {"%02d.cfg" % i: text for i, text in enumerate(tree[1:])}
    path = write_tree(root, tree[0], snippets)
    check_edit(path, "crashkernel", value, state, V)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='ab "\'$`\\\n#;(){}=|&<>~', max_size=40))
def test_hypothesis_garbage_never_crashes(text):
    """Any text: a clean plan or a XenKdumpError, never another exception."""
    try:
        cmdline.plan_grub_edit([("/etc/default/grub", "GRUB_CMDLINE_XEN_DEFAULT=\"a\"\n" + text)], "crashkernel", "256M<4G")
    except errors.XenKdumpError:
        pass
