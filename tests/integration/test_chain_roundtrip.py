"""The Python bindings against a real anvil (npm @foundry-rs/anvil), started on a free port and stopped:
deploy through the one deploy path, bond, deposit, sign vouchers in Python, redeem on-chain and check every
balance; then the court end to end with a Python-signed receipt. No mocks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from protocol.chain import (
    Chain,
    ChallengeStatus,
    Deployment,
    MarketToken,
    NodeRecord,
    NodeStaking,
    PaymentEscrow,
    SpotCheckCourt,
    deploy,
    start_anvil,
)
from protocol.chain.anvil import AnvilProcess
from protocol.chain.deploy import TOKEN, DeployParams
from protocol.chain.errors import (
    CourtNoPriorCommitment,
    ERC20InsufficientAllowance,
    EscrowInvalidSignature,
    EscrowNothingToRedeem,
    EscrowPayeeNotPayable,
    EscrowStillThawing,
    RpcUnavailable,
    StakingFrozen,
)
from protocol.eip712 import SECP256K1_N
from protocol.errors import PermanentError, TransientError
from protocol.receipts import Receipt, receipt_digest, sign_receipt
from protocol.vouchers import Voucher, sign_voucher, voucher_digest

PARAMS = DeployParams()


@dataclass
class World:
    anvil: AnvilProcess
    deployment: Deployment
    owner: Chain
    node: Chain
    client: Chain
    validators: list[Chain]
    challenger: Chain

    def token(self, chain: Chain) -> MarketToken:
        return MarketToken(chain, self.deployment.address("MarketToken"))

    def staking(self, chain: Chain) -> NodeStaking:
        return NodeStaking(chain, self.deployment.address("NodeStaking"))

    def escrow(self, chain: Chain) -> PaymentEscrow:
        return PaymentEscrow(chain, self.deployment.address("PaymentEscrow"))

    def court(self, chain: Chain) -> SpotCheckCourt:
        return SpotCheckCourt(chain, self.deployment.address("SpotCheckCourt"))

    def increase_time(self, seconds: int) -> None:
        self.owner.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.owner.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def now(self) -> int:
        return int(self.owner.w3.eth.get_block("latest")["timestamp"])


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilProcess]:
    with start_anvil() as process:
        yield process


@pytest.fixture(scope="module")
def world(anvil: AnvilProcess) -> World:
    keys = [a.private_key for a in anvil.accounts]
    owner = Chain.connect(anvil.rpc_url, private_key=keys[0])
    deployment = deploy(owner, PARAMS)
    chains = [owner.with_account(k) for k in keys]
    w = World(anvil, deployment, owner, chains[1], chains[2], chains[3:6], chains[6])
    token = w.token(owner)
    for c in [w.node, w.client, *w.validators, w.challenger]:
        token.mint(c.address, 1_000_000 * TOKEN)
        for spender in ("NodeStaking", "PaymentEscrow", "SpotCheckCourt"):
            w.token(c).approve(deployment.address(spender), 2**256 - 1)
    return w


def _record() -> NodeRecord:
    return NodeRecord(b"\x00\x24\x08\x01peer", b"\x11" * 32, 0, 4, 1000, b"\x22" * 32)


def test_anvil_dev_accounts_are_the_ones_anvil_funds(anvil: AnvilProcess) -> None:
    chain = Chain.connect(anvil.rpc_url)
    assert [a.address for a in anvil.accounts] == list(chain.w3.eth.accounts)
    assert "private_key" not in repr(anvil.accounts[0])


def test_deployment_is_wired_and_saved_to_its_chain_file(world: World, tmp_path: Path) -> None:
    d = world.deployment
    assert d.chain_id == 31337
    path = d.save(tmp_path)
    assert path.name == "31337.json"
    assert Deployment.load(31337, tmp_path) == d
    assert world.staking(world.owner).court() == d.address("SpotCheckCourt")
    assert world.escrow(world.owner).fee_recipient() == d.address("SpotCheckCourt")
    assert world.escrow(world.owner).thaw_period() == PARAMS.thaw_period
    assert world.court(world.owner).params() == PARAMS.court_params()
    assert d.parameters["unbondingPeriod"] == PARAMS.unbonding_period


def test_python_digests_and_domains_equal_the_contracts(world: World) -> None:
    escrow = world.escrow(world.owner)
    court = world.court(world.owner)
    assert escrow.domain_separator() == escrow.domain().separator
    assert court.domain_separator() == court.domain().separator
    v = Voucher(world.client.address, world.node.address, b"\x05" * 32, 123, 2**40)
    assert escrow.voucher_digest(v) == voucher_digest(v, escrow.domain())
    r = Receipt(
        world.node.address,
        b"\x01" * 32,
        b"\x02" * 32,
        3,
        9,
        7,
        39,
        b"\x03" * 32,
        b"\x04" * 32,
        32,
        5,
        world.client.address,
    )
    assert court.receipt_digest_of(r) == receipt_digest(r, court.domain())


def test_round_trip_bond_deposit_sign_redeem_checks_every_balance(world: World) -> None:
    token = world.token(world.owner)
    staking, escrow = world.staking(world.node), world.escrow(world.client)
    staking_addr, escrow_addr = staking.address, escrow.address
    node0, client0 = token.balance_of(world.node.address), token.balance_of(world.client.address)
    staked0, escrow_bal0 = token.balance_of(staking_addr), token.balance_of(escrow_addr)

    bonded = staking.bond(100 * TOKEN)
    assert bonded.named("Bonded")[0].args == {
        "operator": world.node.address,
        "amount": 100 * TOKEN,
        "bonded": 100 * TOKEN,
    }
    staking.register(_record())
    assert staking.is_active(world.node.address)
    assert staking.node_record(world.node.address) == _record()
    escrow.deposit(50 * TOKEN)

    channel = b"\xc1" * 32
    expiry = world.now() + 3600
    v1 = Voucher(world.client.address, world.node.address, channel, 10 * TOKEN, expiry)
    sig1 = sign_voucher(v1, world.anvil.accounts[2].private_key, escrow.domain())
    result = escrow.using(world.node).redeem(v1, sig1)
    fee1 = 10 * TOKEN * PARAMS.fee_bps // 10_000
    event = result.named("VoucherRedeemed")[0]
    assert event.args["paid"] == 10 * TOKEN - fee1 and event.args["fee"] == fee1

    v2 = Voucher(world.client.address, world.node.address, channel, 25 * TOKEN, expiry)
    escrow.using(world.node).redeem(
        v2, sign_voucher(v2, world.anvil.accounts[2].private_key, escrow.domain())
    )
    fee2 = 15 * TOKEN * PARAMS.fee_bps // 10_000

    assert token.balance_of(world.node.address) == node0 - 100 * TOKEN + 25 * TOKEN - fee1 - fee2
    assert token.balance_of(world.client.address) == client0 - 50 * TOKEN
    assert token.balance_of(staking_addr) == staked0 + 100 * TOKEN == staking.total_staked()
    assert token.balance_of(escrow_addr) == escrow_bal0 + 25 * TOKEN + fee1 + fee2
    assert escrow.account(world.client.address).balance == 25 * TOKEN
    assert escrow.accrued_fees() == fee1 + fee2
    assert escrow.total_deposits() + escrow.accrued_fees() == token.balance_of(escrow_addr)
    assert escrow.redeemed(world.client.address, world.node.address, channel) == 25 * TOKEN

    # the replayed voucher raises the typed error, with the contract's arguments
    with pytest.raises(EscrowNothingToRedeem) as replay:
        escrow.using(world.node).redeem(v1, sig1)
    assert replay.value.args_by_name["redeemed"] == 25 * TOKEN
    assert isinstance(replay.value, PermanentError)
    # the high-s twin of a valid signature is refused on-chain as in Python
    s = int.from_bytes(sig1[32:64], "big")
    v3 = Voucher(world.client.address, world.node.address, channel, 30 * TOKEN, expiry)
    sig3 = sign_voucher(v3, world.anvil.accounts[2].private_key, escrow.domain())
    s = int.from_bytes(sig3[32:64], "big")
    twin = sig3[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig3[64]])
    with pytest.raises(EscrowInvalidSignature):
        escrow.using(world.node).redeem(v3, twin)


def test_redeem_batch_pays_good_vouchers_and_reports_the_bad_one(world: World) -> None:
    escrow = world.escrow(world.client)
    if not world.staking(world.node).is_payable(world.node.address):
        world.staking(world.node).bond(100 * TOKEN)
    escrow.deposit(10 * TOKEN)
    key = world.anvil.accounts[2].private_key
    expiry = world.now() + 3600
    vouchers = [
        Voucher(world.client.address, world.node.address, bytes([i]) * 32, TOKEN // 10, expiry)
        for i in range(10)
    ]
    sigs = [sign_voucher(v, key, escrow.domain()) for v in vouchers]
    sigs[4] = sign_voucher(
        vouchers[4], world.anvil.accounts[3].private_key, escrow.domain()
    )  # not the client
    result = escrow.using(world.node).redeem_batch(vouchers, sigs)
    assert len(result.named("VoucherRedeemed")) == 9
    rejected = result.named("VoucherRejected")
    assert [(e.args["index"], e.args["reason"]) for e in rejected] == [(4, EscrowInvalidSignature.selector)]


def test_client_withdraws_only_after_the_thaw(world: World) -> None:
    escrow = world.escrow(world.client)
    escrow.deposit(5 * TOKEN)
    escrow.request_withdraw(5 * TOKEN)
    with pytest.raises(EscrowStillThawing):
        escrow.withdraw()
    world.increase_time(PARAMS.thaw_period)
    assert escrow.withdraw().named("Withdrawn")[0].args["amount"] == 5 * TOKEN


def test_token_errors_are_typed(world: World) -> None:
    fresh = world.owner.with_account(world.anvil.accounts[9].private_key)
    world.token(world.owner).mint(fresh.address, TOKEN)
    with pytest.raises(ERC20InsufficientAllowance):
        world.escrow(fresh).deposit(TOKEN)


def test_court_upholds_a_python_signed_receipt_and_slashes_the_node(world: World) -> None:
    staking = world.staking(world.node)
    staking.bond(100 * TOKEN)
    for v in world.validators:
        world.court(v).bond_validator(PARAMS.min_validator_bond)
    world.increase_time(1)
    court = world.court(world.challenger)
    r = Receipt(
        world.node.address,
        b"\x5e" * 32,
        b"\x11" * 32,
        0,
        4,
        0,
        32,
        b"\x03" * 32,
        b"\x04" * 32,
        32,
        1000,
        world.client.address,
    )
    node_sig = sign_receipt(r, world.anvil.accounts[1].private_key, court.domain())
    evidence, salt = b"recomputed fingerprints", b"\x99" * 32
    with pytest.raises(CourtNoPriorCommitment):
        court.challenge(r, node_sig, evidence, salt)
    court.commit_challenge(court.challenge_commitment(world.challenger.address, r, evidence, salt))
    opened = court.challenge(r, node_sig, evidence, salt)  # a later block than the commitment
    digest = opened.named("ChallengeOpened")[0].args["receiptDigest"]
    assert digest == receipt_digest(r, court.domain())
    assert opened.named("NodeFrozen")[0].contract == "NodeStaking"  # events of every contract are decoded
    with pytest.raises(StakingFrozen):
        staking.unbond(TOKEN)
    stake_before = staking.stake_of(world.node.address)
    for v in world.validators:
        world.court(v).vote(digest, True)
    world.increase_time(PARAMS.voting_period + 1)
    resolved = court.resolve(digest)
    slashed = stake_before.bonded * PARAMS.slash_bps // 10_000  # nothing unbonding
    assert resolved.named("NodeSlashed")[0].args["fromBonded"] == slashed
    assert court.challenge_of(digest).status is ChallengeStatus.UPHELD
    reward = slashed * PARAMS.challenger_reward_bps // 10_000
    assert court.credit_of(world.challenger.address) == PARAMS.challenger_bond + reward
    assert not staking.is_payable(world.node.address)
    v = Voucher(world.client.address, world.node.address, b"\x77" * 32, 1, world.now() + 100)
    with pytest.raises(EscrowPayeeNotPayable):
        world.escrow(world.node).redeem(
            v, sign_voucher(v, world.anvil.accounts[2].private_key, world.escrow(world.node).domain())
        )
    past = world.staking(world.owner).events("NodeSlashed", from_block=world.deployment.deploy_block)
    assert [e.args["operator"] for e in past] == [world.node.address]


def test_an_unreachable_rpc_raises_a_transient_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chain = Chain.connect(f"http://127.0.0.1:{port}", timeout=2)
    started = time.monotonic()
    with pytest.raises(RpcUnavailable) as err:
        _ = chain.chain_id
    assert isinstance(err.value, TransientError)
    assert time.monotonic() - started < 10


def test_deploy_command_line_writes_the_deployments_file(anvil: AnvilProcess, tmp_path: Path) -> None:
    from protocol.chain.deploy import main

    assert main(["--rpc-url", anvil.rpc_url, "--dev-account", "8", "--out", str(tmp_path)]) == 0
    d = Deployment.load(31337, tmp_path)
    assert d.deployer == anvil.accounts[8].address
    assert set(d.contracts) == {"MarketToken", "NodeStaking", "PaymentEscrow", "SpotCheckCourt"}
    assert NodeStaking(Chain.connect(anvil.rpc_url), d.address("NodeStaking")).court() == d.address(
        "SpotCheckCourt"
    )


def test_anvil_exposes_its_dev_private_keys_in_account_order(anvil: AnvilProcess) -> None:
    from eth_account import Account

    assert [Account.from_key(k).address for k in anvil.private_keys] == [a.address for a in anvil.accounts]
