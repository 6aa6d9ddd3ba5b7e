#!/usr/bin/env bash
# Install the Debian packages the portal needs, only those missing.
#   scripts/system-deps.sh run    runtime: venv support, WeasyPrint's libraries, TBB for numba
#   scripts/system-deps.sh test   runtime + Chromium (browser tests) + PostgreSQL server
set -euo pipefail
want=(python3-venv libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fontconfig
      fonts-dejavu-core libtbb12)
if [ "${1:-run}" = "test" ]; then
  want+=(chromium postgresql postgresql-client)
fi
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "Not root and no sudo: please install ${missing[*]} (apt-get install)" >&2; exit 1; fi
else SUDO=""; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
