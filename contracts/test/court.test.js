import { expect } from "chai";
import {
  DAY, PARAMS, RECEIPT_TYPES, TOKEN, bondNode, bondValidators, commit, deployAll, domainOf, ethers, loadFixture,
  openChallenge, receipt, signReceipt, time,
} from "./fixtures.js";

async function withValidators() {
  const f = await deployAll();
  await bondNode(f.staking, f.node1, 1000n * TOKEN);
  await bondValidators(f.court, [f.v1, f.v2, f.v3, f.v4]);
  return f;
}

const Status = { None: 0n, Open: 1n, Upheld: 2n, Rejected: 3n, Expired: 4n };

describe("SpotCheckCourt", function () {
  it("the contract's receipt digest equals the EIP-712 hash of the receipt", async function () {
    const { court, node1, client1 } = await loadFixture(deployAll);
    const r = receipt(node1, client1, { layerStart: 7, layerEnd: 9, stepStart: 3, tokens: 5, pricePerToken: 12345n });
    expect(await court.receiptDigestOf(r)).to.equal(ethers.TypedDataEncoder.hash(await domainOf(court), RECEIPT_TYPES, r));
    expect(await court.domainSeparator()).to.equal(ethers.TypedDataEncoder.hashDomain(await domainOf(court)));
  });

  it("challenge pulls the bond, freezes the node and publishes the evidence", async function () {
    const { court, staking, token, node1, client1, challenger } = await loadFixture(withValidators);
    const r = receipt(node1, client1);
    const sig = await signReceipt(court, node1, r);
    const c = await commit(court, challenger, r, "0xabcdef");
    const before = await token.balanceOf(challenger.address);
    await expect(court.connect(challenger).challenge(r, sig, c.evidence, c.salt))
      .to.emit(court, "ChallengeOpened")
      .withArgs(c.digest, challenger.address, node1.address, (x) => x > 0n, ethers.keccak256("0xabcdef"), "0xabcdef");
    expect(await token.balanceOf(challenger.address)).to.equal(before - PARAMS.court.challengerBond);
    expect((await staking.stakeOf(node1.address)).openChallenges).to.equal(1n);
    const ch = await court.challengeOf(c.digest);
    expect(ch.status).to.equal(Status.Open);
    expect(ch.challenger).to.equal(challenger.address);
    expect(await court.commitmentBlock(c.commitment)).to.equal(0n);
  });

  it("a receipt is challenged at most once", async function () {
    const { court, node1, client1, challenger, v1 } = await loadFixture(withValidators);
    const r = receipt(node1, client1);
    const digest = await openChallenge(court, challenger, node1, r);
    const sig = await signReceipt(court, node1, r);
    const c = await commit(court, v1, r);
    await expect(court.connect(v1).challenge(r, sig, c.evidence, c.salt))
      .to.be.revertedWithCustomError(court, "CourtAlreadyChallenged")
      .withArgs(digest);
  });

  it("a receipt not signed by its node cannot be challenged", async function () {
    const { court, node1, node2, client1, challenger } = await loadFixture(withValidators);
    const r = receipt(node1, client1);
    const sig = await signReceipt(court, node2, r);
    const c = await commit(court, challenger, r);
    await expect(court.connect(challenger).challenge(r, sig, c.evidence, c.salt))
      .to.be.revertedWithCustomError(court, "CourtInvalidReceiptSignature")
      .withArgs(node1.address);
  });

  it("upheld: node slashed and jailed, challenger gets bond + reward, winning voters share the pool", async function () {
    const { court, staking, token, node1, client1, challenger, v1, v2, v3, v4 } = await loadFixture(withValidators);
    const digest = await openChallenge(court, challenger, node1, receipt(node1, client1));
    await court.connect(v1).vote(digest, true);
    await court.connect(v2).vote(digest, true);
    await expect(court.connect(v3).vote(digest, false)).to.emit(court, "Voted").withArgs(digest, v3.address, false);
    expect(await court.ballotOf(digest, v3.address)).to.equal(2n);
    await expect(court.resolve(digest)).to.be.revertedWithCustomError(court, "CourtVotingOpen");
    await time.increase(PARAMS.court.votingPeriod + 1n);
    await expect(court.connect(v4).vote(digest, true)).to.be.revertedWithCustomError(court, "CourtVotingClosed");
    const slashed = 500n * TOKEN; // 50% of 1000
    const reward = slashed / 5n; // 20%
    const perVoter = PARAMS.court.voterReward;
    await expect(court.resolve(digest))
      .to.emit(court, "ChallengeResolved")
      .withArgs(digest, Status.Upheld, slashed, perVoter);
    expect((await staking.stakeOf(node1.address)).bonded).to.equal(500n * TOKEN);
    expect((await staking.stakeOf(node1.address)).openChallenges).to.equal(0n);
    expect(await staking.isPayable(node1.address)).to.equal(false);
    expect(await court.creditOf(challenger.address)).to.equal(PARAMS.court.challengerBond + reward);
    expect(await court.rewardPool()).to.equal(slashed - reward - 2n * perVoter);
    await court.connect(v1).claimVoteReward(digest);
    await expect(court.connect(v1).claimVoteReward(digest)).to.be.revertedWithCustomError(court, "CourtNothingToClaim");
    await expect(court.connect(v3).claimVoteReward(digest)).to.be.revertedWithCustomError(court, "CourtNothingToClaim");
    const before = await token.balanceOf(v1.address);
    await expect(court.connect(v1).withdrawCredit()).to.emit(court, "CreditWithdrawn").withArgs(v1.address, perVoter);
    expect(await token.balanceOf(v1.address)).to.equal(before + perVoter);
    await expect(court.connect(v1).withdrawCredit()).to.be.revertedWithCustomError(court, "CourtNothingToClaim");
    await court.connect(challenger).withdrawCredit();
    await expect(court.resolve(digest)).to.be.revertedWithCustomError(court, "CourtChallengeNotOpen").withArgs(digest, Status.Upheld);
  });

  it("rejected: the challenger's bond goes to the node; reject voters are paid from the pool", async function () {
    const { court, escrow, staking, node1, client1, challenger, v1, v2, v3 } = await loadFixture(withValidators);
    // fund the pool with swept escrow fees
    await escrow.connect(client1).deposit(1000n * TOKEN);
    const { voucher, signVoucher } = await import("./fixtures.js");
    const v = await voucher(client1, node1, 1000n * TOKEN);
    await escrow.connect(node1).redeem(v, await signVoucher(escrow, client1, v));
    await escrow.sweepFees(); // 10 TOKEN to the court
    await expect(court.syncRewardPool()).to.emit(court, "RewardPoolChanged").withArgs(10n * TOKEN);
    const digest = await openChallenge(court, challenger, node1, receipt(node1, client1));
    await court.connect(v1).vote(digest, false);
    await court.connect(v2).vote(digest, false);
    await court.connect(v3).vote(digest, true);
    await time.increase(PARAMS.court.votingPeriod + 1n);
    await expect(court.resolve(digest)).to.emit(court, "ChallengeResolved").withArgs(digest, Status.Rejected, 0n, 5n * TOKEN);
    expect(await court.creditOf(node1.address)).to.equal(PARAMS.court.challengerBond);
    expect((await staking.stakeOf(node1.address)).bonded).to.equal(1000n * TOKEN);
    expect(await court.rewardPool()).to.equal(0n);
    await court.connect(v2).claimVoteReward(digest);
    expect(await court.creditOf(v2.address)).to.equal(5n * TOKEN);
  });

  it("expired: fewer votes than quorum gives the bond to the node and pays no voter", async function () {
    const { court, node1, client1, challenger, v1 } = await loadFixture(withValidators);
    const digest = await openChallenge(court, challenger, node1, receipt(node1, client1));
    await court.connect(v1).vote(digest, true);
    await time.increase(PARAMS.court.votingPeriod + 1n);
    await expect(court.resolve(digest)).to.emit(court, "ChallengeResolved").withArgs(digest, Status.Expired, 0n, 0n);
    expect(await court.creditOf(node1.address)).to.equal(PARAMS.court.challengerBond);
    await expect(court.connect(v1).claimVoteReward(digest)).to.be.revertedWithCustomError(court, "CourtNothingToClaim");
    await expect(court.connect(v1).vote(digest, true)).to.be.revertedWithCustomError(court, "CourtChallengeNotOpen");
  });

  it("a tie is not a majority: the challenge is rejected", async function () {
    const { court, node1, client1, challenger, v1, v2, v3, v4 } = await loadFixture(withValidators);
    const digest = await openChallenge(court, challenger, node1, receipt(node1, client1));
    await court.connect(v1).vote(digest, true);
    await court.connect(v2).vote(digest, true);
    await court.connect(v3).vote(digest, false);
    await court.connect(v4).vote(digest, false);
    await time.increase(PARAMS.court.votingPeriod + 1n);
    await expect(court.resolve(digest)).to.emit(court, "ChallengeResolved").withArgs(digest, Status.Rejected, 0n, 0n);
  });

  it("eligibility: not the challenger, not the node, bonded enough, not unbonding, once", async function () {
    const { court, staking, node1, client1, challenger, v1, v2, outsider } = await loadFixture(withValidators);
    await court.connect(challenger).bondValidator(PARAMS.court.minValidatorBond);
    await court.connect(node1).bondValidator(PARAMS.court.minValidatorBond);
    await court.connect(outsider).bondValidator(PARAMS.court.minValidatorBond - 1n);
    await court.connect(v2).requestValidatorUnbond();
    await time.increase(1);
    const digest = await openChallenge(court, challenger, node1, receipt(node1, client1));
    for (const who of [challenger, node1, outsider, v2]) {
      await expect(court.connect(who).vote(digest, true))
        .to.be.revertedWithCustomError(court, "CourtNotEligible")
        .withArgs(digest, who.address);
    }
    await court.connect(v1).vote(digest, true);
    await expect(court.connect(v1).vote(digest, false))
      .to.be.revertedWithCustomError(court, "CourtAlreadyVoted")
      .withArgs(digest, v1.address);
    await expect(court.connect(v1).vote(ethers.ZeroHash, true))
      .to.be.revertedWithCustomError(court, "CourtChallengeNotOpen")
      .withArgs(ethers.ZeroHash, 0);
    void staking;
  });

  it("validator bond lifecycle: bond, request unbond, withdraw after the period", async function () {
    const { court, token, v1, outsider } = await loadFixture(withValidators);
    await expect(court.connect(v1).bondValidator(0)).to.be.revertedWithCustomError(court, "CourtZeroAmount");
    await expect(court.connect(outsider).requestValidatorUnbond()).to.be.revertedWithCustomError(court, "CourtNotBonded");
    await expect(court.connect(v1).withdrawValidatorBond()).to.be.revertedWithCustomError(court, "CourtNotBonded");
    await expect(court.connect(v1).requestValidatorUnbond()).to.emit(court, "ValidatorUnbondRequested");
    await expect(court.connect(v1).requestValidatorUnbond()).to.be.revertedWithCustomError(court, "CourtNotBonded");
    const at = (await court.validatorOf(v1.address)).unbondableAt;
    await expect(court.connect(v1).withdrawValidatorBond())
      .to.be.revertedWithCustomError(court, "CourtStillUnbonding")
      .withArgs(v1.address, at);
    await time.increaseTo(at);
    const before = await token.balanceOf(v1.address);
    await expect(court.connect(v1).withdrawValidatorBond())
      .to.emit(court, "ValidatorWithdrawn")
      .withArgs(v1.address, PARAMS.court.minValidatorBond);
    expect(await token.balanceOf(v1.address)).to.equal(before + PARAMS.court.minValidatorBond);
    expect((await court.validatorOf(v1.address)).bond).to.equal(0n);
  });

  it("constructor refuses bad parameters and an unbonding period that does not cover window + job", async function () {
    const { token, staking } = await loadFixture(deployAll);
    const F = await ethers.getContractFactory("SpotCheckCourt");
    const bad = [
      { quorum: 0n }, { slashBps: 10_001n }, { challengerRewardBps: 10_001n }, { votingPeriod: 0n },
      { challengerBond: 0n }, { minValidatorBond: 0n },
    ];
    for (const b of bad) {
      await expect(F.deploy(token, staking, { ...PARAMS.court, ...b })).to.be.revertedWithCustomError(F, "CourtInvalidParams");
    }
    await expect(F.deploy(token, staking, { ...PARAMS.court, challengeWindow: 6n * DAY, maxJobDuration: DAY }))
      .to.be.revertedWithCustomError(F, "CourtUnbondingTooShort")
      .withArgs(PARAMS.unbondingPeriod, 7n * DAY);
  });

  it("views report the parameters", async function () {
    const { court, token, staking } = await loadFixture(deployAll);
    expect(await court.token()).to.equal(await token.getAddress());
    expect(await court.staking()).to.equal(await staking.getAddress());
    expect((await court.params()).quorum).to.equal(PARAMS.court.quorum);
    expect(await court.totalOwed()).to.equal(0n);
  });
});
