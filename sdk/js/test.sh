#!/usr/bin/env bash
# Builds plugboard and runs the JavaScript client's tests against it.
# Usage: sdk/js/test.sh   (needs Go and Node.js 18 or later)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
go build -o "$bin_dir/plugboard" ./cmd/plugboard
PLUGBOARD_BIN="$bin_dir/plugboard" node --test sdk/js/test/
