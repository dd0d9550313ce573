#!/usr/bin/env bash
# Start-up of the release build: the time from exec to the first healthy /healthz, the
# resident memory then, and what /readyz says, for a configuration given by name:
#
#   scripts/startup.sh BINARY none|nodocs|provider [RUNS]
#
#   none      defaults (SQLite, sign-in and client ID metadata documents on)
#   nodocs    registration.metadata_documents = false (no document client built)
#   provider  one [[login.providers]] whose issuer (127.0.0.1:9) refuses connections:
#             start-up must not wait for its discovery, and /readyz names it unavailable
#
# Everything is on loopback in a temporary directory, removed on exit. Needs curl.

set -euo pipefail
bin=$1
mode=$2
runs=${3:-5}
port=${STARTUP_PORT:-18900}

for _ in $(seq 1 "$runs"); do
  dir=$(mktemp -d)
  cat >"$dir/config.toml" <<TOML
listen = "127.0.0.1:$port"
issuer = "http://127.0.0.1:$port"
database_url = "sqlite://$dir/introspectd.db"
[metrics]
listen = "127.0.0.1:$((port + 1))"
TOML
  case $mode in
    none) ;;
    nodocs) printf '[registration]\nmetadata_documents = false\n' >>"$dir/config.toml" ;;
    provider)
      cat >>"$dir/config.toml" <<TOML
[[login.providers]]
id = "corp"
name = "Corp"
issuer = "http://127.0.0.1:9"
client_id = "introspectd"
client_secret = "startup-measurement"
TOML
      ;;
    *) echo "unknown configuration: $mode" >&2; exit 2 ;;
  esac
  "$bin" --config "$dir/config.toml" migrate >/dev/null 2>&1
  start=$(date +%s%N)
  "$bin" --config "$dir/config.toml" serve >"$dir/log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do :; done
  end=$(date +%s%N)
  ready=$(curl -s "http://127.0.0.1:$port/readyz")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  echo "$mode: healthy after $(((end - start) / 1000000)) ms, RSS $(awk "BEGIN {printf \"%.1f\", $rss / 1024}") MB, readyz $ready"
done
