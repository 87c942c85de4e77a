#!/usr/bin/env bash
# Builds the wheel the Railway backend vendors (docs/router.md): the two packages it imports,
# `router` and `processor`, with this project's metadata and dependency ranges. The Pulumi
# program, the sandbox and the layer build stay out: the backend never imports them.
#
# Usage: scripts/build_wheel.sh [OUTPUT_DIR]   (default dist/); prints the wheel's path.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)
python=${PYTHON:-.venv/bin/python}

# pyproject.toml finds its packages by name; in a copy holding only these two, the wheel holds
# only these two.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp pyproject.toml "$stage/"
cp -r processor router "$stage/"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +

rm -f "$out"/lambda_video_processor-*.whl
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$out" "$stage" >&2
ls "$out"/lambda_video_processor-*.whl
