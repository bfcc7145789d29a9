#!/usr/bin/env bash
# Build every step image (or the steps named as arguments) and write build/images.json.
#
#   components/build_images.sh [step ...]        # steps: ingest transform tune train deploy
#
# Settings (environment; `make images` passes them):
#   BUILDER=docker      build with the local Docker engine (default), or
#   BUILDER=cloudbuild  build and push in Google Cloud Build (cloudbuild.yaml; needs gcloud)
#   PUSH=1              push to REGISTRY (default); PUSH=0 builds only (Docker)
#   REGISTRY=           where to push: the Pulumi stack output `registry_url`
#   TAG=                image tag (default: the commit, `git describe --always --dirty`)
#   PLATFORM=linux/amd64  the images' platform (default: that of Dataflow, Vertex AI and GKE
#                       nodes, also on an arm64 laptop, where building needs the engine's
#                       amd64 emulation; Docker Desktop has it). Cloud Build builds amd64.
#   SOURCE_URL=         org.opencontainers.image.source label (default: git remote origin)
#   REVISION=           org.opencontainers.image.revision label (default: git rev-parse HEAD)
#   OUT=build/images.json
#   BUILD_SERVICE_ACCOUNT=  BUILDER=cloudbuild: the account the build runs as (stack output
#                       build_service_account; `make images` reads it)
#   BUILD_SOURCE_BUCKET=    BUILDER=cloudbuild: gs:// bucket the source is uploaded to (stack
#                       output build_source_bucket; `make images` reads it)
#
# build/images.json maps each step (and `transform-worker`, the Dataflow SDK image) to
# `<registry>/<step>@sha256:<digest>` after a push, or with PUSH=0 to a local tag unique to
# the build, `<registry or localhost/crypto-kfp>/<step>:<first 12 hex of the image ID>`,
# and records the platform they were built for under the key `platform`.
# Image names come from components/images.py (standard library: any python3 will do).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
BUILDER="${BUILDER:-docker}"
PUSH="${PUSH:-1}"
REGISTRY="${REGISTRY:-}"
TAG="${TAG:-$(git describe --always --dirty --abbrev=12 2>/dev/null || echo dev)}"
OUT="${OUT:-build/images.json}"
PLATFORM="${PLATFORM:-linux/amd64}"
PYTHON3="${PYTHON3:-python3}"
BUILD_SERVICE_ACCOUNT="${BUILD_SERVICE_ACCOUNT:-}"
BUILD_SOURCE_BUCKET="${BUILD_SOURCE_BUCKET:-}"
REVISION="${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
SOURCE_URL="${SOURCE_URL:-$(git config --get remote.origin.url 2>/dev/null || true)}"
all_steps=(ingest transform tune train deploy)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${all_steps[@]}")
log() { echo "build_images: $*" >&2; }
die() { log "error: $*"; exit 2; }

case "$PUSH" in 1|true|yes) push=true ;; 0|false|no|"") push=false ;; *) die "PUSH=$PUSH: use 1 or 0" ;; esac
if $push && [ -z "$REGISTRY" ]; then
  die "pushing needs a registry: set REGISTRY= to the Pulumi stack output registry_url" \
      "(make images REGISTRY=\"\$(pulumi stack output registry_url)\"), or build only with PUSH=0"
fi
registry="${REGISTRY:-$("$PYTHON3" -c 'import sys; sys.path.insert(0, "components"); import images; print(images.DEFAULT_REGISTRY)')}"
# {name: <registry>/<name>:<tag>} for the steps and transform-worker, one "name ref" a line.
refs="$("$PYTHON3" components/images.py --registry "$registry" --tag "$TAG" |
  "$PYTHON3" -c 'import json, sys; [print(k, v) for k, v in json.load(sys.stdin).items()]')"
ref_of() { awk -v k="$1" '$1 == k { print $2 }' <<<"$refs"; }
deps="${registry%/}/deps:${TAG}"
base="${registry%/}/base:${TAG}"

write_images() {  # stdin: "name ref" lines -> $OUT with $PLATFORM, by components/images.py
  "$PYTHON3" -c '
import sys
sys.path.insert(0, "components")
import images
lines = dict(line.split() for line in sys.stdin if line.strip())
images.write_images(sys.argv[1], lines, sys.argv[2])
' "$OUT" "$PLATFORM"
  log "wrote $OUT"; cat "$OUT" >&2
}

if [ "$BUILDER" = cloudbuild ]; then
  $push || die "BUILDER=cloudbuild always pushes (its images live in REGISTRY); PUSH=0 needs BUILDER=docker"
  [ $# -eq 0 ] || die "BUILDER=cloudbuild builds every image; step arguments need BUILDER=docker"
  # Cloud Build's workers are amd64 machines: its images are linux/amd64, and only that.
  [ "$PLATFORM" = linux/amd64 ] || die "BUILDER=cloudbuild builds linux/amd64 only; PLATFORM=$PLATFORM needs BUILDER=docker"
  command -v gcloud >/dev/null || die "BUILDER=cloudbuild needs the gcloud CLI"
  [ -n "$BUILD_SERVICE_ACCOUNT" ] && [ -n "$BUILD_SOURCE_BUCKET" ] \
    || die "BUILDER=cloudbuild needs BUILD_SERVICE_ACCOUNT and BUILD_SOURCE_BUCKET (stack outputs build_service_account, build_source_bucket; make images reads them)"
  subs="_REGISTRY=${registry%/},_TAG=${TAG},_REVISION=${REVISION},_SOURCE_URL=${SOURCE_URL}"
  subs="${subs},_BUILD_SERVICE_ACCOUNT=${BUILD_SERVICE_ACCOUNT}"
  log "submitting cloudbuild.yaml (tag $TAG) to Cloud Build as $BUILD_SERVICE_ACCOUNT"
  build_id="$(gcloud builds submit --config cloudbuild.yaml --substitutions "$subs" \
    --gcs-source-staging-dir "${BUILD_SOURCE_BUCKET%/}/source" \
    --async --format 'value(id)' .)"
  gcloud builds log --stream "$build_id"
  status="$(gcloud builds describe "$build_id" --format 'value(status)')"
  [ "$status" = SUCCESS ] || die "Cloud Build $build_id ended $status"
  # results.images: the images listed under `images:` in cloudbuild.yaml, with their digests.
  gcloud builds describe "$build_id" --format json | "$PYTHON3" -c '
import json, sys
pushed = {i["name"]: i["digest"] for i in json.load(sys.stdin)["results"]["images"]}
for line in sys.argv[1].splitlines():
    name, ref = line.split()
    repo = ref.rsplit(":", 1)[0]
    print(name, f"{repo}@{pushed[ref]}")
' "$refs" | write_images
  exit 0
fi
[ "$BUILDER" = docker ] || die "BUILDER=$BUILDER: use docker or cloudbuild"
command -v docker >/dev/null || die "BUILDER=docker needs the docker CLI and an engine (or use BUILDER=cloudbuild)"

# Every build names its platform: without one, an arm64 laptop builds arm64 images, which
# Dataflow, Vertex AI and GKE nodes cannot run. Plain `docker build --platform` is enough
# for one platform, with the classic builder (Debian's docker.io) as with BuildKit (buildx).
engine_arch="$(docker info --format '{{.Architecture}}' 2>/dev/null || true)"
case "${PLATFORM#*/}:$engine_arch" in
  amd64*:x86_64|amd64*:amd64|arm64*:aarch64|arm64*:arm64|*:) ;;
  *) log "building $PLATFORM on a $engine_arch engine: RUN steps need its emulation" \
       "(Docker Desktop has it; Linux: binfmt/QEMU for ${PLATFORM#*/})" ;;
esac
labels=(--build-arg "REVISION=$REVISION" --build-arg "SOURCE_URL=$SOURCE_URL")
build() {  # build <what> <docker build args...>
  local what="$1" t0; shift
  t0=$(date +%s)
  docker build --quiet --platform "$PLATFORM" "${labels[@]}" "$@" . >/dev/null
  log "built $what for $PLATFORM in $(( $(date +%s) - t0 )) s"
}
build deps --file components/Dockerfile.base --target deps --tag "$deps"
build base --file components/Dockerfile.base --target base --tag "$base"
bases=(--build-arg "DEPS_IMAGE=$deps" --build-arg "BASE_IMAGE=$base")

out_lines=()
record() {  # record <name> <ref>: push or tag uniquely, then remember the runnable reference
  local name="$1" ref="$2" repo="${2%:*}" pinned id built
  # The image must be what images.json will say: <os>/<architecture> of PLATFORM.
  built="$(docker inspect --format '{{.Os}}/{{.Architecture}}' "$ref")"
  [ "$built" = "$(cut -d/ -f1,2 <<<"$PLATFORM")" ] || die "$name: built for $built, not $PLATFORM"
  if $push; then
    docker push --quiet "$ref" >/dev/null
    pinned="$(docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" |
      grep -m1 "^${repo}@sha256:")" || die "no registry digest for $ref after the push"
  else
    id="$(docker inspect --format '{{.Id}}' "$ref")"; id="${id#sha256:}"
    pinned="${repo}:${id:0:12}"
    docker tag "$ref" "$pinned"
  fi
  log "$name: $pinned ($(docker inspect --format '{{.Size}}' "$ref" | awk '{printf "%.0f MB", $1/1e6}'))"
  out_lines+=("$name $pinned")
}
for step in "${steps[@]}"; do
  ref="$(ref_of "$step")"; [ -n "$ref" ] || die "unknown step $step (steps: ${all_steps[*]})"
  build "$step" --file "components/$step/Dockerfile" --target "$step" "${bases[@]}" --tag "$ref"
  record "$step" "$ref"
  if [ "$step" = transform ]; then
    worker="$(ref_of transform-worker)"
    build transform-worker --file components/transform/Dockerfile --target transform-worker \
      "${bases[@]}" --tag "$worker"
    record transform-worker "$worker"
  fi
done
if [ ${#steps[@]} -eq ${#all_steps[@]} ]; then
  printf '%s\n' "${out_lines[@]}" | write_images
else
  log "built only ${steps[*]}: $OUT left as it was (it needs every step)"
  printf '%s\n' "${out_lines[@]}"
fi
