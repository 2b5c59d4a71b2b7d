#!/usr/bin/env bash
# The LocalStack lane's own venv: LocalStack core runs without Docker only on Python 3.13,
# so it cannot share the project's .venv.  Usage: scripts/localstack-env.sh VENV_DIR
#
# Idempotent: a stamp file named after the pins' hash makes a second call instant; a change
# of pins reinstalls.  Where no Python 3.13 exists the lane is skipped (exit 0, said loudly),
# and tests/integration/localstack skips with the same reason.
#
# Python 3.13 is found as $STEPDAG_PYTHON313, else `python3.13` on PATH (only if it really
# runs: a pyenv shim for a version that is not selected prints an error instead), else a
# pyenv install (~/.pyenv/versions/3.13.*).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 VENV_DIR" >&2
    exit 2
fi
VENV=$1

# The pins of issue 5: localstack-core 2026.3.0 needs cbor2 < 6, and its TLS stack is only
# consistent with these pyopenssl/cryptography releases.
PINS=(
    "localstack-core[runtime]==2026.3.0"
    "cbor2<6"
    "pyopenssl==25.3.0"
    "cryptography>=45.0.7,<47"
    "service_identity"
)
STAMP="$VENV/.installed-$(printf '%s\n' "${PINS[@]}" | sha1sum | cut -c1-12)"

works() { [[ -n "$1" ]] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' \
    >/dev/null 2>&1; }

find_python() {
    local candidate
    for candidate in "${STEPDAG_PYTHON313:-}" "$(command -v python3.13 || true)" \
        "$HOME"/.pyenv/versions/3.13*/bin/python3.13; do
        if works "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [[ -f "$STAMP" && -x "$VENV/bin/python" ]] && works "$VENV/bin/python"; then
    exit 0
fi

if ! PY=$(find_python); then
    echo "LocalStack lane: skipped (no python3.13)"
    exit 0
fi

echo "LocalStack lane: installing localstack-core into $VENV with $PY ($("$PY" --version))"
if ! works "$VENV/bin/python"; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
rm -f "$VENV"/.installed-*
touch "$STAMP"
echo "LocalStack lane: ready ($("$VENV/bin/python" -m pip show localstack-core 2>/dev/null \
    | sed -n 's/^Version: /localstack-core /p'))"
