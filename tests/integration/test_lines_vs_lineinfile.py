# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""config_state's ``lines`` must predict exactly what ansible.builtin.lineinfile would do: the
role skips lineinfile when config_state says no drift. Both judge the same files here: the real
lineinfile in check mode (through ansible-playbook) and state.line_state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.xenkdump.fleet.plugins.module_utils import state
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import CommandResult, Host

VENV_BIN = Path(sys.executable).parent

CASES = {
    "converged": "# Defaults for kexec initscript\nLOAD_KEXEC=false\nUSE_GRUB_CONFIG=false\n",
    "package_default": "# Defaults for kexec initscript\nLOAD_KEXEC=true\n\nUSE_GRUB_CONFIG=false\n",
    "crlf": "LOAD_KEXEC=false\r\nUSE_GRUB_CONFIG=false\r\n",
    "last_match_wrong": "LOAD_KEXEC=false\nLOAD_KEXEC=true\n",
    "last_match_right": "LOAD_KEXEC=true\nLOAD_KEXEC=false",
    "commented": "# LOAD_KEXEC=false\n",
    "empty": "",
    "spaces": "LOAD_KEXEC=false \n",
    "quoted": 'LOAD_KEXEC="false"\n',
    "cr_only": "LOAD_KEXEC=false\rUSE_GRUB_CONFIG=false\r",
    "no_final_newline": "USE_GRUB_CONFIG=false\nLOAD_KEXEC=false",
    "exact_without_regexp_match": "load_kexec=no\n",
}

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: lineinfile in check mode on every case
      ansible.builtin.lineinfile:
        path: "{{ dir }}/{{ item }}"
        regexp: "^LOAD_KEXEC="
        line: LOAD_KEXEC=false
        create: false
      check_mode: true
      loop: "{{ cases }}"
      register: out
    - name: lineinfile without a regexp (the exact line) in check mode on every case
      ansible.builtin.lineinfile:
        path: "{{ dir }}/{{ item }}"
        line: USE_GRUB_CONFIG=false
        create: false
      check_mode: true
      loop: "{{ cases }}"
      register: exact
    - name: write what it said
      ansible.builtin.copy:
        content: >-
          {{ [dict(out.results | map(attribute='item') | zip(out.results | map(attribute='changed'))),
              dict(exact.results | map(attribute='item') | zip(exact.results | map(attribute='changed')))] | to_json }}
        dest: "{{ dir }}/../result.json"
        mode: "0644"
"""


def test_line_state_agrees_with_lineinfile(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    for name, text in CASES.items():
        (files / name).write_bytes(text.encode())
    book = tmp_path / "book.yml"
    book.write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")))
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book),
                           "-e", "ansible_python_interpreter=%s" % sys.executable,
                           "-e", json.dumps({"dir": str(files), "cases": sorted(CASES)})],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
    with_regexp, exact = json.loads((tmp_path / "result.json").read_text())
    host = Host(run=lambda argv: CommandResult(1, "", "no commands"), root=str(files))
    predicted = state.line_state(host, [{"path": "/" + name, "regexp": "^LOAD_KEXEC=", "line": "LOAD_KEXEC=false"}
                                        for name in CASES])
    assert {name: predicted["/" + name]["drift"] for name in CASES} == with_regexp
    predicted = state.line_state(host, [{"path": "/" + name, "line": "USE_GRUB_CONFIG=false"} for name in CASES])
    assert {name: predicted["/" + name]["drift"] for name in CASES} == exact
    assert sorted(name for name, changed in exact.items() if not changed) == [
        "converged", "cr_only", "crlf", "no_final_newline", "package_default"]
    # the files are as they were (check mode)
    assert all((files / name).read_bytes() == text.encode() for name, text in CASES.items())
