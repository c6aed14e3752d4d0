#!/usr/bin/env bash
# One-command install of gpu-node-agent on a fresh Ubuntu/Debian GPU host, as a systemd service.
#
#   sudo bash scripts/install.sh [options]          from a clone of the repository
#   bash scripts/install.sh --dry-run --allow-no-gpu  prints every action, changes nothing (no root)
#
# What it does, in order (each step is printed; --dry-run prints them without doing them):
#   1. checks: root, the OS (Ubuntu/Debian from /etc/os-release), the NVIDIA driver (nvidia-smi;
#      stops here without one unless --allow-no-gpu), the port (free, or already ours), systemd
#   2. installs missing tools (curl, xz-utils, openssl, iproute2, libjemalloc2 unless --allocator
#      glibc) and Node.js when it is missing
#      or older than 20.19: Debian/Ubuntu's own package when its version is new enough, else the
#      official nodejs.org tarball (latest 22.x, checked against SHASUMS256.txt) in
#      /usr/local/lib/nodejs with links in /usr/local/bin
#   3. builds the agent in PREFIX.new (the running service keeps serving meanwhile):
#      npm ci (its prepare script compiles TypeScript), npm run models (the bundled example
#      models), npm prune --omit=dev, then the CUDA execution provider (install-cuda-provider.sh)
#   4. creates the system user gpu-agent, swaps PREFIX.new into PREFIX (stopping the old service
#      first: it drains), writes /etc/gpu-agent/agent.env (0640 root:gpu-agent) and
#      /etc/systemd/system/gpu-agent.service, enables and (re)starts it
#   5. waits for http://127.0.0.1:PORT/v2/health/ready and prints how to call the agent
#
# Re-running upgrades in place: values not given as flags (port, models, token, coordinator)
# are kept from the existing agent.env; the token is generated only on the first install.
# --uninstall stops and removes the service, the user, PREFIX and /etc/gpu-agent; the models
# (and /var/lib/gpu-agent) are kept unless --purge. Run with --help for the options.
set -euo pipefail

readonly PROG=install.sh
SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly SRC_DIR

# Fixed locations (documented in docs/install.md).
readonly SERVICE=gpu-agent
readonly AGENT_USER=gpu-agent
readonly CONF_DIR=/etc/gpu-agent
readonly ENV_FILE=$CONF_DIR/agent.env
readonly UNIT_FILE=/etc/systemd/system/$SERVICE.service
readonly STATE_DIR=/var/lib/gpu-agent
readonly DEFAULT_MODELS=$STATE_DIR/models
readonly NODE_MIN=20.19.0
readonly NODE_TARBALL_LINE=22
readonly NODE_TARBALL_DIR=/usr/local/lib/nodejs
readonly INSTALL_MARKER=.gpu-agent-install
# agent.env keys this script writes; any other KEY=value line in it is kept on re-runs.
readonly MANAGED_KEYS='GPU_AGENT_HOST|GPU_AGENT_PORT|GPU_AGENT_MODELS|GPU_AGENT_API_TOKEN|GPU_AGENT_SHUTDOWN_GRACE_MS|GPU_AGENT_PROVIDERS|GPU_AGENT_COORDINATOR_URL|GPU_AGENT_COORDINATOR_TOKEN|GPU_AGENT_ALLOCATOR|LD_LIBRARY_PATH'
OS_RELEASE=${GPU_AGENT_INSTALL_OS_RELEASE:-/etc/os-release} # overridable for the tests only

# Options (see usage).
prefix=/opt/gpu-agent
port=""
grpc_port=""
models=""
token=""
coordinator=""
coordinator_token=""
cuda=auto
grace_ms=""
allocator=""
node_source=auto
node_version=""
cuda_lib_path=""
wait_timeout=90
allow_no_gpu=0
no_systemd=0
uninstall=0
purge=0
dry=0
print_unit=0

# --- output helpers ------------------------------------------------------------------------
step() { printf '\n==> %s\n' "$*"; }
say() { printf '    %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() { printf '%s: %s\n(run with --help for the options)\n' "$PROG" "$*" >&2; exit 2; }

# Shell-quotes for display where needed.
quote() {
  local out="" a
  for a in "$@"; do
    if [[ $a =~ ^[][A-Za-z0-9_./:=@%+,*-]+$ ]]; then out+="$a "; else out+="'${a//\'/\'\\\'\'}' "; fi
  done
  printf '%s' "${out% }"
}
# Runs a command (printing it first), or only prints it in --dry-run.
run() {
  if [ "$dry" = 1 ]; then
    printf '    [dry-run] %s\n' "$(quote "$@")"
  else
    printf '    + %s\n' "$(quote "$@")"
    "$@"
  fi
}
# Same, in a folder.
run_in() {
  local d=$1
  shift
  if [ "$dry" = 1 ]; then
    printf '    [dry-run] (cd %s && %s)\n' "$(quote "$d")" "$(quote "$@")"
  else
    printf '    + (cd %s && %s)\n' "$(quote "$d")" "$(quote "$@")"
    (cd "$d" && "$@")
  fi
}
# Writes stdin to PATH atomically with MODE and OWNER:GROUP. In --dry-run prints the content;
# for real, prints the content too unless SECRET=1 (the env file holds tokens).
write_file() {
  local path=$1 mode=$2 owner=$3 secret=${4:-0} content tmp
  content=$(cat)
  if [ "$dry" = 1 ]; then
    printf '    [dry-run] write %s (mode %s, %s):\n' "$path" "$mode" "$owner"
    printf '%s\n' "$content" | sed 's/^/      | /'
    return 0
  fi
  tmp=$(mktemp "$path.XXXXXX")
  printf '%s\n' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  mv -f "$tmp" "$path"
  if [ "$secret" = 1 ]; then
    say "wrote $path (mode $mode, $owner; holds secrets, not shown)"
  else
    say "wrote $path (mode $mode, $owner)"
  fi
}

usage() {
  cat <<EOF
Usage: sudo bash scripts/install.sh [options]

Installs gpu-node-agent as the systemd service '$SERVICE' on an Ubuntu/Debian GPU host.
Re-running upgrades in place and keeps the settings not given again.

  --port N                 HTTP port (default 8000; must be free)
  --grpc-port N            gRPC port (default 8001, Triton's; 0 = no gRPC; must be free)
  --models DIR             model repository (absolute path; default $DEFAULT_MODELS,
                           seeded with the bundled example models on the first install)
  --token TOKEN            API bearer token, >= 8 characters of [A-Za-z0-9._~+/=-]
                           (default: kept from agent.env, else generated: openssl rand -hex 24)
  --coordinator URL        coordinator to register with (GPU_AGENT_COORDINATOR_URL)
  --coordinator-token T    its token (GPU_AGENT_COORDINATOR_TOKEN)
  --prefix DIR             where the agent is installed (default /opt/gpu-agent)
  --cuda auto|12|13|none   CUDA execution provider (default auto: from the driver's CUDA
                           version, 13 when >= 13 or without a driver); none: CPU only
  --cuda-lib-path DIRS     colon-separated folders of the CUDA/cuDNN libraries, written as
                           LD_LIBRARY_PATH (default: searched for on this host)
  --allocator auto|jemalloc|glibc
                           the agent's malloc (GPU_AGENT_ALLOCATOR, read by scripts/gpu-agent.sh,
                           the unit's ExecStart; default auto: jemalloc, installing libjemalloc2
                           when missing; glibc: no preload; docs/memory.md)
  --shutdown-grace-ms N    drain time on stop (GPU_AGENT_SHUTDOWN_GRACE_MS, default 30000);
                           the unit's TimeoutStopSec is this plus 10 s
  --node-source auto|apt|tarball
                           where Node.js comes from when it is missing or < $NODE_MIN
                           (default auto: apt when its candidate is new enough, else tarball)
  --node-version X.Y.Z     exact nodejs.org version for the tarball (default latest $NODE_TARBALL_LINE.x)
  --wait-timeout S         seconds to wait for /v2/health/ready after start (default 90)
  --allow-no-gpu           go on without an NVIDIA driver (the agent serves on the CPU)
  --no-systemd             install without a service (hosts without systemd, e.g. containers)
  --uninstall              stop and remove the service, user, prefix and $CONF_DIR
  --purge                  with --uninstall: also remove $STATE_DIR (default models included)
  --print-unit             print the systemd unit that would be written, and exit
  --dry-run                print every action, change nothing (works without root)
  -h, --help               this help
EOF
}

# --- arguments -----------------------------------------------------------------------------
need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi; }
while [ $# -gt 0 ]; do
  opt=$1
  val=""
  case $opt in
    --*=*) val=${opt#*=}; opt=${opt%%=*}; set -- "$opt" "$val" "${@:2}" ;;
  esac
  case $opt in
    --port | --grpc-port | --models | --token | --coordinator | --coordinator-token | --prefix | --cuda | \
      --cuda-lib-path | --shutdown-grace-ms | --node-source | --node-version | --wait-timeout | --allocator)
      need_value "$@"
      val=$2
      shift 2
      case $opt in
        --port) port=$val ;;
        --grpc-port) grpc_port=$val ;;
        --models) models=$val ;;
        --token) token=$val ;;
        --coordinator) coordinator=$val ;;
        --coordinator-token) coordinator_token=$val ;;
        --prefix) prefix=$val ;;
        --cuda) cuda=$val ;;
        --cuda-lib-path) cuda_lib_path=$val ;;
        --shutdown-grace-ms) grace_ms=$val ;;
        --node-source) node_source=$val ;;
        --node-version) node_version=$val ;;
        --wait-timeout) wait_timeout=$val ;;
        --allocator) allocator=$val ;;
      esac
      ;;
    --allow-no-gpu) allow_no_gpu=1; shift ;;
    --no-systemd) no_systemd=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    --dry-run) dry=1; shift ;;
    --print-unit) print_unit=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$opt'" ;;
  esac
done

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
# Values go into an EnvironmentFile unquoted: allow only characters that need no quoting there.
safe_token() { [[ $1 =~ ^[A-Za-z0-9._~+/=-]+$ ]]; }
safe_path() { [[ $1 =~ ^/[A-Za-z0-9._/@+-]*$ ]]; }

if [ -n "$port" ]; then
  if ! is_uint "$port" || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    usage_error "--port must be a number from 1 to 65535, not '$port'"
  fi
fi
if [ -n "$grpc_port" ]; then
  if ! is_uint "$grpc_port" || [ "$grpc_port" -gt 65535 ]; then
    usage_error "--grpc-port must be a number from 0 (no gRPC) to 65535, not '$grpc_port'"
  fi
fi
if [ -n "$token" ]; then
  [ ${#token} -ge 8 ] || usage_error "--token must be at least 8 characters (the agent refuses shorter ones)"
  safe_token "$token" || usage_error "--token may only contain A-Z a-z 0-9 . _ ~ + / = -"
fi
if [ -n "$coordinator_token" ]; then
  safe_token "$coordinator_token" || usage_error "--coordinator-token may only contain A-Z a-z 0-9 . _ ~ + / = -"
fi
if [ -n "$coordinator" ]; then
  case $coordinator in
    http://?* | https://?* | ws://?* | wss://?*) ;;
    *) usage_error "--coordinator must be an http(s):// or ws(s):// URL, not '$coordinator'" ;;
  esac
  case $coordinator in
    *[[:space:]\"\'\\\$\`]*) usage_error "--coordinator must not contain spaces, quotes, backslashes, \$ or backquotes" ;;
  esac
fi
if [ -n "$models" ]; then
  safe_path "$models" || usage_error "--models must be an absolute path of [A-Za-z0-9._/@+-], not '$models'"
fi
safe_path "$prefix" || usage_error "--prefix must be an absolute path of [A-Za-z0-9._/@+-], not '$prefix'"
prefix=${prefix%/}
case $prefix in
  "" | /usr | /usr/local | /opt | /etc | /var | /var/lib | /home | /root | /bin | /sbin | /lib | /lib64 | /srv | /tmp | /boot | /dev | /proc | /sys | /run)
    usage_error "--prefix $prefix would mix the agent with the system's files (and --uninstall removes it): use a folder of its own, e.g. /opt/gpu-agent" ;;
esac
case $cuda in auto | 12 | 13 | none) ;; *) usage_error "--cuda must be auto, 12, 13 or none, not '$cuda'" ;; esac
case $allocator in "" | auto | jemalloc | glibc) ;; *) usage_error "--allocator must be auto, jemalloc or glibc, not '$allocator'" ;; esac
case $node_source in auto | apt | tarball) ;; *) usage_error "--node-source must be auto, apt or tarball, not '$node_source'" ;; esac
if [ -n "$node_version" ]; then
  [[ $node_version =~ ^v?[0-9]+\.[0-9]+\.[0-9]+$ ]] || usage_error "--node-version must look like 22.12.0, not '$node_version'"
  node_version=${node_version#v}
fi
if [ -n "$grace_ms" ]; then
  is_uint "$grace_ms" || usage_error "--shutdown-grace-ms must be a number of milliseconds, not '$grace_ms'"
fi
if ! is_uint "$wait_timeout" || [ "$wait_timeout" -lt 1 ]; then
  usage_error "--wait-timeout must be a number of seconds >= 1, not '$wait_timeout'"
fi
if [ -n "$cuda_lib_path" ]; then
  [[ $cuda_lib_path =~ ^/[A-Za-z0-9._/@+:-]*$ ]] || usage_error "--cuda-lib-path must be absolute folders separated by ':', not '$cuda_lib_path'"
fi
[ "$purge" = 0 ] || [ "$uninstall" = 1 ] || usage_error "--purge only goes with --uninstall"

readonly stage_dir=$prefix.new previous_dir=$prefix.previous

# --- facts about this host -----------------------------------------------------------------
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }
have() { command -v "$1" >/dev/null 2>&1; }
systemd_running() { [ -d /run/systemd/system ]; }

# Reads KEY from an existing env file (never sourced); empty when absent or unreadable.
env_file_value() {
  [ -r "$ENV_FILE" ] || return 0
  sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1
}

# The node that the service runs: chosen by the Node.js step, else the one on PATH.
node_bin=""
node_path() {
  if [ -n "$node_bin" ]; then
    printf '%s\n' "$node_bin"
  elif have node; then
    command -v node
  else
    printf '%s\n' /usr/local/bin/node
  fi
}

# Settings: flag > existing agent.env > default.
resolve_settings() {
  existing_env=0
  if [ -e "$ENV_FILE" ]; then
    if [ -r "$ENV_FILE" ]; then
      existing_env=1
    else
      warn "$ENV_FILE exists but is not readable by $(id -un): its settings cannot be kept in this dry run"
    fi
  fi
  host=$(env_file_value GPU_AGENT_HOST)
  host=${host:-0.0.0.0}
  providers_kept=$(env_file_value GPU_AGENT_PROVIDERS)
  [ -n "$port" ] || port=$(env_file_value GPU_AGENT_PORT)
  port=${port:-8000}
  [ -n "$grpc_port" ] || grpc_port=$(env_file_value GPU_AGENT_GRPC_PORT)
  grpc_port=${grpc_port:-8001}
  [ -n "$models" ] || models=$(env_file_value GPU_AGENT_MODELS)
  models=${models:-$DEFAULT_MODELS}
  [ -n "$coordinator" ] || coordinator=$(env_file_value GPU_AGENT_COORDINATOR_URL)
  [ -n "$coordinator_token" ] || coordinator_token=$(env_file_value GPU_AGENT_COORDINATOR_TOKEN)
  [ -n "$grace_ms" ] || grace_ms=$(env_file_value GPU_AGENT_SHUTDOWN_GRACE_MS)
  [ -n "$allocator" ] || allocator=$(env_file_value GPU_AGENT_ALLOCATOR)
  allocator=${allocator:-auto}
  grace_ms=${grace_ms:-30000}
  [ -n "$cuda_lib_path" ] || cuda_lib_path=$(env_file_value LD_LIBRARY_PATH)
  token_source="given with --token"
  if [ -z "$token" ]; then
    token=$(env_file_value GPU_AGENT_API_TOKEN)
    token_source="kept from $ENV_FILE"
  fi
  if [ -z "$token" ]; then
    token_source="generated"
    if [ "$dry" = 1 ]; then
      token="<generated-by-openssl-rand-hex-24>"
    elif have openssl; then
      token=$(openssl rand -hex 24)
    else
      token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    fi
  fi
  stop_timeout_s=$(((grace_ms + 999) / 1000 + 10))
}

# --- the unit ------------------------------------------------------------------------------
# ProtectHome: 'yes' unless the models or CUDA libraries live under /home or /root.
protect_home_value() {
  local p
  for p in "$models" "$(node_path)" ${cuda_lib_path//:/ }; do
    case $p in /home/* | /root/* | /root) printf 'read-only\n'; return 0 ;; esac
  done
  printf 'yes\n'
}

unit_text() {
  local node groups="" g caps="" modprobe=""
  node=$(node_path)
  for g in video render; do getent group "$g" >/dev/null 2>&1 && groups+="$g "; done
  if [ "$port" -lt 1024 ]; then caps=CAP_NET_BIND_SERVICE; fi
  if have nvidia-modprobe; then modprobe=$(command -v nvidia-modprobe); fi
  cat <<EOF
# $UNIT_FILE: written by gpu-node-agent's scripts/install.sh; re-running it rewrites this file.
# Settings live in $ENV_FILE (then: systemctl restart $SERVICE).
[Unit]
Description=gpu-node-agent: ONNX models over the Open Inference Protocol (KServe V2)
Documentation=file://$prefix/README.md
Wants=network-online.target
After=network-online.target nvidia-persistenced.service
# Give up after 5 failed starts in 5 minutes (systemctl reset-failed $SERVICE to retry).
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
Type=exec
User=$AGENT_USER
Group=$AGENT_USER
EOF
  [ -z "$groups" ] || printf 'SupplementaryGroups=%s\n' "${groups% }"
  cat <<EOF
EnvironmentFile=$ENV_FILE
Environment=NODE_ENV=production
WorkingDirectory=$prefix
# The node id lives here (systemd creates it for the agent user and sets \$STATE_DIRECTORY);
# the working directory is read-only under ProtectSystem=strict.
StateDirectory=gpu-agent/state
EOF
  if [ -n "$modprobe" ]; then
    cat <<EOF
# Creates /dev/nvidia-uvm and /dev/nvidia0 if the driver has not yet: with NoNewPrivileges the
# setuid nvidia-modprobe that CUDA would call itself cannot work ('+': runs as root).
ExecStartPre=-+$modprobe -u -c=0
EOF
  fi
  cat <<EOF
# scripts/gpu-agent.sh preloads jemalloc (GPU_AGENT_ALLOCATOR in $ENV_FILE: auto, jemalloc or
# glibc) and execs node, which keeps this PID: SIGTERM reaches the agent (docs/memory.md).
Environment=GPU_AGENT_NODE=$node
ExecStart=/bin/sh $prefix/scripts/gpu-agent.sh serve
Restart=on-failure
RestartSec=5s
# Exit code 2 is a configuration error: restarting cannot fix it.
RestartPreventExitStatus=2
# SIGTERM makes the agent stop taking work and drain (GPU_AGENT_SHUTDOWN_GRACE_MS=$grace_ms);
# systemd waits that long plus 10 s before SIGKILL. KillMode=mixed: only the agent gets SIGTERM.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=$stop_timeout_s
LimitNOFILE=65536
UMask=0027

# Hardening. Not set, on purpose: PrivateDevices= and DevicePolicy= (they hide /dev/nvidia*),
# MemoryDenyWriteExecute= (breaks V8's JIT), SystemCallFilter= (untested with the CUDA driver).
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=$(protect_home_value)
ReadWritePaths=$STATE_DIR
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
CapabilityBoundingSet=$caps
AmbientCapabilities=$caps

[Install]
WantedBy=multi-user.target
EOF
}

env_text() {
  cat <<EOF
# $ENV_FILE: settings of the $SERVICE service (read by systemd's EnvironmentFile=).
# Written by scripts/install.sh; a re-run keeps the values not given as flags. After an edit:
# systemctl restart $SERVICE. Every GPU_AGENT_* option is listed by: node $prefix/dist/src/cli.js --help
GPU_AGENT_HOST=$host
GPU_AGENT_PORT=$port
GPU_AGENT_GRPC_PORT=$grpc_port
GPU_AGENT_MODELS=$models
GPU_AGENT_API_TOKEN=$token
GPU_AGENT_SHUTDOWN_GRACE_MS=$grace_ms
# the agent's malloc, chosen by scripts/gpu-agent.sh at start: auto (jemalloc when installed), jemalloc, glibc
GPU_AGENT_ALLOCATOR=$allocator
EOF
  if [ "$cuda" = none ]; then
    printf 'GPU_AGENT_PROVIDERS=cpu\n'
  elif [ -n "$providers_kept" ] && [ "$providers_kept" != cpu ]; then
    printf 'GPU_AGENT_PROVIDERS=%s\n' "$providers_kept"
  fi
  [ -z "$coordinator" ] || printf 'GPU_AGENT_COORDINATOR_URL=%s\n' "$coordinator"
  [ -z "$coordinator_token" ] || printf 'GPU_AGENT_COORDINATOR_TOKEN=%s\n' "$coordinator_token"
  [ -z "$cuda_lib_path" ] || printf '# folders of the CUDA/cuDNN libraries the CUDA provider loads\nLD_LIBRARY_PATH=%s\n' "$cuda_lib_path"
  # Lines added by hand to the previous file (other GPU_AGENT_* options ...) are kept.
  if [ "$existing_env" = 1 ]; then
    local extra
    extra=$(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$ENV_FILE" | grep -vE "^($MANAGED_KEYS)=" || true)
    [ -z "$extra" ] || printf '# kept from the previous %s\n%s\n' "$ENV_FILE" "$extra"
  fi
  return 0
}

if [ "$print_unit" = 1 ]; then
  resolve_settings >/dev/null
  unit_text
  exit 0
fi

# --- checks common to install and uninstall ------------------------------------------------
if [ "$dry" = 1 ]; then
  printf '%s: dry run: printing every action; nothing is changed.\n' "$PROG"
elif [ "$(id -u)" != 0 ]; then
  die "run as root: sudo bash scripts/install.sh [options] (or add --dry-run to see the plan)"
fi

use_systemd=1
[ "$no_systemd" = 0 ] || use_systemd=0
if [ "$use_systemd" = 1 ] && ! systemd_running; then
  if [ "$dry" = 1 ]; then
    warn "systemd is not running on this host (dry run: the systemd steps are planned anyway)"
  elif [ "$uninstall" = 1 ]; then
    warn "systemd is not running on this host: no service to stop"
    use_systemd=0
  else
    die "systemd is not running on this host (a container?). Re-run with --no-systemd: the install then sets everything up but the service, and prints the command that starts the agent"
  fi
fi

# ==================================== uninstall ============================================
if [ "$uninstall" = 1 ]; then
  models_now=$(env_file_value GPU_AGENT_MODELS)
  models_now=${models_now:-$DEFAULT_MODELS}
  step "stop and disable the $SERVICE service"
  if [ "$use_systemd" = 1 ] && { [ -e "$UNIT_FILE" ] || [ "$dry" = 1 ]; }; then
    run systemctl disable --now "$SERVICE.service"
    run rm -f "$UNIT_FILE"
    run systemctl daemon-reload
    if [ "$dry" = 1 ]; then
      run systemctl reset-failed "$SERVICE.service"
    else
      systemctl reset-failed "$SERVICE.service" 2>/dev/null || true
    fi
  else
    say "no unit $UNIT_FILE (or no systemd): nothing to stop"
  fi
  step "remove the agent ($prefix) and its settings ($CONF_DIR)"
  for d in "$prefix" "$stage_dir" "$previous_dir"; do
    if [ -e "$d/$INSTALL_MARKER" ] || { [ "$dry" = 1 ] && [ "$d" = "$prefix" ]; }; then
      run rm -rf "$d"
    elif [ -e "$d" ]; then
      warn "$d has no $INSTALL_MARKER: not installed by this script, left in place"
    fi
  done
  run rm -rf "$CONF_DIR"
  step "remove the system user $AGENT_USER"
  if getent passwd "$AGENT_USER" >/dev/null 2>&1 || [ "$dry" = 1 ]; then
    run userdel "$AGENT_USER"
    if [ "$dry" = 1 ] || getent group "$AGENT_USER" >/dev/null 2>&1; then
      run groupdel "$AGENT_USER"
    fi
  else
    say "no user $AGENT_USER"
  fi
  step "models and state"
  if [ "$purge" = 1 ]; then
    run rm -rf "$STATE_DIR"
    case $models_now in
      "$STATE_DIR"/*) ;;
      *) say "kept $models_now: a models folder outside $STATE_DIR is never removed" ;;
    esac
  elif [ -e "$STATE_DIR" ] || [ -e "$models_now" ] || [ "$dry" = 1 ]; then
    say "kept $STATE_DIR and the models in $models_now (--purge removes $STATE_DIR)"
  fi
  say "Node.js is left installed."
  step "uninstalled"
  [ "$dry" = 0 ] || say "(dry run: nothing was changed)"
  exit 0
fi

# ===================================== install =============================================
step "check the operating system"
[ -r "$OS_RELEASE" ] || die "cannot read $OS_RELEASE: this installer supports Ubuntu and Debian only"
os_id=$(sed -n 's/^ID=//p' "$OS_RELEASE" | tr -d '"' | head -n 1)
os_like=$(sed -n 's/^ID_LIKE=//p' "$OS_RELEASE" | tr -d '"' | head -n 1)
os_name=$(sed -n 's/^PRETTY_NAME=//p' "$OS_RELEASE" | tr -d '"' | head -n 1)
case " $os_id $os_like " in
  *" ubuntu "* | *" debian "*) say "OS: ${os_name:-$os_id} (supported)" ;;
  *) die "unsupported OS '${os_name:-$os_id}': this installer supports Ubuntu and Debian (apt, systemd). Elsewhere, follow docs/install.md by hand or use Dockerfile.cuda" ;;
esac
arch=$(uname -m)
case $arch in
  x86_64) node_arch=x64 ;;
  aarch64 | arm64) node_arch=arm64 ;;
  *) die "unsupported CPU architecture $arch (x86_64 and aarch64 only)" ;;
esac
if [ "$arch" != x86_64 ] && [ "$cuda" != none ]; then
  die "the CUDA provider builds exist for x86_64 only; on $arch use --cuda none (CPU)"
fi

step "check the NVIDIA driver"
driver_cuda=""
driver_version=""
if have nvidia-smi && smi_out=$(nvidia-smi 2>&1); then
  driver_cuda=$(printf '%s\n' "$smi_out" | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)
  driver_version=$(printf '%s\n' "$smi_out" | sed -n 's/.*Driver Version: *\([0-9.][0-9.]*\).*/\1/p' | head -n 1)
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  say "NVIDIA driver ${driver_version:-?}, supports CUDA ${driver_cuda:-?}; GPUs: ${gpus:-?}"
else
  if [ "$allow_no_gpu" = 1 ]; then
    say "NVIDIA driver: not found (nvidia-smi missing or failing); --allow-no-gpu: going on, the agent will serve on the CPU"
  else
    die "no working NVIDIA driver: nvidia-smi is missing or fails. Install the driver first (Ubuntu: sudo ubuntu-drivers install; Debian: nvidia-driver from non-free, or NVIDIA's CUDA repository), reboot, check that nvidia-smi lists the GPU, then re-run. To install for the CPU anyway: --allow-no-gpu"
  fi
fi
cuda_kept=0
if [ "$cuda" = auto ] && [ "$(env_file_value GPU_AGENT_PROVIDERS)" = cpu ]; then
  cuda=none
  cuda_kept=1
  say "CUDA provider: none (kept from $ENV_FILE: GPU_AGENT_PROVIDERS=cpu; --cuda auto|12|13 changes it)"
fi
if [ "$cuda" = auto ]; then
  if [ -z "$driver_cuda" ]; then
    cuda=13
    say "CUDA provider: 13 (the default; no driver to ask)"
  elif [ "${driver_cuda%%.*}" -ge 13 ]; then
    cuda=13
    say "CUDA provider: 13 (the driver supports CUDA $driver_cuda)"
  elif [ "${driver_cuda%%.*}" -eq 12 ]; then
    cuda=12
    say "CUDA provider: 12 (the driver supports CUDA $driver_cuda, below 13; downloads from NuGet)"
  else
    die "the driver supports CUDA $driver_cuda only; the agent needs CUDA 12 or 13: upgrade the NVIDIA driver (>= 580 for CUDA 13), or use --cuda none"
  fi
elif [ "$cuda_kept" = 0 ]; then
  say "CUDA provider: $cuda (--cuda $cuda)"
fi

resolve_settings

# check_port PORT ENV_NAME FLAG: free, or already this agent's; else stop with what to do.
check_port() {
  if ! have ss; then
    say "ss not found yet (iproute2 is installed below): port not checked"
  elif [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; then
    # In use: fine only when the listener is this agent (the service, or a process of its user).
    ours=0
    listener_pid=$(ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9][0-9]*\).*/\1/p' | head -n 1)
    if [ -n "$listener_pid" ] && [ "$(ps -o user= -p "$listener_pid" 2>/dev/null | tr -d ' ')" = "$AGENT_USER" ]; then
      ours=1
    elif [ "$existing_env" = 1 ] && [ "$(env_file_value "$2")" = "$1" ] &&
      systemctl is-active --quiet "$SERVICE.service" 2>/dev/null; then
      ours=1
    fi
    if [ "$ours" = 0 ]; then
      die "port $1 is already in use${listener_pid:+ (by pid $listener_pid: $(ps -o comm= -p "$listener_pid" 2>/dev/null))}: choose another with $3"
    fi
    say "port $1 is used by the running agent (user $AGENT_USER): this install replaces it"
  else
    say "port $1 is free"
  fi
}
step "check the ports $port (HTTP) and $grpc_port (gRPC)"
check_port "$port" GPU_AGENT_PORT --port
[ "$grpc_port" = 0 ] || check_port "$grpc_port" GPU_AGENT_GRPC_PORT --grpc-port

step "install missing tools"
missing_pkgs=()
have curl || missing_pkgs+=(curl)
have xz || missing_pkgs+=(xz-utils)
have openssl || missing_pkgs+=(openssl)
have ss || missing_pkgs+=(iproute2)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing_pkgs+=(ca-certificates)
# jemalloc for the agent (scripts/gpu-agent.sh preloads it): its RSS stays flat over model
# load/unload cycles where glibc's grows. The launcher's own lookup says whether it is there.
if [ "$allocator" = glibc ]; then
  say "allocator: glibc (--allocator glibc): libjemalloc2 not needed"
elif jemalloc=$(env -u LD_PRELOAD GPU_AGENT_ALLOCATOR=auto sh "$SRC_DIR/scripts/gpu-agent.sh" --print-allocator) && [ "${jemalloc%% *}" = jemalloc ]; then
  say "allocator: ${jemalloc} (GPU_AGENT_ALLOCATOR=$allocator)"
else
  say "allocator: libjemalloc.so.2 not found: installing libjemalloc2 (GPU_AGENT_ALLOCATOR=$allocator)"
  missing_pkgs+=(libjemalloc2)
fi
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  run apt-get update
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing_pkgs[@]}"
else
  say "curl, xz, openssl, ss and CA certificates are there"
fi

step "Node.js (>= $NODE_MIN)"
node_now=""
if have node; then node_now=$(node --version 2>/dev/null | sed 's/^v//'); fi
if [ -n "$node_now" ] && version_ge "$node_now" "$NODE_MIN"; then
  node_bin=$(command -v node)
  say "Node.js v$node_now at $node_bin is new enough: keeping it"
  case $node_bin in
    /root/* | /home/*) warn "$node_bin is in a home folder: the service user $AGENT_USER may not be allowed to run it. Prefer a system-wide Node.js (e.g. remove it from PATH and re-run: the nodejs.org tarball goes to $NODE_TARBALL_DIR)" ;;
  esac
else
  if [ -n "$node_now" ]; then
    say "Node.js v$node_now at $(command -v node) is older than $NODE_MIN: installing a newer one"
  else
    say "Node.js is not installed: installing it"
  fi
  src=$node_source
  if [ "$src" = auto ]; then
    apt_candidate=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *//p' | head -n 1)
    apt_version=$(printf '%s' "$apt_candidate" | sed 's/^[0-9]*://; s/[-+~].*//')
    if [ -n "$apt_version" ] && [ "$apt_candidate" != "(none)" ] && version_ge "$apt_version" "$NODE_MIN"; then
      src=apt
      say "the distribution's nodejs package is $apt_version (>= $NODE_MIN): using it"
    else
      src=tarball
      say "the distribution's nodejs package is ${apt_version:-absent} (< $NODE_MIN): using the official nodejs.org tarball"
    fi
  fi
  if [ "$src" = apt ]; then
    run apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
    node_bin=/usr/bin/node
  else
    dist=latest-v$NODE_TARBALL_LINE.x
    [ -z "$node_version" ] || dist=v$node_version
    base=https://nodejs.org/dist/$dist
    if [ "$dry" = 1 ]; then
      tarball=node-v${node_version:-$NODE_TARBALL_LINE.x.y}-linux-$node_arch.tar.xz
      run curl -fsSL "$base/SHASUMS256.txt" -o "/tmp/node-dl/SHASUMS256.txt"
      run curl -fsSL "$base/$tarball" -o "/tmp/node-dl/$tarball"
      printf '    [dry-run] (cd /tmp/node-dl && grep %s SHASUMS256.txt | sha256sum --check)\n' "' $tarball\$'"
      run tar -xJf "/tmp/node-dl/$tarball" -C "$NODE_TARBALL_DIR"
    else
      dl=$(mktemp -d)
      run curl -fsSL --retry 3 "$base/SHASUMS256.txt" -o "$dl/SHASUMS256.txt"
      tarball=$(awk '{print $2}' "$dl/SHASUMS256.txt" | grep -E "^node-v[0-9.]+-linux-$node_arch\.tar\.xz$" | head -n 1)
      [ -n "$tarball" ] || die "no linux-$node_arch tarball listed in $base/SHASUMS256.txt"
      run curl -fsSL --retry 3 "$base/$tarball" -o "$dl/$tarball"
      (cd "$dl" && grep " $tarball\$" SHASUMS256.txt | sha256sum --check --status) ||
        die "checksum mismatch for $tarball: not installed"
      say "checksum of $tarball matches SHASUMS256.txt"
      run mkdir -p "$NODE_TARBALL_DIR"
      run tar -xJf "$dl/$tarball" -C "$NODE_TARBALL_DIR"
      rm -rf "$dl"
    fi
    node_home=$NODE_TARBALL_DIR/${tarball%.tar.xz}
    for b in node npm npx; do
      run ln -sfn "$node_home/bin/$b" "/usr/local/bin/$b"
    done
    node_bin=/usr/local/bin/node
  fi
  if [ "$dry" = 0 ]; then
    node_now=$("$node_bin" --version 2>/dev/null | sed 's/^v//')
    version_ge "${node_now:-0}" "$NODE_MIN" || die "$node_bin is ${node_now:-missing} after the install, not >= $NODE_MIN"
    say "Node.js v$node_now at $node_bin"
  fi
fi
# This node (and its npm) first on PATH for the build below, whatever else PATH holds.
PATH=$(dirname "$node_bin"):$PATH
export PATH
hash -r

if [ "$dry" = 0 ] && ! have npm; then
  case $node_bin in
    /usr/bin/node) run env DEBIAN_FRONTEND=noninteractive apt-get install -y npm ;;
    *) die "npm is missing beside $node_bin: install it (it comes with the nodejs.org tarball)" ;;
  esac
fi

step "build the agent in $stage_dir (the running service, if any, keeps serving)"
if [ ! -f "$SRC_DIR/package.json" ] || [ ! -f "$SRC_DIR/scripts/install-cuda-provider.sh" ]; then
  die "$SRC_DIR does not look like a gpu-node-agent checkout (run this script from the repository)"
fi
run rm -rf "$stage_dir"
run mkdir -p "$stage_dir"
excludes=(--exclude=./node_modules --exclude=./dist --exclude=./.git --exclude=./.gpu --exclude=./coverage
  --exclude=./bench/results "--exclude=./models/*/[0-9]*/model.onnx" "--exclude=./$INSTALL_MARKER")
if [ "$dry" = 1 ]; then
  printf '    [dry-run] tar -C %s %s -cf - . | tar -C %s -xf -\n' "$(quote "$SRC_DIR")" "$(quote "${excludes[@]}")" "$(quote "$stage_dir")"
else
  printf '    + copy %s to %s (without node_modules, dist, .git, generated models)\n' "$SRC_DIR" "$stage_dir"
  tar -C "$SRC_DIR" "${excludes[@]}" -cf - . | tar -C "$stage_dir" --no-same-owner -xf -
fi
# --include=dev: the build (tsc) and the model generator (onnx-proto) need the dev dependencies,
# even when NODE_ENV=production is set; they are pruned right after.
run_in "$stage_dir" npm ci --include=dev --no-audit --no-fund
[ "$dry" = 1 ] || [ -f "$stage_dir/dist/src/cli.js" ] || run_in "$stage_dir" npm run build
run_in "$stage_dir" npm run models
run_in "$stage_dir" npm prune --omit=dev --no-audit --no-fund

# Folders holding the CUDA libraries that the dynamic loader does not find by itself (pip
# wheels, a CUDA toolkit not in ld.so.conf), for LD_LIBRARY_PATH in agent.env.
if [ "$cuda" != none ] && [ -z "$cuda_lib_path" ]; then
  step "look for the CUDA $cuda libraries"
  if [ "$cuda" = 13 ]; then
    libs=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcufft.so.12 libnvrtc.so.13 libcudnn.so.9)
  else
    libs=(libcudart.so.12 libcublas.so.12 libcublasLt.so.12 libcurand.so.10 libcufft.so.11 libnvrtc.so.12 libcudnn.so.9)
  fi
  # The ones the dynamic loader finds already (ld.so.conf) need nothing; the others are
  # looked for in one pass over the usual places (CUDA installs, pip wheels, virtualenvs).
  wanted=()
  for lib in "${libs[@]}"; do
    ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$lib " || wanted+=("$lib")
  done
  hits=""
  if [ ${#wanted[@]} -gt 0 ]; then
    names=()
    for lib in "${wanted[@]}"; do names+=(-o -name "$lib"); done
    hits=$(find /usr/local /opt /usr/lib /root /home -xdev -maxdepth 9 \( -type f -o -type l \) \
      \( "${names[@]:1}" \) 2>/dev/null || true)
  fi
  dirs=""
  for lib in "${wanted[@]}"; do
    hit=$(printf '%s\n' "$hits" | grep -m 1 "/$lib\$" || true)
    if [ -n "$hit" ]; then
      d=$(dirname "$hit")
      case ":$dirs:" in *":$d:"*) ;; *) dirs+=":$d" ;; esac
    else
      say "$lib: not found on this host (the agent falls back to the CPU until it is installed)"
    fi
  done
  cuda_lib_path=${dirs#:}
  if [ -n "$cuda_lib_path" ]; then
    say "LD_LIBRARY_PATH=$cuda_lib_path (written to $ENV_FILE)"
  else
    say "nothing to add to LD_LIBRARY_PATH"
  fi
fi

step "CUDA execution provider"
if [ "$cuda" = none ]; then
  say "--cuda none: not installed; the agent runs on the CPU (GPU_AGENT_PROVIDERS=cpu)"
else
  ort_rel=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
  old_marker=$prefix/$ort_rel/.gpu-agent-cuda-provider
  # Reuse the provider of the current install when it is the same build (saves ~200 MB of
  # download); install-cuda-provider.sh then only checks it.
  if [ -f "$old_marker" ] && [ -f "$prefix/node_modules/onnxruntime-node/package.json" ] &&
    cmp -s "$prefix/node_modules/onnxruntime-node/package.json" "$stage_dir/node_modules/onnxruntime-node/package.json"; then
    run cp -p "$prefix/$ort_rel/"libonnxruntime_providers_*.so "$old_marker" "$stage_dir/$ort_rel/"
  fi
  provider_args=(--cuda "$cuda" --dir "$stage_dir")
  [ "$dry" = 0 ] || provider_args+=(--dry-run)
  if [ "$dry" = 1 ]; then
    printf '    [dry-run] bash %s\n' "$(quote "$stage_dir/scripts/install-cuda-provider.sh" "${provider_args[@]}")"
    say "its plan:"
    bash "$SRC_DIR/scripts/install-cuda-provider.sh" "${provider_args[@]}" 2>&1 | sed 's/^/      | /'
  else
    provider_env=()
    [ -z "$cuda_lib_path" ] || provider_env=("LD_LIBRARY_PATH=$cuda_lib_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
    run env "${provider_env[@]}" bash "$stage_dir/scripts/install-cuda-provider.sh" "${provider_args[@]}"
  fi
fi

step "create the system user $AGENT_USER"
if getent passwd "$AGENT_USER" >/dev/null 2>&1; then
  say "user $AGENT_USER exists"
else
  run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
    --shell /usr/sbin/nologin --comment "gpu-node-agent" "$AGENT_USER"
fi
run install -d -m 0750 -o "$AGENT_USER" -g "$AGENT_USER" "$STATE_DIR"
run install -d -m 0750 -o root -g "$AGENT_USER" "$CONF_DIR"

step "install into $prefix"
if [ "$use_systemd" = 1 ] && { [ "$dry" = 1 ] || systemctl is-active --quiet "$SERVICE.service" 2>/dev/null; }; then
  [ "$dry" = 0 ] || say "(if the service is running: it drains for up to ${stop_timeout_s}s)"
  run systemctl stop "$SERVICE.service"
fi
if [ -e "$prefix" ] || [ "$dry" = 1 ]; then
  if [ -e "$prefix" ] && [ ! -e "$prefix/$INSTALL_MARKER" ]; then
    die "$prefix exists and was not installed by this script: choose another --prefix or move it away"
  fi
  run rm -rf "$previous_dir"
  [ "$dry" = 1 ] && [ ! -e "$prefix" ] && say "(when $prefix exists from an earlier install:)"
  run mv "$prefix" "$previous_dir"
fi
run mv "$stage_dir" "$prefix"
if [ "$dry" = 1 ]; then
  printf '    [dry-run] write %s\n' "$prefix/$INSTALL_MARKER"
else
  printf 'installed by scripts/install.sh on %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$prefix/$INSTALL_MARKER"
fi

step "models: $models"
if [ -e "$models" ]; then
  say "$models exists: used as it is"
  if [ "$dry" = 0 ] && ! runuser -u "$AGENT_USER" -- test -r "$models" -a -x "$models"; then
    warn "user $AGENT_USER cannot read $models: fix its permissions (e.g. chgrp -R $AGENT_USER $models && chmod -R g+rX $models)"
  fi
elif [ "$models" = "$DEFAULT_MODELS" ]; then
  say "first install: seeding it with the bundled example models"
  run cp -r "$prefix/models" "$models"
  run chown -R "root:$AGENT_USER" "$models"
  run chmod -R u=rwX,g=rX,o= "$models"
else
  warn "$models does not exist: creating it empty (put models there in Triton's layout, then: systemctl restart $SERVICE)"
  run install -d -m 0750 -o root -g "$AGENT_USER" "$models"
fi

step "settings: $ENV_FILE (API token $token_source)"
env_text | write_file "$ENV_FILE" 0640 "root:$AGENT_USER" 1

if [ "$use_systemd" = 0 ]; then
  step "no systemd (--no-systemd): start the agent yourself (stop an agent of an earlier install first: SIGTERM drains it)"
  cat <<EOF
    set -a; . $ENV_FILE; set +a
    runuser -u $AGENT_USER -- env GPU_AGENT_NODE=$(node_path) sh $prefix/scripts/gpu-agent.sh serve
EOF
  [ "$dry" = 1 ] || run rm -rf "$previous_dir"
  step "installed"
  exit 0
fi

step "systemd unit: $UNIT_FILE"
unit_text | write_file "$UNIT_FILE" 0644 root:root
run systemctl daemon-reload
run systemctl enable "$SERVICE.service"
run systemctl restart "$SERVICE.service"

url=http://127.0.0.1:$port/v2/health/ready
step "wait for $url (up to ${wait_timeout}s)"
if [ "$dry" = 1 ]; then
  say "[dry-run] poll: curl -fsS --max-time 2 $url, every second, for up to ${wait_timeout}s; stop early if the service fails"
  say "[dry-run] on success: rm -rf $previous_dir; on failure: print systemctl status and the last 50 log lines, keep $previous_dir to roll back"
  say "[dry-run] then poll $url?strict=true (every model READY) for up to ${wait_timeout}s; warn with the models not READY"
else
  ready=0
  for _ in $(seq 1 "$wait_timeout"); do
    if curl -fsS --max-time 2 -o /dev/null "$url" 2>/dev/null; then ready=1; break; fi
    systemctl is-failed --quiet "$SERVICE.service" && break
    sleep 1
  done
  if [ "$ready" = 0 ]; then
    systemctl status --no-pager "$SERVICE.service" >&2 || true
    journalctl -u "$SERVICE.service" -n 50 --no-pager >&2 || true
    if [ -d "$previous_dir" ]; then
      printf '%s: the previous install is in %s; to go back:\n  systemctl stop %s && rm -rf %s && mv %s %s && systemctl start %s\n' \
        "$PROG" "$previous_dir" "$SERVICE" "$prefix" "$previous_dir" "$prefix" "$SERVICE" >&2
    fi
    die "the agent did not answer $url within ${wait_timeout}s (logs above; journalctl -u $SERVICE)"
  fi
  say "ready"
  run rm -rf "$previous_dir"
  # Serving; now wait for the models too (strict readiness: every --load-models model READY).
  # A model that cannot load is reported, not fatal: the others are served.
  strict=0
  for _ in $(seq 1 "$wait_timeout"); do
    if curl -fsS --max-time 2 -o /dev/null "$url?strict=true" 2>/dev/null; then strict=1; break; fi
    sleep 1
  done
  if [ "$strict" = 1 ]; then say "every model is loaded"
  else warn "not every model is READY: $(curl -s --max-time 2 "$url?strict=true" 2>/dev/null) (see journalctl -u $SERVICE)"; fi
fi

case $host in
  127.* | localhost | ::1) host_ip=127.0.0.1 ;;
  *)
    host_ip=$(hostname -I 2>/dev/null | awk '{print $1}')
    host_ip=${host_ip:-<this-host>}
    ;;
esac
step "done: gpu-agent serves $models on port $port"
cat <<EOF
    health (no token):  curl -s http://$host_ip:$port/v2/health/ready
    gRPC (Triton's GRPCInferenceService): $host_ip:$grpc_port (0 = off); see README "gRPC API"
    models:             curl -s -X POST -H "Authorization: Bearer $token" http://$host_ip:$port/v2/repository/index
EOF
[ "$models" != "$DEFAULT_MODELS" ] || cat <<EOF
    a bundled model:    curl -s -H "Authorization: Bearer $token" http://$host_ip:$port/v2/models/add_sub
EOF
cat <<EOF
    logs:               journalctl -u $SERVICE -f
    settings:           $ENV_FILE (then: systemctl restart $SERVICE)
    upgrade:            git pull && sudo bash scripts/install.sh      uninstall: sudo bash scripts/install.sh --uninstall
EOF
[ "$dry" = 0 ] || printf '\n%s: dry run finished: nothing was changed.\n' "$PROG"
