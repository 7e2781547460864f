// Exports the ABI and creation bytecode of the deployable contracts from Hardhat's artifacts into
// protocol/abi/<Contract>.json, which the Python package (protocol.chain) loads. Never hand-edit those files.
//
//   node contracts/scripts/export-abi.js          write protocol/abi/*.json (run after `hardhat build`)
//   node contracts/scripts/export-abi.js --check  exit 1 if a committed file differs from a fresh export
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export const CONTRACTS = {
  MarketToken: "contracts/token/MarketToken.sol",
  NodeStaking: "contracts/staking/NodeStaking.sol",
  PaymentEscrow: "contracts/escrow/PaymentEscrow.sol",
  SpotCheckCourt: "contracts/court/SpotCheckCourt.sol",
};

/** The JSON text the Python package should hold for `name`, built from its Hardhat artifact. */
export function exportText(name) {
  const artifactPath = path.join(root, "artifacts", CONTRACTS[name], `${name}.json`);
  if (!existsSync(artifactPath)) throw new Error(`no artifact ${artifactPath}: run hardhat build first`);
  const a = JSON.parse(readFileSync(artifactPath, "utf8"));
  const out = { contractName: a.contractName, sourceName: a.sourceName, abi: a.abi, bytecode: a.bytecode };
  return JSON.stringify(out, null, 1) + "\n";
}

export function abiPath(name) {
  return path.join(root, "protocol", "abi", `${name}.json`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes("--check");
  let stale = 0;
  for (const name of Object.keys(CONTRACTS)) {
    const text = exportText(name);
    const target = abiPath(name);
    if (check) {
      if (!existsSync(target) || readFileSync(target, "utf8") !== text) {
        console.error(`stale: ${path.relative(root, target)} (run: node contracts/scripts/export-abi.js)`);
        stale += 1;
      }
    } else {
      writeFileSync(target, text);
    }
  }
  process.exit(stale === 0 ? 0 : 1);
}
