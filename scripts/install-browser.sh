#!/usr/bin/env bash
# Headless Chromium for the console's browser test (tests/e2e): Debian's `chromium` package.
# Idempotent and quick when already installed (it only checks /usr/bin/chromium).  Browser
# builds downloaded by `playwright install` cannot be fetched here, so the test drives this one.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-browser: $CHROMIUM is missing and I am not root and have no sudo;" >&2
    echo "install-browser: run as root: apt-get install -y --no-install-recommends chromium" >&2
    exit 1
fi

echo "install-browser: $CHROMIUM is missing; installing Debian's chromium package:"
echo "install-browser:   ${SUDO[*]:+${SUDO[*]} }apt-get update"
echo "install-browser:   ${SUDO[*]:+${SUDO[*]} }apt-get install -y --no-install-recommends chromium"
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get update -q; then
    echo "install-browser: FAILED: apt-get update" >&2
    exit 1
fi
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium; then
    echo "install-browser: FAILED: apt-get install chromium" >&2
    exit 1
fi
if [[ ! -x "$CHROMIUM" ]]; then
    echo "install-browser: FAILED: the chromium package installed but $CHROMIUM is not there" >&2
    exit 1
fi
echo "install-browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
