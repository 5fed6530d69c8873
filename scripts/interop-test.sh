#!/usr/bin/env bash
# Interop (issue #8; docs/server.md): every v3 function our servers provide, driven by zeep — a stock
# WSDL-driven SOAP client for Python, installed here in a virtual environment — with GSMA's WSDLs,
# over HTTPS with mutual TLS against a running `m2mrsp serve`; then every envelope zeep sent and
# received validated with xmllint against SOAP 1.2 + WS-Addressing + GSMA's schema (xsd/envelope.xsd).
set -euo pipefail

bin=${M2MRSP_BIN:-.build/debug/m2mrsp}
venv=${M2MRSP_INTEROP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/m2mrsp-interop-venv}
work=$(mktemp -d)
serve_pid=""
cleanup() {
  [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "interop-test: FAILED: $*" >&2; tail -20 "$work/serve.log" >&2 || true; exit 1; }

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import zeep' 2>/dev/null; then
  echo "interop-test: installing zeep into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'zeep==4.3.*'
fi
echo "interop-test: zeep $("$venv/bin/python" -c 'import zeep; print(zeep.__version__)')"

source scripts/lib/common.sh
read -r smsr_port smdp_port < <(free_ports 2)

"$bin" pki init "$work/pki" --curve p256 >/dev/null
inventory "$bin" "$work/data" INTEROP 894450500000000 4 >/dev/null
cat > "$work/serve.json" <<JSON
{ "pki": "$work/pki", "data": "$work/data", "plugins": "plugins", "policies": "policies",
  "smsr": { "port": $smsr_port, "cards": 3, "fleetSeed": "interop", "register": false, "peers": { "smsr2": "https://127.0.0.1:9" } },
  "smdp": { "port": $smdp_port, "smsr": "https://127.0.0.1:$smsr_port" } }
JSON
"$bin" serve --config "$work/serve.json" >"$work/serve.log" 2>&1 &
serve_pid=$!
wait_serving "$work/serve.log" "$serve_pid" || fail "serve did not start"

"$venv/bin/python" scripts/interop/zeep_interop.py "$work" "$bin" "$smsr_port" "$smdp_port" "$work/captured" || fail "zeep calls"
files=("$work"/captured/*.xml)
xmllint --noout --schema xsd/envelope.xsd "${files[@]}" 2>"$work/xmllint.log" || { cat "$work/xmllint.log" >&2; fail "xmllint"; }
echo "interop-test: ${#files[@]} captured envelopes validate against xsd/envelope.xsd (SOAP 1.2, WS-Addressing, GSMA v3 + our v4)"
echo "interop-test: passed"
