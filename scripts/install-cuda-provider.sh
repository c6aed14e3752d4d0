#!/usr/bin/env bash
# Installs onnxruntime's CUDA execution provider (libonnxruntime_providers_{shared,cuda}.so)
# beside onnxruntime-node's core library, node_modules/onnxruntime-node/bin/napi-v6/linux/x64/,
# which is where onnxruntime looks for it when a session asks for 'cuda'.
#
#   scripts/install-cuda-provider.sh [--cuda auto|12|13] [--dir PROJECT] [--tensorrt]
#                                    [--strict] [--force] [--dry-run]
#
# --cuda 13  the npm package com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (onnxruntime's
#            release binaries for CUDA 13, repackaged), fetched with `npm pack` from the npm
#            registry. Built for onnxruntime 1.29.0 exactly: refused for any other
#            onnxruntime-node version.
# --cuda 12  onnxruntime-node's own installer (script/install.js), which downloads NuGet package
#            Microsoft.ML.OnnxRuntime.Gpu.Linux of the installed onnxruntime-node's version
#            (needs network access to api.nuget.org).
# --cuda auto (default) 13 when `nvidia-smi` reports "CUDA Version: 13.x" or later, 12 when it
#            reports 12.x, 13 when there is no driver (the provider is then only installed, so
#            that the agent uses it once a driver and CUDA 13 are there).
#
# Idempotent: a marker file beside the libraries records what was installed; a re-run with the
# same choice does nothing but the checks (--force reinstalls). At the end it lists the CUDA
# libraries the provider cannot find on this host (ldd) with where to get them. Missing CUDA
# libraries or a missing GPU are warnings, unless --strict.
#
# Environment: ORT_GPU_PKG (default com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9) and
# ORT_GPU_PKG_ORT_VERSION (the onnxruntime version it is built for, default 1.29.0), to move
# both together to a later release.
set -euo pipefail

readonly PROG=install-cuda-provider
PKG=${ORT_GPU_PKG:-com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9}
PKG_ORT_VERSION=${ORT_GPU_PKG_ORT_VERSION:-1.29.0}
readonly PKG PKG_ORT_VERSION
readonly MARKER_NAME=.gpu-agent-cuda-provider

cuda=auto
dir=""
tensorrt=0
strict=0
force=0
dry=0

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() { printf '%s: %s\n(run with --help for the options)\n' "$PROG" "$*" >&2; exit 2; }

# Runs a command, or prints it in --dry-run.
run() {
  if [ "$dry" = 1 ]; then
    printf '[dry-run] %s\n' "$(quote "$@")"
  else
    "$@"
  fi
}
# Shell-quotes for display only where needed ('*' left bare: the plan shows the glob).
quote() {
  local out="" a
  for a in "$@"; do
    if [[ $a =~ ^[][A-Za-z0-9_./:=@%+,*-]+$ ]]; then out+="$a "; else out+="'${a//\'/\'\\\'\'}' "; fi
  done
  printf '%s' "${out% }"
}

usage() {
  cat <<EOF
Usage: scripts/install-cuda-provider.sh [options]

Installs onnxruntime's CUDA execution provider beside onnxruntime-node's core library.

  --cuda auto|12|13   which build (default auto: from nvidia-smi's "CUDA Version", 13 without a driver)
                        13: npm package $PKG (onnxruntime $PKG_ORT_VERSION only)
                        12: onnxruntime-node's own installer (NuGet, needs network)
  --dir PROJECT       project folder holding node_modules/onnxruntime-node (default: this script's ..)
  --tensorrt          also copy libonnxruntime_providers_tensorrt.so (CUDA 13 build; CUDA 12 always has it)
  --strict            fail when the GPU or a CUDA library the provider needs is missing
  --force             reinstall even when the same provider is already in place
  --dry-run           print what would be done; change nothing
  -h, --help          this help
EOF
}

while [ $# -gt 0 ]; do
  case $1 in
    --cuda) [ $# -ge 2 ] || usage_error "--cuda needs a value: auto, 12 or 13"; cuda=$2; shift 2 ;;
    --cuda=*) cuda=${1#*=}; shift ;;
    --dir) [ $# -ge 2 ] || usage_error "--dir needs a folder"; dir=$2; shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    --tensorrt) tensorrt=1; shift ;;
    --strict) strict=1; shift ;;
    --force) force=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
done
case $cuda in
  auto | 12 | 13) ;;
  *) usage_error "--cuda must be auto, 12 or 13, not '$cuda'" ;;
esac
if [ -z "$dir" ]; then
  dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi

# "13.0" from nvidia-smi's banner, or nothing when there is no working driver.
driver_cuda_version() {
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1 || true
}

# "version" field of a package.json, without needing node.
package_version() {
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$1" | head -n 1
}

# --- what is on this host -----------------------------------------------------------------
[ "$(uname -s)" = Linux ] || die "the CUDA provider exists for Linux only (this is $(uname -s))"
case $(uname -m) in
  x86_64 | amd64) ;;
  *) die "both CUDA provider builds are for linux x64; this host is $(uname -m). Run the agent on the CPU (GPU_AGENT_PROVIDERS=cpu)" ;;
esac

driver_cuda=$(driver_cuda_version)
if [ -n "$driver_cuda" ]; then
  say "NVIDIA driver found: it supports CUDA $driver_cuda (nvidia-smi)"
else
  say "no working NVIDIA driver (nvidia-smi missing or failing)"
  [ "$strict" = 0 ] || die "--strict: no NVIDIA driver on this host"
fi

if [ "$cuda" = auto ]; then
  major=${driver_cuda%%.*}
  if [ -z "$driver_cuda" ]; then
    cuda=13
    say "choosing the CUDA 13 provider (the default; no driver to ask)"
  elif [ "$major" -ge 13 ]; then
    cuda=13
    say "choosing the CUDA 13 provider (driver supports CUDA $driver_cuda)"
  elif [ "$major" -eq 12 ]; then
    cuda=12
    say "choosing the CUDA 12 provider (driver supports CUDA $driver_cuda, below 13)"
  else
    die "the driver supports CUDA $driver_cuda only; onnxruntime needs CUDA 12 or 13: upgrade the NVIDIA driver (>= 525 for 12, >= 580 for 13)"
  fi
else
  say "using the CUDA $cuda provider (--cuda $cuda)"
  if [ -n "$driver_cuda" ] && [ "${driver_cuda%%.*}" -lt "$cuda" ]; then
    warn "the driver supports CUDA $driver_cuda only, below $cuda: the provider will fail to start until the driver is upgraded"
    [ "$strict" = 0 ] || die "--strict: driver too old for CUDA $cuda"
  fi
fi

ort_dir=$dir/node_modules/onnxruntime-node
bin=$ort_dir/bin/napi-v6/linux/x64
marker=$bin/$MARKER_NAME

ort_version=""
if [ -f "$ort_dir/package.json" ]; then
  ort_version=$(package_version "$ort_dir/package.json")
  say "onnxruntime-node $ort_version in $ort_dir"
elif [ "$dry" = 1 ]; then
  say "onnxruntime-node is not installed in $dir yet (dry run: assuming it will be, version from package.json)"
  ort_version=$(sed -n 's/^ *"onnxruntime-node": *"[^0-9]*\([0-9][^"]*\)".*/\1/p' "$dir/package.json" 2>/dev/null | head -n 1 || true)
  ort_version=${ort_version:-$PKG_ORT_VERSION}
else
  die "$ort_dir not found: run npm ci in $dir first"
fi

if [ "$cuda" = 13 ]; then
  if [ "$ort_version" != "$PKG_ORT_VERSION" ]; then
    die "$PKG is built for onnxruntime $PKG_ORT_VERSION exactly, but onnxruntime-node is $ort_version: a provider of another version fails to load or crashes. Pin onnxruntime-node@$PKG_ORT_VERSION, or use --cuda 12 (NuGet build of the installed version)"
  fi
  want_files=(libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)
  [ "$tensorrt" = 0 ] || want_files+=(libonnxruntime_providers_tensorrt.so)
  want_marker="variant=cuda13 source=npm:$PKG onnxruntime=$PKG_ORT_VERSION tensorrt=$tensorrt"
else
  want_files=(libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so libonnxruntime_providers_tensorrt.so)
  want_marker="variant=cuda12 source=nuget:Microsoft.ML.OnnxRuntime.Gpu.Linux@$ort_version onnxruntime=$ort_version"
fi

# --- install (skipped when the same provider is already there) ----------------------------
stage=""
backup=""
finished=0
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  [ -z "$stage" ] || [ "$dry" = 1 ] || rm -rf "$stage"
  [ -n "$backup" ] && [ "$dry" = 0 ] && [ -d "$backup" ] || return 0
  if [ "$finished" = 1 ]; then
    rm -rf "$backup"
  else
    warn "install failed: putting the previous provider back"
    rm -f "$bin"/libonnxruntime_providers_*.so "$bin"/.libonnxruntime_providers_*.tmp
    find "$backup" -mindepth 1 -maxdepth 1 -exec mv -f {} "$bin/" \;
    rmdir "$backup"
  fi
}
trap cleanup EXIT
installed=1
[ -f "$marker" ] && [ "$(cat "$marker")" = "$want_marker" ] || installed=0
for f in "${want_files[@]}"; do [ -s "$bin/$f" ] || installed=0; done

if [ "$installed" = 1 ] && [ "$force" = 0 ]; then
  say "already installed ($want_marker); nothing to do (--force reinstalls)"
else
  # Another build (or none) is there. Move every provider library aside first, so that no
  # library of the other CUDA major version stays beside the new ones; they are put back if
  # this install fails, and deleted once it succeeded.
  old=()
  for f in "$bin"/libonnxruntime_providers_*.so "$marker"; do [ -e "$f" ] && old+=("$f"); done
  if [ ${#old[@]} -gt 0 ]; then
    say "moving the previous provider aside (restored if this install fails): ${old[*]##*/}"
    if [ "$dry" = 1 ]; then
      backup=$bin/.provider-backup.XXXXXX
    else
      backup=$(mktemp -d "$bin/.provider-backup.XXXXXX")
    fi
    run mv -f "${old[@]}" "$backup/"
  fi

  if [ "$cuda" = 13 ]; then
    command -v npm >/dev/null 2>&1 || [ "$dry" = 1 ] || die "npm is needed to fetch $PKG"
    if [ "$dry" = 1 ]; then
      stage=${TMPDIR:-/var/tmp}/ort-cuda-provider.XXXXXX
      say "would fetch $PKG from the npm registry (about 180 MB) into a temporary folder"
    else
      stage=$(mktemp -d "${TMPDIR:-/var/tmp}/ort-cuda-provider.XXXXXX")
      say "fetching $PKG from the npm registry (about 180 MB) ..."
    fi
    run npm pack --silent --pack-destination "$stage" "$PKG"
    members=()
    for f in "${want_files[@]}"; do members+=("package/Plugins/Linux/x64/$f"); done
    if [ "$dry" = 1 ]; then
      run tar -xzf "$stage/*.tgz" -C "$stage" "${members[@]}"
    else
      tgz=$(find "$stage" -maxdepth 1 -name '*.tgz' | head -n 1)
      [ -n "$tgz" ] || die "npm pack produced no tarball for $PKG"
      run tar -xzf "$tgz" -C "$stage" "${members[@]}"
    fi
    for f in "${want_files[@]}"; do
      # copy under a temporary name, then rename: a running agent never sees half a library
      run install -m 0755 "$stage/package/Plugins/Linux/x64/$f" "$bin/.$f.tmp"
      run mv -f "$bin/.$f.tmp" "$bin/$f"
    done
  else
    command -v node >/dev/null 2>&1 || [ "$dry" = 1 ] || die "node is needed to run onnxruntime-node's installer"
    say "running onnxruntime-node's installer for CUDA 12 (downloads Microsoft.ML.OnnxRuntime.Gpu.Linux $ort_version from NuGet, about 240 MB)"
    # ONNXRUNTIME_NODE_INSTALL=cuda12 is the installer's documented switch. (onnxruntime-node
    # 1.29.0's parseInstallFlag drops that string value and falls back to its default manifest,
    # which on linux/x64 is cuda12 too and installs because the files were just removed.)
    # npm_config_local_prefix/npm_package_json are unset so that it never mistakes this for a
    # development install of onnxruntime itself and exits without installing.
    if ! run env -u npm_config_local_prefix -u npm_package_json ONNXRUNTIME_NODE_INSTALL=cuda12 \
      node "$ort_dir/script/install"; then
      die "onnxruntime-node's installer failed (see above): it needs https access to api.nuget.org. Without it, use --cuda 13 (npm registry) or the offline bundle (shared/gpu/make-offline-bundle.sh)"
    fi
  fi
  for f in "${want_files[@]}"; do
    [ "$dry" = 1 ] || [ -s "$bin/$f" ] || die "$bin/$f is missing after the install"
  done
  if [ "$dry" = 1 ]; then
    printf '[dry-run] write %s: %s\n' "$marker" "$want_marker"
  else
    printf '%s\n' "$want_marker" >"$marker"
  fi
  finished=1
  [ -z "$backup" ] || say "removing the previous provider"
fi

# --- verify --------------------------------------------------------------------------------
if [ "$dry" = 1 ]; then
  say "would verify ${want_files[*]} in $bin and list the CUDA libraries they cannot find (ldd)"
  exit 0
fi
for f in "${want_files[@]}"; do
  [ -s "$bin/$f" ] || die "$bin/$f is missing after the install"
done
say "installed in $bin: ${want_files[*]} ($want_marker)"

# Libraries the provider links against that the dynamic loader cannot find now.
missing=()
for f in libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
  while read -r lib _; do
    [ -n "$lib" ] && missing+=("$lib")
  done < <(ldd "$bin/$f" 2>/dev/null | awk '/not found/ {print $1}')
done
# Libraries it opens only at run time (dlopen), so ldd does not show them.
if [ "$cuda" = 13 ]; then runtime_libs=(libcudnn.so.9 libnvrtc.so.13 libcufft.so.12); else runtime_libs=(libcudnn.so.9 libnvrtc.so.12 libcufft.so.11); fi
lib_visible() {
  local d
  ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$1 " && return 0
  local IFS=:
  for d in ${LD_LIBRARY_PATH:-}; do [ -n "$d" ] && [ -e "$d/$1" ] && return 0; done
  return 1
}
for lib in "${runtime_libs[@]}"; do
  lib_visible "$lib" || missing+=("$lib (loaded at run time)")
done

if [ ${#missing[@]} -eq 0 ]; then
  say "every CUDA library the provider needs is visible to the dynamic loader"
  exit 0
fi
warn "the provider is installed, but these libraries are not found on this host:"
for lib in "${missing[@]}"; do printf '  %s\n' "$lib" >&2; done
if [ "$cuda" = 13 ]; then
  cat >&2 <<'EOF'
  libcuda.so.1 comes with the NVIDIA driver (>= 580 for CUDA 13). The rest is the CUDA 13
  runtime (cudart, cuBLAS/cuBLASLt, cuRAND, cuFFT, NVRTC) and cuDNN 9 for CUDA 13, from one of:
    - NVIDIA's CUDA apt repository: apt-get install cuda-libraries-13-0 libcudnn9-cuda-13
    - NVIDIA's pip wheels, e.g. pip install nvidia-cuda-runtime nvidia-cublas nvidia-curand
      nvidia-cufft nvidia-cuda-nvrtc nvidia-cudnn-cu13, then put their lib/ folders on
      LD_LIBRARY_PATH (scripts/install.sh writes it into /etc/gpu-agent/agent.env)
    - the image nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04 (see Dockerfile.cuda)
  Until then the agent logs why 'cuda' failed and serves on the CPU.
EOF
else
  cat >&2 <<'EOF'
  libcuda.so.1 comes with the NVIDIA driver (>= 525 for CUDA 12). The rest is the CUDA 12
  runtime (cudart, cuBLAS/cuBLASLt, cuRAND, cuFFT, NVRTC) and cuDNN 9 for CUDA 12, e.g.
  apt-get install cuda-libraries-12-8 libcudnn9-cuda-12 from NVIDIA's CUDA repository, or the
  pip wheels nvidia-cuda-runtime-cu12 nvidia-cublas-cu12 nvidia-curand-cu12 nvidia-cufft-cu12
  nvidia-cuda-nvrtc-cu12 nvidia-cudnn-cu12 with their lib/ folders on LD_LIBRARY_PATH.
  Until then the agent logs why 'cuda' failed and serves on the CPU.
EOF
fi
if [ "$strict" = 1 ]; then
  die "--strict: CUDA libraries missing"
fi
exit 0
