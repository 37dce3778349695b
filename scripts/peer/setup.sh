#!/usr/bin/env bash
# Installs the peer script's dependencies (polars, numpy) into a venv under scripts/.tools/
# (ignored by git), once. Prints the venv's python on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.tools/peer-venv"
py="$venv/bin/python"
if [ ! -x "$py" ] || ! "$py" -c 'import polars, numpy' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
fi
echo "$py"
