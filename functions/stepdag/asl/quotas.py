"""AWS's documented quotas on definitions and names (service-quotas page).

Payload (256 KiB) and history (25,000 events) limits are enforced where the data is
produced: ``states/base.py`` and ``history.py``.
"""

from __future__ import annotations

from typing import Final

# One name rule for the interpreter and every entry point (re-exported here).
from stepdag.core.quotas import MAX_NAME_LENGTH, name_problem

# "Maximum size of state machine definition: 1 MB" (a hard quota).
MAX_DEFINITION_BYTES: Final = 1024 * 1024


def definition_size_problem(text: str) -> str | None:
    """Why a definition (its JSON text) is over the quota, or None."""
    if len(text) <= MAX_DEFINITION_BYTES // 4:
        return None  # at most 4 UTF-8 bytes per character
    size = len(text.encode("utf-8"))
    if size <= MAX_DEFINITION_BYTES:
        return None
    return (
        f"definition: {size} bytes exceeds the maximum state machine definition size "
        f"of {MAX_DEFINITION_BYTES} bytes (1 MiB)"
    )


__all__ = ["MAX_DEFINITION_BYTES", "MAX_NAME_LENGTH", "definition_size_problem", "name_problem"]
