# Shared by the end-to-end scripts (serve-test, demo-scenario, interop-test): free loopback ports,
# an SM-DP inventory, waiting for `m2mrsp serve`.

# free_ports N: N free TCP ports on 127.0.0.1, space-separated.
free_ports() {
  python3 -c 'import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
[x.bind(("127.0.0.1", 0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}

# inventory BIN DATA TYPE PREFIX COUNT [--keys]: an SM-DP database in DATA with Profile Type TYPE of the
# PKI's MNO (the TS.48 v5 fixture as its template) and COUNT ICCIDs starting PREFIX.
inventory() {
  local bin=$1 data=$2 type=$3 prefix=$4 count=$5 keys=${6:-}
  mkdir -p "$data"
  python3 scripts/lib/pool.py "$data/pool.csv" "$prefix" "$count" $keys
  "$bin" smdp init --db "$data/smdp.sqlite" --key-file "$data/smdp.key" >/dev/null
  "$bin" smdp import --db "$data/smdp.sqlite" --key-file "$data/smdp.key" --profile-type "$type" --mno 1.3.6.1.4.1.99999.4.1 \
    --template Tests/M2MWireTests/Fixtures/profiles/TS48v5_SAIP2.1A_NoBERTLV.der --pool "$data/pool.csv"
}

# wait_serving LOG PID [TEXT]: until `m2mrsp serve` logged TEXT ("SM-DP serving" by default) (10 s at most); 1 when not.
wait_serving() {
  for _ in $(seq 1 100); do
    grep -q "${3:-SM-DP serving}" "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
