#!/usr/bin/env bash
# Installs the Debian packages that building edgewise needs (`system_deps.sh build`, run by
# `make dev`) or that and what the test suite runs for real (`system_deps.sh`, run by `make test`:
# it mocks no browser or server). Idempotent and quiet: it does nothing when every package is already there, and it refreshes the
# package lists only when apt cannot otherwise find or fetch a package. Runs as root (as CI does
# on a fresh Debian bookworm machine), or through sudo when that is available.
set -euo pipefail

# One Debian package a line, with what needs it. Add new ones here.
BUILD_PACKAGES=(
    libssl-dev        # the Rust core's MQTT client (rumqttc) speaks TLS through the system OpenSSL
    pkg-config        # ... and openssl-sys finds it with pkg-config at build time
)
TEST_PACKAGES=(
    chromium          # tests/test_drift_html.py renders the drift report in a real browser
    postgresql        # tests/test_fleet_*.py run the control-plane store on a real PostgreSQL
    fonts-dejavu-core # so that the browser has a font to draw the report's text with
    mosquitto         # tests/mqtt_broker.py runs the real broker for the transport tests
    mosquitto-clients # mosquitto_sub/pub, for looking at a test broker by hand
    openssl           # tests/mqtt_broker.py makes a throwaway CA for the TLS tests
)

case "${1:-test}" in
    build) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
    test) PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
    *) echo "usage: system_deps.sh [build|test]" >&2; exit 2 ;;
esac

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

has_candidate() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

missing=()
for package in "${PACKAGES[@]}"; do
    is_installed "$package" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "system_deps.sh: missing Debian packages (${missing[*]}) and not root, without sudo;" \
        "install them with: apt-get install ${missing[*]}" >&2
    exit 1
fi

# apt's chatter goes to a log that is shown only when the install fails for good.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt_get() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -q -y -o=Dpkg::Use-Pty=0 "$@" >"$log" 2>&1
}
fail() {
    cat "$log" >&2
    echo "system_deps.sh: could not install ${missing[*]}" >&2
    exit 1
}

echo "system_deps.sh: installing ${missing[*]}" >&2
updated=false
for package in "${missing[@]}"; do
    if ! has_candidate "$package"; then
        apt_get update || fail
        updated=true
        break
    fi
done
# Lists that name a package can still be stale (a superseded version is no longer on the
# mirror): then the install fails, and one refresh of the lists fixes it.
if ! apt_get install --no-install-recommends "${missing[@]}"; then
    $updated && fail
    apt_get update || fail
    apt_get install --no-install-recommends "${missing[@]}" || fail
fi
