#!/usr/bin/env bash
# Build the one-folder desktop bundle into packaging/dist/campaign-pulse and check that it
# starts under Xvfb. Usage: packaging/build.sh   (PYTHON=... to use another interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DIST=packaging/dist
BUNDLE=$DIST/campaign-pulse

"$PYTHON" -m PyInstaller --version >/dev/null 2>&1 || "$PYTHON" -m pip install -q "pyinstaller>=6.10"
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath packaging/build packaging/campaign-pulse.spec

cp packaging/campaign-pulse.desktop "$BUNDLE/"
cp desktop/ui/resources/icon-256.png "$BUNDLE/campaign-pulse.png"
echo "bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"

packaging/check_bundle.sh "$BUNDLE"
