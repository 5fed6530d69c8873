#!/usr/bin/env bash
# A real SM-SR process killed in the middle of a Profile change, then a new one recovering
# (issue #6; docs/smsr.md, "Life-cycle operations and recovery"). Cards are served by another
# process (`m2mrsp emulate --serve-scp80`), so they live on while the SM-SR dies, as real cards do.
#
#   card 0: enable Profile 01, SIGKILL after the card executed it  → recovery commits "enabled"
#   card 1: enable Profile 01, SIGKILL before any ES5 command      → recovery commits "not done"
#   then: each retry of the killed call answers the recovered outcome, EIS and cards agree;
#   and the ES5 traffic of the SM-SR processes, captured (--capture), traces with no failed check
#   with each card's keys (`m2mrsp trace`, `emulate --keyring`).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${M2MRSP_BIN:-.build/debug/m2mrsp}
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "crash-test: FAILED: $*" >&2; exit 1; }
field() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

port=$(( 20000 + RANDOM % 20000 ))
"$bin" pki init "$work/pki" > /dev/null
"$bin" emulate --pki "$work/pki" --cards 2 --profiles 2 --quiet --serve-scp80 "127.0.0.1:$port" --serve-seconds 120 2> "$work/serve.log" &
server=$!
mno=$(field "$work/pki/pki.json" "d['mno']['id']")
common=(--db "$work/smsr.sqlite" --key-file "$work/storage.key" --pki "$work/pki")
"$bin" smsr init "${common[@]}" > /dev/null
for card in 0 1; do
  "$bin" emulate --pki "$work/pki" --cards 2 --profiles 2 --quiet --eis "$card" --mno "$mno" > "$work/eis$card.json" 2> /dev/null
  "$bin" smsr register "${common[@]}" --eis "$work/eis$card.json" > /dev/null
done
sleep 1  # the endpoint is up well before this

state() {  # state CARD → "ICCID:State ICCID:State … active=N"
  local eid; eid=$(field "$work/eis$1.json" "d['eumSignedInfo']['eid']")
  "$bin" smsr show "${common[@]}" --eid "$eid" > "$work/show.json"
  python3 -c "import json; d=json.load(open('$work/show.json')); print(' '.join(p['iccid'][-4:]+':'+p['state'] for p in d['profiles']), 'active=%d' % d['activeOperations'])"
}

for case in "0 afterES5 Enabled EXECUTED_SUCCESS" "1 beforeES5 Disabled FAILED"; do
  set -- $case
  card=$1 point=$2 expected=$3 outcome=$4
  eid=$(field "$work/eis$card.json" "d['eumSignedInfo']['eid']")
  iccid=$(field "$work/eis$card.json" "d['profiles'][1]['iccid']")
  scp80=(--scp80 "127.0.0.1:$port")
  rc=0
  # In a child shell: its own report of the SIGKILL goes to /dev/null with the rest.
  bash -c '"$0" "$@"; exit $?' "$bin" smsr profile enable "${common[@]}" "${scp80[@]}" --capture "$work/es5.jsonl" --eid "$eid" --iccid "$iccid" --crash-at "$point" > /dev/null 2>&1 || rc=$?
  [ "$rc" -eq 137 ] || fail "card $card: the SM-SR was to be killed at $point (exit $rc)"
  [[ "$(state "$card")" == *"active=1"* ]] || fail "card $card: no operation left active after the kill: $(state "$card")"
  recovered=$("$bin" smsr recover "${common[@]}" "${scp80[@]}" --capture "$work/es5.jsonl")
  [ "$recovered" = "1 operation(s) recovered" ] || fail "card $card: recover said '$recovered'"
  after=$(state "$card")
  [[ "$after" == *"${iccid: -4}:$expected"* && "$after" == *"active=0"* ]] || fail "card $card: after recovery: $after"
  retry=$("$bin" smsr profile enable "${common[@]}" "${scp80[@]}" --capture "$work/es5.jsonl" --eid "$eid" --iccid "$iccid" 2>&1 || true)
  [[ "$retry" == "$outcome"* ]] || fail "card $card: the retried call answered '$retry', not the recovered $outcome"
  echo "crash-test: card $card killed at $point → recovered: $after; retry answered ${retry%% *}"
done

# The cards agree with the EIS: GET STATUS through the endpoint (the probe's counter is the time,
# above any the SM-SR used).
for card in 0 1; do
  aid=$(field "$work/eis$card.json" "d['profiles'][1]['isdPAID']")
  want=$([ "$card" -eq 0 ] && echo 3F || echo 1F)
  "$bin" emulate --probe-scp80 "127.0.0.1:$port" --card "$card" > "$work/probe$card.txt"
  grep -q "4F10${aid}9F7001${want}" "$work/probe$card.txt" || fail "card $card: the card does not show Profile 01 as $want: $(cat "$work/probe$card.txt")"
done
# The SM-SR processes' ES5 traffic, captured (--capture) across the kills and traced with the cards'
# keys: every SCP80 packet and PoR deciphers, its CC verifies, counters rise, the scripts decode.
for card in 0 1; do
  "$bin" emulate --pki "$work/pki" --cards 2 --profiles 2 --quiet --keyring "$card" > "$work/card$card.keys.json" 2> /dev/null
  eid=$(field "$work/eis$card.json" "d['eumSignedInfo']['eid']")
  grep -q "$eid" "$work/es5.jsonl" || fail "card $card: no ES5 traffic captured"
  "$bin" trace "$work/es5.jsonl" --eid "$eid" --keys "$work/card$card.keys.json" > "$work/trace$card.txt" || fail "card $card: the trace of the SM-SR's traffic has a failed check: $(tail -2 "$work/trace$card.txt")"
  echo "crash-test: card $card traffic traced: $(grep '^Summary' "$work/trace$card.txt")"
done
echo "crash-test: passed (EIS and cards agree; one outcome per killed call)"
