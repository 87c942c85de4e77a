#!/usr/bin/env bash
# Prepares this checkout on a fresh machine, idempotently:
# - .venv: the Python of Lambda's runtime (3.12) with the locked packages of constraints.txt;
# - .venv-backend: the Python of the Railway backend (3.11) with the backend's own pins
#   (constraints/backend.txt), where the router and the Celery worker are tested as the backend
#   runs them;
# - from Debian, what the machine lacks: redis-server (the tests' real broker), npm (the layer's
#   emoji font) and tesseract with the caption tests' languages;
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

# Debian packages, installed only when missing: redis-server for the tests' real broker; npm,
# which fetches the layer's emoji font; tesseract with the data of the scripts the caption
# tests read back from frames.
debian_missing=()
command -v redis-server >/dev/null 2>&1 || debian_missing+=(redis-server)
command -v npm >/dev/null 2>&1 || debian_missing+=(npm)
for package in tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-ara tesseract-ocr-heb \
               tesseract-ocr-rus tesseract-ocr-ell tesseract-ocr-hin tesseract-ocr-tha; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || debian_missing+=("$package")
done
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
# The layer's fonts come from Debian too (apt-get download): the first build needs fresh lists.
if [ ${#debian_missing[@]} -gt 0 ] || [ ! -f layers/ffmpeg/dist/ffmpeg-layer.zip ]; then
    $sudo apt-get update -qq
fi
if [ ${#debian_missing[@]} -gt 0 ]; then
    echo "bootstrap: installing from Debian: ${debian_missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${debian_missing[@]}" >/dev/null
fi

.venv/bin/python -m layers.ffmpeg.build >&2
