import { expect } from "chai";
import { DAY, PARAMS, TOKEN, bondNode, deployAll, ethers, loadFixture, nodeRecord, time } from "./fixtures.js";

describe("NodeStaking", function () {
  it("bond adds stake, emits Bonded and pulls tokens", async function () {
    const { staking, token, node1 } = await loadFixture(deployAll);
    await expect(staking.connect(node1).bond(50n * TOKEN))
      .to.emit(staking, "Bonded")
      .withArgs(node1.address, 50n * TOKEN, 50n * TOKEN);
    expect((await staking.stakeOf(node1.address)).bonded).to.equal(50n * TOKEN);
    expect(await token.balanceOf(await staking.getAddress())).to.equal(50n * TOKEN);
    expect(await staking.totalStaked()).to.equal(50n * TOKEN);
  });

  it("zero amounts are refused", async function () {
    const { staking, node1 } = await loadFixture(deployAll);
    await expect(staking.connect(node1).bond(0)).to.be.revertedWithCustomError(staking, "StakingZeroAmount");
    await expect(staking.connect(node1).unbond(0)).to.be.revertedWithCustomError(staking, "StakingZeroAmount");
    await expect(staking.connect(node1).rebond(0)).to.be.revertedWithCustomError(staking, "StakingZeroAmount");
  });

  it("register stores the node record and a node with enough stake per layer is active", async function () {
    const { staking, node1 } = await loadFixture(deployAll);
    const rec = nodeRecord(2, 6, 777n);
    await expect(staking.connect(node1).register(rec))
      .to.emit(staking, "NodeRegistered")
      .withArgs(node1.address, ethers.hexlify(rec.peerId), rec.modelId, 2, 6, 777n, rec.endpointHash);
    const got = await staking.nodeRecord(node1.address);
    expect(got.peerId).to.equal(ethers.hexlify(rec.peerId));
    expect(got.layerStart).to.equal(2n);
    expect(await staking.isRegistered(node1.address)).to.equal(true);
    expect(await staking.requiredStake(node1.address)).to.equal(4n * PARAMS.minStakePerLayer);
    expect(await staking.isActive(node1.address)).to.equal(false);
    await staking.connect(node1).bond(4n * PARAMS.minStakePerLayer - 1n);
    expect(await staking.isActive(node1.address)).to.equal(false);
    await staking.connect(node1).bond(1n);
    expect(await staking.isActive(node1.address)).to.equal(true);
  });

  it("an empty layer range is refused", async function () {
    const { staking, node1 } = await loadFixture(deployAll);
    await expect(staking.connect(node1).register(nodeRecord(3, 3)))
      .to.be.revertedWithCustomError(staking, "StakingInvalidLayerRange")
      .withArgs(3, 3);
  });

  it("deregister deletes the record", async function () {
    const { staking, node1 } = await loadFixture(deployAll);
    await bondNode(staking, node1);
    await expect(staking.connect(node1).deregister()).to.emit(staking, "NodeDeregistered").withArgs(node1.address);
    expect(await staking.isRegistered(node1.address)).to.equal(false);
    expect(await staking.isActive(node1.address)).to.equal(false);
  });

  it("unbond moves stake to the lock, withdraw pays it after the unbonding period", async function () {
    const { staking, token, node1 } = await loadFixture(deployAll);
    await staking.connect(node1).bond(100n * TOKEN);
    await expect(staking.connect(node1).unbond(200n * TOKEN))
      .to.be.revertedWithCustomError(staking, "StakingInsufficientBond")
      .withArgs(node1.address, 100n * TOKEN, 200n * TOKEN);
    await expect(staking.connect(node1).unbond(40n * TOKEN)).to.emit(staking, "Unbonded");
    const st = await staking.stakeOf(node1.address);
    expect(st.bonded).to.equal(60n * TOKEN);
    expect(st.unbonding).to.equal(40n * TOKEN);
    await expect(staking.connect(node1).withdraw())
      .to.be.revertedWithCustomError(staking, "StakingStillUnbonding")
      .withArgs(node1.address, st.unbondingReleaseAt);
    await time.increaseTo(st.unbondingReleaseAt);
    const before = await token.balanceOf(node1.address);
    await expect(staking.connect(node1).withdraw()).to.emit(staking, "Withdrawn").withArgs(node1.address, 40n * TOKEN);
    expect(await token.balanceOf(node1.address)).to.equal(before + 40n * TOKEN);
    expect(await staking.totalStaked()).to.equal(60n * TOKEN);
    await expect(staking.connect(node1).withdraw())
      .to.be.revertedWithCustomError(staking, "StakingNothingToWithdraw")
      .withArgs(node1.address);
  });

  it("a second unbond adds to the single lock and restarts its clock", async function () {
    const { staking, node1 } = await loadFixture(deployAll);
    await staking.connect(node1).bond(100n * TOKEN);
    await staking.connect(node1).unbond(10n * TOKEN);
    await time.increase(3n * DAY);
    await staking.connect(node1).unbond(10n * TOKEN);
    const st = await staking.stakeOf(node1.address);
    expect(st.unbonding).to.equal(20n * TOKEN);
    expect(st.unbondingReleaseAt).to.equal(BigInt(await time.latest()) + PARAMS.unbondingPeriod);
  });

  it("rebond moves unbonding stake back to bonded", async function () {
    const { staking, node1 } = await loadFixture(deployAll);
    await staking.connect(node1).bond(100n * TOKEN);
    await staking.connect(node1).unbond(30n * TOKEN);
    await expect(staking.connect(node1).rebond(31n * TOKEN))
      .to.be.revertedWithCustomError(staking, "StakingInsufficientUnbonding")
      .withArgs(node1.address, 30n * TOKEN, 31n * TOKEN);
    await expect(staking.connect(node1).rebond(30n * TOKEN))
      .to.emit(staking, "Rebonded")
      .withArgs(node1.address, 30n * TOKEN, 100n * TOKEN);
    expect((await staking.stakeOf(node1.address)).unbonding).to.equal(0n);
  });

  it("only the court freezes, unfreezes and slashes", async function () {
    const { staking, outsider, node1 } = await loadFixture(deployAll);
    await expect(staking.connect(outsider).freeze(node1.address))
      .to.be.revertedWithCustomError(staking, "StakingNotCourt")
      .withArgs(outsider.address);
    await expect(staking.connect(outsider).unfreeze(node1.address)).to.be.revertedWithCustomError(staking, "StakingNotCourt");
    await expect(staking.connect(outsider).slash(node1.address, 1)).to.be.revertedWithCustomError(staking, "StakingNotCourt");
  });

  it("the court can be set once, by the owner, to a non-zero address", async function () {
    const { staking, owner, outsider, court } = await loadFixture(deployAll);
    expect(await staking.court()).to.equal(await court.getAddress());
    await expect(staking.connect(outsider).setCourt(outsider.address)).to.be.revertedWithCustomError(
      staking,
      "OwnableUnauthorizedAccount",
    );
    await expect(staking.connect(owner).setCourt(outsider.address))
      .to.be.revertedWithCustomError(staking, "StakingCourtAlreadySet")
      .withArgs(await court.getAddress());
    const fresh = await ethers.deployContract("NodeStaking", [await staking.token(), owner.address, 1, 1, 1]);
    await expect(fresh.setCourt(ethers.ZeroAddress)).to.be.revertedWithCustomError(fresh, "StakingZeroAmount");
    await expect(fresh.setCourt(outsider.address)).to.emit(fresh, "CourtSet").withArgs(outsider.address);
  });

  it("a freeze blocks unbond, withdraw and deregister until unfrozen; slash above 100% is refused", async function () {
    const { staking, owner, node1, token } = await loadFixture(deployAll);
    // A staking contract whose court is an EOA we control, to drive the court-only paths directly.
    const s = await ethers.deployContract("NodeStaking", [await token.getAddress(), owner.address, 10, 1, 100]);
    await s.setCourt(owner.address);
    await token.connect(node1).approve(await s.getAddress(), ethers.MaxUint256);
    await s.connect(node1).bond(100n);
    await s.connect(node1).unbond(10n);
    await time.increase(20);
    await expect(s.freeze(node1.address)).to.emit(s, "NodeFrozen").withArgs(node1.address, 1);
    await expect(s.connect(node1).unbond(1n)).to.be.revertedWithCustomError(s, "StakingFrozen").withArgs(node1.address, 1);
    await expect(s.connect(node1).withdraw()).to.be.revertedWithCustomError(s, "StakingFrozen");
    await expect(s.connect(node1).deregister()).to.be.revertedWithCustomError(s, "StakingFrozen");
    await expect(s.slash(node1.address, 10_001)).to.be.revertedWithCustomError(s, "StakingInvalidFraction").withArgs(10_001);
    await expect(s.unfreeze(node1.address)).to.emit(s, "NodeUnfrozen").withArgs(node1.address, 0);
    await expect(s.unfreeze(node1.address)).to.be.revertedWithCustomError(s, "StakingNotFrozen").withArgs(node1.address);
    await s.connect(node1).withdraw();
    // slashing someone with nothing staked takes nothing and transfers nothing
    await expect(s.slash(owner.address, 5000)).to.emit(s, "NodeSlashed").withArgs(owner.address, 0, 0);
  });

  it("a slash takes bonded stake first, then the unbonding lock, and jails the node", async function () {
    const { staking, owner, node1, token } = await loadFixture(deployAll);
    const s = await ethers.deployContract("NodeStaking", [await token.getAddress(), owner.address, 10, 1, 100]);
    await s.setCourt(owner.address);
    await token.connect(node1).approve(await s.getAddress(), ethers.MaxUint256);
    await s.connect(node1).bond(100n);
    await s.connect(node1).register(nodeRecord(0, 1));
    await s.connect(node1).unbond(80n); // bonded 20, unbonding 80
    expect(await s.isActive(node1.address)).to.equal(true);
    const before = await token.balanceOf(owner.address);
    await expect(s.slash(node1.address, 5000)).to.emit(s, "NodeSlashed").withArgs(node1.address, 20n, 30n);
    expect(await token.balanceOf(owner.address)).to.equal(before + 50n);
    const st = await s.stakeOf(node1.address);
    expect(st.bonded).to.equal(0n);
    expect(st.unbonding).to.equal(50n);
    expect(await s.isPayable(node1.address)).to.equal(false);
    expect(await s.isActive(node1.address)).to.equal(false);
    await time.increase(101);
    expect(await s.isPayable(node1.address)).to.equal(true);
  });

  it("views report the parameters", async function () {
    const { staking, token } = await loadFixture(deployAll);
    expect(await staking.token()).to.equal(await token.getAddress());
    expect(await staking.unbondingPeriod()).to.equal(PARAMS.unbondingPeriod);
    expect(await staking.minStakePerLayer()).to.equal(PARAMS.minStakePerLayer);
    expect(await staking.jailDuration()).to.equal(PARAMS.jailDuration);
  });
});
