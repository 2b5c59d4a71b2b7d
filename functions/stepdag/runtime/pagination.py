"""Where pagination-token keys come from when tokens must outlive one process.

A store signs its ``next_token`` values with an HMAC key (``StoreBackend``); with none
given it draws a random one, valid in that process only.  The CLI prints a token and
reads it back in the next invocation, so locally the key lives in the home directory:
``<home>/pagination.key``, 32 random bytes, created once with mode 0600 (only its owner
may read it: whoever reads it can forge tokens).  On AWS the stack generates the key in
Secrets Manager and the API function reads it at cold start (``handlers/api.py``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Final

from stepdag.core.errors import StepdagError

KEY_FILE: Final = "pagination.key"
KEY_BYTES: Final = 32
MIN_KEY_BYTES: Final = 16


class PaginationKeyError(StepdagError):
    code = "pagination_key"


def home_key(home: Path | str) -> bytes:
    """The home's key, created on first use.  Written whole to a private temporary file
    (mkstemp: mode 0600) and linked into place, so a concurrent first use either wins or
    reads the winner's complete key, never a half-written one."""
    path = Path(home) / KEY_FILE
    if path.exists():
        return read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE}.")
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process won: use theirs
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return read_key(path)


def read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) < MIN_KEY_BYTES:
        raise PaginationKeyError(
            f"{path}: a pagination key needs at least {MIN_KEY_BYTES} bytes, found "
            f"{len(key)}; delete the file to create a new one (old tokens stop working)"
        )
    return key
