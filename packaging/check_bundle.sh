#!/usr/bin/env bash
# Start the built app under Xvfb and wait for its first window (the sign-in dialog, or the
# main window when PULSE_SERVER_URL, PULSE_EMAIL and PULSE_PASSWORD are set).
# Installs Xvfb and the X libraries Qt needs when run as root on Debian/Ubuntu.
set -euo pipefail
BUNDLE=${1:-packaging/dist/campaign-pulse}

if ! command -v xvfb-run >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xauth libxcb-icccm4 \
            libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxcb-shape0 \
            libxcb-xinerama0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3 \
            libpulse0 >/dev/null
    else
        echo "xvfb-run is missing: install Xvfb (Debian: apt-get install xvfb) and retry" >&2
        exit 1
    fi
fi

args=(--check)
[ -n "${PULSE_SERVER_URL:-}" ] && args+=(--server "$PULSE_SERVER_URL")
[ -n "${PULSE_EMAIL:-}" ] && args+=(--email "$PULSE_EMAIL")
HOME=$(mktemp -d)  # a clean profile: no remembered server or email
export HOME
output=$(timeout 120 xvfb-run -a "$BUNDLE/campaign-pulse" "${args[@]}" 2>&1) || {
    echo "$output" >&2
    echo "FAILED: the bundled app did not start" >&2
    exit 1
}
echo "$output" | grep '^started: ' || { echo "$output" >&2; exit 1; }
echo "OK: the bundled app starts"
log=$(find "$HOME" -name desktop.log -print -quit)
grep -q ' starting (Python' "${log:-/dev/null}" || { echo "FAILED: no log file in $HOME" >&2; exit 1; }
echo "OK: it logs to ${log#"$HOME"/}: $(grep -o 'Campaign Pulse [^ ]* starting' "$log")"
