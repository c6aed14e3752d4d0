#!/bin/sh
# Launches the agent (`node dist/src/cli.js ARGS...`) on jemalloc's malloc when the host has it:
# the default launch of `npm start`, of the systemd unit scripts/install.sh writes and of the
# image Dockerfile.cuda builds.
#
#   scripts/gpu-agent.sh [--allocator auto|jemalloc|glibc] serve [serve options]
#   scripts/gpu-agent.sh --print-allocator     says what it would do, starts nothing
#
# Why: over model load/unload cycles glibc's malloc keeps the pages onnxruntime freed between
# chunks still in use, and the RSS keeps growing for ~2,000 cycles; jemalloc preloaded returns
# them (measured flat, same throughput: docs/memory.md).
#
# The choice, first match wins:
#   - LD_PRELOAD already set: left as it is (the operator chose); nothing is added
#   - --allocator, else GPU_AGENT_ALLOCATOR (default auto):
#       glibc     no preload
#       auto      LD_PRELOAD=libjemalloc.so.2 when found (GPU_AGENT_JEMALLOC_PATH, else the
#                 usual library folders: Debian/Ubuntu package libjemalloc2), else glibc with
#                 one line on stderr saying so; a missing jemalloc never stops the start
#       jemalloc  the same, but the fallback line is a warning that the choice could not be met
# The node binary is GPU_AGENT_NODE (default: node on PATH). `exec`: the agent keeps this
# process's PID, so signals (SIGTERM drains) reach it directly. The agent logs the allocator it
# found itself running on at start, and reports it in `gpu-agent doctor` and /metrics.
set -eu

prog=gpu-agent.sh
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
cli=$(dirname -- "$here")/dist/src/cli.js
node=${GPU_AGENT_NODE:-node}
choice=${GPU_AGENT_ALLOCATOR:-auto}
print=0

while [ $# -gt 0 ]; do
  case $1 in
    --allocator)
      if [ $# -lt 2 ]; then
        echo "$prog: --allocator needs a value: auto, jemalloc or glibc" >&2
        exit 2
      fi
      choice=$2
      shift 2
      ;;
    --allocator=*) choice=${1#*=}; shift ;;
    --print-allocator) print=1; shift ;;
    *) break ;;
  esac
done
case $choice in
  auto | jemalloc | glibc) ;;
  *)
    echo "$prog: the allocator (--allocator / GPU_AGENT_ALLOCATOR) must be auto, jemalloc or glibc, not '$choice'" >&2
    exit 2
    ;;
esac

# Prints the path of libjemalloc.so.2, or fails.
find_jemalloc() {
  if [ -n "${GPU_AGENT_JEMALLOC_PATH:-}" ]; then
    [ -r "$GPU_AGENT_JEMALLOC_PATH" ] || return 1
    printf '%s\n' "$GPU_AGENT_JEMALLOC_PATH"
    return 0
  fi
  for d in "/usr/lib/$(uname -m)-linux-gnu" /usr/lib64 /usr/lib /usr/local/lib; do
    if [ -r "$d/libjemalloc.so.2" ]; then
      printf '%s\n' "$d/libjemalloc.so.2"
      return 0
    fi
  done
  return 1
}

if [ -n "${LD_PRELOAD:-}" ]; then
  decision="preset LD_PRELOAD=$LD_PRELOAD (left as it is)"
elif [ "$choice" = glibc ]; then
  decision="glibc (chosen: allocator glibc)"
elif lib=$(find_jemalloc); then
  decision="jemalloc $lib"
  LD_PRELOAD=$lib
  export LD_PRELOAD
else
  where=${GPU_AGENT_JEMALLOC_PATH:-"/usr/lib/$(uname -m)-linux-gnu, /usr/lib64, /usr/lib, /usr/local/lib"}
  decision="glibc (libjemalloc.so.2 not found in $where; Debian/Ubuntu: apt-get install libjemalloc2)"
  if [ "$print" = 0 ]; then
    if [ "$choice" = jemalloc ]; then
      echo "$prog: warning: allocator jemalloc was chosen but libjemalloc.so.2 is not found in $where (Debian/Ubuntu: apt-get install libjemalloc2): starting on glibc's malloc, whose RSS grows over model load/unload cycles (docs/memory.md)" >&2
    else
      echo "$prog: libjemalloc.so.2 not found in $where (Debian/Ubuntu: apt-get install libjemalloc2): starting on glibc's malloc, whose RSS grows over model load/unload cycles (docs/memory.md)" >&2
    fi
  fi
fi

if [ "$print" = 1 ]; then
  printf '%s\n' "$decision"
  exit 0
fi
exec "$node" "$cli" "$@"
