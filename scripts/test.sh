#!/usr/bin/env bash
# Installs what the build needs, builds pgmux with warnings as errors and runs every CTest test
# (unit + integration). Exits non-zero on any failure. BUILD_DIR overrides the build directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${BUILD_DIR:-build}
scripts/install-deps.sh

cmake -S . -B "$build_dir" -DPGMUX_WERROR=ON
cmake --build "$build_dir" -j2

# The integration suite records the PID of every PostgreSQL and pgmux it starts here and removes
# the record when it stops them; whatever is still listed afterwards (a killed pytest) is stopped.
state_dir=$(mktemp -d)
export PGMUX_IT_STATE_DIR=$state_dir
stop_leftovers() {
  local record pid
  for record in "$state_dir"/*; do
    [[ -e $record ]] || continue
    pid=${record##*-}
    case $(basename "$record") in
      postgres-*)
        runuser_prefix=()
        if [[ $(id -u) -eq 0 ]]; then runuser_prefix=(runuser -u postgres --); fi
        data_dir=$(head -n1 "$record")
        "${runuser_prefix[@]}" /usr/lib/postgresql/15/bin/pg_ctl -D "$data_dir" \
          -m immediate stop >/dev/null 2>&1 || true
        if [[ $(basename "$(dirname "$data_dir")") == pgmux-it-pg-* ]]; then
          rm -rf "$(dirname "$data_dir")"
        fi
        ;;
      pgmux-*)
        if [[ -r /proc/$pid/exe && $(readlink "/proc/$pid/exe") == "$(head -n1 "$record")" ]]; then
          kill -KILL "$pid" 2>/dev/null || true
        fi
        ;;
    esac
    rm -f "$record"
  done
  rm -rf "$state_dir"
}
trap stop_leftovers EXIT

ctest --test-dir "$build_dir" --output-on-failure
