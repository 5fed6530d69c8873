#!/usr/bin/env bash
# SM-SR change with a real process killed after the commit point (issue #9; part of `make test`):
# two `m2mrsp serve` processes — SM-SR1 with the SM-DP and the emulated card (also served over
# SCP80/UDP), SM-SR2 reaching the card over UDP and SM-SR1 over ES7 (asynchronous, mutual TLS). A
# Profile is downloaded, ES4.PrepareSMSRChange goes to SM-SR2, ES4.SMSRChange to SM-SR1; SM-SR2
# kills itself (SIGKILL) right after the commit point (the card holds both key sets, SM-SR2 the
# EIS). The Operator learns the outcome is not known yet; SM-SR2 restarted finishes the change
# (FinaliseISDRhandover), SM-SR1's retry loop asks again and lets go, and the Operator's retry of
# SMSRChange gets EXECUTED_SUCCESS. Then exactly one SM-SR manages the card: SM-SR2's audit reaches
# it over SCP80 with the new keys; SM-SR1 no longer knows it.
set -euo pipefail

bin=${M2MRSP_BIN:-.build/debug/m2mrsp}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n== change-crash-test: %s\n' "$*"; }
fail() {
  echo "change-crash-test: FAILED: $*" >&2
  for log in "$work"/serve*.log "$work"/call.err; do echo "--- $log" >&2; tail -15 "$log" >&2; done
  exit 1
}
SMSR=1.3.6.1.4.1.99999.2.1 SMSR2=1.3.6.1.4.1.99999.2.2 SMDP=1.3.6.1.4.1.99999.3.1

source scripts/lib/common.sh
read -r port1 port2 smdp_port udp_port < <(free_ports 4)

say "a test PKI (two SM-SRs), an SM-DP inventory; SM-SR1 + SM-DP :$port1/:$smdp_port with 1 card, SM-SR2 :$port2"
$bin pki init "$work/pki" --curve p256 >/dev/null
inventory "$bin" "$work/data1" DEMO-TYPE 894450600000000 2 --keys >/dev/null
cat > "$work/serve1.json" <<EOF
{ "pki": "$work/pki", "data": "$work/data1", "plugins": "plugins", "policies": "policies", "outboxInterval": 0.5,
  "smsr": { "port": $port1, "cards": 1, "fleetSeed": "change-crash", "serveSCP80": "127.0.0.1:$udp_port",
            "peers": { "smsr2": "https://127.0.0.1:$port2" }, "es7Timeout": 20 },
  "smdp": { "port": $smdp_port, "smsr": "https://127.0.0.1:$port1", "otherSMSRs": { "smsr2": "https://127.0.0.1:$port2" } } }
EOF
serve2() {  # $1: extra SM-SR settings, $2: log file
  cat > "$work/serve2.json" <<EOF
{ "pki": "$work/pki", "data": "$work/data2", "plugins": "plugins", "policies": "policies", "outboxInterval": 0.5,
  "smsr": { "port": $port2, "identity": "smsr2", "scp80": "127.0.0.1:$udp_port", "peers": { "smsr": "https://127.0.0.1:$port1" },
            "es7Timeout": 30 $1 },
  "endpoints": { "$SMDP": "https://127.0.0.1:$smdp_port/ES3" } }
EOF
  $bin serve --config "$work/serve2.json" >"$2" 2>&1 &
  pid2=$!
  pids+=($pid2)
  wait_serving "$2" "$pid2" "SM-SR serving" || fail "SM-SR2 did not start"
}
$bin serve --config "$work/serve1.json" >"$work/serve1.log" 2>&1 &
pids+=($!)
wait_serving "$work/serve1.log" "${pids[0]}" || fail "SM-SR1 did not start"
serve2 ', "crashAt": "changeAfterCommit"' "$work/serve2.log"
grep -q "TEST ONLY: this SM-SR kills itself at changeAfterCommit" "$work/serve2.log" || fail "SM-SR2 is not set to crash"
eid=$($bin emulate --cards 1 --seed change-crash --curve p256 --pki "$work/pki" --list --limit 1 2>/dev/null | grep -oE '89049032[0-9]{24}' | head -1)
[[ -n "$eid" ]] || fail "no EID"
call() { $bin call --pki "$work/pki" "$@" 2>>"$work/call.err" || true; }
status() { grep -oE '"status" : "[A-Z_]+"' "$1" | head -1; }

say "ES2.DownloadProfile through SM-SR1 (the Operator then owns a Profile on the card)"
call ES2.DownloadProfile --to "https://127.0.0.1:$smdp_port/ES2" --as mno --param eid="$eid" --param smsrID=$SMSR \
  --param profileType=DEMO-TYPE --param enableProfile=true >"$work/download.json"
grep -q '"status" : "EXECUTED_SUCCESS"' "$work/download.json" || fail "download: $(cat "$work/download.json")"

say "ES4.PrepareSMSRChange at SM-SR2, ES4.SMSRChange at SM-SR1: SM-SR2 dies right after the commit point"
call ES4.PrepareSMSRChange --to "https://127.0.0.1:$port2/ES4" --as mno --param eid="$eid" --param currentSMSRID=$SMSR >"$work/prepare.json"
grep -q '"status" : "EXECUTED_SUCCESS"' "$work/prepare.json" || fail "prepare: $(cat "$work/prepare.json")"
call ES4.SMSRChange --to "https://127.0.0.1:$port1/ES4" --as mno --param functionCallIdentifier=change-1 --param eid="$eid" \
  --param targetSMSRID=$SMSR2 --param validityPeriod=600 >"$work/change.json"
grep -q '"subject" : "1.2"' "$work/change.json" || fail "expected 'not known yet', got: $(cat "$work/change.json")"
# (SMSRChange answers once SM-SR1's wait for the callback ends; SM-SR2 died long before.)
for _ in $(seq 1 60); do kill -0 "$pid2" 2>/dev/null || break; sleep 1; done
kill -0 "$pid2" 2>/dev/null && fail "SM-SR2 is still running"
echo "SM-SR2 killed; SM-SR1 answered: $(status "$work/change.json") (outcome not known yet), the eUICC stays locked there"
call ES4.GetEIS --to "https://127.0.0.1:$port1/ES4" --as mno --param eid="$eid" >"$work/locked.json"
grep -q '"status" : "EXECUTED_SUCCESS"' "$work/locked.json" || fail "SM-SR1 lost the EIS before the change was settled"

say "SM-SR2 restarted: it finalises the change; SM-SR1 asks again (every 5 s) and lets go"
serve2 '' "$work/serve2-restarted.log"
for _ in $(seq 1 60); do
  call ES4.SMSRChange --to "https://127.0.0.1:$port1/ES4" --as mno --param functionCallIdentifier=change-1 --param eid="$eid" \
    --param targetSMSRID=$SMSR2 --param validityPeriod=600 >"$work/retry.json"
  grep -q '"status" : "EXECUTED_SUCCESS"' "$work/retry.json" && break
  sleep 1
done
grep -q '"status" : "EXECUTED_SUCCESS"' "$work/retry.json" || fail "the change did not settle: $(cat "$work/retry.json")"
grep -E "SM-SR change recovery" "$work/serve2-restarted.log" | sed 's/^[^ ]* //' || true
echo "the Operator's retry of SMSRChange: $(status "$work/retry.json")"

say "exactly one SM-SR manages the card"
call ES4.AuditEIS --to "https://127.0.0.1:$port2/ES4" --as mno --param eid="$eid" >"$work/audit2.json"
grep -q '"status" : "EXECUTED_SUCCESS"' "$work/audit2.json" || fail "SM-SR2 cannot audit the card: $(cat "$work/audit2.json")"
grep -q "\"smsrID\" : \"$SMSR2\"" "$work/audit2.json" || fail "the EIS does not name SM-SR2"
call ES4.GetEIS --to "https://127.0.0.1:$port1/ES4" --as mno --param eid="$eid" >"$work/old.json"
grep -q '"subject" : "8.1.1"' "$work/old.json" || fail "SM-SR1 still knows the eUICC: $(cat "$work/old.json")"
echo "SM-SR2's audit reaches the card with the new keys; SM-SR1: unknown eUICC"
echo "change-crash-test: passed"
