#!/usr/bin/env bash
# Installs the Debian packages that the test suite drives as real components (each issue that
# names a real program adds it here). Idempotent: packages already present are not touched.
# Without root or apt-get it only says what is missing; the tests that need a missing program
# skip with a line naming it. Under CI (CI=true) a failed install fails the run, so a green CI
# never hides a skipped component.
set -euo pipefail

# "<command that proves it is installed> <debian package>" per line; "py:<module>" checks that
# Debian's /usr/bin/python3 can import the module; "lib:<soname>" that the library is in one of
# the folders scripts/gpu-agent.sh looks in.
WANTED=(
  "promtool prometheus"   # test/deploy/promtool.test.ts: check/test rules, check metrics
  "chromium chromium"
  "py:websockets python3-websockets"
  "py:jsonschema python3-jsonschema"
  "setpriv util-linux"   # test/integration/operations.test.ts: the agent as a non-root user
  "cc gcc"   # npm run build: dist/native/malloc-release.node (test/integration/load-cycles-memory.test.ts)
  "lib:libjemalloc.so.2 libjemalloc2"   # scripts/gpu-agent.sh preloads it: test/integration/allocator-launch.test.ts
  "shellcheck shellcheck"   # test/ops/install.test.ts: every scripts/*.sh passes shellcheck
)

has_lib() {
  local d
  for d in "/usr/lib/$(uname -m)-linux-gnu" /usr/lib64 /usr/lib /usr/local/lib; do
    [ -r "$d/$1" ] && return 0
  done
  return 1
}

missing=()
for entry in "${WANTED[@]}"; do
  cmd=${entry%% *}; pkg=${entry#* }
  if [[ $cmd == py:* ]]; then
    /usr/bin/python3 -c "import ${cmd#py:}" >/dev/null 2>&1 || missing+=("$pkg")
  elif [[ $cmd == lib:* ]]; then
    has_lib "${cmd#lib:}" || missing+=("$pkg")
  else
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: not installing ${missing[*]} (needs root and apt-get); the tests that use them skip" >&2
  exit 0
fi
echo "test-deps: installing ${missing[*]}" >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
  echo "test-deps: apt-get could not install ${missing[*]}" >&2
  [ "${CI:-}" = "true" ] && exit 1
fi
exit 0
