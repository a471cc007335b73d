#!/usr/bin/env bash
# The README's first command: set up what is missing, then run a supervisor node in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx scripts/start-node.ts
