#!/bin/bash
# Instructions per request on the agent's (or the empty route's) main thread, under callgrind:
# repeatable on a shared machine, where CPU time is not.
#
#   bench/hot-path-callgrind.sh [DIST|empty] [PORT] [N]
#
# DIST (default dist) is a folder holding a build of the agent (src/cli.js inside), so two builds
# can be compared (e.g. `git stash && npx tsc -p . --outDir .before-dist && git stash pop`).
# For each of binary/JSON at concurrency 1 and 32, twice: N requests of warm-up with callgrind's
# instrumentation off, then N requests instrumented (bench/lib/fixed-requests.mjs), dumped per
# thread. Prints the main thread's (thread 1) instructions per request, with and without the
# periodic os.cpus() of the telemetry sampler that may fall in the window. Slow: ~1 minute per
# stream on 2 cores. Needs valgrind (Debian package valgrind).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIST=${1:-dist}; PORT=${2:-18190}; N=${3:-2000}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 2; }
OUT=$(mktemp -d /tmp/gpu-agent-callgrind-XXXXXX)
node --input-type=module -e "import { buildRepository } from '$ROOT/bench/lib/models.mjs'; await buildRepository('$OUT', { queueDelayUs: 500, resnet: false });"
cd "$ROOT"
VG=(valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes --callgrind-out-file="$OUT/cg.out" --smc-check=all-non-file)
if [ "$DIST" = empty ]; then
  # The empty route exits when its stdin ends: hold a FIFO open for as long as this script runs.
  mkfifo "$OUT/stdin"
  "${VG[@]}" node bench/empty-server.mjs "$PORT" < "$OUT/stdin" > "$OUT/server.log" 2>&1 &
  exec 9> "$OUT/stdin"
  READY=/v2/health/ready
else
  "${VG[@]}" node "$DIST/src/cli.js" serve --models "$OUT/models" --load-models add_sub --model-control-mode explicit \
    --host 127.0.0.1 --port "$PORT" --grpc-port 0 --log-level info --providers cpu > "$OUT/server.log" 2>&1 &
  READY=/v2/models/add_sub/ready
fi
VPID=$!
trap 'kill $VPID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [ "$(curl -s -o /dev/null -w '%{http_code}' "localhost:$PORT$READY")" = 200 ] && break; sleep 1; done
STREAMS=("binary 1" "binary 32" "json 1" "json 32")
# Two rounds: the first windows of a fresh process still include JIT warm-up; compare round 2.
for round in 1 2; do for s in "${STREAMS[@]}"; do
  set -- $s
  node bench/lib/fixed-requests.mjs "$PORT" "$1" "$2" "$N"
  callgrind_control -z $VPID >/dev/null 2>&1; callgrind_control -i on $VPID >/dev/null 2>&1
  node bench/lib/fixed-requests.mjs "$PORT" "$1" "$2" "$N"
  callgrind_control -i off $VPID >/dev/null 2>&1
  callgrind_control -d "$1-c$2-round$round" $VPID >/dev/null 2>&1
done; done
set +o pipefail  # grep -m1 closes the pipe early
echo "main-thread instructions per request ($DIST, $N requests per stream; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
for f in $(ls "$OUT"/cg.out.*-01 | sort -t. -k3 -n); do
  total=$(callgrind_annotate "$f" 2>/dev/null | grep -m1 'PROGRAM TOTALS' | awk '{gsub(",","",$1); print $1}')
  cpus=$(callgrind_annotate --inclusive=yes "$f" 2>/dev/null | grep -m1 'node::os::GetCPUInfo' | awk '{gsub(",","",$1); print $1}' || true)
  echo "  $(grep -m1 '^desc: Trigger' "$f" | cut -d' ' -f4): $((total / N)) (without os.cpus(): $(((total - ${cpus:-0}) / N)))"
done
echo "profiles in $OUT (callgrind_annotate)"
