# Shared by scripts/run and scripts/test: install what Burgernet needs on Debian 12, once.
# Sourced, not executed. Idempotent: a second run does nothing but check stamps.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP_DIR="$ROOT/var/.bootstrap"

# Debian packages: services the project starts itself (redis, postgresql for tests), the
# Asterisk sandbox builder (debootstrap), SIPp for call tests, audio tools for prompts, and
# Chromium for the browser tests (Playwright drives Debian's build; it never downloads one).
# Kamailio is the SIP edge (kamailio_conf); its base package already has every module we load
# (dispatcher, htable, pike, ipops, auth, usrloc, registrar, db_text). libssl-dev: the push
# worker's encryption is compiled against the system's OpenSSL at install (setup.py).
APT_PACKAGES=(
  python3 python3-venv python3-dev build-essential libssl-dev
  redis-server postgresql debootstrap sip-tester fail2ban kamailio
  espeak-ng ffmpeg sox
  chromium
)

log() { printf '\033[1m[burgernet]\033[0m %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    log "run this as root (it installs Debian packages and provisions the Asterisk sandbox)"
    exit 1
  fi
}

install_debian_packages() {
  local missing=()
  for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return
  fi
  need_root
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # No daemons are started by the packages' scripts in containers without an init system;
  # the project starts its own redis-server and PostgreSQL where it needs them.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Where an init system does start it, Debian's kamailio service would take port 5060 with the
  # sample configuration: the project starts its own Kamailio with its own rendered one.
  if [[ " ${missing[*]} " == *" kamailio "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now kamailio >/dev/null 2>&1 || true
  fi
}

install_node_packages() {
  # Front-end assets (Leaflet) come from npm and are served by the panel: no CDN at run time.
  if ! command -v npm >/dev/null 2>&1; then
    need_root
    log "installing Debian packages: nodejs npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  local wanted
  wanted="$(sha256sum "$ROOT/package-lock.json" | cut -c1-16)"
  if [ "$(cat "$STAMP_DIR/node" 2>/dev/null)" != "$wanted" ] || [ ! -d "$ROOT/node_modules" ]; then
    log "installing front-end packages (npm ci)"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$wanted" > "$STAMP_DIR/node"
  fi
}

install_python_packages() {
  # var/ is also the default data directory: created closed to others, as burgernet run would.
  (umask 027 && mkdir -p "$STAMP_DIR")
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtualenv in .venv"
    python3 -m venv "$VENV"
  fi
  local wanted
  # The compiled part's source is in the stamp too: a changed _webpush_seal.c is built again.
  wanted="$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" "$ROOT/setup.py" \
    "$ROOT/broadcasting/channels/_webpush_seal.c" | sha256sum | cut -c1-16)"
  if [ "$(cat "$STAMP_DIR/python" 2>/dev/null)" != "$wanted" ] \
    || ! compgen -G "$ROOT/broadcasting/channels/_webpush_seal.*.so" >/dev/null; then
    log "installing Python packages (pip install -e .[test])"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
    echo "$wanted" > "$STAMP_DIR/python"
  fi
}

bootstrap() {
  install_debian_packages
  install_python_packages
  install_node_packages
  export PATH="$VENV/bin:$PATH"
}
