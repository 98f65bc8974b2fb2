#!/usr/bin/env bash
# The main job, from nothing: set-up and build, then show what Tern sees on this machine.
# Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${TERN_BUILD_DIR:-build}
"$BUILD_DIR/tern" --version
