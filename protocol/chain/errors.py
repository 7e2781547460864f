"""Chain errors: every Solidity custom error of the contracts, as a Python exception found by its selector.

A reverted call or transaction surfaces as the class named like the Solidity error, with its arguments::

    LayermarketError
    └── ChainError
        ├── RpcUnavailable (TransientError)       the JSON-RPC endpoint did not answer
        ├── TransactionFailed (PermanentError)    mined with status 0, or reverted without decodable data
        └── ContractRevert (PermanentError)       a decoded revert: .selector, .name, .args (by name)
            ├── StakingError    StakingFrozen, StakingInsufficientBond, ... (NodeStaking)
            ├── EscrowError     EscrowVoucherExpired, EscrowInsufficientDeposit, ... (PaymentEscrow)
            ├── CourtError      CourtNotEligible, CourtNoPriorCommitment, ... (SpotCheckCourt)
            ├── TokenError      ERC20InsufficientBalance, ERC2612ExpiredSignature, ... (the ERC20)
            ├── AccessError     OwnableUnauthorizedAccount, OwnableInvalidOwner
            ├── LibraryError    ReentrancyGuardReentrantCall, SafeERC20FailedOperation, ECDSA*, ...
            ├── SolidityError   Error(string): a require/revert with a message
            ├── SolidityPanic   Panic(uint256): overflow, division by zero, assert
            └── UnknownContractError   a selector no class knows (its raw data is kept)

    >>> from protocol.chain.errors import decode_revert, EscrowVoucherExpired
    >>> err = decode_revert(bytes.fromhex(EscrowVoucherExpired.selector.hex() + "00" * 31 + "2a"))
    >>> type(err).__name__, err.args_by_name
    ('EscrowVoucherExpired', {'expiry': 42})

Each class's ``signature`` is the Solidity declaration; a test checks that the classes and the exported
ABIs (protocol/abi) name exactly the same errors.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eth_abi.abi import decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from protocol.errors import LayermarketError, PermanentError, TransientError


class ChainError(LayermarketError):
    """Any error talking to the chain or raised by a Layermarket contract."""


class RpcUnavailable(ChainError, TransientError):
    """The JSON-RPC endpoint could not be reached or timed out; retry with backoff."""


class TransactionFailed(ChainError, PermanentError):
    """A transaction was mined with status 0, or a call reverted without data we can decode."""


class ContractRevert(ChainError, PermanentError):
    """A contract reverted with a known custom error; ``args_by_name`` holds its decoded arguments."""

    signature: ClassVar[str] = ""
    selector: ClassVar[bytes] = b""
    param_types: ClassVar[tuple[str, ...]] = ()
    param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *values: Any) -> None:
        self.args_by_name: dict[str, Any] = dict(zip(self.param_names, values, strict=False))
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.args_by_name.items())
        super().__init__(f"{type(self).__name__}({shown})", *values)

    @property
    def name(self) -> str:
        """The Solidity error's name."""
        return type(self).__name__

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.signature:
            return  # an intermediate grouping class
        name, _, params = cls.signature.partition("(")
        pairs = [p.strip().split(" ") for p in params.rstrip(")").split(",") if p.strip()]
        cls.param_types = tuple(p[0] for p in pairs)
        cls.param_names = tuple(p[1] if len(p) > 1 else f"arg{i}" for i, p in enumerate(pairs))
        cls.selector = keccak(text=f"{name}({','.join(cls.param_types)})")[:4]
        ERRORS_BY_SELECTOR[cls.selector] = cls


ERRORS_BY_SELECTOR: dict[bytes, type[ContractRevert]] = {}


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else repr(value)


class UnknownContractError(ContractRevert):
    """A revert whose selector no class knows; ``data`` holds the raw revert bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        super().__init__()
        self.args = (f"unknown revert data 0x{data.hex()}",)


# --------------------------------------------------------------------------- groups


class StakingError(ContractRevert):
    """Raised by NodeStaking."""


class EscrowError(ContractRevert):
    """Raised by PaymentEscrow."""


class CourtError(ContractRevert):
    """Raised by SpotCheckCourt."""


class TokenError(ContractRevert):
    """Raised by the ERC20 / ERC20Permit token."""


class AccessError(ContractRevert):
    """Raised by OpenZeppelin Ownable."""


class LibraryError(ContractRevert):
    """Raised by an OpenZeppelin library inside the contracts."""


# --------------------------------------------------------------------------- Solidity built-ins


class SolidityError(ContractRevert):
    """``require(cond, "message")`` or ``revert("message")``."""

    signature = "Error(string message)"


class SolidityPanic(ContractRevert):
    """A Solidity panic (0x11 overflow, 0x12 division by zero, 0x01 assert, ...)."""

    signature = "Panic(uint256 code)"


# --------------------------------------------------------------------------- NodeStaking


class StakingCourtAlreadySet(StakingError):
    """The court can be set only once."""

    signature = "StakingCourtAlreadySet(address court)"


class StakingNotCourt(StakingError):
    """Only the court may freeze, unfreeze and slash."""

    signature = "StakingNotCourt(address caller)"


class StakingZeroAmount(StakingError):
    """A zero amount or address where one is required."""

    signature = "StakingZeroAmount()"


class StakingInvalidLayerRange(StakingError):
    """layer_end must be greater than layer_start."""

    signature = "StakingInvalidLayerRange(uint16 layerStart,uint16 layerEnd)"


class StakingInsufficientBond(StakingError):
    """Less bonded stake than asked for."""

    signature = "StakingInsufficientBond(address operator,uint256 bonded,uint256 needed)"


class StakingInsufficientUnbonding(StakingError):
    """Less unbonding stake than asked for."""

    signature = "StakingInsufficientUnbonding(address operator,uint256 unbonding,uint256 needed)"


class StakingFrozen(StakingError):
    """A challenge against the operator is open: no stake may leave."""

    signature = "StakingFrozen(address operator,uint32 openChallenges)"


class StakingStillUnbonding(StakingError):
    """The unbonding lock is not released yet."""

    signature = "StakingStillUnbonding(address operator,uint64 releaseAt)"


class StakingNothingToWithdraw(StakingError):
    """Nothing is unbonding."""

    signature = "StakingNothingToWithdraw(address operator)"


class StakingNotFrozen(StakingError):
    """unfreeze without a matching freeze."""

    signature = "StakingNotFrozen(address operator)"


class StakingInvalidFraction(StakingError):
    """A slash fraction above 100%."""

    signature = "StakingInvalidFraction(uint256 fractionBps)"


# --------------------------------------------------------------------------- PaymentEscrow


class EscrowZeroAmount(EscrowError):
    """A zero amount where one is required."""

    signature = "EscrowZeroAmount()"


class EscrowThawNotLongerThanValidity(EscrowError):
    """Deployment parameters: the thaw must be longer than the longest voucher validity."""

    signature = "EscrowThawNotLongerThanValidity(uint64 thawPeriod,uint64 maxVoucherValidity)"


class EscrowFeeTooHigh(EscrowError):
    """The fee is above MAX_FEE_BPS."""

    signature = "EscrowFeeTooHigh(uint16 feeBps)"


class EscrowNotPayee(EscrowError):
    """Only the voucher's payee may redeem it."""

    signature = "EscrowNotPayee(address caller,address payee)"


class EscrowInvalidSignature(EscrowError):
    """Not the client's signature, high s, or not 65 bytes."""

    signature = "EscrowInvalidSignature(address client)"


class EscrowVoucherExpired(EscrowError):
    """The voucher's expiry has passed."""

    signature = "EscrowVoucherExpired(uint64 expiry)"


class EscrowVoucherExpiryTooFar(EscrowError):
    """The voucher's expiry is further than maxVoucherValidity from now."""

    signature = "EscrowVoucherExpiryTooFar(uint64 expiry,uint64 latestAllowed)"


class EscrowNothingToRedeem(EscrowError):
    """The voucher's cumulative amount is not above what the channel already paid (replay or older)."""

    signature = "EscrowNothingToRedeem(bytes32 channelKey,uint256 cumulativeAmount,uint256 redeemed)"


class EscrowInsufficientDeposit(EscrowError):
    """The client's balance does not cover the voucher's delta."""

    signature = "EscrowInsufficientDeposit(address client,uint256 balance,uint256 needed)"


class EscrowPayeeNotPayable(EscrowError):
    """The payee is jailed or has no stake at risk."""

    signature = "EscrowPayeeNotPayable(address payee)"


class EscrowNoWithdrawRequested(EscrowError):
    """withdraw without a requestWithdraw."""

    signature = "EscrowNoWithdrawRequested(address client)"


class EscrowStillThawing(EscrowError):
    """The thaw delay has not passed."""

    signature = "EscrowStillThawing(address client,uint64 withdrawableAt)"


class EscrowLengthMismatch(EscrowError):
    """redeemBatch got different numbers of vouchers and signatures."""

    signature = "EscrowLengthMismatch(uint256 vouchers,uint256 signatures)"


# --------------------------------------------------------------------------- SpotCheckCourt


class CourtUnbondingTooShort(CourtError):
    """Deployment: staking's unbonding period does not cover challenge window + longest job."""

    signature = "CourtUnbondingTooShort(uint64 unbondingPeriod,uint64 needed)"


class CourtInvalidParams(CourtError):
    """Deployment: a court parameter is out of range."""

    signature = "CourtInvalidParams()"


class CourtZeroAmount(CourtError):
    """A zero amount where one is required."""

    signature = "CourtZeroAmount()"


class CourtNoPriorCommitment(CourtError):
    """No commitment from the caller for this challenge in an earlier block."""

    signature = "CourtNoPriorCommitment(bytes32 commitment)"


class CourtAlreadyChallenged(CourtError):
    """The receipt was already challenged."""

    signature = "CourtAlreadyChallenged(bytes32 receiptDigest)"


class CourtInvalidReceiptSignature(CourtError):
    """The receipt is not signed by its node (or the signature is high-s / not 65 bytes)."""

    signature = "CourtInvalidReceiptSignature(address node)"


class CourtChallengeNotOpen(CourtError):
    """The challenge is not open (status: 0 none, 2 upheld, 3 rejected, 4 expired)."""

    signature = "CourtChallengeNotOpen(bytes32 receiptDigest,uint8 status)"


class CourtVotingClosed(CourtError):
    """Voting closed at deadline."""

    signature = "CourtVotingClosed(bytes32 receiptDigest,uint64 deadline)"


class CourtVotingOpen(CourtError):
    """resolve before the voting deadline."""

    signature = "CourtVotingOpen(bytes32 receiptDigest,uint64 deadline)"


class CourtNotEligible(CourtError):
    """The caller may not vote on this challenge."""

    signature = "CourtNotEligible(bytes32 receiptDigest,address voter)"


class CourtAlreadyVoted(CourtError):
    """The caller already voted on this challenge."""

    signature = "CourtAlreadyVoted(bytes32 receiptDigest,address voter)"


class CourtNothingToClaim(CourtError):
    """Nothing to claim or withdraw."""

    signature = "CourtNothingToClaim(address account)"


class CourtNotBonded(CourtError):
    """The validator is not bonded, or already unbonding."""

    signature = "CourtNotBonded(address validator)"


class CourtStillUnbonding(CourtError):
    """The validator's unbonding period has not passed."""

    signature = "CourtStillUnbonding(address validator,uint64 unbondableAt)"


# --------------------------------------------------------------------------- token (OpenZeppelin ERC20)


class ERC20InsufficientBalance(TokenError):
    """The sender's token balance is too low."""

    signature = "ERC20InsufficientBalance(address sender,uint256 balance,uint256 needed)"


class ERC20InsufficientAllowance(TokenError):
    """The spender's allowance is too low (approve first)."""

    signature = "ERC20InsufficientAllowance(address spender,uint256 allowance,uint256 needed)"


class ERC20InvalidApprover(TokenError):
    """Approval from the zero address."""

    signature = "ERC20InvalidApprover(address approver)"


class ERC20InvalidReceiver(TokenError):
    """Transfer to the zero address."""

    signature = "ERC20InvalidReceiver(address receiver)"


class ERC20InvalidSender(TokenError):
    """Transfer from the zero address."""

    signature = "ERC20InvalidSender(address sender)"


class ERC20InvalidSpender(TokenError):
    """Approval to the zero address."""

    signature = "ERC20InvalidSpender(address spender)"


class ERC2612ExpiredSignature(TokenError):
    """The permit's deadline has passed."""

    signature = "ERC2612ExpiredSignature(uint256 deadline)"


class ERC2612InvalidSigner(TokenError):
    """The permit was not signed by the owner."""

    signature = "ERC2612InvalidSigner(address signer,address owner)"


class InvalidAccountNonce(TokenError):
    """The permit's nonce is not the account's current nonce."""

    signature = "InvalidAccountNonce(address account,uint256 currentNonce)"


# --------------------------------------------------------------------------- access and libraries


class OwnableUnauthorizedAccount(AccessError):
    """Only the owner may call this."""

    signature = "OwnableUnauthorizedAccount(address account)"


class OwnableInvalidOwner(AccessError):
    """The zero address cannot own the contract."""

    signature = "OwnableInvalidOwner(address owner)"


class ReentrancyGuardReentrantCall(LibraryError):
    """A reentrant call was stopped."""

    signature = "ReentrancyGuardReentrantCall()"


class SafeERC20FailedOperation(LibraryError):
    """The token's transfer returned false."""

    signature = "SafeERC20FailedOperation(address token)"


class ECDSAInvalidSignature(LibraryError):
    """An ECDSA signature recovers no address."""

    signature = "ECDSAInvalidSignature()"


class ECDSAInvalidSignatureLength(LibraryError):
    """An ECDSA signature is not 65 bytes."""

    signature = "ECDSAInvalidSignatureLength(uint256 length)"


class ECDSAInvalidSignatureS(LibraryError):
    """An ECDSA signature has a high s."""

    signature = "ECDSAInvalidSignatureS(bytes32 s)"


class InvalidShortString(LibraryError):
    """ShortStrings: a string too long to pack."""

    signature = "InvalidShortString()"


class StringTooLong(LibraryError):
    """ShortStrings: a string longer than 31 bytes."""

    signature = "StringTooLong(string str)"


def decode_revert(data: bytes) -> ContractRevert:
    """The exception for raw revert data (selector + ABI-encoded arguments).

    Unknown selectors, and data too short or malformed for its error, give UnknownContractError.
    """
    cls = ERRORS_BY_SELECTOR.get(bytes(data[:4]))
    if cls is None:
        return UnknownContractError(bytes(data))
    try:
        values = decode(list(cls.param_types), bytes(data[4:])) if cls.param_types else ()
    except Exception:  # eth_abi raises several unrelated types for malformed data
        return UnknownContractError(bytes(data))
    return cls(
        *(
            to_checksum_address(v) if t == "address" else v
            for t, v in zip(cls.param_types, values, strict=True)
        )
    )


__all__ = sorted(
    [name for name, obj in globals().items() if isinstance(obj, type) and issubclass(obj, ChainError)]
    + ["ERRORS_BY_SELECTOR", "decode_revert"]
)
