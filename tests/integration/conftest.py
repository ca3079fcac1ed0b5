# -*- coding: utf-8 -*-
"""Make the checkout importable as ansible_collections.xenkdump.fleet (as tests/unit/conftest.py)."""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
