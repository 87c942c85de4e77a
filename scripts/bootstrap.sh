#!/usr/bin/env bash
# Prepares this checkout on a fresh machine, idempotently:
# - .venv: the Python of Lambda's runtime (3.12) with the locked packages of constraints.txt;
# - .venv-backend: the Python of the Railway backend (3.11) with the backend's own pins
#   (constraints/backend.txt), where the router and the Celery worker are tested as the backend
#   runs them;
# - redis-server from Debian for the tests' real broker;
# - the FFmpeg layer built from its pinned sources.
# A second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

LAMBDA_PYTHON=3.12
BACKEND_PYTHON=3.11

find_python() {
    local version=$1 override=$2 candidate pyenv_root
    local -a candidates=("$override" "python${version}")
    pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    candidates+=("$pyenv_root"/versions/${version}.*/bin/python${version})
    candidates+=(/usr/bin/python${version} /usr/local/bin/python${version})
    for candidate in "${candidates[@]}"; do
        [ -n "$candidate" ] || continue
        if "$candidate" -c "import sys, venv; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" \
                >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    echo "bootstrap: no Python ${version} found; install it (pyenv install ${version}) or set the variable for it" >&2
    return 1
}

# prepare VENV VERSION PYTHON_OVERRIDE SPEC CONSTRAINT_FILE...: create the venv once, reinstall
# when pyproject.toml or a constraint file changes.
prepare() {
    local venv=$1 version=$2 override=$3 spec=$4
    shift 4
    local stamp python
    stamp=$(cat pyproject.toml "$@" | sha256sum | cut -d' ' -f1)
    if [ ! -x "$venv/bin/python" ]; then
        python=$(find_python "$version" "$override")
        echo "bootstrap: creating $venv with $python" >&2
        "$python" -m venv "$venv"
    fi
    if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$stamp" ]; then
        echo "bootstrap: installing locked packages into $venv" >&2
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            $(printf -- '-c %s ' "$@") -e ".[$spec]"
        echo "$stamp" > "$venv/.installed"
    fi
}

prepare .venv "$LAMBDA_PYTHON" "${PYTHON:-}" dev constraints.txt
prepare .venv-backend "$BACKEND_PYTHON" "${BACKEND_PYTHON_BIN:-}" backend-test \
    constraints/backend.txt constraints/backend-tests.txt

if ! command -v redis-server >/dev/null 2>&1; then
    echo "bootstrap: installing redis-server from Debian" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

.venv/bin/python -m layers.ffmpeg.build >&2
