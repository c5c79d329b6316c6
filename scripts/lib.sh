# Shared helpers of latchkey's scripts. Source it; it defines functions only.

die() {
  echo "error: $*" >&2
  exit 1
}

step() {
  printf '\n==> %s\n' "$*" >&2
}

# apt_install DEBIAN_PACKAGE: installs the package with apt-get; fails loudly when that is
# not possible.
apt_install() {
  local package=$1
  command -v apt-get >/dev/null 2>&1 || die "$package is needed and apt-get is not available to install it"
  echo "installing $package" >&2
  if [[ -z "${LATCHKEY_APT_UPDATED:-}" ]]; then
    apt-get update -qq >&2 || die "apt-get update failed"
    export LATCHKEY_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2 \
    || die "apt-get could not install $package"
}

# ensure_command COMMAND DEBIAN_PACKAGE: installs the package when the command is missing.
ensure_command() {
  local command=$1 package=$2
  command -v "$command" >/dev/null 2>&1 && return 0
  apt_install "$package"
  command -v "$command" >/dev/null 2>&1 || die "$package installed but $command is still missing"
}

# pinned_venv VENV REQUIREMENTS: a Python venv at VENV with REQUIREMENTS installed, made
# or re-installed only when the file changed since (its SHA-256 is kept in the venv).
pinned_venv() {
  local venv=$1 requirements=$2
  local stamp="$venv/.requirements.sha256" want
  if [[ ! -x "$venv/bin/python" || ! -x "$venv/bin/pip" ]]; then
    echo "creating Python venv in $venv" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" || {
      rm -rf "$venv"
      die "'python3 -m venv $venv' failed (on Debian/Ubuntu install the python3-venv package)"
    }
  fi
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "installing $requirements into $venv" >&2
    rm -f "$stamp"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" \
      || die "pip could not install $requirements into $venv"
    echo "$want" >"$stamp"
  fi
}

# free_port: prints a TCP port that is free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# port_is_free PORT
port_is_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s.
wait_until() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# stop_process PID [SIGNALLED]: sends SIGTERM to SIGNALLED (default PID), waits up to 15 s
# for PID, a child of this shell, and returns its exit status. SIGNALLED differs from PID
# when PID is a wrapper such as `cargo run` that passes its child's status on.
stop_process() {
  local pid=$1 signalled=${2:-$1}
  kill -TERM "$signalled" 2>/dev/null || return 0
  local deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null
      echo "process $pid did not stop within 15 s of SIGTERM" >&2
      return 1
    fi
    sleep 0.1
  done
  wait "$pid"
}
