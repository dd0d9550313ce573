#!/usr/bin/env bash
# Load test of the release build: GET /healthz as this machine's ceiling, then POST
# /introspect for each kind of token, on SQLite and on Postgres. Prints a Markdown table
# of requests/s, p50 and p99 (wrk --latency) with ratios to /healthz of the same run, and
# the server's resident memory. Then, per store: what metrics cost (/healthz and a
# repeated JWT on a server with metrics off and one with metrics on, running side by
# side, measured in alternation), and a cold start: a fresh server whose first request
# is measured, with credentials remembered for 4 s so the run crosses several expiries
# (p99 must stay under 10 ms). Then tokens issued at POST /token: client credentials,
# token exchange (RFC 8693) by a resource server trading a user's token it received for
# one meant for the next service, complete sign-ins of signed-in browsers (GET /authorize
# answered with a code at once, then the code exchange; as many users as connections, and
# one user), refresh-token rotation chains, and password logins (argon2, per core).
#
#   scripts/loadtest.sh
#
# Needs wrk, curl, jq and, for the Postgres run, psql reaching postgres@127.0.0.1:5432
# with trust auth (skipped with a message when it does not answer). The server is stopped,
# the database dropped and the temporary directory removed on exit, also on Ctrl-C.
#
# Environment (all optional):
#   LOADTEST_BIN        use this introspectd binary instead of building one
#   LOADTEST_DURATION   seconds measured per case (10)
#   LOADTEST_WARMUP     seconds of warm-up before each case (3)
#   LOADTEST_CONNECTIONS, LOADTEST_THREADS   wrk -c and -t (64, 2)
#   LOADTEST_PORT       port the server listens on (18787); metrics on the next one,
#                       a server with metrics off on the one after
#   LOADTEST_PG         admin URL of Postgres (postgres://postgres@127.0.0.1:5432/postgres)
#   LOADTEST_STORES     which stores to run, space-separated ("sqlite postgres")
#   LOADTEST_ISSUANCE   0 leaves out the cases that issue tokens (1), for a binary that
#                       has no token exchange

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
duration=${LOADTEST_DURATION:-10}
warmup=${LOADTEST_WARMUP:-3}
connections=${LOADTEST_CONNECTIONS:-64}
threads=${LOADTEST_THREADS:-2}
port=${LOADTEST_PORT:-18787}
pg_admin=${LOADTEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}
stores=${LOADTEST_STORES:-sqlite postgres}
issuance=${LOADTEST_ISSUANCE:-1}
rotating_tokens=10000
base=http://127.0.0.1:$port

for tool in wrk curl jq; do
    command -v "$tool" >/dev/null || { echo "loadtest: $tool is required" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/introspectd-loadtest.XXXXXX")
server_pid=""
quiet_pid=""
wrk_pid=""
pg_database=""

stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}

cleanup() {
    trap - EXIT INT TERM
    [[ -n $wrk_pid ]] && kill "$wrk_pid" 2>/dev/null
    [[ -n $quiet_pid ]] && kill "$quiet_pid" 2>/dev/null
    stop_server
    if [[ -n $pg_database ]]; then
        psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS \"$pg_database\" WITH (FORCE)" \
            >/dev/null 2>&1 || echo "loadtest: could not drop database $pg_database" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { echo "loadtest: $*" >&2; }

# The binary is copied so that a build elsewhere cannot replace it mid-run.
if [[ -n ${LOADTEST_BIN:-} ]]; then
    cp "$LOADTEST_BIN" "$work/introspectd"
else
    log "building the release binary"
    (cd "$repo" && cargo build --release --quiet)
    cp "${CARGO_TARGET_DIR:-$repo/target}/release/introspectd" "$work/introspectd"
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

if curl -s -o /dev/null "$base/healthz"; then
    log "something already listens on port $port; set LOADTEST_PORT"
    exit 1
fi

# Same configuration for the CLI and the server; run from $work so no config/ file of the
# caller's directory is read.
export INTROSPECTD_LISTEN=127.0.0.1:$port
export INTROSPECTD_METRICS__LISTEN=127.0.0.1:$((port + 1))
export INTROSPECTD_ISSUER=$base
export INTROSPECTD_RATE_LIMIT__ENABLED=false
export INTROSPECTD_LOG__LEVEL=warn
export INTROSPECTD_HTTP__SHUTDOWN_GRACE_SECONDS=1
# One key-encryption key for the run, which Postgres requires.
LOADTEST_KEK=$(head -c 32 /dev/urandom | base64)
export LOADTEST_KEK INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_ENV=LOADTEST_KEK
unset RUST_LOG

cli() { (cd "$work" && ./introspectd "$@"); }

memory_kb() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }

start_server() {
    (cd "$work" && exec ./introspectd serve 2>>"$work/server.log") &
    server_pid=$!
    for _ in $(seq 100); do
        curl -sf -o /dev/null "$base/healthz" && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    log "the server did not start; its log:"
    cat "$work/server.log" >&2
    exit 1
}

# Runs wrk in the background so that a signal reaches the traps at once.
run_wrk() {
    wrk "$@" >"$work/wrk.out" 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid"
    wrk_pid=""
}

# "512.00us" / "1.20ms" / "2.00s" in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
        else { printf "?" }
    }'
}

results=()
healthz_rps=""

# measure STORE CASE PATH [TOKENS_FILE [BODY]]: warm-up (none when $cold is set), then
# the measured run. With TOKENS_FILE, POST /introspect of each token in turn; with BODY
# instead (TOKENS_FILE empty), POST that form body to PATH.
measure() {
    local store=$1 case=$2 path=$3 tokens=${4:-} body=${5:-}
    # Password logins take about a second each under this load: wrk's own 2 s timeout
    # would count the slowest as socket errors.
    local args=(-t "$threads" -c "$connections" --latency --timeout 10s)
    if [[ -n ${lua:-} ]]; then
        args+=(-s "$repo/scripts/$lua")
    elif [[ -n $tokens ]]; then
        args+=(-s "$repo/scripts/introspect.lua")
        export TOKENS=$tokens
    elif [[ -n $body ]]; then
        args+=(-s "$repo/scripts/post.lua")
        export BODY=$body
    fi
    log "$store: $case"
    [[ -n ${cold:-} ]] || run_wrk "${args[@]}" -d "${warmup}s" "$base$path"
    run_wrk "${args[@]}" -d "${duration}s" "$base$path"
    local out="$work/wrk.out"
    # allow_errors=1: a case whose refusals are counted (`last_errors`) rather than fatal.
    last_errors=$(awk '/Non-2xx/ { print $NF }' "$out")
    last_errors=${last_errors:-0}
    if [[ -n ${allow_errors:-} ]] && ! grep -q "Socket errors" "$out"; then
        :
    elif grep -q -e "Non-2xx" -e "Socket errors" "$out"; then
        log "$store: $case: errors during the run:"
        cat "$out" >&2
        exit 1
    fi
    local rps p50 p99 ratio
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    if [[ -z $healthz_rps ]]; then
        healthz_rps=$rps
        ratio="100%"
    else
        ratio=$(awk -v a="$rps" -v b="$healthz_rps" 'BEGIN { printf "%.0f%%", 100 * a / b }')
    fi
    results+=("| $store | $case | $rps | $ratio | $p50 | $p99 |")
    last_rps=$rps last_p99=$p99
}

# expect ANSWER TOKEN: the token introspects to {"active": ANSWER}.
expect() {
    local got
    got=$(curl -s -H "Authorization: $AUTHORIZATION" --data-urlencode "token=$2" \
        "$base/introspect" | jq -r .active)
    if [[ $got != "$1" ]]; then
        log "expected active=$1, got $got"
        exit 1
    fi
}

# issue CLIENT_ID [FLAG...]: a token minted with the CLI.
issue() {
    cli token issue --client-id "$1" --subject alice --scope read "${@:2}" | jq -r .token
}

memory=()

run_store() {
    local store=$1 url=$2
    export INTROSPECTD_DATABASE_URL=$url
    healthz_rps=""
    local client client_id secret
    client=$(cli client create --name loadtest --grant-type client_credentials)
    client_id=$(jq -r .client_id <<<"$client")
    secret=$(jq -r .client_secret <<<"$client")
    export AUTHORIZATION="Basic $(printf '%s:%s' "$client_id" "$secret" | base64 -w0)"
    issue "$client_id" >"$work/jwt.txt"
    issue "$client_id" --format opaque >"$work/opaque.txt"
    issue "$client_id" --type refresh >"$work/refresh.txt"
    # 256 random bits, base64url: shaped like an opaque token, known to nobody.
    head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' >"$work/unknown.txt"

    start_server
    sleep 1
    local idle_kb
    idle_kb=$(memory_kb "$server_pid" VmRSS)

    # Minting 10,000 JWTs through the CLI would start 10,000 processes; the token
    # endpoint mints the same EdDSA access tokens over one keep-alive connection.
    log "$store: minting $rotating_tokens JWTs"
    for _ in $(seq "$rotating_tokens"); do echo "url = \"$base/token\""; done >"$work/urls.cfg"
    curl -s -u "$client_id:$secret" -d grant_type=client_credentials -w '\n' -K "$work/urls.cfg" |
        jq -r .access_token >"$work/rotating.txt"
    [[ $(grep -c . "$work/rotating.txt") == "$rotating_tokens" ]] || {
        log "could not mint $rotating_tokens tokens"
        exit 1
    }

    expect true "$(<"$work/jwt.txt")"
    expect true "$(head -1 "$work/rotating.txt")"
    expect true "$(<"$work/opaque.txt")"
    expect true "$(<"$work/refresh.txt")"
    expect false "$(<"$work/unknown.txt")"

    measure "$store" "GET /healthz (ceiling)" /healthz
    measure "$store" "JWT, the same one again and again" /introspect "$work/jwt.txt"
    measure "$store" "JWT, $rotating_tokens in rotation" /introspect "$work/rotating.txt"
    measure "$store" "opaque access token" /introspect "$work/opaque.txt"
    measure "$store" "refresh token" /introspect "$work/refresh.txt"
    measure "$store" "unknown token" /introspect "$work/unknown.txt"

    local after_kb peak_kb
    after_kb=$(memory_kb "$server_pid" VmRSS)
    peak_kb=$(memory_kb "$server_pid" VmHWM)
    memory+=("| $store | $((idle_kb / 1024)) | $((peak_kb / 1024)) | $((after_kb / 1024)) |")
    stop_server

    # The same tokens through caches of 16 entries: each request verifies a signature and
    # reads the revocation from the store, as for a token the server has not seen yet.
    export INTROSPECTD_CACHE__CAPACITY=16
    start_server
    expect true "$(head -1 "$work/rotating.txt")"
    measure "$store" "JWT, $rotating_tokens in rotation, each one new (caches of 16)" \
        /introspect "$work/rotating.txt"
    stop_server
    unset INTROSPECTD_CACHE__CAPACITY

    if [[ $issuance == 1 ]]; then
        issuance_cases "$store" "$client_id"
    fi

    # What metrics cost: the same two cases on a server with metrics on and one with
    # metrics off, side by side, in alternating runs of half the duration, three rounds,
    # so that the machine's drift falls on both alike.
    start_server
    local quiet_base=http://127.0.0.1:$((port + 2))
    (cd "$work" && INTROSPECTD_METRICS__ENABLED=false INTROSPECTD_LISTEN=${quiet_base#http://} \
        exec ./introspectd serve 2>>"$work/server.log") &
    quiet_pid=$!
    until curl -sf -o /dev/null "$quiet_base/healthz"; do
        kill -0 "$quiet_pid" 2>/dev/null || { log "the metrics-off server did not start"; exit 1; }
        sleep 0.1
    done
    local jwt=(-s "$repo/scripts/introspect.lua") half=$(((duration + 1) / 2))
    export TOKENS=$work/jwt.txt
    local on_healthz=0 off_healthz=0 on_jwt=0 off_jwt=0 round
    log "$store: metrics on and off, warm-up"
    for b in "$base" "$quiet_base"; do
        run_wrk -t "$threads" -c "$connections" -d "${warmup}s" "$b/healthz"
        run_wrk -t "$threads" -c "$connections" -d "${warmup}s" "${jwt[@]}" "$b/introspect"
    done
    for round in 1 2 3; do
        log "$store: metrics on and off, round $round of 3"
        on_healthz=$((on_healthz + $(rps -d "${half}s" "$base/healthz")))
        off_healthz=$((off_healthz + $(rps -d "${half}s" "$quiet_base/healthz")))
        off_jwt=$((off_jwt + $(rps -d "${half}s" "${jwt[@]}" "$quiet_base/introspect")))
        on_jwt=$((on_jwt + $(rps -d "${half}s" "${jwt[@]}" "$base/introspect")))
    done
    kill "$quiet_pid" && wait "$quiet_pid" 2>/dev/null || true
    quiet_pid=""
    stop_server
    metrics_cost+=("| $store | GET /healthz | $((off_healthz / 3)) | $((on_healthz / 3)) | $(cost "$on_healthz" "$off_healthz") |")
    metrics_cost+=("| $store | JWT, the same one again and again | $((off_jwt / 3)) | $((on_jwt / 3)) | $(cost "$on_jwt" "$off_jwt") |")

    # Cold start across credential expiries: a fresh server, its first request measured,
    # verified credentials remembered for 4 s.
    export INTROSPECTD_CACHE__CREDENTIAL_TTL_SECONDS=4
    start_server
    cold=1 measure "$store" "JWT, cold start, credentials remembered 4 s (${duration} s run)" \
        /introspect "$work/jwt.txt"
    local verdict="under 10 ms"
    awk -v p="$last_p99" 'BEGIN { exit !(p < 10) }' || verdict="OVER 10 ms"
    local max
    max=$(to_ms "$(awk '$1 == "Latency" { print $4 }' "$work/wrk.out")")
    cold_start+=("| $store | $last_rps | $last_p99 | $max | $verdict |")
    stop_server
    unset INTROSPECTD_CACHE__CREDENTIAL_TTL_SECONDS
}

# issuance_cases STORE CLIENT_ID: tokens issued at POST /token. Client credentials by the
# load-test client; token exchange by an MCP server that receives tokens for
# https://api.example and may exchange them for https://next.example/mcp, each request
# trading the same user's token.
issuance_cases() {
    local store=$1 client_id=$2 mcp mcp_id mcp_secret subject caller=$AUTHORIZATION
    mcp=$(cli client create --name mcp --audience https://api.example \
        --grant-type token-exchange --exchange-target https://next.example/mcp)
    mcp_id=$(jq -r .client_id <<<"$mcp")
    mcp_secret=$(jq -r .client_secret <<<"$mcp")
    subject=$(issue "$client_id" --audience https://api.example)
    local exchange
    exchange="grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
    exchange+="&subject_token=$subject"
    exchange+="&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
    exchange+="&resource=https%3A%2F%2Fnext.example%2Fmcp"
    start_server
    measure "$store" "client credentials (POST /token)" /token "" "grant_type=client_credentials"
    export AUTHORIZATION="Basic $(printf '%s:%s' "$mcp_id" "$mcp_secret" | base64 -w0)"
    local answer
    answer=$(curl -s -H "Authorization: $AUTHORIZATION" -d "$exchange" "$base/token" |
        jq -r .issued_token_type)
    if [[ $answer != urn:ietf:params:oauth:token-type:access_token ]]; then
        log "token exchange did not issue a token: $answer"
        exit 1
    fi
    measure "$store" "token exchange (POST /token, RFC 8693)" /token "" "$exchange"
    export AUTHORIZATION=$caller
    stop_server
    signin_cases "$store"
}

# The authorization request of the sign-in cases: PKCE S256 with a fixed verifier.
verifier=loadtest-verifier-0123456789-abcdefghijklmnopqrstuvwxyz
challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
callback=http%3A%2F%2F127.0.0.1%3A7777%2Fcallback

# hidden NAME: the value of the hidden form field NAME of the page on stdin.
hidden() { grep -o "name=\"$1\" value=\"[^\"]*\"" | head -1 | sed -e 's/.*value="//' -e 's/"$//'; }

# cookies JAR: the jar's cookies as a Cookie header value.
cookies() { awk 'NF >= 7 && $6 ~ /^introspectd_/ { printf "%s%s=%s", sep, $6, $7; sep = "; " }' "$1"; }

# session USERNAME PASSWORD: signs USERNAME in through the pages in a new browser and
# consents once; prints that browser's Cookie header value.
session() {
    local jar=$work/jar.$1 page
    rm -f "$jar"
    page=$(curl -s -c "$jar" -b "$jar" "$base/authorize?$signin_query")
    curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "request=$(hidden request <<<"$page")" \
        --data-urlencode "csrf_token=$(hidden csrf_token <<<"$page")" \
        --data-urlencode "username=$1" --data-urlencode "password=$2" "$base/login"
    page=$(curl -s -c "$jar" -b "$jar" "$base/authorize?$signin_query")
    curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "request=$(hidden request <<<"$page")" \
        --data-urlencode "csrf_token=$(hidden csrf_token <<<"$page")" \
        --data-urlencode "decision=allow" "$base/consent"
    cookies "$jar"
}

# signin_cases STORE: an application (confidential, so that consent is remembered) and
# its users. Complete sign-ins of signed-in browsers (GET /authorize answered at once
# with a code, then the code exchange), for as many users as connections and for one
# user; refresh-token rotation chains; password logins (argon2, reported per core).
signin_cases() {
    local store=$1 app app_id app_secret caller=$AUTHORIZATION password=loadtest-password-1
    app=$(cli client create --name app --redirect-uri http://127.0.0.1:7777/callback \
        --resource https://api.example --scope read \
        --grant-type authorization_code --grant-type refresh_token)
    app_id=$(jq -r .client_id <<<"$app")
    app_secret=$(jq -r .client_secret <<<"$app")
    signin_query="response_type=code&client_id=$app_id&redirect_uri=$callback&scope=read"
    signin_query+="&code_challenge=$challenge&code_challenge_method=S256&state=loadtest"
    signin_query+="&resource=https%3A%2F%2Fapi.example"
    log "$store: $connections users and their refresh tokens"
    for i in $(seq "$connections"); do
        cli user create --username "user$i" --password-stdin <<<"$password" >/dev/null
    done
    local chains=$((connections + threads))
    for _ in $(seq $((chains * 2))); do
        issue "$app_id" --type refresh --audience https://api.example
    done >"$work/refresh-all.txt"
    start_server
    log "$store: signing $connections users in"
    for i in $(seq "$connections"); do session "user$i" "$password"; echo; done >"$work/cookies.txt"
    head -1 "$work/cookies.txt" >"$work/cookie.txt"
    local location
    location=$(curl -s -o /dev/null -w '%{redirect_url}' -H "Cookie: $(<"$work/cookie.txt")" \
        "$base/authorize?$signin_query")
    if [[ $location != *"code="* ]]; then
        log "a signed-in browser got no code from /authorize: $location"
        exit 1
    fi
    export AUTHORIZATION="Basic $(printf '%s:%s' "$app_id" "$app_secret" | base64 -w0)"
    export QUERY=$signin_query THREADS=$threads
    export TOKEN_BODY="grant_type=authorization_code&redirect_uri=$callback&code_verifier=$verifier"
    # Refused code exchanges are counted, not fatal: see BENCHMARKS.md.
    COOKIES=$work/cookies.txt allow_errors=1 lua=signin.lua measure "$store" \
        "sign-ins, $connections users (GET /authorize + POST /token: 2 requests each)" /authorize
    signins+=("| $store | $connections users | $((last_rps / 2)) | $last_p99 | $last_errors |")
    COOKIES=$work/cookie.txt allow_errors=1 lua=signin.lua measure "$store" \
        "sign-ins, one user (GET /authorize + POST /token: 2 requests each)" /authorize
    signins+=("| $store | one user | $((last_rps / 2)) | $last_p99 | $last_errors |")

    # Each run rotates its own chains: the warm-up's would be spent.
    head -n "$chains" "$work/refresh-all.txt" >"$work/refresh-warm.txt"
    tail -n "$chains" "$work/refresh-all.txt" >"$work/refresh-run.txt"
    REFRESH_TOKENS=$work/refresh-warm.txt run_wrk -t "$threads" -c "$connections" \
        -d "${warmup}s" -s "$repo/scripts/refresh.lua" "$base/token"
    REFRESH_TOKENS=$work/refresh-run.txt cold=1 lua=refresh.lua measure "$store" \
        "refresh token rotation, $connections chains (POST /token)" /token
    signins+=("| $store | refresh rotations | $last_rps | $last_p99 | $last_errors |")

    # The login form of a new browser, posted again and again: each one an argon2 check
    # and a new session.
    local jar=$work/jar.login page
    rm -f "$jar"
    page=$(curl -s -c "$jar" -b "$jar" "$base/authorize?$signin_query")
    local login_body
    login_body="request=$(jq -rn --arg v "$(hidden request <<<"$page")" '$v|@uri')"
    login_body+="&csrf_token=$(jq -rn --arg v "$(hidden csrf_token <<<"$page")" '$v|@uri')"
    login_body+="&username=user1&password=$password"
    COOKIE=$(cookies "$jar") measure "$store" "password logins (POST /login, argon2)" /login "" \
        "$login_body"
    signins+=("| $store | password logins, per core | $((last_rps / $(nproc))) | $last_p99 | $last_errors |")
    export AUTHORIZATION=$caller
    stop_server
}

# rps WRK_ARGS...: requests/s of one wrk run, which must have no errors.
rps() {
    run_wrk -t "$threads" -c "$connections" "$@"
    if grep -q -e "Non-2xx" -e "Socket errors" "$work/wrk.out"; then
        log "errors during the run:"
        cat "$work/wrk.out" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$work/wrk.out"
}

# cost ON OFF: how much slower ON is than OFF, in percent.
cost() {
    awk -v on="$1" -v off="$2" 'BEGIN { printf "%.1f%%", 100 * (off - on) / off }'
}

metrics_cost=()
cold_start=()
signins=()

for store in $stores; do
    case $store in
    sqlite)
        run_store sqlite "sqlite://$work/loadtest.db"
        ;;
    postgres)
        if ! command -v psql >/dev/null || ! psql -q "$pg_admin" -c "SELECT 1" >/dev/null 2>&1; then
            log "Postgres at $pg_admin does not answer; skipping the Postgres run"
            continue
        fi
        pg_database="introspectd_loadtest_$$"
        psql -q "$pg_admin" -c "CREATE DATABASE \"$pg_database\"" >/dev/null
        run_store postgres "${pg_admin%/*}/$pg_database"
        psql -q "$pg_admin" -c "DROP DATABASE \"$pg_database\" WITH (FORCE)" >/dev/null
        pg_database=""
        ;;
    *)
        log "unknown store $store"
        exit 1
        ;;
    esac
done

echo
echo "wrk -t$threads -c$connections, keep-alive, ${warmup} s warm-up then ${duration} s per case; $(nproc) cores;"
echo "load average before the run: $load_before."
echo
echo "| store | case | requests/s | of /healthz | p50 ms | p99 ms |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
printf '%s\n' "${results[@]}"
echo
if [[ ${#signins[@]} -gt 0 ]]; then
    echo "Sign-ins, refreshes and logins as such (sign-ins: half the requests/s above; p99 of"
    echo "either request):"
    echo
    echo "| store | case | per second | p99 ms | refused |"
    echo "| --- | --- | ---: | ---: | ---: |"
    printf '%s\n' "${signins[@]}"
    echo
fi
echo "| store | RSS idle after start-up, MB | peak RSS (VmHWM), MB | RSS after the run, MB |"
echo "| --- | ---: | ---: | ---: |"
printf '%s\n' "${memory[@]}"
echo
echo "What metrics cost (mean requests/s of three alternating runs of $(((duration + 1) / 2)) s per server):"
echo
echo "| store | case | metrics off | metrics on | cost |"
echo "| --- | --- | ---: | ---: | ---: |"
printf '%s\n' "${metrics_cost[@]}"
echo
echo "Cold start across credential expiries (every ${duration} s run starts with the server's first request):"
echo
echo "| store | requests/s | p99 ms | max ms | p99 |"
echo "| --- | ---: | ---: | ---: | --- |"
printf '%s\n' "${cold_start[@]}"
