#!/usr/bin/env bash
# Install what edgebuild and its tests need on Debian 12 (run as root): the registry, skopeo, podman
# (for the offline device check), htpasswd and openssl (auth/TLS tests), then edgebuild itself into a
# virtual environment (.venv in this checkout), because Debian's python3 refuses pip installs into the
# system (PEP 668, "externally-managed-environment").
#
# Afterwards:  .venv/bin/python -m pytest -q      the tests
#              edgebuild ...                       a link in /usr/local/bin to .venv/bin/edgebuild
# Environment: PYTHON (interpreter, default python3), EDGEBUILD_VENV (default ./.venv),
#              EDGEBUILD_BIN_DIR (where the edgebuild link goes, default /usr/local/bin; empty: no link).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
python=${PYTHON:-python3}
venv=${EDGEBUILD_VENV:-$repo/.venv}
bin_dir=${EDGEBUILD_BIN_DIR-/usr/local/bin}

apt_install() {  # PACKAGE... : install with apt, quietly, once the lists are fresh
  echo "setup: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

apt_packages=(docker-registry skopeo umoci apache2-utils openssl curl busybox-static tinyproxy
              podman buildah runc fuse-overlayfs slirp4netns uidmap catatonit iproute2 util-linux systemd)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v "$python" >/dev/null || missing+=(python3)
if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
command -v kubectl >/dev/null || echo "setup: warning: kubectl not found; manifest checks need 'kubectl kustomize'" >&2

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: $("$python" --version 2>&1) is too old: edgebuild needs Python 3.11 or newer (set PYTHON=...)" >&2
  exit 2
fi
# Debian splits venv's pip bootstrap (ensurepip) into python3-venv / python3.N-venv.
if [[ ! -x "$venv/bin/python" ]] && ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  apt_install python3-venv "python3.$("$python" -c 'import sys; print(sys.version_info[1])')-venv"
fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'

if [[ -n "$bin_dir" ]] && mkdir -p "$bin_dir" 2>/dev/null && [[ -w "$bin_dir" ]]; then
  ln -sfn "$venv/bin/edgebuild" "$bin_dir/edgebuild"
  found=$(command -v edgebuild || true)
  if [[ "$found" != "$bin_dir/edgebuild" ]]; then
    echo "setup: note: 'edgebuild' on your PATH is ${found:-missing}, not $bin_dir/edgebuild;" \
         "put $bin_dir first in PATH or run $venv/bin/edgebuild" >&2
  fi
else
  echo "setup: note: no link to edgebuild made; run $venv/bin/edgebuild or add $venv/bin to PATH" >&2
fi
echo "setup: ok ($("$venv/bin/python" --version) in $venv, $(skopeo --version)," \
     "docker-registry $(dpkg-query -W -f='${Version}' docker-registry))"
echo "setup: tests: $venv/bin/python -m pytest -q"
