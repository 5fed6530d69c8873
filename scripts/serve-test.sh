#!/usr/bin/env bash
# `m2mrsp serve` and `m2mrsp call` for real (part of `make test`; `make demo` runs it too): a test PKI,
# an SM-DP inventory, one `serve` process hosting the SM-SR (with a built-in emulated fleet) and the
# SM-DP on loopback over mutual TLS; an Operator's calls with `m2mrsp call` — an asynchronous
# ES2.DownloadProfile answered on its callback endpoint, ES4.GetEIS, a refusal for an M2M SP without
# PLMA, a ES4.SetFallBackAttribute — then SIGTERM: the process stops after answering, saves its
# fleet, and a second process on the same data finds everything where it was.
set -euo pipefail

bin=${M2MRSP_BIN:-.build/debug/m2mrsp}
work=$(mktemp -d)
serve_pid=""
cleanup() {
  [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n== serve-test: %s\n' "$*"; }
fail() { echo "serve-test: FAILED: $*" >&2; [[ -f "$work/serve.log" ]] && tail -20 "$work/serve.log" >&2; exit 1; }

source scripts/lib/common.sh
read -r smsr_port smdp_port mno_port metrics_port < <(free_ports 4)

say "a test PKI (P-256), an SM-DP inventory of 3 ICCIDs"
$bin pki init "$work/pki" --curve p256 >/dev/null
inventory "$bin" "$work/data" DEMO-TYPE 894450300000000 3 --keys

cat > "$work/serve.json" <<EOF
{
  "pki": "$work/pki",
  "data": "$work/data",
  "plugins": "plugins",
  "policies": "policies",
  "smsr": { "port": $smsr_port, "cards": 3, "fleetSeed": "serve-test" },
  "smdp": { "port": $smdp_port, "smsr": "https://127.0.0.1:$smsr_port" },
  "endpoints": { "1.3.6.1.4.1.99999.4.1": "https://127.0.0.1:$mno_port/callbacks" },
  "metrics": "127.0.0.1:$metrics_port"
}
EOF

start() {
  : >"$work/serve.log"
  $bin serve --config "$work/serve.json" >>"$work/serve.log" 2>&1 &
  serve_pid=$!
  wait_serving "$work/serve.log" "$serve_pid" || fail "serve did not start"
}

say "m2mrsp serve: SM-SR on :$smsr_port (3 emulated cards), SM-DP on :$smdp_port, mutual TLS"
start
grep -E "fleet|serving" "$work/serve.log"
eid=$($bin emulate --cards 3 --seed serve-test --curve p256 --pki "$work/pki" --list --limit 1 2>/dev/null | grep -oE '89049032[0-9]{24}' | head -1)
[[ -n "$eid" ]] || fail "no EID"
call() { $bin call --pki "$work/pki" "$@"; }

say "ES2.DownloadProfile (asynchronous: HTTP 202, then the callback on the Operator's endpoint)"
call ES2.DownloadProfile --to "https://127.0.0.1:$smdp_port/ES2" --as mno --param eid="$eid" --param smsrID=1.3.6.1.4.1.99999.2.1 \
  --param profileType=DEMO-TYPE --param enableProfile=true --reply-to "https://127.0.0.1:$mno_port/callbacks" >"$work/download.json"
grep -q '"status" : "EXECUTED_SUCCESS"' "$work/download.json" || fail "download: $(cat "$work/download.json")"
grep -q '"relatesTo"' "$work/download.json" || fail "the callback has no RelatesTo"
iccid=$(grep -oE '"iccid" : "[0-9F]+"' "$work/download.json" | head -1 | grep -oE '[0-9F]{19,20}')
echo "downloaded and enabled: ICCID $iccid on $eid"

say "ES4.GetEIS by the owner (synchronous)"
call ES4.GetEIS --to "https://127.0.0.1:$smsr_port/ES4" --as mno --param eid="$eid" >"$work/eis.json"
grep -q "\"iccid\" : \"$iccid\"" "$work/eis.json" || fail "GetEIS does not show $iccid"
grep -q '"state" : "Enabled"' "$work/eis.json" || fail "the Profile is not Enabled in the EIS"
echo "the EIS shows $iccid Enabled"

say "ES4.GetEIS by an M2M SP without PLMA: refused with its codes (exit 2)"
if call ES4.GetEIS --to "https://127.0.0.1:$smsr_port/ES4" --as m2msp --param eid="$eid" >"$work/refused.json"; then fail "an M2M SP without PLMA read the EIS"; fi
grep -q '"subject" : "8.1.1"' "$work/refused.json" && grep -q '"reason" : "1.2"' "$work/refused.json" || fail "no 8.1.1/1.2: $(cat "$work/refused.json")"
echo "FAILED 8.1.1/1.2, as it should"

say "Prometheus metrics (plain HTTP on loopback)"
python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
  "http://127.0.0.1:$metrics_port/metrics" >"$work/metrics.txt" || fail "no /metrics"
grep -E 'm2mrsp_soap_requests_total\{.*function="ES2.DownloadProfile".*\} 1' "$work/metrics.txt" >/dev/null || fail "no DownloadProfile count: $(head -20 "$work/metrics.txt")"
grep -E '^m2mrsp_soap_requests_total' "$work/metrics.txt" | head -6

say "SIGTERM: answers what it accepted, saves the fleet, stops"
kill -TERM "$serve_pid"
wait "$serve_pid" || true
serve_pid=""
grep -q "fleet saved" "$work/serve.log" && grep -q "stopped" "$work/serve.log" || fail "no graceful stop"
tail -3 "$work/serve.log"

say "a new process on the same data: the card and the EIS as they were"
start
call ES4.GetEIS --to "https://127.0.0.1:$smsr_port/ES4" --as mno --param eid="$eid" >"$work/eis2.json"
grep -q '"state" : "Enabled"' "$work/eis2.json" || fail "the EIS lost its Profile across the restart"
call ES4.DisableProfile --to "https://127.0.0.1:$smsr_port/ES4" --as mno --param eid="$eid" --param iccid="$iccid" >"$work/disable.json" || true
grep -q '"status"' "$work/disable.json" || fail "no answer to DisableProfile"
grep -oE '"status" : "[A-Z_]+"' "$work/disable.json" | head -1
kill -TERM "$serve_pid"
wait "$serve_pid" || true
serve_pid=""
echo "serve-test: passed"
