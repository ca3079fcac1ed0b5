# -*- coding: utf-8 -*-
"""Shared pytest setup: make the checkout importable as ansible_collections.xenkdump.fleet,
and give tests a Host whose commands answer from recorded real outputs."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
XEN417 = os.path.join(FIXTURES, "xen-4.17-dom0")


def _ensure_collection_importable() -> None:
    try:
        import ansible_collections.xenkdump.fleet  # noqa: F401  pylint: disable=unused-import
        return
    except ImportError:
        pass
    base = os.path.join(REPO, ".build", "collections")
    link = os.path.join(base, "ansible_collections", "xenkdump", "fleet")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO, link)
    sys.path.insert(0, base)


_ensure_collection_importable()


def _hypothesis_profiles() -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # pragma: no cover - hypothesis is in requirements.txt
        return
    common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("ci", max_examples=200, **common)
    settings.register_profile("quick", max_examples=25, **common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_hypothesis_profiles()


def _grub_script_check() -> str:
    """Path of the real grub-script-check (Debian grub-common). Missing: a loud failure, never a skip."""
    import shutil
    import pytest
    path = shutil.which("grub-script-check")
    if not path:
        pytest.fail("grub-script-check is not installed: GRUB's own lexer is needed to check what "
                    "xen_cmdline writes. Install grub-common (scripts/bootstrap does: apt-get install "
                    "-y grub-common).", pytrace=False)
    return path


try:
    import pytest as _pytest

    @_pytest.fixture
    def grub_script_check() -> str:
        return _grub_script_check()
except ImportError:  # pragma: no cover
    pass
