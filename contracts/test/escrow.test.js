import { expect } from "chai";
import {
  DAY, PARAMS, TOKEN, bondNode, deployAll, domainOf, ethers, loadFixture, now, signVoucher, time, voucher,
} from "./fixtures.js";

async function funded() {
  const f = await deployAll();
  await bondNode(f.staking, f.node1);
  await f.escrow.connect(f.client1).deposit(1000n * TOKEN);
  return f;
}

describe("PaymentEscrow", function () {
  it("deposit credits the client and pulls tokens", async function () {
    const { escrow, token, client1 } = await loadFixture(deployAll);
    await expect(escrow.connect(client1).deposit(5n * TOKEN))
      .to.emit(escrow, "Deposited")
      .withArgs(client1.address, 5n * TOKEN, 5n * TOKEN);
    expect((await escrow.account(client1.address)).balance).to.equal(5n * TOKEN);
    expect(await escrow.totalDeposits()).to.equal(5n * TOKEN);
    expect(await token.balanceOf(await escrow.getAddress())).to.equal(5n * TOKEN);
    await expect(escrow.connect(client1).deposit(0)).to.be.revertedWithCustomError(escrow, "EscrowZeroAmount");
  });

  it("depositWithPermit deposits without a prior approve, and still deposits when the permit was front-run", async function () {
    const { escrow, token, signers } = await loadFixture(deployAll);
    const fresh = signers[15];
    await token.mint(fresh.address, 10n * TOKEN);
    const deadline = (await now()) + 3600n;
    const { chainId } = await ethers.provider.getNetwork();
    const domain = { name: "Layermarket Token", version: "1", chainId, verifyingContract: await token.getAddress() };
    const types = {
      Permit: [
        { name: "owner", type: "address" }, { name: "spender", type: "address" }, { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
      ],
    };
    const sign = async (value) => ethers.Signature.from(await fresh.signTypedData(domain, types, {
      owner: fresh.address, spender: await escrow.getAddress(), value, nonce: await token.nonces(fresh.address), deadline,
    }));
    let sig = await sign(4n * TOKEN);
    await expect(escrow.connect(fresh).depositWithPermit(4n * TOKEN, deadline, sig.v, sig.r, sig.s))
      .to.emit(escrow, "Deposited").withArgs(fresh.address, 4n * TOKEN, 4n * TOKEN);
    sig = await sign(3n * TOKEN);
    // someone submits the permit first: the deposit still goes through on the allowance it set
    await token.permit(fresh.address, await escrow.getAddress(), 3n * TOKEN, deadline, sig.v, sig.r, sig.s);
    await expect(escrow.connect(fresh).depositWithPermit(3n * TOKEN, deadline, sig.v, sig.r, sig.s))
      .to.emit(escrow, "Deposited").withArgs(fresh.address, 3n * TOKEN, 7n * TOKEN);
  });

  it("redeem pays the payee the delta less the fee and books the fee", async function () {
    const { escrow, token, client1, node1 } = await loadFixture(funded);
    const v = await voucher(client1, node1, 100n * TOKEN);
    const sig = await signVoucher(escrow, client1, v);
    const before = await token.balanceOf(node1.address);
    await expect(escrow.connect(node1).redeem(v, sig))
      .to.emit(escrow, "VoucherRedeemed")
      .withArgs(client1.address, node1.address, v.channelId, 100n * TOKEN, 99n * TOKEN, 1n * TOKEN);
    expect(await token.balanceOf(node1.address)).to.equal(before + 99n * TOKEN);
    expect(await escrow.accruedFees()).to.equal(1n * TOKEN);
    expect(await escrow.redeemed(client1.address, node1.address, v.channelId)).to.equal(100n * TOKEN);
    expect((await escrow.account(client1.address)).balance).to.equal(900n * TOKEN);
  });

  it("the contract's voucher digest equals the EIP-712 hash of the voucher", async function () {
    const { escrow, client1, node1 } = await loadFixture(funded);
    const v = await voucher(client1, node1, 1n);
    const { VOUCHER_TYPES } = await import("./fixtures.js");
    expect(await escrow.voucherDigest(v)).to.equal(ethers.TypedDataEncoder.hash(await domainOf(escrow), VOUCHER_TYPES, v));
    expect(await escrow.domainSeparator()).to.equal(ethers.TypedDataEncoder.hashDomain(await domainOf(escrow)));
  });

  it("only the payee redeems", async function () {
    const { escrow, client1, node1, staking, node2 } = await loadFixture(funded);
    await bondNode(staking, node2);
    const v = await voucher(client1, node1, 1n * TOKEN);
    const sig = await signVoucher(escrow, client1, v);
    await expect(escrow.connect(node2).redeem(v, sig))
      .to.be.revertedWithCustomError(escrow, "EscrowNotPayee")
      .withArgs(node2.address, node1.address);
  });

  it("a signature by anyone but the client is refused", async function () {
    const { escrow, client1, client2, node1 } = await loadFixture(funded);
    const v = await voucher(client1, node1, 1n * TOKEN);
    const sig = await signVoucher(escrow, client2, v);
    await expect(escrow.connect(node1).redeem(v, sig))
      .to.be.revertedWithCustomError(escrow, "EscrowInvalidSignature")
      .withArgs(client1.address);
  });

  it("redeemBatch with mismatched arrays is refused", async function () {
    const { escrow, node1 } = await loadFixture(funded);
    await expect(escrow.connect(node1).redeemBatch([], ["0x"]))
      .to.be.revertedWithCustomError(escrow, "EscrowLengthMismatch")
      .withArgs(0, 1);
  });

  it("requestWithdraw then withdraw after the thaw; withdraw pays at most the balance", async function () {
    const { escrow, token, client1, node1 } = await loadFixture(funded);
    await expect(escrow.connect(client1).withdraw())
      .to.be.revertedWithCustomError(escrow, "EscrowNoWithdrawRequested")
      .withArgs(client1.address);
    await expect(escrow.connect(client1).requestWithdraw(0)).to.be.revertedWithCustomError(escrow, "EscrowZeroAmount");
    await expect(escrow.connect(client1).requestWithdraw(5000n * TOKEN)).to.emit(escrow, "WithdrawRequested");
    const at = (await escrow.account(client1.address)).withdrawableAt;
    await expect(escrow.connect(client1).withdraw())
      .to.be.revertedWithCustomError(escrow, "EscrowStillThawing")
      .withArgs(client1.address, at);
    const v = await voucher(client1, node1, 100n * TOKEN);
    await escrow.connect(node1).redeem(v, await signVoucher(escrow, client1, v));
    await time.increaseTo(at);
    const before = await token.balanceOf(client1.address);
    await expect(escrow.connect(client1).withdraw()).to.emit(escrow, "Withdrawn").withArgs(client1.address, 900n * TOKEN);
    expect(await token.balanceOf(client1.address)).to.equal(before + 900n * TOKEN);
    const acct = await escrow.account(client1.address);
    expect(acct.balance).to.equal(0n);
    expect(acct.withdrawRequested).to.equal(0n);
    // a thawed request on an empty account withdraws nothing and transfers nothing
    await escrow.connect(client1).requestWithdraw(1n);
    await time.increase(PARAMS.thawPeriod);
    await expect(escrow.connect(client1).withdraw()).to.emit(escrow, "Withdrawn").withArgs(client1.address, 0n);
  });

  it("fees: owner sets fee (capped) and recipient; anyone sweeps accrued fees to the recipient", async function () {
    const { escrow, token, court, owner, outsider, client1, node1 } = await loadFixture(funded);
    await expect(escrow.connect(outsider).setFee(5)).to.be.revertedWithCustomError(escrow, "OwnableUnauthorizedAccount");
    await expect(escrow.connect(owner).setFee(1001)).to.be.revertedWithCustomError(escrow, "EscrowFeeTooHigh").withArgs(1001);
    await expect(escrow.connect(owner).setFee(200)).to.emit(escrow, "FeeChanged").withArgs(200);
    expect(await escrow.feeBps()).to.equal(200n);
    const v = await voucher(client1, node1, 100n * TOKEN);
    await escrow.connect(node1).redeem(v, await signVoucher(escrow, client1, v));
    const courtAddr = await court.getAddress();
    await expect(escrow.connect(outsider).sweepFees()).to.emit(escrow, "FeesSwept").withArgs(courtAddr, 2n * TOKEN);
    expect(await token.balanceOf(courtAddr)).to.equal(2n * TOKEN);
    await expect(escrow.connect(outsider).sweepFees()).to.emit(escrow, "FeesSwept").withArgs(courtAddr, 0n);
    await expect(escrow.connect(outsider).setFeeRecipient(outsider.address)).to.be.revertedWithCustomError(
      escrow, "OwnableUnauthorizedAccount");
    await expect(escrow.connect(owner).setFeeRecipient(outsider.address)).to.emit(escrow, "FeeRecipientChanged").withArgs(outsider.address);
    expect(await escrow.feeRecipient()).to.equal(outsider.address);
  });

  it("constructor refuses a thaw not longer than voucher validity, and a fee above the cap", async function () {
    const { token, staking, owner } = await loadFixture(deployAll);
    const args = (thaw, validity, fee) => [token, staking, owner.address, thaw, validity, fee, owner.address];
    const F = await ethers.getContractFactory("PaymentEscrow");
    await expect(F.deploy(...args(DAY, DAY, 0))).to.be.revertedWithCustomError(F, "EscrowThawNotLongerThanValidity").withArgs(DAY, DAY);
    await expect(F.deploy(...args(2n * DAY, DAY, 1001))).to.be.revertedWithCustomError(F, "EscrowFeeTooHigh").withArgs(1001);
  });

  it("views report the parameters", async function () {
    const { escrow, token, staking } = await loadFixture(deployAll);
    expect(await escrow.token()).to.equal(await token.getAddress());
    expect(await escrow.staking()).to.equal(await staking.getAddress());
    expect(await escrow.thawPeriod()).to.equal(PARAMS.thawPeriod);
    expect(await escrow.maxVoucherValidity()).to.equal(PARAMS.maxVoucherValidity);
  });
});
