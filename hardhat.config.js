// Hardhat 3 project for the Layermarket contracts.
//
// The compiler is the npm `solc` package's soljson.js (a WASM/asm.js build), named by `path`, so that
// compiling never downloads anything: the version below must equal the `solc` version pinned in
// package.json (a test in contracts/test/build.test.js checks it).
import { createRequire } from "node:module";
import { defineConfig } from "hardhat/config";
import hardhatEthers from "@nomicfoundation/hardhat-ethers";
import hardhatChaiMatchers from "@nomicfoundation/hardhat-ethers-chai-matchers";
import hardhatMocha from "@nomicfoundation/hardhat-mocha";
import hardhatNetworkHelpers from "@nomicfoundation/hardhat-network-helpers";

const require = createRequire(import.meta.url);

export const SOLC_VERSION = "0.8.30";

export default defineConfig({
  plugins: [hardhatEthers, hardhatChaiMatchers, hardhatMocha, hardhatNetworkHelpers],
  solidity: {
    version: SOLC_VERSION,
    path: require.resolve("solc/soljson.js"),
    settings: {
      optimizer: { enabled: true, runs: 10_000 },
      evmVersion: "cancun",
    },
  },
  paths: {
    sources: "contracts",
    tests: { mocha: "contracts/test" },
    cache: "cache",
    artifacts: "artifacts",
  },
  test: {
    mocha: { timeout: 60_000 },
  },
});
