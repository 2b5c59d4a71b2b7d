"""Which files are the user's code: the one rule the loader (where an import failure
is reported) and the cache fingerprint (which helpers it follows) share."""

from __future__ import annotations

import sysconfig
from pathlib import Path

_STEPDAG = Path(__file__).resolve().parents[1]
_LIBRARIES = tuple(
    Path(p).resolve()
    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)


def is_library_file(path: str | Path) -> bool:
    """Part of stepdag, the standard library or an installed package: not the user's.

    ``site-packages``/``dist-packages`` anywhere in the path counts too: dependencies
    installed next to the code (``pip install -t``, a Lambda bundle, another venv).
    """
    resolved = Path(path).resolve()
    if resolved.is_relative_to(_STEPDAG) or any(resolved.is_relative_to(p) for p in _LIBRARIES):
        return True
    return any(part in ("site-packages", "dist-packages") for part in resolved.parts)


__all__ = ["is_library_file"]
