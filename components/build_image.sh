#!/usr/bin/env bash
# Build and push one step's image: components/build_image.sh <step> [--no-push]
# The image name is components.images.image_for(<step>): set CRYPTO_KFP_REGISTRY (the
# Pulumi output registry_url) and CRYPTO_KFP_IMAGE_TAG first. The shared base image
# (components/Dockerfile.base) is built first; Docker's cache makes that free after the
# first step. Needs a Docker engine and, for Artifact Registry,
# `gcloud auth configure-docker <region>-docker.pkg.dev`.
set -euo pipefail
step="${1:?usage: build_image.sh <step> [--no-push]}"
push=true
[ "${2:-}" = "--no-push" ] && push=false
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
image="$("$python" -c "from components.images import image_for; print(image_for('$step'))")"
base="${image%/*}/base:${image##*:}"
docker build --file "$root/components/Dockerfile.base" --tag "$base" "$root"
echo "building $image from components/$step/Dockerfile"
docker build --file "$root/components/$step/Dockerfile" --build-arg "BASE_IMAGE=$base" \
  --tag "$image" "$root"
if $push; then
  docker push "$image"
fi
