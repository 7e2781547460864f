// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {INodeStaking} from "../interfaces/INodeStaking.sol";

/// @title PaymentEscrow
/// @notice Clients deposit tokens and pay nodes per token with EIP-712 *cumulative* vouchers signed
/// off-chain: `Voucher(client, payee, channelId, cumulativeAmount, expiry)`. The payee redeems the newest
/// voucher of a channel and is paid the delta over what that channel already paid, less a protocol fee
/// that accrues to the validators' reward pool. A client withdraws only after a thaw delay longer than the
/// longest voucher validity, so a payee can always redeem first.
contract PaymentEscrow is Ownable, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice A cumulative payment promise from `client` to `payee` on one channel.
    struct Voucher {
        address client;
        address payee;
        bytes32 channelId; // chosen by the client; one per (payee, period) or per job stream
        uint256 cumulativeAmount; // total ever owed on this channel, not the increment
        uint64 expiry; // unix seconds; not redeemable after
    }

    /// @notice A client's balance and its pending withdrawal request.
    struct Account {
        uint256 balance;
        uint256 withdrawRequested; // amount asked for by requestWithdraw (0 = none)
        uint64 withdrawableAt; // when the request may be executed
    }

    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address client,address payee,bytes32 channelId,uint256 cumulativeAmount,uint64 expiry)"
    );
    /// @notice Highest protocol fee, in basis points (10%).
    uint16 public constant MAX_FEE_BPS = 1_000;
    uint256 private constant BPS = 10_000;

    IERC20 private immutable _token;
    INodeStaking private immutable _staking;
    uint64 private immutable _thawPeriod;
    uint64 private immutable _maxVoucherValidity;

    uint16 private _feeBps;
    address private _feeRecipient;
    uint256 private _accruedFees;
    uint256 private _totalDeposits;

    mapping(address client => Account) private _accounts;
    /// Replay guard: what each (client, payee, channelId) has paid so far. A voucher pays only
    /// `cumulativeAmount - redeemed`, so the same voucher, or an older (lower) one, pays nothing again.
    mapping(bytes32 channelKey => uint256) private _redeemed;

    /// @notice A zero amount where one is required.
    error EscrowZeroAmount();
    /// @notice thawPeriod must be longer than maxVoucherValidity.
    error EscrowThawNotLongerThanValidity(uint64 thawPeriod, uint64 maxVoucherValidity);
    /// @notice The fee is above MAX_FEE_BPS.
    error EscrowFeeTooHigh(uint16 feeBps);
    /// @notice The caller is not the voucher's payee.
    error EscrowNotPayee(address caller, address payee);
    /// @notice The signature is malformed, high-s, not 65 bytes, or not the client's.
    error EscrowInvalidSignature(address client);
    /// @notice The voucher expired at `expiry`.
    error EscrowVoucherExpired(uint64 expiry);
    /// @notice The voucher's expiry is further away than maxVoucherValidity (it could outlive a thaw).
    error EscrowVoucherExpiryTooFar(uint64 expiry, uint64 latestAllowed);
    /// @notice The voucher pays nothing new: its cumulative amount is not above what was redeemed.
    error EscrowNothingToRedeem(bytes32 channelKey, uint256 cumulativeAmount, uint256 redeemed);
    /// @notice The client's balance does not cover the voucher's delta.
    error EscrowInsufficientDeposit(address client, uint256 balance, uint256 needed);
    /// @notice The payee is jailed or has no stake at risk.
    error EscrowPayeeNotPayable(address payee);
    /// @notice No withdrawal was requested.
    error EscrowNoWithdrawRequested(address client);
    /// @notice The thaw delay has not passed.
    error EscrowStillThawing(address client, uint64 withdrawableAt);
    /// @notice The two arrays differ in length.
    error EscrowLengthMismatch(uint256 vouchers, uint256 signatures);

    /// @notice `client` deposited `amount`; `balance` is its new balance.
    event Deposited(address indexed client, uint256 amount, uint256 balance);
    /// @notice `client` asked to withdraw `amount` at or after `withdrawableAt`.
    event WithdrawRequested(address indexed client, uint256 amount, uint64 withdrawableAt);
    /// @notice `client` withdrew `amount`.
    event Withdrawn(address indexed client, uint256 amount);
    /// @notice A voucher paid `paid` to the payee and `fee` to the pool; the channel has now paid `redeemed`.
    event VoucherRedeemed(
        address indexed client,
        address indexed payee,
        bytes32 indexed channelId,
        uint256 redeemed,
        uint256 paid,
        uint256 fee
    );
    /// @notice Voucher `index` of a batch was skipped; `reason` is the selector of the error `redeem` would raise.
    event VoucherRejected(uint256 indexed index, bytes4 reason);
    /// @notice The protocol fee changed.
    event FeeChanged(uint16 feeBps);
    /// @notice The fee recipient changed.
    event FeeRecipientChanged(address indexed feeRecipient);
    /// @notice `amount` of accrued fees went to `feeRecipient`.
    event FeesSwept(address indexed feeRecipient, uint256 amount);

    /// @param token_ ERC20 used for payments.
    /// @param staking_ NodeStaking, asked whether a payee may be paid.
    /// @param owner_ may change the fee and its recipient.
    /// @param thawPeriod_ seconds between requestWithdraw and withdraw; must exceed maxVoucherValidity_.
    /// @param maxVoucherValidity_ longest accepted `expiry - block.timestamp` at redemption.
    /// @param feeBps_ protocol fee in basis points (<= MAX_FEE_BPS).
    /// @param feeRecipient_ where swept fees go (the court's reward pool).
    constructor(
        IERC20 token_,
        INodeStaking staking_,
        address owner_,
        uint64 thawPeriod_,
        uint64 maxVoucherValidity_,
        uint16 feeBps_,
        address feeRecipient_
    ) Ownable(owner_) EIP712("Layermarket", "1") {
        if (thawPeriod_ <= maxVoucherValidity_) {
            revert EscrowThawNotLongerThanValidity(thawPeriod_, maxVoucherValidity_);
        }
        if (feeBps_ > MAX_FEE_BPS) revert EscrowFeeTooHigh(feeBps_);
        _token = token_;
        _staking = staking_;
        _thawPeriod = thawPeriod_;
        _maxVoucherValidity = maxVoucherValidity_;
        _feeBps = feeBps_;
        _feeRecipient = feeRecipient_;
    }

    // ------------------------------------------------------------------ client

    /// @notice Adds `amount` to the caller's balance (pulls tokens; approve first).
    /// @param amount token amount.
    function deposit(uint256 amount) external nonReentrant {
        _deposit(amount);
    }

    /// @notice Like `deposit`, with an ERC-2612 permit instead of a prior approve. If the permit was
    /// already used (someone front-ran it), the allowance it set is used and the deposit still happens.
    /// @param amount token amount.
    /// @param deadline permit deadline.
    /// @param v permit signature v.
    /// @param r permit signature r.
    /// @param s permit signature s.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {}
            catch {} // a front-run permit leaves the allowance set; transferFrom below decides.
        _deposit(amount);
    }

    /// @notice Starts the thaw: `amount` may be withdrawn after the thaw period. Until then payees may
    /// still redeem against the whole balance. A new request replaces the old one and restarts the clock.
    /// @param amount token amount to withdraw later.
    function requestWithdraw(uint256 amount) external {
        if (amount == 0) revert EscrowZeroAmount();
        Account storage a = _accounts[msg.sender];
        a.withdrawRequested = amount;
        a.withdrawableAt = uint64(block.timestamp) + _thawPeriod;
        emit WithdrawRequested(msg.sender, amount, a.withdrawableAt);
    }

    /// @notice Executes a thawed request: pays `min(requested, balance)` to the caller.
    function withdraw() external nonReentrant {
        Account storage a = _accounts[msg.sender];
        if (a.withdrawRequested == 0) revert EscrowNoWithdrawRequested(msg.sender);
        if (block.timestamp < a.withdrawableAt) revert EscrowStillThawing(msg.sender, a.withdrawableAt);
        uint256 amount = a.withdrawRequested < a.balance ? a.withdrawRequested : a.balance;
        a.withdrawRequested = 0;
        a.withdrawableAt = 0;
        a.balance -= amount;
        _totalDeposits -= amount;
        emit Withdrawn(msg.sender, amount);
        if (amount != 0) _token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ payee

    /// @notice Redeems one voucher; the caller must be its payee. Pays the delta over what the channel
    /// already paid, less the protocol fee.
    /// @param voucher the voucher.
    /// @param signature the client's 65-byte low-s EIP-712 signature.
    function redeem(Voucher calldata voucher, bytes calldata signature) external nonReentrant {
        if (!_staking.isPayable(msg.sender)) revert EscrowPayeeNotPayable(msg.sender);
        (uint256 net, bytes4 err) = _redeem(voucher, signature);
        if (err != bytes4(0)) _revertWith(err, voucher, signature);
        _token.safeTransfer(msg.sender, net);
    }

    /// @notice Redeems many vouchers, all payable to the caller, in one transfer. A voucher that would make
    /// `redeem` revert is skipped with a `VoucherRejected` event; the rest are paid.
    /// @param vouchers the vouchers (any clients and channels; payee must be the caller).
    /// @param signatures one signature per voucher.
    /// @return paid total paid to the caller after fees.
    function redeemBatch(Voucher[] calldata vouchers, bytes[] calldata signatures)
        external
        nonReentrant
        returns (uint256 paid)
    {
        if (vouchers.length != signatures.length) {
            revert EscrowLengthMismatch(vouchers.length, signatures.length);
        }
        if (!_staking.isPayable(msg.sender)) revert EscrowPayeeNotPayable(msg.sender);
        for (uint256 i = 0; i < vouchers.length; ++i) {
            (uint256 net, bytes4 err) = _redeem(vouchers[i], signatures[i]);
            if (err != bytes4(0)) emit VoucherRejected(i, err);
            else paid += net;
        }
        if (paid != 0) _token.safeTransfer(msg.sender, paid);
    }

    // ------------------------------------------------------------------ fees

    /// @notice Sends accrued fees to the fee recipient. Anyone may call.
    function sweepFees() external nonReentrant {
        uint256 amount = _accruedFees;
        _accruedFees = 0;
        emit FeesSwept(_feeRecipient, amount);
        if (amount != 0) _token.safeTransfer(_feeRecipient, amount);
    }

    /// @notice Sets the protocol fee for future redemptions (already redeemed deltas keep theirs).
    /// @param feeBps_ fee in basis points (<= MAX_FEE_BPS).
    function setFee(uint16 feeBps_) external onlyOwner {
        if (feeBps_ > MAX_FEE_BPS) revert EscrowFeeTooHigh(feeBps_);
        _feeBps = feeBps_;
        emit FeeChanged(feeBps_);
    }

    /// @notice Sets where swept fees go.
    /// @param feeRecipient_ the new recipient.
    function setFeeRecipient(address feeRecipient_) external onlyOwner {
        _feeRecipient = feeRecipient_;
        emit FeeRecipientChanged(feeRecipient_);
    }

    // ------------------------------------------------------------------ views

    /// @notice The EIP-712 digest the client signs for `voucher`.
    /// @param voucher the voucher.
    function voucherDigest(Voucher calldata voucher) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    VOUCHER_TYPEHASH,
                    voucher.client,
                    voucher.payee,
                    voucher.channelId,
                    voucher.cumulativeAmount,
                    voucher.expiry
                )
            )
        );
    }

    /// @notice Key of the (client, payee, channelId) channel in `redeemed`.
    /// @param client the paying client.
    /// @param payee the paid node.
    /// @param channelId the client's channel id.
    function channelKey(address client, address payee, bytes32 channelId) public pure returns (bytes32) {
        return keccak256(abi.encode(client, payee, channelId));
    }

    /// @notice What the channel has paid so far (gross, fee included).
    /// @param client the paying client.
    /// @param payee the paid node.
    /// @param channelId the client's channel id.
    function redeemed(address client, address payee, bytes32 channelId) external view returns (uint256) {
        return _redeemed[channelKey(client, payee, channelId)];
    }

    /// @notice A client's balance and pending withdrawal.
    /// @param client the client.
    function account(address client) external view returns (Account memory) {
        return _accounts[client];
    }

    /// @notice Sum of client balances. With accruedFees it equals this contract's token balance (invariant).
    function totalDeposits() external view returns (uint256) {
        return _totalDeposits;
    }

    /// @notice Fees accrued and not yet swept.
    function accruedFees() external view returns (uint256) {
        return _accruedFees;
    }

    /// @notice Protocol fee in basis points.
    function feeBps() external view returns (uint16) {
        return _feeBps;
    }

    /// @notice Where swept fees go.
    function feeRecipient() external view returns (address) {
        return _feeRecipient;
    }

    /// @notice The payment token.
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @notice The staking contract asked whether a payee may be paid.
    function staking() external view returns (INodeStaking) {
        return _staking;
    }

    /// @notice Seconds between requestWithdraw and withdraw.
    function thawPeriod() external view returns (uint64) {
        return _thawPeriod;
    }

    /// @notice Longest accepted voucher lifetime left at redemption, in seconds.
    function maxVoucherValidity() external view returns (uint64) {
        return _maxVoucherValidity;
    }

    /// @notice The EIP-712 domain separator (name "Layermarket", version "1", chainId, this address).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internals

    function _deposit(uint256 amount) private {
        if (amount == 0) revert EscrowZeroAmount();
        Account storage a = _accounts[msg.sender];
        a.balance += amount;
        _totalDeposits += amount;
        emit Deposited(msg.sender, amount, a.balance);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// Checks and books one voucher. Returns the net amount owed to the payee, or the selector of the
    /// error that `redeem` raises (and books nothing). Effects only; the caller transfers.
    function _redeem(Voucher calldata v, bytes calldata signature) private returns (uint256 net, bytes4 err) {
        if (v.payee != msg.sender) return (0, EscrowNotPayee.selector);
        if (block.timestamp > v.expiry) return (0, EscrowVoucherExpired.selector);
        if (v.expiry > block.timestamp + _maxVoucherValidity) return (0, EscrowVoucherExpiryTooFar.selector);
        // OZ tryRecover rejects signatures that are not 65 bytes and high-s (malleable) ones.
        (address signer, ECDSA.RecoverError rerr,) = ECDSA.tryRecover(voucherDigest(v), signature);
        if (rerr != ECDSA.RecoverError.NoError || signer != v.client) return (0, EscrowInvalidSignature.selector);
        bytes32 key = channelKey(v.client, v.payee, v.channelId);
        uint256 already = _redeemed[key];
        // Replay guard: cumulative amounts only go up; a replayed or older voucher pays nothing.
        if (v.cumulativeAmount <= already) return (0, EscrowNothingToRedeem.selector);
        uint256 delta = v.cumulativeAmount - already;
        Account storage a = _accounts[v.client];
        if (a.balance < delta) return (0, EscrowInsufficientDeposit.selector);
        uint256 fee = (delta * _feeBps) / BPS;
        net = delta - fee;
        _redeemed[key] = v.cumulativeAmount;
        a.balance -= delta;
        _totalDeposits -= delta;
        _accruedFees += fee;
        emit VoucherRedeemed(v.client, v.payee, v.channelId, v.cumulativeAmount, net, fee);
    }

    /// Re-raises `err` with its arguments for the single-voucher path.
    function _revertWith(bytes4 err, Voucher calldata v, bytes calldata) private view {
        if (err == EscrowNotPayee.selector) revert EscrowNotPayee(msg.sender, v.payee);
        if (err == EscrowVoucherExpired.selector) revert EscrowVoucherExpired(v.expiry);
        if (err == EscrowVoucherExpiryTooFar.selector) {
            revert EscrowVoucherExpiryTooFar(v.expiry, uint64(block.timestamp) + _maxVoucherValidity);
        }
        if (err == EscrowInvalidSignature.selector) revert EscrowInvalidSignature(v.client);
        bytes32 key = channelKey(v.client, v.payee, v.channelId);
        if (err == EscrowNothingToRedeem.selector) {
            revert EscrowNothingToRedeem(key, v.cumulativeAmount, _redeemed[key]);
        }
        revert EscrowInsufficientDeposit(v.client, _accounts[v.client].balance, v.cumulativeAmount - _redeemed[key]);
    }
}
