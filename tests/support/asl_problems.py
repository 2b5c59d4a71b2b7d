"""Definition problems as the tests name them: ``located(found, "States.A.Next", "...")``.

The tests keep the dotted spelling of a location (easy to read in a parametrize table);
the engine reports AWS's ``CODE: message at /States/A/Next``.
"""

from __future__ import annotations

import re


def location(where: str) -> str:
    """``States.A.Parameters.x.$`` → ``/States/A/Parameters/x.$`` (``.$`` stays in a key)."""
    return "/" + re.sub(r"\.(?!\$)", "/", where)


def located(found: list[str], where: str, fragment: str) -> bool:
    """Some problem says ``fragment`` and is located exactly at ``where``."""
    suffix = f" at {location(where)}"
    return any(fragment in p and p.endswith(suffix) for p in found)


__all__ = ["located", "location"]
