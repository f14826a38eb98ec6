#!/usr/bin/env bash
# Dashboard open vs closed: smpp serve --memory --threads 1 with --http; smpp bench
# (1 bind, window 64, 4 s) interleaved rounds; "open" = the overview page's event
# stream read by 3 clients (what a browser tab does) plus a full page load per second.
set -u
BIN=${BIN:-target/release/smpp}
ROUNDS=${ROUNDS:-4}
dir=$(mktemp -d)
$BIN serve --memory --threads 1 --listen 127.0.0.1:0 --http 127.0.0.1:0 > $dir/serve.log 2>&1 &
SERVE=$!
sleep 1.5
SMPP=$(grep "SMPP listening on" $dir/serve.log | awk '{print $4}')
HTTP=$(grep "HTTP listening on" $dir/serve.log | awk '{print $4}')
PORT=${SMPP##*:}
cpu() { awk '{print $14+$15}' /proc/$SERVE/stat; }
run() {
  local mode=$1
  local pids=()
  if [ "$mode" = open ]; then
    for i in 1 2 3; do curl -sN http://$HTTP/ui/events > /dev/null & pids+=($!); done
    ( while true; do curl -s http://$HTTP/ > /dev/null; sleep 1; done ) & pids+=($!)
    sleep 1.5
  fi
  local c0=$(cpu)
  local out=$($BIN bench --port $PORT --sessions 1 --window 64 --duration 4s --threads 1 --json 2>/dev/null)
  local c1=$(cpu)
  for p in "${pids[@]}"; do kill $p 2>/dev/null; done
  [ ${#pids[@]} -gt 0 ] && wait "${pids[@]}" 2>/dev/null
  local rate=$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d.get("throughput") or d.get("rate") or d.get("messages_per_second") or 0))' 2>/dev/null)
  local sent=$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("completed") or d.get("sent") or d.get("count") or 0)' 2>/dev/null)
  echo "$mode rate=$rate server_cpu_ticks=$((c1-c0)) completed=$sent"
}
for r in $(seq 1 $ROUNDS); do run closed; run open; done
kill $SERVE
