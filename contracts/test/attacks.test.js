// The attack checklist of the contracts issue: one describe per point, each test named after the rule.
import { expect } from "chai";
import {
  DAY, PARAMS, TOKEN, bondNode, bondValidators, commit, conn, deployAll, domainOf, ethers, loadFixture, now,
  openChallenge, receipt, signReceipt, signVoucher, time, toHighS, voucher, VOUCHER_TYPES,
} from "./fixtures.js";

async function ready() {
  const f = await deployAll();
  await bondNode(f.staking, f.node1);
  await f.escrow.connect(f.client1).deposit(1000n * TOKEN);
  await bondValidators(f.court, [f.v1, f.v2, f.v3, f.v4]);
  return f;
}

async function secondEscrow(f) {
  return ethers.deployContract("PaymentEscrow", [
    f.token, f.staking, f.owner.address, PARAMS.thawPeriod, PARAMS.maxVoucherValidity, PARAMS.feeBps, f.court,
  ]);
}

describe("attack checklist", function () {
  describe("1. replay across chains and contracts", function () {
    it("a voucher signed for another escrow contract is rejected", async function () {
      const f = await loadFixture(ready);
      const other = await secondEscrow(f);
      await f.token.connect(f.client1).approve(await other.getAddress(), ethers.MaxUint256);
      await other.connect(f.client1).deposit(100n * TOKEN);
      const v = await voucher(f.client1, f.node1, 10n * TOKEN);
      const sigForFirst = await signVoucher(f.escrow, f.client1, v);
      await expect(other.connect(f.node1).redeem(v, sigForFirst))
        .to.be.revertedWithCustomError(other, "EscrowInvalidSignature")
        .withArgs(f.client1.address);
    });

    it("a voucher signed for another chain id is rejected", async function () {
      const f = await loadFixture(ready);
      const v = await voucher(f.client1, f.node1, 10n * TOKEN);
      const domain = { ...(await domainOf(f.escrow)), chainId: 1n };
      const sig = await f.client1.signTypedData(domain, VOUCHER_TYPES, v);
      await expect(f.escrow.connect(f.node1).redeem(v, sig)).to.be.revertedWithCustomError(f.escrow, "EscrowInvalidSignature");
    });

    it("a receipt signed for another court, or for the escrow's domain, cannot be challenged here", async function () {
      const f = await loadFixture(ready);
      const r = receipt(f.node1, f.client1);
      const { RECEIPT_TYPES } = await import("./fixtures.js");
      const wrongDomain = await f.node1.signTypedData(await domainOf(f.escrow), RECEIPT_TYPES, r);
      const c = await commit(f.court, f.challenger, r);
      await expect(f.court.connect(f.challenger).challenge(r, wrongDomain, c.evidence, c.salt))
        .to.be.revertedWithCustomError(f.court, "CourtInvalidReceiptSignature");
    });
  });

  describe("2. replay of a voucher, or a lower cumulative after a higher one", function () {
    it("the same voucher redeemed twice pays once", async function () {
      const f = await loadFixture(ready);
      const v = await voucher(f.client1, f.node1, 10n * TOKEN);
      const sig = await signVoucher(f.escrow, f.client1, v);
      await f.escrow.connect(f.node1).redeem(v, sig);
      const key = await f.escrow.channelKey(f.client1.address, f.node1.address, v.channelId);
      await expect(f.escrow.connect(f.node1).redeem(v, sig))
        .to.be.revertedWithCustomError(f.escrow, "EscrowNothingToRedeem")
        .withArgs(key, 10n * TOKEN, 10n * TOKEN);
    });

    it("a lower cumulative voucher after a higher one pays nothing", async function () {
      const f = await loadFixture(ready);
      const hi = await voucher(f.client1, f.node1, 20n * TOKEN);
      const lo = await voucher(f.client1, f.node1, 5n * TOKEN);
      await f.escrow.connect(f.node1).redeem(hi, await signVoucher(f.escrow, f.client1, hi));
      await expect(f.escrow.connect(f.node1).redeem(lo, await signVoucher(f.escrow, f.client1, lo)))
        .to.be.revertedWithCustomError(f.escrow, "EscrowNothingToRedeem");
      expect((await f.escrow.account(f.client1.address)).balance).to.equal(980n * TOKEN);
    });

    it("channels are independent: another channel id starts from zero", async function () {
      const f = await loadFixture(ready);
      const a = await voucher(f.client1, f.node1, 20n * TOKEN);
      const b = await voucher(f.client1, f.node1, 5n * TOKEN, { channelId: ethers.id("channel-2") });
      await f.escrow.connect(f.node1).redeem(a, await signVoucher(f.escrow, f.client1, a));
      await f.escrow.connect(f.node1).redeem(b, await signVoucher(f.escrow, f.client1, b));
      expect((await f.escrow.account(f.client1.address)).balance).to.equal(975n * TOKEN);
    });
  });

  describe("3. malleable high-s signatures and signatures not 65 bytes", function () {
    it("the high-s twin of a valid voucher signature is rejected", async function () {
      const f = await loadFixture(ready);
      const v = await voucher(f.client1, f.node1, 10n * TOKEN);
      const sig = await signVoucher(f.escrow, f.client1, v);
      expect(toHighS(sig)).to.not.equal(sig);
      await expect(f.escrow.connect(f.node1).redeem(v, toHighS(sig)))
        .to.be.revertedWithCustomError(f.escrow, "EscrowInvalidSignature");
    });

    it("64-byte (EIP-2098 compact), 66-byte and empty signatures are rejected", async function () {
      const f = await loadFixture(ready);
      const v = await voucher(f.client1, f.node1, 10n * TOKEN);
      const sig = await signVoucher(f.escrow, f.client1, v);
      const compact = ethers.Signature.from(sig).compactSerialized;
      for (const bad of [compact, ethers.concat([sig, "0x00"]), "0x"]) {
        await expect(f.escrow.connect(f.node1).redeem(v, bad))
          .to.be.revertedWithCustomError(f.escrow, "EscrowInvalidSignature");
      }
    });

    it("a receipt with a high-s or short node signature cannot be challenged", async function () {
      const f = await loadFixture(ready);
      const r = receipt(f.node1, f.client1);
      const sig = await signReceipt(f.court, f.node1, r);
      for (const bad of [toHighS(sig), ethers.Signature.from(sig).compactSerialized]) {
        const c = await commit(f.court, f.challenger, r);
        await expect(f.court.connect(f.challenger).challenge(r, bad, c.evidence, c.salt))
          .to.be.revertedWithCustomError(f.court, "CourtInvalidReceiptSignature");
      }
    });
  });

  describe("4. dust front-running of a redemption", function () {
    it("nobody but the payee can redeem, so nobody can force a redemption at a bad time", async function () {
      const f = await loadFixture(ready);
      const v = await voucher(f.client1, f.node1, 10n * TOKEN);
      const sig = await signVoucher(f.escrow, f.client1, v);
      await expect(f.escrow.connect(f.outsider).redeem(v, sig)).to.be.revertedWithCustomError(
        f.escrow, "EscrowPayeeNotPayable");
      await bondNode(f.staking, f.node2); // even a bonded node cannot redeem another payee's voucher
      await expect(f.escrow.connect(f.node2).redeem(v, sig)).to.be.revertedWithCustomError(f.escrow, "EscrowNotPayee");
      await expect(f.escrow.connect(f.node2).redeemBatch([v], [sig]))
        .to.emit(f.escrow, "VoucherRejected")
        .withArgs(0, f.escrow.interface.getError("EscrowNotPayee").selector);
    });

    it("an older dust voucher redeemed first does not reduce what the newest voucher pays in total", async function () {
      const f = await loadFixture(ready);
      const dust = await voucher(f.client1, f.node1, 1n);
      const full = await voucher(f.client1, f.node1, 100n * TOKEN);
      const before = await f.token.balanceOf(f.node1.address);
      await f.escrow.connect(f.node1).redeem(dust, await signVoucher(f.escrow, f.client1, dust));
      await f.escrow.connect(f.node1).redeem(full, await signVoucher(f.escrow, f.client1, full));
      const fees = await f.escrow.accruedFees();
      expect((await f.token.balanceOf(f.node1.address)) - before + fees).to.equal(100n * TOKEN);
    });

    it("a batch whose voucher was already redeemed (front-run) still pays the others", async function () {
      const f = await loadFixture(ready);
      const a = await voucher(f.client1, f.node1, 10n * TOKEN);
      const b = await voucher(f.client1, f.node1, 7n * TOKEN, { channelId: ethers.id("b") });
      const sa = await signVoucher(f.escrow, f.client1, a);
      const sb = await signVoucher(f.escrow, f.client1, b);
      await f.escrow.connect(f.node1).redeem(a, sa);
      await expect(f.escrow.connect(f.node1).redeemBatch([a, b], [sa, sb]))
        .to.emit(f.escrow, "VoucherRejected")
        .withArgs(0, f.escrow.interface.getError("EscrowNothingToRedeem").selector);
      expect(await f.escrow.redeemed(f.client1.address, f.node1.address, b.channelId)).to.equal(7n * TOKEN);
    });
  });

  describe("5. front-running a challenger's reward", function () {
    it("a copier replaying the challenge from its own address has no prior commitment", async function () {
      const f = await loadFixture(ready);
      const r = receipt(f.node1, f.client1);
      const sig = await signReceipt(f.court, f.node1, r);
      const c = await commit(f.court, f.challenger, r);
      await expect(f.court.connect(f.outsider).challenge(r, sig, c.evidence, c.salt))
        .to.be.revertedWithCustomError(f.court, "CourtNoPriorCommitment");
      await f.court.connect(f.challenger).challenge(r, sig, c.evidence, c.salt);
      expect((await f.court.challengeOf(c.digest)).challenger).to.equal(f.challenger.address);
    });

    it("a commitment and its reveal in the same block are refused", async function () {
      const f = await loadFixture(ready);
      const r = receipt(f.node1, f.client1);
      const sig = await signReceipt(f.court, f.node1, r);
      const digest = await f.court.receiptDigestOf(r);
      const salt = ethers.id("copier");
      const evidence = "0x1234";
      const commitment = ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(
        ["address", "bytes32", "bytes32", "bytes32"], [f.outsider.address, digest, ethers.keccak256(evidence), salt]));
      await conn.provider.request({ method: "evm_setAutomine", params: [false] });
      try {
        const t1 = await f.court.connect(f.outsider).commitChallenge(commitment, { gasLimit: 100_000 });
        const t2 = await f.court.connect(f.outsider).challenge(r, sig, evidence, salt, { gasLimit: 500_000 });
        await conn.provider.request({ method: "evm_mine", params: [] });
        expect((await ethers.provider.getTransactionReceipt(t1.hash)).status).to.equal(1);
        expect((await ethers.provider.getTransactionReceipt(t2.hash)).status).to.equal(0);
      } finally {
        await conn.provider.request({ method: "evm_setAutomine", params: [true] });
      }
      expect((await f.court.challengeOf(digest)).status).to.equal(0n);
    });

    it("the reward goes to the committed challenger even if a copier also commits later", async function () {
      const f = await loadFixture(ready);
      const r = receipt(f.node1, f.client1);
      const digest = await openChallenge(f.court, f.challenger, f.node1, r);
      const sig = await signReceipt(f.court, f.node1, r);
      const c = await commit(f.court, f.outsider, r);
      await expect(f.court.connect(f.outsider).challenge(r, sig, c.evidence, c.salt))
        .to.be.revertedWithCustomError(f.court, "CourtAlreadyChallenged");
      for (const v of [f.v1, f.v2, f.v3]) await f.court.connect(v).vote(digest, true);
      await time.increase(PARAMS.court.votingPeriod + 1n);
      await f.court.resolve(digest);
      expect(await f.court.creditOf(f.challenger.address)).to.be.greaterThan(PARAMS.court.challengerBond);
      expect(await f.court.creditOf(f.outsider.address)).to.equal(0n);
    });
  });

  describe("6. escaping a slash by unbonding", function () {
    it("a node that cheats then unbonds everything is still slashed from its unbonding lock", async function () {
      const f = await loadFixture(ready);
      const r = receipt(f.node1, f.client1);
      await f.staking.connect(f.node1).unbond(1000n * TOKEN); // right after the cheat
      await time.increase(PARAMS.court.challengeWindow); // validator takes the whole window
      const digest = await openChallenge(f.court, f.challenger, f.node1, r);
      for (const v of [f.v1, f.v2, f.v3]) await f.court.connect(v).vote(digest, true);
      await time.increase(PARAMS.court.votingPeriod + 1n);
      await f.court.resolve(digest);
      const st = await f.staking.stakeOf(f.node1.address);
      expect(st.unbonding).to.equal(500n * TOKEN);
      expect(st.bonded).to.equal(0n);
    });

    it("while a challenge is open, released stake cannot be withdrawn, even past the unbonding period", async function () {
      const f = await loadFixture(ready);
      await f.staking.connect(f.node1).unbond(1000n * TOKEN);
      const digest = await openChallenge(f.court, f.challenger, f.node1, receipt(f.node1, f.client1));
      for (const v of [f.v1, f.v2, f.v3]) await f.court.connect(v).vote(digest, true);
      await time.increase(PARAMS.unbondingPeriod + DAY); // nobody resolved yet
      await expect(f.staking.connect(f.node1).withdraw())
        .to.be.revertedWithCustomError(f.staking, "StakingFrozen")
        .withArgs(f.node1.address, 1);
      await f.court.resolve(digest);
      const before = await f.token.balanceOf(f.node1.address);
      await f.staking.connect(f.node1).withdraw(); // only what the slash left
      expect((await f.token.balanceOf(f.node1.address)) - before).to.equal(500n * TOKEN);
    });

    it("the unbonding period must exceed the challenge window plus the longest job (checked at deploy)", async function () {
      const f = await loadFixture(deployAll);
      const F = await ethers.getContractFactory("SpotCheckCourt");
      await expect(F.deploy(f.token, f.staking, { ...PARAMS.court, challengeWindow: 6n * DAY }))
        .to.be.revertedWithCustomError(F, "CourtUnbondingTooShort");
    });
  });

  describe("7. the client's withdraw racing a payee's redemption", function () {
    it("after requestWithdraw the payee can still redeem every valid voucher before the thaw ends", async function () {
      const f = await loadFixture(ready);
      const v = await voucher(f.client1, f.node1, 600n * TOKEN, { expiry: (await now()) + PARAMS.maxVoucherValidity });
      const sig = await signVoucher(f.escrow, f.client1, v);
      await f.escrow.connect(f.client1).requestWithdraw(1000n * TOKEN);
      const { withdrawableAt } = await f.escrow.account(f.client1.address);
      expect(withdrawableAt).to.be.greaterThan(v.expiry); // thaw > max voucher validity
      await expect(f.escrow.connect(f.client1).withdraw()).to.be.revertedWithCustomError(f.escrow, "EscrowStillThawing");
      await f.escrow.connect(f.node1).redeem(v, sig);
      await time.increaseTo(withdrawableAt);
      await expect(f.escrow.connect(f.client1).withdraw()).to.emit(f.escrow, "Withdrawn").withArgs(f.client1.address, 400n * TOKEN);
    });

    it("a voucher living longer than maxVoucherValidity is refused, so no voucher outlives a thaw", async function () {
      const f = await loadFixture(ready);
      const tooFar = (await now()) + PARAMS.maxVoucherValidity + 100n;
      const v = await voucher(f.client1, f.node1, 1n * TOKEN, { expiry: tooFar });
      await expect(f.escrow.connect(f.node1).redeem(v, await signVoucher(f.escrow, f.client1, v)))
        .to.be.revertedWithCustomError(f.escrow, "EscrowVoucherExpiryTooFar");
    });
  });

  describe("8. accounting across partial redemptions and fee changes", function () {
    it("each delta pays the fee in force when it is redeemed, and nothing is lost or paid twice", async function () {
      const f = await loadFixture(ready);
      const steps = [[10n, 100n], [25n, 500n], [60n, 0n], [61n, 1000n]]; // [cumulative TOKEN, fee bps]
      const before = await f.token.balanceOf(f.node1.address);
      let expectedNet = 0n;
      let expectedFee = 0n;
      let last = 0n;
      for (const [cum, fee] of steps) {
        await f.escrow.connect(f.owner).setFee(fee);
        const v = await voucher(f.client1, f.node1, cum * TOKEN);
        await f.escrow.connect(f.node1).redeem(v, await signVoucher(f.escrow, f.client1, v));
        const delta = (cum - last) * TOKEN;
        expectedFee += (delta * fee) / 10_000n;
        expectedNet += delta - (delta * fee) / 10_000n;
        last = cum;
      }
      expect((await f.token.balanceOf(f.node1.address)) - before).to.equal(expectedNet);
      expect(await f.escrow.accruedFees()).to.equal(expectedFee);
      expect((await f.escrow.account(f.client1.address)).balance).to.equal(1000n * TOKEN - 61n * TOKEN);
      expect(await f.token.balanceOf(await f.escrow.getAddress())).to.equal(
        (await f.escrow.totalDeposits()) + (await f.escrow.accruedFees()));
    });
  });

  describe("9. reentrancy through a token with transfer hooks", function () {
    async function hooked() {
      const hook = await ethers.deployContract("HookToken");
      const f = await deployAll({ token: hook });
      const attacker = await ethers.deployContract("ReentrantAttacker");
      await hook.mint(await attacker.getAddress(), 1000n * TOKEN);
      await attacker.register(await hook.getAddress());
      return { ...f, hook, attacker };
    }

    it("a client re-entering withdraw from the token hook is stopped by the guard", async function () {
      const f = await loadFixture(hooked);
      const esc = await f.escrow.getAddress();
      await f.attacker.approve(f.hook, esc, ethers.MaxUint256);
      await f.attacker.execute(esc, f.escrow.interface.encodeFunctionData("deposit", [100n * TOKEN]));
      await f.attacker.execute(esc, f.escrow.interface.encodeFunctionData("requestWithdraw", [100n * TOKEN]));
      await time.increase(PARAMS.thawPeriod);
      const withdraw = f.escrow.interface.encodeFunctionData("withdraw");
      await f.attacker.arm(esc, withdraw, false);
      await expect(f.attacker.execute(esc, withdraw)).to.be.revertedWithCustomError(f.escrow, "ReentrancyGuardReentrantCall");
      // swallowing the failed reentry: the outer withdraw completes and pays exactly once
      await f.attacker.arm(esc, withdraw, true);
      await f.attacker.execute(esc, withdraw);
      expect(await f.attacker.reentryFailed()).to.equal(true);
      expect(await f.hook.balanceOf(await f.attacker.getAddress())).to.equal(1000n * TOKEN);
      expect(await f.hook.balanceOf(esc)).to.equal(0n);
      await f.hook.connect(f.client1).transfer(await f.attacker.getAddress(), 1n); // unarmed hook: plain receive
      expect(await f.hook.balanceOf(await f.attacker.getAddress())).to.equal(1000n * TOKEN + 1n);
    });

    it("an operator re-entering staking withdraw from the token hook is stopped by the guard", async function () {
      const f = await loadFixture(hooked);
      const st = await f.staking.getAddress();
      await f.attacker.approve(f.hook, st, ethers.MaxUint256);
      await f.attacker.execute(st, f.staking.interface.encodeFunctionData("bond", [100n * TOKEN]));
      await f.attacker.execute(st, f.staking.interface.encodeFunctionData("unbond", [100n * TOKEN]));
      await time.increase(PARAMS.unbondingPeriod);
      const withdraw = f.staking.interface.encodeFunctionData("withdraw");
      await f.attacker.arm(st, withdraw, false);
      await expect(f.attacker.execute(st, withdraw)).to.be.revertedWithCustomError(f.staking, "ReentrancyGuardReentrantCall");
      await f.attacker.arm(st, withdraw, true);
      await f.attacker.execute(st, withdraw);
      expect(await f.hook.balanceOf(st)).to.equal(0n);
      expect(await f.staking.totalStaked()).to.equal(0n);
    });

    it("a payee re-entering redeem from the token hook is stopped by the guard", async function () {
      const f = await loadFixture(hooked);
      const att = await f.attacker.getAddress();
      const st = await f.staking.getAddress();
      const esc = await f.escrow.getAddress();
      await f.attacker.approve(f.hook, st, ethers.MaxUint256);
      await f.attacker.execute(st, f.staking.interface.encodeFunctionData("bond", [100n * TOKEN]));
      await f.hook.mint(f.client1.address, 100n * TOKEN);
      await f.escrow.connect(f.client1).deposit(100n * TOKEN);
      const v1 = { ...(await voucher(f.client1, f.client1, 10n * TOKEN)), payee: att };
      const v2 = { ...v1, cumulativeAmount: 20n * TOKEN };
      const s1 = await signVoucher(f.escrow, f.client1, v1);
      const s2 = await signVoucher(f.escrow, f.client1, v2);
      await f.attacker.arm(esc, f.escrow.interface.encodeFunctionData("redeem", [v2, s2]), false);
      await expect(f.attacker.execute(esc, f.escrow.interface.encodeFunctionData("redeem", [v1, s1])))
        .to.be.revertedWithCustomError(f.escrow, "ReentrancyGuardReentrantCall");
    });
  });

  describe("10. griefing challengers and voters", function () {
    it("a frivolous challenge costs the challenger its bond, which goes to the node", async function () {
      const f = await loadFixture(ready);
      const digest = await openChallenge(f.court, f.challenger, f.node1, receipt(f.node1, f.client1));
      for (const v of [f.v1, f.v2, f.v3]) await f.court.connect(v).vote(digest, false);
      await time.increase(PARAMS.court.votingPeriod + 1n);
      await f.court.resolve(digest);
      expect(await f.court.creditOf(f.node1.address)).to.equal(PARAMS.court.challengerBond);
      expect(await f.court.creditOf(f.challenger.address)).to.equal(0n);
    });

    it("resolve costs the same with 3 or 9 voters (no loop over voters)", async function () {
      const f = await loadFixture(ready);
      const extra = f.signers.slice(11, 16);
      for (const s of extra) {
        await f.token.mint(s.address, 10_000n * TOKEN);
        await f.token.connect(s).approve(await f.court.getAddress(), ethers.MaxUint256);
      }
      await bondValidators(f.court, extra);
      const gasOf = async (voters, session) => {
        const digest = await openChallenge(f.court, f.challenger, f.node1, receipt(f.node1, f.client1, { sessionId: session }));
        for (const v of voters) await f.court.connect(v).vote(digest, false);
        await time.increase(PARAMS.court.votingPeriod + 1n);
        return (await (await f.court.resolve(digest)).wait()).gasUsed;
      };
      const few = await gasOf([f.v1, f.v2, f.v3], ethers.id("a"));
      const many = await gasOf([f.v1, f.v2, f.v3, f.v4, ...extra], ethers.id("b"));
      expect(many - few).to.be.lessThan(1000n);
    });

    it("one bad voucher does not sink a batch: the others are paid and the bad one is reported", async function () {
      const f = await loadFixture(ready);
      const good1 = await voucher(f.client1, f.node1, 3n * TOKEN, { channelId: ethers.id("g1") });
      const bad = await voucher(f.client1, f.node1, 5n * TOKEN, { channelId: ethers.id("bad") });
      const good2 = await voucher(f.client1, f.node1, 4n * TOKEN, { channelId: ethers.id("g2") });
      const sigs = [
        await signVoucher(f.escrow, f.client1, good1),
        await signVoucher(f.escrow, f.client2, bad),
        await signVoucher(f.escrow, f.client1, good2),
      ];
      const paid = await f.escrow.connect(f.node1).redeemBatch.staticCall([good1, bad, good2], sigs);
      expect(paid).to.equal(7n * TOKEN - (7n * TOKEN * PARAMS.feeBps) / 10_000n);
      await expect(f.escrow.connect(f.node1).redeemBatch([good1, bad, good2], sigs))
        .to.emit(f.escrow, "VoucherRejected")
        .withArgs(1, f.escrow.interface.getError("EscrowInvalidSignature").selector);
    });
  });

  describe("11. predictable or biasable sampling randomness", function () {
    it("the verdict does not depend on prevrandao or the block: the court uses no randomness", async function () {
      const f = await loadFixture(ready);
      const outcomes = [];
      for (const rnd of [1n, 2n ** 255n]) {
        const digest = await openChallenge(f.court, f.challenger, f.node1, receipt(f.node1, f.client1, { sessionId: ethers.toBeHex(rnd, 32) }));
        for (const v of [f.v1, f.v2, f.v3]) await f.court.connect(v).vote(digest, true);
        await time.increase(PARAMS.court.votingPeriod + 1n);
        await conn.provider.request({ method: "hardhat_setPrevRandao", params: [ethers.toBeHex(rnd, 32)] });
        await f.court.resolve(digest);
        outcomes.push((await f.court.challengeOf(digest)).status);
      }
      expect(outcomes).to.deep.equal([2n, 2n]);
    });

    it("the jury cannot be stacked: a validator bonded after the challenge opened cannot vote on it", async function () {
      const f = await loadFixture(ready);
      const digest = await openChallenge(f.court, f.challenger, f.node1, receipt(f.node1, f.client1));
      const late = f.signers[16];
      await f.token.mint(late.address, 10_000n * TOKEN);
      await f.token.connect(late).approve(await f.court.getAddress(), ethers.MaxUint256);
      await f.court.connect(late).bondValidator(PARAMS.court.minValidatorBond);
      await time.increase(10);
      await expect(f.court.connect(late).vote(digest, true))
        .to.be.revertedWithCustomError(f.court, "CourtNotEligible")
        .withArgs(digest, late.address);
      // topping up also restarts eligibility, so a small early bond cannot be grown after the fact
      await f.court.connect(f.v1).bondValidator(1n);
      await expect(f.court.connect(f.v1).vote(digest, true)).to.be.revertedWithCustomError(f.court, "CourtNotEligible");
    });
  });

  describe("12. vouchers over the deposit, expired vouchers, payments to an unbonded or jailed node", function () {
    it("a voucher above the client's deposit is refused", async function () {
      const f = await loadFixture(ready);
      const v = await voucher(f.client1, f.node1, 1001n * TOKEN);
      await expect(f.escrow.connect(f.node1).redeem(v, await signVoucher(f.escrow, f.client1, v)))
        .to.be.revertedWithCustomError(f.escrow, "EscrowInsufficientDeposit")
        .withArgs(f.client1.address, 1000n * TOKEN, 1001n * TOKEN);
    });

    it("an expired voucher is refused", async function () {
      const f = await loadFixture(ready);
      const v = await voucher(f.client1, f.node1, 1n * TOKEN, { expiry: (await now()) + 10n });
      const sig = await signVoucher(f.escrow, f.client1, v);
      await time.increase(11);
      await expect(f.escrow.connect(f.node1).redeem(v, sig))
        .to.be.revertedWithCustomError(f.escrow, "EscrowVoucherExpired")
        .withArgs(v.expiry);
    });

    it("a payee that never bonded, or withdrew all its stake, is not paid", async function () {
      const f = await loadFixture(ready);
      const v = await voucher(f.client1, f.node2, 1n * TOKEN);
      const sig = await signVoucher(f.escrow, f.client1, v);
      await expect(f.escrow.connect(f.node2).redeem(v, sig))
        .to.be.revertedWithCustomError(f.escrow, "EscrowPayeeNotPayable")
        .withArgs(f.node2.address);
      await f.staking.connect(f.node1).unbond(1000n * TOKEN);
      const w = await voucher(f.client1, f.node1, 1n * TOKEN);
      const ws = await signVoucher(f.escrow, f.client1, w);
      await time.increase(PARAMS.unbondingPeriod);
      await f.staking.connect(f.node1).withdraw();
      await expect(f.escrow.connect(f.node1).redeem({ ...w, expiry: (await now()) + 100n }, ws))
        .to.be.revertedWithCustomError(f.escrow, "EscrowPayeeNotPayable");
    });

    it("a jailed node is not paid", async function () {
      const f = await loadFixture(ready);
      const digest = await openChallenge(f.court, f.challenger, f.node1, receipt(f.node1, f.client1));
      for (const v of [f.v1, f.v2, f.v3]) await f.court.connect(v).vote(digest, true);
      await time.increase(PARAMS.court.votingPeriod + 1n);
      await f.court.resolve(digest);
      const v = await voucher(f.client1, f.node1, 1n * TOKEN);
      const sig = await signVoucher(f.escrow, f.client1, v);
      await expect(f.escrow.connect(f.node1).redeem(v, sig)).to.be.revertedWithCustomError(f.escrow, "EscrowPayeeNotPayable");
      await expect(f.escrow.connect(f.node1).redeemBatch([v], [sig])).to.be.revertedWithCustomError(f.escrow, "EscrowPayeeNotPayable");
    });
  });
});
