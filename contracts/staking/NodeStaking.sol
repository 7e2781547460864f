// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {INodeStaking} from "../interfaces/INodeStaking.sol";

/// @title NodeStaking
/// @notice Node operators bond stake, describe the pipeline stage they serve, and get the stake back after
/// an unbonding period. The court (set once) freezes stake while a challenge is open and slashes it when a
/// challenge is upheld; a slash reaches unbonding stake too, so cheating and then unbonding does not escape.
/// @dev Each operator has at most ONE unbonding lock: a new `unbond` adds to it and restarts its clock.
/// One lock keeps `slash` O(1), so an operator cannot make itself unslashable by splitting its stake into
/// thousands of locks (a gas-griefing escape).
contract NodeStaking is INodeStaking, Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice What an operator serves. Layers are the half-open range [layerStart, layerEnd).
    struct NodeRecord {
        bytes peerId; // libp2p peer id (multihash bytes); the daemon signs it with the operator key off-chain
        bytes32 modelId; // keccak256 of the model manifest
        uint16 layerStart;
        uint16 layerEnd;
        uint256 pricePerToken; // token units per generated token
        bytes32 endpointHash; // keccak256 of the announced endpoint (multiaddr)
    }

    /// @notice An operator's stake.
    struct Stake {
        uint256 bonded; // active stake
        uint256 unbonding; // in the single unbonding lock
        uint64 unbondingReleaseAt; // when `unbonding` can be withdrawn
        uint64 jailedUntil; // no payments and not active before this time
        uint32 openChallenges; // > 0: frozen, no stake leaves
    }

    /// @notice Upper bound on the slash fraction, in basis points.
    uint256 public constant BPS = 10_000;

    IERC20 private immutable _token;
    uint64 private immutable _unbondingPeriod;
    uint256 private immutable _minStakePerLayer;
    uint64 private immutable _jailDuration;
    address private _court;

    mapping(address operator => NodeRecord) private _records;
    mapping(address operator => Stake) private _stakes;
    uint256 private _totalStaked;

    /// @notice The court is already set; it can be set only once.
    error StakingCourtAlreadySet(address court);
    /// @notice Only the court may call this.
    error StakingNotCourt(address caller);
    /// @notice A zero amount or address where one is required.
    error StakingZeroAmount();
    /// @notice The layer range is empty.
    error StakingInvalidLayerRange(uint16 layerStart, uint16 layerEnd);
    /// @notice The operator has less bonded stake than asked for.
    error StakingInsufficientBond(address operator, uint256 bonded, uint256 needed);
    /// @notice The operator has less unbonding stake than asked for.
    error StakingInsufficientUnbonding(address operator, uint256 unbonding, uint256 needed);
    /// @notice A challenge against the operator is open: no stake may leave.
    error StakingFrozen(address operator, uint32 openChallenges);
    /// @notice The unbonding lock is not released yet.
    error StakingStillUnbonding(address operator, uint64 releaseAt);
    /// @notice Nothing is unbonding.
    error StakingNothingToWithdraw(address operator);
    /// @notice `unfreeze` without a matching `freeze`.
    error StakingNotFrozen(address operator);
    /// @notice The fraction is above 100%.
    error StakingInvalidFraction(uint256 fractionBps);

    /// @notice The court was wired in.
    event CourtSet(address indexed court);
    /// @notice `operator` bonded `amount` more; `bonded` is the new total.
    event Bonded(address indexed operator, uint256 amount, uint256 bonded);
    /// @notice `operator` moved `amount` to its unbonding lock, released at `releaseAt`.
    event Unbonded(address indexed operator, uint256 amount, uint256 unbonding, uint64 releaseAt);
    /// @notice `operator` moved `amount` from its unbonding lock back to bonded stake.
    event Rebonded(address indexed operator, uint256 amount, uint256 bonded);
    /// @notice `operator` withdrew `amount` from its released unbonding lock.
    event Withdrawn(address indexed operator, uint256 amount);
    /// @notice `operator` registered or updated its node record.
    event NodeRegistered(
        address indexed operator,
        bytes peerId,
        bytes32 indexed modelId,
        uint16 layerStart,
        uint16 layerEnd,
        uint256 pricePerToken,
        bytes32 endpointHash
    );
    /// @notice `operator` deleted its node record.
    event NodeDeregistered(address indexed operator);
    /// @notice A challenge against `operator` opened; `openChallenges` are now open.
    event NodeFrozen(address indexed operator, uint32 openChallenges);
    /// @notice A challenge against `operator` closed; `openChallenges` remain open.
    event NodeUnfrozen(address indexed operator, uint32 openChallenges);
    /// @notice `operator` lost `fromBonded + fromUnbonding` to the court.
    event NodeSlashed(address indexed operator, uint256 fromBonded, uint256 fromUnbonding);
    /// @notice `operator` is jailed until `until`.
    event NodeJailed(address indexed operator, uint64 until);

    /// @param token_ ERC20 that is staked.
    /// @param owner_ may set the court once.
    /// @param unbondingPeriod_ seconds from `unbond` to `withdraw`; must exceed the court's challenge
    /// window plus the longest job (the court checks this when it is deployed).
    /// @param minStakePerLayer_ bonded stake needed per served layer for a node to be active.
    /// @param jailDuration_ seconds a slashed node stays jailed.
    constructor(
        IERC20 token_,
        address owner_,
        uint64 unbondingPeriod_,
        uint256 minStakePerLayer_,
        uint64 jailDuration_
    ) Ownable(owner_) {
        _token = token_;
        _unbondingPeriod = unbondingPeriod_;
        _minStakePerLayer = minStakePerLayer_;
        _jailDuration = jailDuration_;
    }

    modifier onlyCourt() {
        if (msg.sender != _court) revert StakingNotCourt(msg.sender);
        _;
    }

    /// @notice Wires the court; only once, only the owner.
    /// @param court_ the SpotCheckCourt that may freeze and slash.
    function setCourt(address court_) external onlyOwner {
        if (_court != address(0)) revert StakingCourtAlreadySet(_court);
        if (court_ == address(0)) revert StakingZeroAmount();
        _court = court_;
        emit CourtSet(court_);
    }

    // ------------------------------------------------------------------ operator actions

    /// @notice Adds `amount` to the caller's bonded stake (pulls tokens; approve first).
    /// @param amount token amount to bond.
    function bond(uint256 amount) external nonReentrant {
        if (amount == 0) revert StakingZeroAmount();
        Stake storage s = _stakes[msg.sender];
        s.bonded += amount;
        _totalStaked += amount;
        emit Bonded(msg.sender, amount, s.bonded);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Moves `amount` of bonded stake into the caller's unbonding lock and restarts its clock.
    /// The lock stays slashable until withdrawn.
    /// @param amount token amount to unbond.
    function unbond(uint256 amount) external {
        if (amount == 0) revert StakingZeroAmount();
        Stake storage s = _stakes[msg.sender];
        if (s.openChallenges != 0) revert StakingFrozen(msg.sender, s.openChallenges);
        if (s.bonded < amount) revert StakingInsufficientBond(msg.sender, s.bonded, amount);
        s.bonded -= amount;
        s.unbonding += amount;
        s.unbondingReleaseAt = uint64(block.timestamp) + _unbondingPeriod;
        emit Unbonded(msg.sender, amount, s.unbonding, s.unbondingReleaseAt);
    }

    /// @notice Moves `amount` from the caller's unbonding lock back to bonded stake.
    /// @param amount token amount to rebond.
    function rebond(uint256 amount) external {
        if (amount == 0) revert StakingZeroAmount();
        Stake storage s = _stakes[msg.sender];
        if (s.unbonding < amount) revert StakingInsufficientUnbonding(msg.sender, s.unbonding, amount);
        s.unbonding -= amount;
        s.bonded += amount;
        emit Rebonded(msg.sender, amount, s.bonded);
    }

    /// @notice Withdraws the caller's whole unbonding lock once released and no challenge is open.
    function withdraw() external nonReentrant {
        Stake storage s = _stakes[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert StakingNothingToWithdraw(msg.sender);
        if (s.openChallenges != 0) revert StakingFrozen(msg.sender, s.openChallenges);
        if (block.timestamp < s.unbondingReleaseAt) revert StakingStillUnbonding(msg.sender, s.unbondingReleaseAt);
        s.unbonding = 0;
        _totalStaked -= amount;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @notice Registers or updates the caller's node record.
    /// @param record peer id, model id, layer range [start, end), price per token and endpoint hash.
    function register(NodeRecord calldata record) external {
        if (record.layerEnd <= record.layerStart) {
            revert StakingInvalidLayerRange(record.layerStart, record.layerEnd);
        }
        _records[msg.sender] = record;
        emit NodeRegistered(
            msg.sender,
            record.peerId,
            record.modelId,
            record.layerStart,
            record.layerEnd,
            record.pricePerToken,
            record.endpointHash
        );
    }

    /// @notice Deletes the caller's node record (stake is untouched; unbond separately).
    function deregister() external {
        Stake storage s = _stakes[msg.sender];
        if (s.openChallenges != 0) revert StakingFrozen(msg.sender, s.openChallenges);
        delete _records[msg.sender];
        emit NodeDeregistered(msg.sender);
    }

    // ------------------------------------------------------------------ court actions

    /// @inheritdoc INodeStaking
    function freeze(address operator) external onlyCourt {
        uint32 open = ++_stakes[operator].openChallenges;
        emit NodeFrozen(operator, open);
    }

    /// @inheritdoc INodeStaking
    function unfreeze(address operator) external onlyCourt {
        Stake storage s = _stakes[operator];
        if (s.openChallenges == 0) revert StakingNotFrozen(operator);
        uint32 open = --s.openChallenges;
        emit NodeUnfrozen(operator, open);
    }

    /// @inheritdoc INodeStaking
    function slash(address operator, uint256 fractionBps) external onlyCourt nonReentrant returns (uint256) {
        if (fractionBps > BPS) revert StakingInvalidFraction(fractionBps);
        Stake storage s = _stakes[operator];
        uint256 amount = ((s.bonded + s.unbonding) * fractionBps) / BPS;
        // Bonded stake first, then the unbonding lock: the lock is reachable (Livepeer's was not).
        uint256 fromBonded = amount <= s.bonded ? amount : s.bonded;
        uint256 fromUnbonding = amount - fromBonded;
        s.bonded -= fromBonded;
        s.unbonding -= fromUnbonding;
        _totalStaked -= amount;
        uint64 until = uint64(block.timestamp) + _jailDuration;
        if (until > s.jailedUntil) s.jailedUntil = until;
        emit NodeSlashed(operator, fromBonded, fromUnbonding);
        emit NodeJailed(operator, s.jailedUntil);
        if (amount != 0) _token.safeTransfer(msg.sender, amount);
        return amount;
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc INodeStaking
    function isPayable(address operator) external view returns (bool) {
        Stake storage s = _stakes[operator];
        return s.jailedUntil <= block.timestamp && (s.bonded + s.unbonding) != 0;
    }

    /// @notice True when `operator` has a node record.
    /// @param operator the node's operator address.
    function isRegistered(address operator) external view returns (bool) {
        return _records[operator].layerEnd != 0;
    }

    /// @notice True when the market may route to `operator`: registered, not jailed, and bonded at least
    /// `minStakePerLayer * (layerEnd - layerStart)`.
    /// @param operator the node's operator address.
    function isActive(address operator) external view returns (bool) {
        NodeRecord storage r = _records[operator];
        Stake storage s = _stakes[operator];
        if (r.layerEnd == 0 || s.jailedUntil > block.timestamp) return false;
        return s.bonded >= _minStakePerLayer * (r.layerEnd - r.layerStart);
    }

    /// @notice Bonded stake needed for `operator`'s registered layer range (0 when unregistered).
    /// @param operator the node's operator address.
    function requiredStake(address operator) external view returns (uint256) {
        NodeRecord storage r = _records[operator];
        return _minStakePerLayer * (r.layerEnd - r.layerStart);
    }

    /// @notice The node record of `operator` (all zero when unregistered).
    /// @param operator the node's operator address.
    function nodeRecord(address operator) external view returns (NodeRecord memory) {
        return _records[operator];
    }

    /// @notice The stake of `operator`.
    /// @param operator the node's operator address.
    function stakeOf(address operator) external view returns (Stake memory) {
        return _stakes[operator];
    }

    /// @notice Sum of all bonded and unbonding stake; equals this contract's token balance (invariant).
    function totalStaked() external view returns (uint256) {
        return _totalStaked;
    }

    /// @notice The staked token.
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @notice The court allowed to freeze and slash (zero until set).
    function court() external view returns (address) {
        return _court;
    }

    /// @inheritdoc INodeStaking
    function unbondingPeriod() external view returns (uint64) {
        return _unbondingPeriod;
    }

    /// @notice Bonded stake needed per served layer.
    function minStakePerLayer() external view returns (uint256) {
        return _minStakePerLayer;
    }

    /// @notice Seconds a slashed node stays jailed.
    function jailDuration() external view returns (uint64) {
        return _jailDuration;
    }
}
