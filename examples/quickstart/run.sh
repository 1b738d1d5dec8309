#!/usr/bin/env bash
# edgebuild quickstart: the whole job on a tiny generated operator, on this machine, offline.
#
#   1. start two local registries (Debian's docker-registry): an "upstream" and the mirror
#      (set MIRROR=host:port to use a mirror of your own instead);
#   2. generate a small operator catalog and its images, push them upstream;
#   3. edgebuild build: select bundles, mirror, render drop-in + manifests + blueprint, verify offline;
#   4. print where the blueprint is and how to build the image.
# Output goes to ./quickstart-out (or OUT=DIR). Registries started here are stopped on exit.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$PWD/quickstart-out}
WORK=$(mktemp -d /tmp/edgebuild-quickstart.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# scripts/setup.sh installs edgebuild into $REPO/.venv; an edgebuild on PATH serves otherwise
EDGEBUILD=${EDGEBUILD:-$REPO/.venv/bin/edgebuild}
[[ -x "$EDGEBUILD" ]] || EDGEBUILD=edgebuild
for tool in docker-registry skopeo "$EDGEBUILD"; do
  command -v "$tool" >/dev/null || { echo "quickstart: '$tool' is missing; run scripts/setup.sh first" >&2; exit 2; }
done

start_registry() {  # NAME -> prints host:port once the registry answers
  local name=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$WORK/$name"
  cat > "$WORK/$name/config.yml" <<CONF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/$name/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port, secret: quickstart-$name}
CONF
  docker-registry serve "$WORK/$name/config.yml" >"$WORK/$name/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null && break
    sleep 0.05
  done
  REGISTRY_ADDR=127.0.0.1:$port
}

start_registry upstream; UPSTREAM=$REGISTRY_ADDR
if [[ -n "${MIRROR:-}" ]]; then
  echo "quickstart: using your mirror $MIRROR"
else
  start_registry mirror; MIRROR=$REGISTRY_ADDR
fi
echo "quickstart: upstream registry $UPSTREAM, mirror $MIRROR"

python3 "$REPO/examples/quickstart/make_example.py" --upstream "$UPSTREAM" --workdir "$WORK" \
  --config "$WORK/imageset-config.yaml"

"$EDGEBUILD" build -c "$WORK/imageset-config.yaml" --to "docker://$MIRROR/edge" -o "$OUT" \
  --src-tls-verify=false --dest-tls-verify=false --insecure-mirror \
  --blueprint-name edgebuild-quickstart --distro rhel-94

cp "$WORK/imageset-config.yaml" "$OUT/imageset-config.yaml"
cat <<EOM

quickstart: done.
  blueprint:          $OUT/blueprint.toml
  device files:       $OUT/files/
  image list:         $OUT/images.json   (mapping: $OUT/mapping.txt)

The "next:" lines above build the image on a host with osbuild-composer (its worker must reach the mirror).
(The mirror this quickstart started is gone when it exits: point MIRROR=host:port at a lasting one.)
EOM
