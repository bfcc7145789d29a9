#!/usr/bin/env bash
# A container registry on 127.0.0.1:5000 for `make test-images` in CI: the images are pushed
# there, so build/images.json holds real registry digests and the pipeline runs pinned to
# them, as on a cluster. Debian's docker-registry (the CNCF distribution registry); Docker
# trusts a registry on localhost without TLS.
#
#   .ci/local-registry.sh          # installs it if missing, starts it; idempotent
#   .ci/local-registry.sh --stop   # stops the registry this script started
set -euo pipefail
DIR="${REGISTRY_DIR:-/tmp/crypto-kfp-registry}"
ADDR="127.0.0.1:5000"
log() { echo "local-registry: $*" >&2; }
up() { curl -fsS "http://$ADDR/v2/" >/dev/null 2>&1; }

if [ "${1:-}" = "--stop" ]; then
  if [ -f "$DIR/pid" ]; then kill "$(cat "$DIR/pid")" 2>/dev/null || true; rm -f "$DIR/pid"; fi
  log "stopped"
  exit 0
fi
if up; then log "already answering at $ADDR"; exit 0; fi
if ! command -v docker-registry >/dev/null; then
  log "installing Debian's docker-registry"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
  # The package starts a system service on :5000; this script runs its own instead.
  systemctl stop docker-registry 2>/dev/null || service docker-registry stop 2>/dev/null || true
fi
mkdir -p "$DIR/data"
cat >"$DIR/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
http:
  addr: $ADDR
YAML
nohup docker-registry serve "$DIR/config.yml" >"$DIR/registry.log" 2>&1 &
echo $! >"$DIR/pid"
for _ in $(seq 40); do up && break; sleep 0.25; done
up || { log "did not start; see $DIR/registry.log"; tail -5 "$DIR/registry.log" >&2; exit 1; }
log "answering at $ADDR (pid $(cat "$DIR/pid"))"
