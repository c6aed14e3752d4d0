#!/usr/bin/env bash
# Offline bundle for a GPU host without network: Node.js, the built agent, production
# node_modules (Linux x64 binaries only), the bundled models and the CUDA 13 execution provider
# for onnxruntime 1.29.0, in one tar.xz. Run from the project root after `npm ci`.
#
#   npm run bundle [-- --out DIR] [-- --no-cuda] [-- --dry-run]
#
# On the host:
#   mkdir -p /opt/gpu-agent && tar -xJf gpu-agent-<version>-linux-x64.tar.xz -C /opt/gpu-agent --strip-components 1
#   /opt/gpu-agent/start.sh --host 0.0.0.0 --api-token "$TOKEN"      (any `gpu-agent serve` options)
set -euo pipefail

out=dist-bundle
with_cuda=1
dry=0
ort_gpu_pkg=${ORT_GPU_PKG:-com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9}
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --no-cuda) with_cuda=0; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bundle: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ ! -f package.json ] || [ ! -d node_modules/onnxruntime-node ]; then echo "bundle: run from the project root after npm ci" >&2; exit 2; fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then echo "bundle: builds Linux x64 bundles only (this is $(uname -s)-$(uname -m))" >&2; exit 2; fi
version=$(node -p "require('./package.json').version")
ort_version=$(node -p "require('./node_modules/onnxruntime-node/package.json').version")
[ "$ort_version" = "1.29.0" ] || { echo "bundle: onnxruntime-node is $ort_version; the CUDA provider in $ort_gpu_pkg is built for 1.29.0" >&2; exit 2; }
name="gpu-agent-$version-linux-x64"

run() {
  echo "+ $*"
  [ "$dry" = 1 ] || "$@"
}

stage=$(mktemp -d)
final="$out/$name.tar.xz"
# Written under a temporary name and renamed when complete: an interrupted run never leaves a
# truncated archive under the final name.
partial="$out/.$name.tar.xz.partial.$$"
compressor=
cleanup() {
  if [ -n "$compressor" ]; then kill -- "-$compressor" 2>/dev/null || kill "$compressor" 2>/dev/null || true; fi
  rm -rf "$stage" "$partial"
}
trap cleanup EXIT
trap 'echo "bundle: interrupted; nothing written under $final" >&2; exit 130' INT TERM HUP
app="$stage/$name"
echo "bundle: staging $name in $stage"
run mkdir -p "$app/bin" "$app/app" "$app/cuda-ep"
run cp "$(readlink -f "$(command -v node)")" "$app/bin/node"
run npm run --silent build
run npm run --silent models -- --all
run cp -r package.json package-lock.json .npmrc dist proto models "$app/app/"
run mkdir -p "$app/app/scripts"
run cp scripts/gpu-agent.sh "$app/app/scripts/" # the launcher: jemalloc where the host has libjemalloc2
# node_modules without other platforms' onnxruntime binaries, then without dev dependencies.
run tar -cf "$stage/nm.tar" --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' node_modules
run tar -xf "$stage/nm.tar" -C "$app/app"
run rm "$stage/nm.tar"
run bash -c "cd '$app/app' && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null"
if [ "$with_cuda" = 1 ]; then
  echo "bundle: fetching $ort_gpu_pkg (about 180 MB) from the npm registry"
  run bash -c "cd '$stage' && npm pack --silent '$ort_gpu_pkg' >/dev/null"
  run bash -c "tar -xzf '$stage'/*.tgz -C '$stage' --wildcards '*/Plugins/Linux/x64/libonnxruntime_providers_cuda.so' '*/Plugins/Linux/x64/libonnxruntime_providers_shared.so'"
  run bash -c "mv '$stage'/package/Plugins/Linux/x64/*.so '$app/cuda-ep/' && rm -rf '$stage/package' '$stage'/*.tgz"
fi
if [ "$dry" = 0 ]; then
  cat > "$app/start.sh" <<'START'
#!/usr/bin/env bash
# Start the bundled agent: puts the CUDA provider beside onnxruntime's core library (if bundled)
# and serves the bundled models unless --models says otherwise. Options: gpu-agent serve --help.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ort_bin="$here/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
if compgen -G "$here/cuda-ep/*.so" >/dev/null; then cp -f "$here"/cuda-ep/*.so "$ort_bin/"; fi
cd "$here/app"
cmd=serve
case "${1:-}" in serve|doctor|coordinator|version|--version|help|--help) cmd=$1; shift ;; esac
case "$cmd" in
  # serve through the launcher: jemalloc preloaded where installed (GPU_AGENT_ALLOCATOR=glibc: not)
  serve) GPU_AGENT_NODE="$here/bin/node" exec sh "$here/app/scripts/gpu-agent.sh" serve --models "${GPU_AGENT_MODELS:-$here/app/models}" "$@" ;;
  doctor) exec "$here/bin/node" dist/src/cli.js "$cmd" --models "${GPU_AGENT_MODELS:-$here/app/models}" "$@" ;;
  *) exec "$here/bin/node" dist/src/cli.js "$cmd" "$@" ;;
esac
START
  chmod +x "$app/start.sh"
else
  echo "+ write $app/start.sh"
fi
run mkdir -p "$out"
if [ "$dry" = 1 ]; then total=0; else total=$(du -sm "$app" | cut -f1); fi
echo "bundle: compressing $total MiB (a few minutes on 2 cores)"
if [ "$dry" = 1 ]; then
  echo "+ tar -C $stage -cf - $name | xz -T0 -6 > $partial; mv $partial $final (progress every 5 s)"
else
  # setsid: its own process group, so the cleanup stops tar and xz together.
  setsid bash -c "tar -C '$stage' -cf - '$name' | xz -T0 -6 > '$partial'" &
  compressor=$!
  started=$SECONDS
  while kill -0 "$compressor" 2>/dev/null; do
    sleep 1
    if [ $(( (SECONDS - started) % 5 )) = 0 ] && [ -f "$partial" ]; then
      echo "bundle: compressing: $(( $(stat -c %s "$partial") / 1048576 )) MiB written after $(( SECONDS - started )) s ($total MiB in)"
    fi
  done
  wait "$compressor" || { echo "bundle: compression failed" >&2; exit 1; }
  compressor=
  mv -f "$partial" "$final"
  ls -lh "$final"
fi
