#!/usr/bin/env bash
# Prepares this checkout on a fresh machine, idempotently: a virtualenv on the Python of Lambda's
# runtime (3.12) with the locked packages, what the build and the tests need from Debian
# (redis-server, npm, tesseract), and the FFmpeg layer built from its pinned sources. A second
# run only checks.
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

"$VENV/bin/python" -m layers.ffmpeg.build >&2
