// Shared deployment fixture and signing helpers for the contract tests.
//
// Every test file deploys through `deployAll` (wrapped in loadFixture, so each test starts from the same
// snapshot) and signs with `signVoucher` / `signReceipt`, which build the same EIP-712 types as
// protocol/vouchers.py and protocol/receipts.py.
import { network } from "hardhat";

export const conn = await network.getOrCreate();
export const { ethers, networkHelpers } = conn;
export const { time, loadFixture } = networkHelpers;

export const DAY = 24n * 3600n;
export const TOKEN = 10n ** 18n;

/** The parameters every test deploys with (docs/CONTRACTS.md lists the devnet defaults). */
export const PARAMS = {
  unbondingPeriod: 7n * DAY,
  minStakePerLayer: 10n * TOKEN,
  jailDuration: 30n * DAY,
  thawPeriod: 2n * DAY,
  maxVoucherValidity: 1n * DAY,
  feeBps: 100n,
  court: {
    challengerBond: 100n * TOKEN,
    minValidatorBond: 1000n * TOKEN,
    validatorUnbondingPeriod: 7n * DAY,
    votingPeriod: 1n * DAY,
    quorum: 3n,
    slashBps: 5000n,
    challengerRewardBps: 2000n,
    voterReward: 10n * TOKEN,
    challengeWindow: 3n * DAY,
    maxJobDuration: 1n * DAY,
  },
};

export const VOUCHER_TYPES = {
  Voucher: [
    { name: "client", type: "address" },
    { name: "payee", type: "address" },
    { name: "channelId", type: "bytes32" },
    { name: "cumulativeAmount", type: "uint256" },
    { name: "expiry", type: "uint64" },
  ],
};

export const RECEIPT_TYPES = {
  Receipt: [
    { name: "node", type: "address" },
    { name: "sessionId", type: "bytes32" },
    { name: "modelId", type: "bytes32" },
    { name: "layerStart", type: "uint16" },
    { name: "layerEnd", type: "uint16" },
    { name: "stepStart", type: "uint32" },
    { name: "stepEnd", type: "uint32" },
    { name: "inputDigest", type: "bytes32" },
    { name: "outputCommitment", type: "bytes32" },
    { name: "tokens", type: "uint32" },
    { name: "pricePerToken", type: "uint256" },
    { name: "client", type: "address" },
  ],
};

export async function domainOf(contract) {
  const { chainId } = await ethers.provider.getNetwork();
  return { name: "Layermarket", version: "1", chainId, verifyingContract: await contract.getAddress() };
}

/** Deploys token, staking, escrow and court, wires them, and funds every named account. */
export async function deployAll(opts = {}) {
  const signers = await ethers.getSigners();
  const [owner, node1, node2, client1, client2, v1, v2, v3, v4, challenger, outsider] = signers;
  const token = opts.token ?? (await ethers.deployContract("MarketToken", [owner.address, 0n]));
  const staking = await ethers.deployContract("NodeStaking", [
    await token.getAddress(),
    owner.address,
    PARAMS.unbondingPeriod,
    PARAMS.minStakePerLayer,
    PARAMS.jailDuration,
  ]);
  const court = await ethers.deployContract("SpotCheckCourt", [
    await token.getAddress(),
    await staking.getAddress(),
    PARAMS.court,
  ]);
  await staking.setCourt(await court.getAddress());
  const escrow = await ethers.deployContract("PaymentEscrow", [
    await token.getAddress(),
    await staking.getAddress(),
    owner.address,
    PARAMS.thawPeriod,
    PARAMS.maxVoucherValidity,
    PARAMS.feeBps,
    await court.getAddress(),
  ]);
  const funded = [node1, node2, client1, client2, v1, v2, v3, v4, challenger, outsider];
  for (const s of funded) {
    await token.mint(s.address, 1_000_000n * TOKEN);
    for (const c of [staking, escrow, court]) {
      await token.connect(s).approve(await c.getAddress(), ethers.MaxUint256);
    }
  }
  return { token, staking, escrow, court, owner, node1, node2, client1, client2, v1, v2, v3, v4, challenger, outsider, signers };
}

/** A node record for `layers` = [start, end). */
export function nodeRecord(layerStart = 0, layerEnd = 4, price = 1000n) {
  return {
    peerId: ethers.toUtf8Bytes("12D3KooWExamplePeer"),
    modelId: ethers.id("manifest:tiny-llama"),
    layerStart,
    layerEnd,
    pricePerToken: price,
    endpointHash: ethers.id("/ip4/127.0.0.1/tcp/4001"),
  };
}

/** Bonds and registers `node` with enough stake for its layers. */
export async function bondNode(staking, node, amount = 1000n * TOKEN, record = nodeRecord()) {
  await staking.connect(node).bond(amount);
  await staking.connect(node).register(record);
}

export async function now() {
  return BigInt(await time.latest());
}

/** A voucher from `client` to `payee` valid for one hour. */
export async function voucher(client, payee, cumulativeAmount, overrides = {}) {
  return {
    client: client.address,
    payee: payee.address,
    channelId: overrides.channelId ?? ethers.id("channel-1"),
    cumulativeAmount,
    expiry: overrides.expiry ?? (await now()) + 3600n,
  };
}

export async function signVoucher(escrow, signer, v) {
  return signer.signTypedData(await domainOf(escrow), VOUCHER_TYPES, v);
}

export function receipt(node, client, overrides = {}) {
  return {
    node: node.address,
    sessionId: ethers.id("session-1"),
    modelId: ethers.id("manifest:tiny-llama"),
    layerStart: 0,
    layerEnd: 4,
    stepStart: 0,
    stepEnd: 32,
    inputDigest: ethers.id("input"),
    outputCommitment: ethers.id("output"),
    tokens: 32,
    pricePerToken: 1000n,
    client: client.address,
    ...overrides,
  };
}

export async function signReceipt(court, signer, r) {
  return signer.signTypedData(await domainOf(court), RECEIPT_TYPES, r);
}

/** Commits (and mines past) a challenge, returning what `challenge` needs. */
export async function commit(court, challenger, r, evidence = "0x1234", salt = ethers.id("salt")) {
  const digest = await court.receiptDigestOf(r);
  const commitment = ethers.keccak256(
    ethers.AbiCoder.defaultAbiCoder().encode(
      ["address", "bytes32", "bytes32", "bytes32"],
      [challenger.address, digest, ethers.keccak256(evidence), salt],
    ),
  );
  await court.connect(challenger).commitChallenge(commitment);
  return { digest, commitment, evidence, salt };
}

/** Bonds validators so they may vote on challenges opened afterwards. */
export async function bondValidators(court, validators) {
  for (const v of validators) await court.connect(v).bondValidator(PARAMS.court.minValidatorBond);
  await time.increase(1);
}

/** Opens a challenge by `challenger` against `nodeSigner`'s receipt `r`. */
export async function openChallenge(court, challenger, nodeSigner, r) {
  const sig = await signReceipt(court, nodeSigner, r);
  const c = await commit(court, challenger, r);
  await court.connect(challenger).challenge(r, sig, c.evidence, c.salt);
  return c.digest;
}

/** Flips a 65-byte signature to its high-s twin (same signer, different bytes). */
export function toHighS(sig) {
  const s = ethers.Signature.from(sig);
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const highS = n - BigInt(s.s);
  const v = s.v === 27 ? 28 : 27;
  return ethers.concat([s.r, ethers.toBeHex(highS, 32), ethers.toBeHex(v, 1)]);
}
