#!/usr/bin/env bash
# The platform as operators deploy it (issue #8's scenario; `make demo`, and `make test` checks it):
# a dev PKI; SM-SR + SM-DP in one `m2mrsp serve` process with an emulated fleet, over mutual TLS
# on loopback; an Operator's and an M2M SP's notification endpoints (`m2mrsp listen`); then, step by
# step with `m2mrsp call`, each printed with its status:
#   register an eUICC (ES1) → download two Profiles via ES2 (one asynchronous) → enable one via ES4 →
#   a PLMA for the M2M SP (ES4A) and an enable by the M2M SP → the fall-back attribute and a disable
#   that falls back → an ONC that filters a notification → a POL2 refusal from the Lua policy →
#   an SM-SR change to a second SM-SR process (ES4.PrepareSMSRChange, ES4.SMSRChange, ES7 between the
#   two over mutual TLS, the ISD-R re-keyed on the card) and the new SM-SR managing the card.
# With DEMO_SERVE=1 (interactive `make demo`), the servers then keep serving until Ctrl-C, and the
# script prints how to call them.
set -euo pipefail

bin=${M2MRSP_BIN:-.build/release/m2mrsp}
work=${DEMO_DIR:-$(mktemp -d)}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -z "${DEMO_DIR:-}" ]] && rm -rf "$work"
}
trap cleanup EXIT
n=0
step() { n=$((n+1)); printf '\n\033[1m── %d. %s\033[0m\n' "$n" "$*"; }
fail() { echo "demo-scenario: FAILED: $*" >&2; tail -20 "$work/serve.log" >&2 || true; exit 1; }
MNO=1.3.6.1.4.1.99999.4.1 SP=1.3.6.1.4.1.99999.5.1 SMSR=1.3.6.1.4.1.99999.2.1 SMSR2=1.3.6.1.4.1.99999.2.2 SMDP=1.3.6.1.4.1.99999.3.1

source scripts/lib/common.sh
read -r smsr_port smdp_port mno_port sp_port callback_port smsr2_port udp_port < <(free_ports 7)

# What a call answered: the status and, when it failed, its codes.
status() {
  python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
if "fault" in d:
    print("SOAP Fault:", d["fault"]); sys.exit(0)
s = d["body"]["functionExecutionStatus"]
line = s["status"]
if "statusCodeData" in s:
    c = s["statusCodeData"]
    line += " %s/%s %s" % (c["subject"], c["reason"], c.get("message", ""))
extra = {k: v for k, v in d["body"].items() if k in ("iccid", "isdPAID")}
print(line, json.dumps(extra) if extra else "")
EOF
}
call() { local out=$1; shift; "$bin" call --pki "$work/pki" "$@" >"$out" 2>"$out.err" || true; [[ -s "$out" ]] || fail "no answer: $(cat "$out.err")"; status "$out"; }
expect() { grep -q "$2" "$1" || fail "expected $2 in $(cat "$1")"; }

step "A dev PKI (P-256: CI, EUM, SM-DP, two SM-SRs, MNO, M2M SP; TLS CA and identities)"
"$bin" pki init "$work/pki" --curve p256 | head -1

step "The SM-DP's inventory: Profile Type DEMO-TYPE of the MNO, a TS.48 template, 4 ICCIDs"
inventory "$bin" "$work/data" DEMO-TYPE 894450400000000 4 --keys

step "Serve: SM-SR :$smsr_port (2 emulated eUICCs, not yet registered) and SM-DP :$smdp_port, mutual TLS; MNO and M2M SP endpoints"
cat > "$work/serve.json" <<EOF
{
  "pki": "$work/pki", "data": "$work/data", "plugins": "plugins", "policies": "policies",
  "smsr": { "port": $smsr_port, "cards": 2, "fleetSeed": "demo", "register": false,
            "serveSCP80": "127.0.0.1:$udp_port", "peers": { "smsr2": "https://127.0.0.1:$smsr2_port" } },
  "smdp": { "port": $smdp_port, "smsr": "https://127.0.0.1:$smsr_port", "otherSMSRs": { "smsr2": "https://127.0.0.1:$smsr2_port" } },
  "endpoints": { "$MNO": "https://127.0.0.1:$mno_port/notifications", "$SP": "https://127.0.0.1:$sp_port/notifications" },
  "outboxInterval": 0.2
}
EOF
"$bin" serve --config "$work/serve.json" >"$work/serve.log" 2>&1 &
pids+=($!)
"$bin" listen --url "https://127.0.0.1:$mno_port/notifications" --pki "$work/pki" --as mno >"$work/mno.log" 2>/dev/null &
pids+=($!)
"$bin" listen --url "https://127.0.0.1:$sp_port/notifications" --pki "$work/pki" --as m2msp >"$work/sp.log" 2>/dev/null &
pids+=($!)
wait_serving "$work/serve.log" "${pids[0]}" || fail "serve did not start"
grep -E "serving" "$work/serve.log" | sed 's/^[^ ]* //'
settle() { sleep 0.8; }  # the outboxes are delivered every 0.2 s

step "ES1.RegisterEIS: the EUM registers eUICC 0 (its EIS signed by the EUM, checked against the CI)"
"$bin" emulate --cards 2 --seed demo --pki "$work/pki" --eis 0 >"$work/eis0.json" 2>/dev/null
EID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["eumSignedInfo"]["eid"])' "$work/eis0.json")
call "$work/r1.json" ES1.RegisterEIS --to "https://127.0.0.1:$smsr_port/ES1" --as eum --param eis=@"$work/eis0.json"
expect "$work/r1.json" EXECUTED_SUCCESS
echo "eUICC $EID"

step "ES2.DownloadProfile, asynchronous (HTTP 202, then the callback): SM-DP → ES3 → SM-SR → the card, key establishment + SCP03t"
call "$work/r2.json" ES2.DownloadProfile --to "https://127.0.0.1:$smdp_port/ES2" --as mno --param eid="$EID" --param smsrID=$SMSR \
  --param profileType=DEMO-TYPE --param enableProfile=true --reply-to "https://127.0.0.1:$callback_port/callbacks" --wait 60
expect "$work/r2.json" EXECUTED_SUCCESS
A=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["body"]["iccid"])' "$work/r2.json")

step "ES2.DownloadProfile, synchronous: a second Profile, left Disabled"
call "$work/r3.json" ES2.DownloadProfile --to "https://127.0.0.1:$smdp_port/ES2" --as mno --param eid="$EID" --param smsrID=$SMSR \
  --param profileType=DEMO-TYPE --param enableProfile=false
expect "$work/r3.json" EXECUTED_SUCCESS
B=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["body"]["iccid"])' "$work/r3.json")
echo "Profiles: A=$A (Enabled), B=$B (Disabled)"

step "ES4.EnableProfile B by the MNO, directly at the SM-SR (A is disabled by the card)"
call "$work/r4.json" ES4.EnableProfile --to "https://127.0.0.1:$smsr_port/ES4" --as mno --param eid="$EID" --param iccid="$B"
expect "$work/r4.json" EXECUTED_SUCCESS

step "ES4A.SetPLMA: the MNO lets the M2M SP enable its DEMO-TYPE Profiles and hear of enables/disables"
call "$work/r5.json" ES4A.SetPLMA --to "https://127.0.0.1:$smsr_port/ES4A" --as mno \
  --param plma="{\"mnoID\":\"$MNO\",\"m2mSPID\":\"$SP\",\"profileType\":\"DEMO-TYPE\",\"authorisedFunctions\":[\"EnableProfile\"],\"authorisedNotifications\":[\"ProfileEnabled\",\"ProfileDisabled\"]}"
expect "$work/r5.json" EXECUTED_SUCCESS
settle

step "ES4.EnableProfile A by the M2M SP, within its PLMA"
call "$work/r6.json" ES4.EnableProfile --to "https://127.0.0.1:$smsr_port/ES4" --as m2msp --param eid="$EID" --param iccid="$A"
expect "$work/r6.json" EXECUTED_SUCCESS
settle

step "ES4.SetFallBackAttribute on B, then ES4.DisableProfile A: the card falls back to B"
call "$work/r7.json" ES4.SetFallBackAttribute --to "https://127.0.0.1:$smsr_port/ES4" --as mno --param eid="$EID" --param iccid="$B"
expect "$work/r7.json" EXECUTED_SUCCESS
call "$work/r8.json" ES4.DisableProfile --to "https://127.0.0.1:$smsr_port/ES4" --as mno --param eid="$EID" --param iccid="$A"
expect "$work/r8.json" EXECUTED_SUCCESS
settle

step "ES4A.SetONC: the MNO discards ProfileEnabled for DEMO-TYPE; the M2M SP enables A again (the MNO hears only of B's disable)"
call "$work/r9.json" ES4A.SetONC --to "https://127.0.0.1:$smsr_port/ES4A" --as mno \
  --param onc="{\"mnoID\":\"$MNO\",\"profileType\":\"DEMO-TYPE\",\"discardedNotifications\":[\"ProfileEnabled\"]}"
expect "$work/r9.json" EXECUTED_SUCCESS
mark=$(wc -l <"$work/mno.log")
call "$work/r10.json" ES4.EnableProfile --to "https://127.0.0.1:$smsr_port/ES4" --as m2msp --param eid="$EID" --param iccid="$A"
expect "$work/r10.json" EXECUTED_SUCCESS
settle
tail -n +"$((mark + 1))" "$work/mno.log" | grep -q "HandleProfileDisabledNotification" || fail "the MNO did not hear of B's disable"
if tail -n +"$((mark + 1))" "$work/mno.log" | grep -q "HandleProfileEnabledNotification"; then fail "the ONC did not discard ProfileEnabled"; fi
echo "filtered: the MNO got ProfileDisabled for B, no ProfileEnabled"

step "ES2.UpdatePolicyRules (via the SM-DP): A may not be disabled; ES4.DisableProfile A is refused by POL2 in Lua"
call "$work/r11.json" ES2.UpdatePolicyRules --to "https://127.0.0.1:$smdp_port/ES2" --as mno --param eid="$EID" --param iccid="$A" --param smsrID=$SMSR \
  --param pol2='{"rules":[{"subject":"PROFILE","action":"DISABLE","qualification":"Not-Allowed"}]}'
expect "$work/r11.json" EXECUTED_SUCCESS
call "$work/r12.json" ES4.DisableProfile --to "https://127.0.0.1:$smsr_port/ES4" --as mno --param eid="$EID" --param iccid="$A"
expect "$work/r12.json" '"subject" : "8.2.3"'
settle

step "A second SM-SR in its own process (SM-SR2 :$smsr2_port): it reaches the cards over SCP80 (loopback UDP) and SM-SR1 over ES7"
cat > "$work/serve2.json" <<EOF
{
  "pki": "$work/pki", "data": "$work/data2", "plugins": "plugins", "policies": "policies",
  "smsr": { "port": $smsr2_port, "identity": "smsr2", "scp80": "127.0.0.1:$udp_port", "peers": { "smsr": "https://127.0.0.1:$smsr_port" } },
  "endpoints": { "$MNO": "https://127.0.0.1:$mno_port/notifications", "$SP": "https://127.0.0.1:$sp_port/notifications",
                 "$SMDP": "https://127.0.0.1:$smdp_port/ES3" },
  "outboxInterval": 0.2
}
EOF
"$bin" serve --config "$work/serve2.json" >"$work/serve2.log" 2>&1 &
pids+=($!)
wait_serving "$work/serve2.log" "${pids[-1]}" "SM-SR serving" || fail "the second serve did not start: $(tail -5 "$work/serve2.log")"
grep -E "SM-SR serving" "$work/serve2.log" | sed 's/^[^ ]* //'

step "SM-SR change: ES4.PrepareSMSRChange at SM-SR2, then ES4.SMSRChange at SM-SR1 (asynchronous): ES7.HandoverEUICC, AuthenticateSMSR, CreateAdditionalKeySet"
call "$work/r13.json" ES4.PrepareSMSRChange --to "https://127.0.0.1:$smsr2_port/ES4" --as mno --param eid="$EID" --param currentSMSRID=$SMSR
expect "$work/r13.json" EXECUTED_SUCCESS
mark=$(wc -l <"$work/mno.log")
call "$work/r14.json" ES4.SMSRChange --to "https://127.0.0.1:$smsr_port/ES4" --as mno --param eid="$EID" --param targetSMSRID=$SMSR2 \
  --param validityPeriod=600 --reply-to "https://127.0.0.1:$callback_port/callbacks" --wait 60
expect "$work/r14.json" EXECUTED_SUCCESS
echo "the eUICC's ISD-R now holds SM-SR2's key sets only (SM-SR1's deleted by FinaliseISDRhandover)"

step "The old SM-SR no longer knows the eUICC; the new one manages it (ES2 relayed by the SM-DP to SM-SR2, ES4 directly)"
call "$work/r15.json" ES4.GetEIS --to "https://127.0.0.1:$smsr_port/ES4" --as mno --param eid="$EID"
expect "$work/r15.json" '"subject" : "8.1.1"'
call "$work/r16.json" ES2.UpdatePolicyRules --to "https://127.0.0.1:$smdp_port/ES2" --as mno --param eid="$EID" --param iccid="$A" --param smsrID=$SMSR2 \
  --param pol2='{"rules":[]}'
expect "$work/r16.json" EXECUTED_SUCCESS
call "$work/r17.json" ES4.EnableProfile --to "https://127.0.0.1:$smsr2_port/ES4" --as mno --param eid="$EID" --param iccid="$B"
expect "$work/r17.json" EXECUTED_SUCCESS
settle
tail -n +"$((mark + 1))" "$work/mno.log" | grep -q "HandleSMSRChangeNotification" || fail "the MNO did not hear of the SM-SR change"
echo "the MNO heard of the change (HandleSMSRChangeNotification, through its SM-DP)"

step "What the endpoints received (notifications over HTTPS, routed by the Lua router, filtered by ONC)"
echo "MNO (ES2 through the SM-DP for its SM-DP Profiles):"
sed -E 's/^([^ ]+) from ([^ ]+) ([^ ]+) .*"iccid":"([0-9F]+)".*/  \1  \3  ICCID \4  (from \2)/; s/^([^ ]+) from ([^ ]+) (ES[^ ]+) (\{.*)$/  \1  \3  \4/' "$work/mno.log" | cut -c1-150
echo "M2M SP (ES4, per its PLMA):"
sed -E 's/^([^ ]+) from ([^ ]+) ([^ ]+) .*"iccid":"([0-9F]+)".*/  \1  \3  ICCID \4  (from \2)/; s/^([^ ]+) from ([^ ]+) (ES[^ ]+) (\{.*)$/  \1  \3  \4/' "$work/sp.log" | cut -c1-150
grep -q "HandlePLMASettingNotification" "$work/sp.log" || fail "the M2M SP did not hear of its PLMA"
grep -q "HandleProfileDisabledNotification" "$work/sp.log" || fail "the M2M SP did not hear of a disable"

step "ES4.GetEIS: the eUICC as its SM-SR (now SM-SR2) knows it"
"$bin" call --pki "$work/pki" ES4.GetEIS --to "https://127.0.0.1:$smsr2_port/ES4" --as mno --param eid="$EID" >"$work/eis.json"
python3 - "$work/eis.json" <<'EOF'
import json, sys
eis = json.load(open(sys.argv[1]))["body"]["eis"]
for p in eis["profiles"]:
    flags = [f for f, on in (("fall-back", p.get("fallbackAttribute")), ("POL2 " + ",".join(r["action"] + " " + r["qualification"] for r in p.get("pol2", {}).get("rules", [])), p.get("pol2", {}).get("rules"))) if on]
    print("  %s  %-8s  SM-DP %s  %s" % (p["iccid"], p["state"], p.get("smdpID", "-"), "  ".join(flags)))
EOF

echo
echo "demo-scenario: passed"
if [[ "${DEMO_SERVE:-0}" == 1 ]]; then
  cat <<EOF

Serving until Ctrl-C. Call it, e.g.:
  $bin call ES4.GetEIS --to https://127.0.0.1:$smsr_port/ES4 --pki $work/pki --as mno --param eid=$EID
  $bin call ES2.DownloadProfile --to https://127.0.0.1:$smdp_port/ES2 --pki $work/pki --as mno --param eid=$EID \\
      --param smsrID=$SMSR --param profileType=DEMO-TYPE --param enableProfile=false
  curl --cacert $work/pki/tls/tls-ca.crt.pem --cert $work/pki/mno/tls-client.crt.pem --key $work/pki/mno/tls-client.key.pem \\
      https://127.0.0.1:$smsr_port/ES4?wsdl
Notifications: tail -f $work/mno.log $work/sp.log
EOF
  wait "${pids[0]}"
fi
