#!/usr/bin/env bash
# Build and push the transform image (components/build_image.sh documents the settings).
exec "$(dirname "$0")/../build_image.sh" transform "$@"
