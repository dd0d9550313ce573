#!/usr/bin/env bash
# Two release binaries compared on the hot path, in pairs run alternately: the server
# pinned to core 0 and wrk to core 1 (taskset), so that the load generator and the
# server do not take turns on one core. Each binary gets its own SQLite file, client and
# JWT; each run is a 2 s warm-up then 5 s of the same JWT introspected again and again
# (wrk -t1 -c32, scripts/introspect.lua), then 3 s of GET /healthz. Prints one line per
# run and, at the end, the medians and the per-pair ratio B/A.
#
#   scripts/compare.sh BINARY_A BINARY_B [PAIRS]      (PAIRS: 6)
#
# COMPARE_CASE=token measures client credentials at POST /token (scripts/post.lua)
# instead of the repeated JWT: the issuing path, which both binaries have.
#
# Needs wrk, curl, jq and taskset; at least two cores. Port: $COMPARE_PORT (19887).

set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 BINARY_A BINARY_B [PAIRS]" >&2; exit 2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pairs=${3:-6}
port=${COMPARE_PORT:-19887}
case_name=${COMPARE_CASE:-jwt}
work=$(mktemp -d)
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

export INTROSPECTD_LISTEN=127.0.0.1:$port INTROSPECTD_ISSUER=http://127.0.0.1:$port
export INTROSPECTD_METRICS__ENABLED=false INTROSPECTD_RATE_LIMIT__ENABLED=false
export INTROSPECTD_LOG__LEVEL=warn INTROSPECTD_DATABASE_URL=sqlite://compare.db
unset RUST_LOG

for side in A B; do
    mkdir "$work/$side"
    bin=$1
    [[ $side == B ]] && bin=$2
    cp "$bin" "$work/$side/introspectd"
    (
        cd "$work/$side"
        ./introspectd client create --name compare --grant-type client_credentials \
            >client.json 2>/dev/null
        ./introspectd token issue --client-id "$(jq -r .client_id client.json)" \
            --subject alice --scope read 2>/dev/null | jq -r .token >jwt.txt
    )
done

rps() { awk '/^Requests\/sec:/ { printf "%.0f", $2 }'; }

# run SIDE: one run; prints "SIDE INTROSPECT HEALTHZ".
run() {
    local dir=$work/$1
    (cd "$dir" && exec taskset -c 0 ./introspectd serve 2>>server.log) &
    server_pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do
        kill -0 "$server_pid" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
        sleep 0.1
    done
    AUTHORIZATION="Basic $(jq -r '"\(.client_id):\(.client_secret)"' "$dir/client.json" | tr -d '\n' | base64 -w0)"
    export AUTHORIZATION TOKENS=$dir/jwt.txt
    local url=http://127.0.0.1:$port
    local jwt healthz
    local script=introspect.lua path=introspect
    if [[ $case_name == token ]]; then
        script=post.lua path=token
        export BODY=grant_type=client_credentials
    fi
    taskset -c 1 wrk -t1 -c32 -d2s -s "$repo/scripts/$script" "$url/$path" >/dev/null
    jwt=$(taskset -c 1 wrk -t1 -c32 -d5s -s "$repo/scripts/$script" "$url/$path" | rps)
    healthz=$(taskset -c 1 wrk -t1 -c32 -d3s "$url/healthz" | rps)
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    echo "$1 $jwt $healthz"
}

results=()
for pair in $(seq "$pairs"); do
    for side in A B; do
        line=$(run "$side")
        echo "pair $pair: $line" >&2
        results+=("$line")
    done
done

printf '%s\n' "${results[@]}" | awk '
    function median(list, n,   i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
            if (list[j] < list[i]) { t = list[i]; list[i] = list[j]; list[j] = t }
        return n % 2 ? list[(n + 1) / 2] : (list[n / 2] + list[n / 2 + 1]) / 2
    }
    $1 == "A" { a[++na] = $2; last = $2 }
    $1 == "B" { b[++nb] = $2; r[++nr] = $2 / last }
    END {
        printf "median requests/s: A %.0f, B %.0f\n", median(a, na), median(b, nb)
        min = r[1]; max = r[1]
        for (i = 1; i <= nr; i++) { if (r[i] < min) min = r[i]; if (r[i] > max) max = r[i] }
        printf "B/A per pair: median %.2f (%.2f-%.2f), %d pairs\n", median(r, nr), min, max, nr
    }'
