#!/usr/bin/env bash
# Install what edgebuild and its tests need on Debian 12 (run as root): the registry, skopeo, podman
# (for the offline device check), htpasswd and openssl (auth/TLS tests), then edgebuild itself.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(docker-registry skopeo umoci apache2-utils openssl curl busybox-static tinyproxy
              podman buildah runc fuse-overlayfs slirp4netns uidmap catatonit iproute2 util-linux)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v kubectl >/dev/null || echo "setup: warning: kubectl not found; manifest checks need 'kubectl kustomize'" >&2

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
echo "setup: ok ($(python3 --version), $(skopeo --version), docker-registry $(dpkg-query -W -f='${Version}' docker-registry))"
