# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where every error a user can hit is defined, with its remedy.

Logic in ``module_utils`` raises a subclass of :class:`XenKdumpError` deep down, with the
detail it knows (the bad character, the numbers that do not fit).  Modules turn it into
``fail_json(msg=str(exc), error_code=exc.code)`` in one place (:func:`fail_json_from`).
Every subclass carries a stable ``code`` and a ``remedy``; ``docs/troubleshooting.md``
documents every code and a unit test checks that none is missing.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Type


class XenKdumpError(Exception):
    """Base class. ``str(exc)`` is the message a user sees: detail, code, remedy."""

    code = "XK000"
    title = "Unexpected xenkdump.fleet error"
    remedy = "Report this as a bug with the task output."

    def __init__(self, detail: str, remedy: Optional[str] = None, **data: Any) -> None:
        self.detail = detail
        if remedy is not None:
            self.remedy = remedy
        self.data = data
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "%s [%s] Fix: %s" % (self.detail.rstrip(), self.code, self.remedy)

    def as_result(self) -> Dict[str, Any]:
        result: Dict[str, Any] = {"msg": self.message, "error_code": self.code}
        if self.data:
            result["error_data"] = self.data
        return result


def all_error_classes() -> List[Type[XenKdumpError]]:
    """Every concrete error class defined anywhere in module_utils (for docs/tests)."""
    seen: List[Type[XenKdumpError]] = []
    stack: List[Type[XenKdumpError]] = [XenKdumpError]
    while stack:
        cls = stack.pop()
        if cls not in seen:
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return sorted(seen, key=lambda c: c.code)


def fail_json_from(module: Any, exc: XenKdumpError, **extra: Any) -> None:
    """Turn a raised XenKdumpError into fail_json. ``module`` is an AnsibleModule (duck-typed)."""
    result = exc.as_result()
    result.update(extra)
    module.fail_json(**result)
