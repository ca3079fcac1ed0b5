# -*- coding: utf-8 -*-
"""Shared fixtures for the AWX tier (scripts/test awx): the built collection, installed the way an
execution environment carries it, and awx/vars/main.yml as configure.yml sees it."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from typing import Any, Dict, List, Optional

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


class _Unsafe(str):
    """A `!unsafe` string from an Ansible vars file (left for Ansible to template in the job)."""


class _VarsLoader(yaml.SafeLoader):
    pass


_VarsLoader.add_constructor("!unsafe", lambda loader, node: _Unsafe(loader.construct_scalar(node)))


def load_vars(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_VarsLoader)  # noqa: S506 - SafeLoader subclass


def tool(name: str) -> str:
    """A console script of the interpreter running the tests (the project's venv)."""
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else name


def run(argv: List[str], env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=env)


@pytest.fixture(scope="session")
def awx_vars() -> Dict[str, Any]:
    return load_vars(os.path.join(REPO, "awx", "vars", "main.yml"))


@pytest.fixture(scope="session")
def galaxy() -> Dict[str, Any]:
    with open(os.path.join(REPO, "galaxy.yml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="session")
def collection_tarball(tmp_path_factory, galaxy) -> str:
    """`ansible-galaxy collection build` of the checkout, as tier_build and the EE use it."""
    out = str(tmp_path_factory.mktemp("dist"))
    proc = run([tool("ansible-galaxy"), "collection", "build", "--output-path", out, "--force", REPO])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tarballs = glob.glob(os.path.join(out, "xenkdump-fleet-*.tar.gz"))
    assert [os.path.basename(t) for t in tarballs] == ["xenkdump-fleet-%s.tar.gz" % galaxy["version"]]
    return tarballs[0]


@pytest.fixture(scope="session")
def ee_collections(tmp_path_factory, collection_tarball) -> str:
    """The tarball installed into a clean collections path: what the execution environment holds
    in /usr/share/ansible/collections (its dependencies come from the ansible package in the venv)."""
    dest = str(tmp_path_factory.mktemp("ee-collections"))
    proc = run([tool("ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force", "-p", dest,
                collection_tarball])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.path.isfile(os.path.join(dest, "ansible_collections", "xenkdump", "fleet", "MANIFEST.json"))
    return dest
