#!/usr/bin/env bash
# Installs, from Debian's packages, everything pgmux's build, tests and demo need.
# Does nothing (and touches no network) when every package is already installed.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev libssl-dev libpq-dev libinih-dev catch2
  postgresql-15 postgresql-client-15 pgbouncer
  python3 python3-pytest python3-pytest-timeout python3-psycopg
  python3-asyncpg libpostgresql-jdbc-java default-jdk-headless
  util-linux procps
  gnuplot-nox wrk python3-aiohttp iproute2
)
# The node-postgres tests need node and npm. NodeSource's nodejs (which bundles npm) is used
# when present, and Debian's npm cannot be installed beside it: Debian's packages are added only
# for a command that is missing.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
  if [[ $(dpkg-query -W -f='${Version}' nodejs 2>/dev/null || true) == *nodesource* ]]; then
    echo "install-deps: npm is missing but NodeSource's nodejs, which ships it, is installed;" \
      "reinstall nodejs" >&2
    exit 1
  fi
  packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Installing postgresql-15 must not leave a server running: the tests and the demo start their own
# throwaway clusters. Block service starts for the duration unless a policy is already in place.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  made_policy=1
fi
cleanup() {
  if [[ $made_policy -eq 1 ]]; then rm -f "$policy"; fi
}
trap cleanup EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
