#!/usr/bin/env bash
# Prepares this checkout on a fresh machine, idempotently: a virtualenv on the Python of Lambda's
# runtime (3.12) with the locked packages, redis-server from Debian for the tests' real broker,
# and the FFmpeg layer built from its pinned sources. A second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

LAMBDA_PYTHON=3.12
VENV=.venv

find_python() {
    local candidate
    local -a candidates=("${PYTHON:-}" "python${LAMBDA_PYTHON}")
    local pyenv_root
    pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    candidates+=("$pyenv_root"/versions/${LAMBDA_PYTHON}*/bin/python${LAMBDA_PYTHON})
    candidates+=(/usr/bin/python${LAMBDA_PYTHON} /usr/local/bin/python${LAMBDA_PYTHON})
    for candidate in "${candidates[@]}"; do
        [ -n "$candidate" ] || continue
        if "$candidate" -c "import sys, venv; sys.exit(sys.version_info[:2] != (3, 12))" >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    echo "bootstrap: no Python ${LAMBDA_PYTHON} found (Lambda's runtime version); install it or set PYTHON=/path/to/python${LAMBDA_PYTHON}" >&2
    return 1
}

stamp_of() { cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1; }

if [ ! -x "$VENV/bin/python" ]; then
    python=$(find_python)
    echo "bootstrap: creating $VENV with $python" >&2
    "$python" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$(stamp_of)" ]; then
    echo "bootstrap: installing locked packages into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
    stamp_of > "$VENV/.installed"
fi

if ! command -v redis-server >/dev/null 2>&1; then
    echo "bootstrap: installing redis-server from Debian" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

"$VENV/bin/python" -m layers.ffmpeg.build >&2
