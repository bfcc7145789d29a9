#!/usr/bin/env bash
# Build (and with PUSH=1, push) the deploy image only; components/build_images.sh documents
# the settings (PUSH, REGISTRY, TAG). build/images.json is written by a build of every step.
exec "$(dirname "$0")/../build_images.sh" deploy
