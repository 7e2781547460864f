// Invariant (fuzz) tests: seeded random sequences of every user action against the wired system; after
// each action the accounting invariants must hold. A failing seed is printed so it can be replayed with
// INVARIANT_SEED=<seed>.
import { expect } from "chai";
import {
  PARAMS, TOKEN, deployAll, ethers, loadFixture, now, receipt, signReceipt, signVoucher, commit, time, nodeRecord,
} from "./fixtures.js";

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = process.env.INVARIANT_SEED ? [Number(process.env.INVARIANT_SEED)] : [1, 2, 3];
const STEPS = Number(process.env.INVARIANT_STEPS ?? 300);

describe("invariants under random action sequences", function () {
  for (const seed of SEEDS) {
    it(`seed ${seed}: each contract holds exactly what it owes, channels only go up, no token is created`, async function () {
      const f = await loadFixture(deployAll);
      const r = rng(seed);
      const pick = (xs) => xs[Math.floor(r() * xs.length)];
      const amount = (max) => BigInt(1 + Math.floor(r() * max)) * TOKEN;
      const nodes = [f.node1, f.node2];
      const clients = [f.client1, f.client2];
      const validators = [f.v1, f.v2, f.v3, f.v4];
      const everyone = [...nodes, ...clients, ...validators, f.challenger, f.outsider];
      const channels = [ethers.id("c0"), ethers.id("c1")];
      const cum = new Map(); // channel key -> highest cumulative signed so far
      const lastRedeemed = new Map();
      const challenges = [];
      const supply = await f.token.totalSupply();
      for (const n of nodes) await f.staking.connect(n).register(nodeRecord(0, 2));
      for (const v of validators) await f.court.connect(v).bondValidator(PARAMS.court.minValidatorBond);

      const actions = {
        bond: async () => f.staking.connect(pick(nodes)).bond(amount(500)),
        unbond: async () => f.staking.connect(pick(nodes)).unbond(amount(300)),
        rebond: async () => f.staking.connect(pick(nodes)).rebond(amount(300)),
        withdrawStake: async () => f.staking.connect(pick(nodes)).withdraw(),
        deposit: async () => f.escrow.connect(pick(clients)).deposit(amount(300)),
        requestWithdraw: async () => f.escrow.connect(pick(clients)).requestWithdraw(amount(300)),
        withdrawDeposit: async () => f.escrow.connect(pick(clients)).withdraw(),
        redeem: async () => {
          const [c, p, ch] = [pick(clients), pick(nodes), pick(channels)];
          const key = await f.escrow.channelKey(c.address, p.address, ch);
          const next = (cum.get(key) ?? 0n) + amount(50) - (r() < 0.2 ? 60n * TOKEN : 0n); // sometimes lower
          if (next > (cum.get(key) ?? 0n)) cum.set(key, next);
          const v = { client: c.address, payee: p.address, channelId: ch, cumulativeAmount: next > 0n ? next : 1n,
            expiry: (await now()) + 600n };
          const sig = await signVoucher(f.escrow, r() < 0.9 ? c : pick(everyone), v);
          return r() < 0.5 ? f.escrow.connect(p).redeem(v, sig) : f.escrow.connect(p).redeemBatch([v, v], [sig, sig]);
        },
        setFee: async () => f.escrow.connect(f.owner).setFee(Math.floor(r() * 1001)),
        sweep: async () => f.escrow.sweepFees(),
        challenge: async () => {
          const node = pick(nodes);
          const rc = receipt(node, pick(clients), { sessionId: ethers.id(`s${challenges.length}-${seed}`) });
          const sig = await signReceipt(f.court, node, rc);
          const c = await commit(f.court, f.challenger, rc);
          await f.court.connect(f.challenger).challenge(rc, sig, c.evidence, c.salt);
          challenges.push(c.digest);
        },
        vote: async () => challenges.length && f.court.connect(pick(validators)).vote(pick(challenges), r() < 0.6),
        resolve: async () => challenges.length && f.court.resolve(pick(challenges)),
        claim: async () => challenges.length && f.court.connect(pick(validators)).claimVoteReward(pick(challenges)),
        withdrawCredit: async () => f.court.connect(pick(everyone)).withdrawCredit(),
        sync: async () => f.court.syncRewardPool(),
        wait: async () => time.increase(Math.floor(r() * 3 * 24 * 3600)),
      };
      const names = Object.keys(actions);
      const succeeded = Object.fromEntries(names.map((n) => [n, 0]));

      for (let step = 0; step < STEPS; step++) {
        const name = pick(names);
        try {
          await actions[name]();
          succeeded[name] += 1;
        } catch (e) {
          if (!/reverted|VM Exception/.test(String(e.message))) throw new Error(`seed ${seed} step ${step} ${name}: ${e.message}`);
        }
        // staking: balance == totalStaked == sum of every operator's bonded + unbonding
        let staked = 0n;
        for (const n of everyone) {
          const s = await f.staking.stakeOf(n.address);
          staked += s.bonded + s.unbonding;
        }
        const stakingBal = await f.token.balanceOf(await f.staking.getAddress());
        expect(stakingBal, `seed ${seed} step ${step} ${name}: staking`).to.equal(await f.staking.totalStaked());
        expect(staked).to.equal(stakingBal);
        // escrow: balance == sum of client balances + accrued fees
        let deposits = 0n;
        for (const c of clients) deposits += (await f.escrow.account(c.address)).balance;
        expect(await f.escrow.totalDeposits(), `seed ${seed} step ${step} ${name}: deposits`).to.equal(deposits);
        expect(await f.token.balanceOf(await f.escrow.getAddress())).to.equal(deposits + (await f.escrow.accruedFees()));
        // court: balance >= owed + pool (equal after a sync; swept fees arrive without a call)
        const courtBal = await f.token.balanceOf(await f.court.getAddress());
        expect(courtBal >= (await f.court.totalOwed()) + (await f.court.rewardPool()), `seed ${seed} step ${step} court`).to.equal(true);
        // channels only go up
        for (const c of clients) for (const p of nodes) for (const ch of channels) {
          const key = await f.escrow.channelKey(c.address, p.address, ch);
          const now_ = await f.escrow.redeemed(c.address, p.address, ch);
          expect(now_ >= (lastRedeemed.get(key) ?? 0n)).to.equal(true);
          lastRedeemed.set(key, now_);
        }
      }
      if (process.env.INVARIANT_VERBOSE) console.log(seed, succeeded);
      // the run must have exercised the money paths, or it proves little
      for (const n of ["bond", "deposit", "redeem", "challenge", "withdrawDeposit", "unbond"]) {
        expect(succeeded[n], `seed ${seed}: ${n} never succeeded`).to.be.greaterThan(0);
      }
      await f.court.syncRewardPool();
      expect(await f.token.balanceOf(await f.court.getAddress())).to.equal(
        (await f.court.totalOwed()) + (await f.court.rewardPool()));
      // conservation: no action creates or destroys tokens
      let held = 0n;
      for (const a of [...everyone, f.owner]) held += await f.token.balanceOf(a.address);
      for (const c of [f.staking, f.escrow, f.court]) held += await f.token.balanceOf(await c.getAddress());
      expect(held).to.equal(supply);
    });
  }
});
