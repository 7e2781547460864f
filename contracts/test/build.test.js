import { createRequire } from "node:module";
import { expect } from "chai";
import hre from "hardhat";
import { SOLC_VERSION } from "../../hardhat.config.js";

const require = createRequire(import.meta.url);

describe("build", function () {
  it("hardhat.config.js names the same solc version as the npm solc package it compiles with", function () {
    expect(require("solc/package.json").version).to.equal(SOLC_VERSION);
  });
});

describe("exported ABIs", function () {
  it("protocol/abi/*.json equal a fresh export of the Hardhat artifacts (run export-abi.js when this fails)", async function () {
    // --coverage compiles instrumented bytecode into artifacts/: nothing to compare with then.
    if (hre.globalOptions.coverage === true) this.skip();
    const { readFileSync } = await import("node:fs");
    const { CONTRACTS, abiPath, exportText } = await import("../scripts/export-abi.js");
    for (const name of Object.keys(CONTRACTS)) {
      expect(readFileSync(abiPath(name), "utf8"), `${name}: run node contracts/scripts/export-abi.js`).to.equal(exportText(name));
    }
  });
});
