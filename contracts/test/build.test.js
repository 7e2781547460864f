import { createRequire } from "node:module";
import { expect } from "chai";
import { SOLC_VERSION } from "../../hardhat.config.js";

const require = createRequire(import.meta.url);

describe("build", function () {
  it("hardhat.config.js names the same solc version as the npm solc package it compiles with", function () {
    expect(require("solc/package.json").version).to.equal(SOLC_VERSION);
  });
});
