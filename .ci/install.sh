#!/usr/bin/env bash
# Install what the integration tests need (FUSE, curl/openssl, moto, boto3, Azurite, pjdfstest).
# Idempotent: every step checks first and only installs what is missing, so a second run
# takes about a second. Run as root on Debian 12; needs network only to package registries.
set -euo pipefail

log() { echo "[install] $*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "[install] must run as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------- Debian packages
# useradd is in 'passwd', runuser in 'util-linux', md5sum/id in 'coreutils', systemd-analyze
# (the unit tests' verifier) and systemd-escape in 'systemd'; setfacl in 'acl' and
# setfattr/getfattr in 'attr' (the xattr tests); s3fs for the interoperability test.
DEB_PKGS=(fuse3 libfuse3-dev pkg-config curl openssl util-linux procps passwd coreutils systemd media-types acl attr s3fs)
apt_updated=0
apt_install() { # apt_install PKG...  -- apt-get update once, then install
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
deb_missing() { # print the packages of "$@" that are not installed
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

mapfile -t missing < <(deb_missing "${DEB_PKGS[@]}")
if [ "${#missing[@]}" -gt 0 ]; then
  log "debian: installing ${missing[*]}"
  apt_install "${missing[@]}"
else
  log "debian: ${DEB_PKGS[*]} already installed"
fi

# /dev/fuse must exist for the mount tests (containers need --device /dev/fuse)
if [ -e /dev/fuse ]; then
  log "fuse: /dev/fuse present"
else
  log "fuse: WARNING /dev/fuse missing; mount tests will fail"
fi

# ---------------------------------------------------------------- Python: moto + boto3
PY=python3
if ! command -v "$PY" >/dev/null; then
  log "python: installing python3 + pip (debian)"
  apt_install python3 python3-pip python3-venv
fi
if moto_ver=$("$PY" -c 'import moto, flask, flask_cors; print(moto.__version__)' 2>/dev/null) &&
  command -v moto_server >/dev/null; then
  log "moto: $moto_ver already installed"
else
  log "moto: installing moto[server]"
  "$PY" -m pip install -q 'moto[server]' ||
    "$PY" -m pip install -q --break-system-packages 'moto[server]'
  command -v pyenv >/dev/null && pyenv rehash || true
fi
# boto3 bootstraps the moto-auth server (IAM user + key); moto[server] pulls it in.
if "$PY" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("boto3") is None)'; then
  log "boto3: already installed"
else
  log "boto3: installing"
  "$PY" -m pip install -q boto3 || "$PY" -m pip install -q --break-system-packages boto3
fi

# Deployment-file checkers (tests/cvat_recipe.rs): the compose spec's schema and Kubernetes'
# OpenAPI schemas, both bundled (no network at check time). PyYAML comes with them.
if command -v check-jsonschema >/dev/null && command -v kubernetes-validate >/dev/null; then
  log "check-jsonschema, kubernetes-validate: already installed"
else
  log "check-jsonschema, kubernetes-validate: installing"
  "$PY" -m pip install -q check-jsonschema kubernetes-validate ||
    "$PY" -m pip install -q --break-system-packages check-jsonschema kubernetes-validate
  command -v pyenv >/dev/null && pyenv rehash || true
fi

# ---------------------------------------------------------------- Node: Azurite
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "node: installing nodejs + npm (debian)"
  apt_install nodejs npm
fi
if command -v azurite-blob >/dev/null; then
  # version from package.json (running azurite-blob --version costs a node start)
  az_pkg=$(dirname "$(readlink -f "$(command -v azurite-blob)")")/../../../package.json
  az_ver=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$az_pkg" 2>/dev/null | head -1)
  log "azurite: ${az_ver:-?} already installed"
else
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  # 3.37.0 declares node >=22 but works on 20; 3.34.0 declares node >=10
  if [ "$node_major" -ge 20 ]; then azv=3.37.0; else azv=3.34.0; fi
  log "azurite: installing azurite@$azv (node $node_major)"
  npm install -g --no-fund --no-audit --loglevel=error "azurite@$azv" >/dev/null
fi

# ---------------------------------------------------------------- Node: google-drive-mock
# A third-party Drive v3 mock for the smoke test of tests/gdrive_mock.rs (the real Drive tests
# use the in-repo fake). `cors` is required by its dist/index.js but only a devDependency.
GDRIVE_MOCK_DIR=${GDRIVE_MOCK_DIR:-/opt/cloudmount-test/gdrive-mock}
if [ -f "$GDRIVE_MOCK_DIR/node_modules/google-drive-mock/package.json" ] &&
  [ -f "$GDRIVE_MOCK_DIR/node_modules/cors/package.json" ]; then
  log "google-drive-mock: already installed in $GDRIVE_MOCK_DIR"
else
  log "google-drive-mock: installing 1.2.0 into $GDRIVE_MOCK_DIR"
  mkdir -p "$GDRIVE_MOCK_DIR"
  npm install --prefix "$GDRIVE_MOCK_DIR" --no-fund --no-audit --loglevel=error \
    google-drive-mock@1.2.0 express@5.2.1 cors@2.8.6 >/dev/null
fi

# ---------------------------------------------------------------- pjdfstest (POSIX suite)
export PATH="$HOME/.cargo/bin:$PATH"
PJD_VERSION=0.2.2
if pjdfstest --version 2>/dev/null | grep -q "$PJD_VERSION"; then
  log "pjdfstest: $PJD_VERSION already installed"
else
  log "pjdfstest: installing $PJD_VERSION (cargo install, about 2 minutes)"
  cargo install --quiet --locked --version "$PJD_VERSION" pjdfstest
fi

# ---------------------------------------------------------------- final check
for c in fusermount3 pkg-config curl openssl md5sum runuser useradd moto_server azurite-blob pjdfstest check-jsonschema kubernetes-validate nsenter unshare script; do
  command -v "$c" >/dev/null || { echo "[install] ERROR: $c not found on PATH" >&2; exit 1; }
done
log "done"
