#!/usr/bin/env bash
# volley run --until-drained against the third-party SMSC of ../shared/peers (node-smpp's
# server, as compare.py starts it), with the CPU of the engine and of the SMSC.
#
#   bench/against_node.sh [N=100000] [PROCESSES=1] [BINDS=2] [WINDOW=256] [SYNC=true]
#
# Run ../shared/peers/compare.py once first: it installs the node packages into
# $VOLLEY_PEERS (default /tmp/volley-peers). Prints msg/s (from the start of
# `volley run` to its exit, start-up included), the engine's and the SMSC's CPU
# per message, and how many cores were busy.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}; PROCESSES=${PROCESSES:-1}; BINDS=${BINDS:-2}; WINDOW=${WINDOW:-256}
PEERS=${VOLLEY_PEERS:-/tmp/volley-peers}
W=$(mktemp -d)
trap 'kill $SP 2>/dev/null; rm -rf $W' EXIT
node "$PEERS/smsc.js" --port 0 --quiet --max-seconds 600 --dlr-fail 0.1 > "$W/smsc.out" 2>/dev/null &
SP=$!
sleep 1
PORT=$(head -1 "$W/smsc.out" | python3 -c "import json,sys; print(json.load(sys.stdin)['port'])")
cat > "$W/engine.toml" <<TOML
[store]
path = "$W/store"
sync = ${SYNC:-true}
[control]
socket = "$W/v.sock"
[defaults]
receipt_timeout = "30s"
[engine]
processes = $PROCESSES
[[operators]]
name = "peer"
port = $PORT
system_id = "volley"
password = "secret"
binds = $BINDS
window = $WINDOW
tps = 1000000
TOML
python3 - "$W/bulk.jsonl" "$N" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"id": f"m{i}", "to": f"+7920{i:07d}",
                            "text": "Anna, we miss you! -40% until Friday, code AUTUMN"}) + "\n")
PY
.venv/bin/volley enqueue "$W/bulk.jsonl" --batch bulk --kind transactional --config "$W/engine.toml" > /dev/null
N0=$(awk '{print $14+$15}' /proc/$SP/stat)
T0=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$W/time" .venv/bin/volley run --until-drained --quiet --config "$W/engine.toml" 2> /dev/null
T1=$(date +%s.%N)
N1=$(awk '{print $14+$15}' /proc/$SP/stat)
python3 - "$W/time" "$T0" "$T1" "$N0" "$N1" "$N" <<'PY'
import sys
u, s = map(float, open(sys.argv[1]).read().split())
t0, t1, n0, n1, n = (float(x) for x in sys.argv[2:])
el, eng, smsc = t1 - t0, u + s, (n1 - n0) / 100
print(f"{n / el:,.0f} msg/s   engine CPU {eng / n * 1e6:.1f} µs/msg   SMSC CPU "
      f"{smsc / n * 1e6:.1f} µs/msg   {el:.2f} s, {(eng + smsc) / el:.2f} cores busy")
PY
