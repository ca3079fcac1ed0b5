# -*- coding: utf-8 -*-
"""Every error a user can hit is defined once, has a unique code and a remedy, and is
documented in docs/troubleshooting.md (generated from docs/troubleshooting.d)."""

from __future__ import annotations

import glob
import importlib
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

from ansible_collections.xenkdump.fleet.plugins.module_utils import errors


def _import_all_module_utils() -> None:
    for path in glob.glob(os.path.join(REPO, "plugins", "module_utils", "*.py")):
        name = os.path.splitext(os.path.basename(path))[0]
        if name != "__init__":
            importlib.import_module("ansible_collections.xenkdump.fleet.plugins.module_utils." + name)


_import_all_module_utils()
CLASSES = [c for c in errors.all_error_classes() if c is not errors.XenKdumpError]


def test_codes_are_unique_and_well_formed():
    codes = [c.code for c in CLASSES]
    assert len(codes) == len(set(codes)), sorted(codes)
    for cls in CLASSES:
        assert re.match(r"^XK\d{3}$", cls.code), cls
        assert cls.remedy and cls.remedy != errors.XenKdumpError.remedy, cls
        assert cls.title and cls.title != errors.XenKdumpError.title, cls


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.code)
def test_every_error_is_documented(cls):
    with open(os.path.join(REPO, "docs", "troubleshooting.md"), encoding="utf-8") as fh:
        doc = fh.read()
    assert re.search(r"^## %s\b" % cls.code, doc, re.M), "%s (%s) missing from docs/troubleshooting.md" % (cls.code, cls.__name__)


def test_message_carries_code_and_remedy():
    exc = errors.XenKdumpError("something broke")
    assert str(exc) == "something broke [XK000] Fix: Report this as a bug with the task output."
    assert exc.as_result() == {"msg": str(exc), "error_code": "XK000"}


def test_generated_docs_are_fresh():
    proc = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "gen_docs.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
