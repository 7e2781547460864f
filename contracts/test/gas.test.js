// Measures the gas of each user action on Hardhat's network and prints the table that docs/CONTRACTS.md
// reproduces (also written to cache/gas-table.md). Asserts the per-job settlement goal.
import { mkdirSync, writeFileSync } from "node:fs";
import { expect } from "chai";
import hre from "hardhat";
import {
  PARAMS, TOKEN, bondNode, bondValidators, commit, deployAll, ethers, loadFixture, now, receipt, signReceipt,
  signVoucher, time,
} from "./fixtures.js";

const gas = async (txPromise) => (await (await txPromise).wait()).gasUsed;

describe("gas", function () {
  it("gas table, and settlement under 2,000 gas per job at 100 jobs per voucher", async function () {
    const f = await loadFixture(deployAll);
    const rows = [];
    const row = (op, g, note = "") => rows.push({ op, gas: g, note });

    row("bond (first)", await gas(f.staking.connect(f.node1).bond(1000n * TOKEN)), "new stake slot");
    row("bond (top-up)", await gas(f.staking.connect(f.node1).bond(1n * TOKEN)));
    await f.staking.connect(f.node1).register({
      peerId: ethers.toUtf8Bytes("12D3KooWExamplePeerIdOfAboutThirtyEightB"), modelId: ethers.id("m"), layerStart: 0,
      layerEnd: 8, pricePerToken: 1000n, endpointHash: ethers.id("e"),
    });
    row("unbond", await gas(f.staking.connect(f.node1).unbond(1n * TOKEN)));
    row("deposit (first)", await gas(f.escrow.connect(f.client1).deposit(500_000n * TOKEN)));
    row("deposit (top-up)", await gas(f.escrow.connect(f.client1).deposit(1n * TOKEN)));

    const expiry = async () => (await now()) + 3600n;
    const v = async (ch, cum) => {
      const vo = { client: f.client1.address, payee: f.node1.address, channelId: ch, cumulativeAmount: cum, expiry: await expiry() };
      return [vo, await signVoucher(f.escrow, f.client1, vo)];
    };
    let [vo, sig] = await v(ethers.id("single"), 100n);
    row("redeem (new channel)", await gas(f.escrow.connect(f.node1).redeem(vo, sig)), "first voucher of a channel");
    [vo, sig] = await v(ethers.id("single"), 200n);
    const redeemUpdate = await gas(f.escrow.connect(f.node1).redeem(vo, sig));
    row("redeem (existing channel)", redeemUpdate, "steady state: newest voucher of a live channel");

    for (const n of [10, 100]) {
      for (const phase of ["new", "existing"]) {
        const vs = [];
        const ss = [];
        for (let i = 0; i < n; i++) {
          const [a, b] = await v(ethers.id(`batch-${n}-${i}`), phase === "new" ? 100n : 200n);
          vs.push(a);
          ss.push(b);
        }
        const g = await gas(f.escrow.connect(f.node1).redeemBatch(vs, ss));
        row(`redeemBatch of ${n} (${phase} channels)`, g, `${g / BigInt(n)} per voucher`);
      }
    }

    await bondValidators(f.court, [f.v1, f.v2, f.v3]);
    const rc = receipt(f.node1, f.client1);
    const rsig = await signReceipt(f.court, f.node1, rc);
    const digest = await f.court.receiptDigestOf(rc);
    const salt = ethers.id("s");
    const commitment = ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(
      ["address", "bytes32", "bytes32", "bytes32"], [f.challenger.address, digest, ethers.keccak256("0x1234"), salt]));
    row("commitChallenge", await gas(f.court.connect(f.challenger).commitChallenge(commitment)));
    row("challenge", await gas(f.court.connect(f.challenger).challenge(rc, rsig, "0x1234", salt)), "2-byte evidence");
    row("vote", await gas(f.court.connect(f.v1).vote(digest, true)));
    await f.court.connect(f.v2).vote(digest, true);
    await f.court.connect(f.v3).vote(digest, true);
    await time.increase(PARAMS.court.votingPeriod + 1n);
    row("resolve (upheld: slash + jail)", await gas(f.court.resolve(digest)));
    void commit;

    const perJobSingle = redeemUpdate / 100n;
    const batch100 = rows.find((r) => r.op === "redeemBatch of 100 (existing channels)").gas;
    const perJobBatch = batch100 / 100n / 100n;
    row("per settled job, 100 jobs per voucher, redeem", perJobSingle, "redeem (existing channel) / 100");
    row("per settled job, 100 jobs per voucher, redeemBatch of 100", perJobBatch, "batch of 100 / 10,000 jobs");

    const table = ["| operation | gas | note |", "| --- | ---: | --- |",
      ...rows.map((r) => `| ${r.op} | ${r.gas.toLocaleString("en-US")} | ${r.note} |`)].join("\n");
    // Under --coverage the contracts are instrumented and cost more: that table is neither printed nor recorded.
    if (hre.globalOptions.coverage !== true) {
      mkdirSync("cache", { recursive: true });
      writeFileSync("cache/gas-table.md", table + "\n");
      console.log(`\n${table}\n`);
    }
    expect(perJobSingle).to.be.lessThan(2000n);
    expect(perJobBatch).to.be.lessThan(2000n);
  });
});
