// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {INodeStaking} from "../interfaces/INodeStaking.sol";

/// @title SpotCheckCourt
/// @notice Validators bond; a validator that re-computed a job and found a node's signed receipt out of
/// tolerance challenges it with a bond; bonded validators vote within a window; `resolve` slashes and jails
/// the node and rewards the challenger when upheld, or gives the challenger's bond to the node when the
/// challenge is rejected or expires without quorum. Voters on the winning side share a reward from the pool
/// (protocol fees swept from the escrow plus what slashes leave after the challenger's reward).
/// @dev Front-running the challenger: a challenge must reveal a commitment
/// `keccak256(abi.encode(challenger, receiptDigest, keccak256(evidence), salt))` made in an EARLIER block by
/// the same address. A copier who sees the reveal in the mempool has no earlier commitment, and the first
/// challenge of a receipt is the only one. No loops over voters: rewards are pulled per voter.
/// The court uses no randomness: who may vote is "every validator bonded before the challenge opened".
contract SpotCheckCourt is EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice What a node signs about a step range of a session (EIP-712, domain = this court).
    struct Receipt {
        address node; // operator address of the signing node
        bytes32 sessionId;
        bytes32 modelId; // keccak256 of the model manifest
        uint16 layerStart; // served layers [layerStart, layerEnd)
        uint16 layerEnd;
        uint32 stepStart; // decode steps [stepStart, stepEnd)
        uint32 stepEnd;
        bytes32 inputDigest; // digest of the hidden states / tokens the node received
        bytes32 outputCommitment; // commitment to the fingerprint of what it produced
        uint32 tokens; // tokens billed for this range
        uint256 pricePerToken;
        address client; // who pays
    }

    /// @notice Lifecycle of a challenge.
    enum Status {
        None,
        Open,
        Upheld,
        Rejected,
        Expired
    }

    /// @notice A validator's ballot on one challenge.
    enum Ballot {
        None,
        Uphold,
        Reject,
        Claimed
    }

    /// @notice One challenge, keyed by the receipt's EIP-712 digest.
    struct Challenge {
        address challenger;
        address node;
        uint64 openedAt;
        uint64 deadline; // votes accepted until this time (inclusive)
        uint32 upheldVotes;
        uint32 rejectedVotes;
        Status status;
        uint256 bond; // challenger's bond
        uint256 rewardPerVoter; // set at resolve for the winning side
        bytes32 evidenceHash;
    }

    /// @notice A validator's bond.
    struct Validator {
        uint256 bond;
        uint64 bondedAt; // last time the bond grew: votes only on challenges opened after it
        uint64 unbondableAt; // 0 = bonded; else the time its bond can be withdrawn (it can no longer vote)
    }

    /// @notice Court parameters, fixed at deployment.
    struct Params {
        uint256 challengerBond; // pulled from the challenger at `challenge`
        uint256 minValidatorBond; // a validator needs at least this to vote
        uint64 validatorUnbondingPeriod; // seconds from requestValidatorUnbond to withdrawValidatorBond
        uint64 votingPeriod; // seconds a challenge accepts votes
        uint32 quorum; // least number of votes for a verdict; fewer -> Expired
        uint16 slashBps; // fraction of the node's bonded + unbonding stake taken when upheld
        uint16 challengerRewardBps; // fraction of the slashed amount paid to the challenger
        uint256 voterReward; // per winning vote, from the pool (capped by what the pool holds)
        uint64 challengeWindow; // promise to validators: challenge within this after a job ends
        uint64 maxJobDuration; // longest job; unbondingPeriod must exceed challengeWindow + maxJobDuration
    }

    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(address node,bytes32 sessionId,bytes32 modelId,uint16 layerStart,uint16 layerEnd,"
        "uint32 stepStart,uint32 stepEnd,bytes32 inputDigest,bytes32 outputCommitment,uint32 tokens,"
        "uint256 pricePerToken,address client)"
    );
    uint256 private constant BPS = 10_000;

    IERC20 private immutable _token;
    INodeStaking private immutable _staking;
    Params private _params;

    mapping(bytes32 commitment => uint256 blockNumber) private _commits;
    mapping(bytes32 receiptDigest => Challenge) private _challenges;
    mapping(bytes32 receiptDigest => mapping(address validator => Ballot)) private _ballots;
    mapping(address validator => Validator) private _validators;
    mapping(address account => uint256) private _credits;
    uint256 private _rewardPool;
    uint256 private _totalOwed; // open bonds + validator bonds + credits

    /// @notice The staking unbonding period does not cover the challenge window plus the longest job.
    error CourtUnbondingTooShort(uint64 unbondingPeriod, uint64 needed);
    /// @notice A parameter is out of range.
    error CourtInvalidParams();
    /// @notice A zero amount where one is required.
    error CourtZeroAmount();
    /// @notice No commitment from the caller for this reveal, or it was made in this same block.
    error CourtNoPriorCommitment(bytes32 commitment);
    /// @notice The receipt was already challenged.
    error CourtAlreadyChallenged(bytes32 receiptDigest);
    /// @notice The node's signature on the receipt is invalid (wrong signer, high-s or not 65 bytes).
    error CourtInvalidReceiptSignature(address node);
    /// @notice The challenge is not open.
    error CourtChallengeNotOpen(bytes32 receiptDigest, Status status);
    /// @notice Voting closed at `deadline`.
    error CourtVotingClosed(bytes32 receiptDigest, uint64 deadline);
    /// @notice Voting is still open until `deadline`.
    error CourtVotingOpen(bytes32 receiptDigest, uint64 deadline);
    /// @notice The caller may not vote on this challenge.
    error CourtNotEligible(bytes32 receiptDigest, address voter);
    /// @notice The caller already voted on this challenge.
    error CourtAlreadyVoted(bytes32 receiptDigest, address voter);
    /// @notice Nothing to claim.
    error CourtNothingToClaim(address account);
    /// @notice The validator is unbonding or not bonded.
    error CourtNotBonded(address validator);
    /// @notice The validator's unbonding period has not passed.
    error CourtStillUnbonding(address validator, uint64 unbondableAt);

    /// @notice `challenger` committed to a challenge it will reveal in a later block.
    event ChallengeCommitted(address indexed challenger, bytes32 indexed commitment);
    /// @notice A challenge opened; `evidence` is the challenger's recomputation for voters to check.
    event ChallengeOpened(
        bytes32 indexed receiptDigest,
        address indexed challenger,
        address indexed node,
        uint64 deadline,
        bytes32 evidenceHash,
        bytes evidence
    );
    /// @notice `validator` voted.
    event Voted(bytes32 indexed receiptDigest, address indexed validator, bool uphold);
    /// @notice A challenge was resolved; `slashed` was taken from the node.
    event ChallengeResolved(bytes32 indexed receiptDigest, Status status, uint256 slashed, uint256 rewardPerVoter);
    /// @notice `account` was credited `amount` (claim with `withdrawCredit`).
    event Credited(address indexed account, uint256 amount);
    /// @notice `account` withdrew its credit.
    event CreditWithdrawn(address indexed account, uint256 amount);
    /// @notice The reward pool is now `rewardPool`.
    event RewardPoolChanged(uint256 rewardPool);
    /// @notice `validator` bonded `amount` more (total `bond`).
    event ValidatorBonded(address indexed validator, uint256 amount, uint256 bond);
    /// @notice `validator` started unbonding; withdrawable at `unbondableAt`.
    event ValidatorUnbondRequested(address indexed validator, uint64 unbondableAt);
    /// @notice `validator` withdrew its bond.
    event ValidatorWithdrawn(address indexed validator, uint256 amount);

    /// @param token_ ERC20 of bonds and rewards (the staking token).
    /// @param staking_ NodeStaking to freeze and slash.
    /// @param params_ court parameters (see `Params`).
    constructor(IERC20 token_, INodeStaking staking_, Params memory params_) EIP712("Layermarket", "1") {
        if (params_.quorum == 0 || params_.slashBps > BPS || params_.challengerRewardBps > BPS
            || params_.votingPeriod == 0 || params_.challengerBond == 0 || params_.minValidatorBond == 0) {
            revert CourtInvalidParams();
        }
        uint64 needed = params_.challengeWindow + params_.maxJobDuration;
        uint64 unbonding = staking_.unbondingPeriod();
        if (unbonding <= needed) revert CourtUnbondingTooShort(unbonding, needed);
        _token = token_;
        _staking = staking_;
        _params = params_;
    }

    // ------------------------------------------------------------------ validators

    /// @notice Adds `amount` to the caller's validator bond. Restarts `bondedAt`: the caller votes only on
    /// challenges opened after this call, so nobody can bond just to vote on a challenge it has seen.
    /// @param amount token amount (approve first).
    function bondValidator(uint256 amount) external nonReentrant {
        if (amount == 0) revert CourtZeroAmount();
        Validator storage v = _validators[msg.sender];
        v.bond += amount;
        v.bondedAt = uint64(block.timestamp);
        v.unbondableAt = 0;
        _totalOwed += amount;
        emit ValidatorBonded(msg.sender, amount, v.bond);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Stops the caller from voting and starts its unbonding period.
    function requestValidatorUnbond() external {
        Validator storage v = _validators[msg.sender];
        if (v.bond == 0 || v.unbondableAt != 0) revert CourtNotBonded(msg.sender);
        v.unbondableAt = uint64(block.timestamp) + _params.validatorUnbondingPeriod;
        emit ValidatorUnbondRequested(msg.sender, v.unbondableAt);
    }

    /// @notice Withdraws the caller's whole validator bond after its unbonding period.
    function withdrawValidatorBond() external nonReentrant {
        Validator storage v = _validators[msg.sender];
        if (v.unbondableAt == 0) revert CourtNotBonded(msg.sender);
        if (block.timestamp < v.unbondableAt) revert CourtStillUnbonding(msg.sender, v.unbondableAt);
        uint256 amount = v.bond;
        delete _validators[msg.sender];
        _totalOwed -= amount;
        emit ValidatorWithdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ challenges

    /// @notice Step 1 of a challenge: commit to it. Reveal with `challenge` in a later block.
    /// @param commitment keccak256(abi.encode(msg.sender, receiptDigest, keccak256(evidence), salt)).
    function commitChallenge(bytes32 commitment) external {
        _commits[commitment] = block.number;
        emit ChallengeCommitted(msg.sender, commitment);
    }

    /// @notice Step 2: opens a challenge against a node's signed receipt, pulling the challenger bond and
    /// freezing the node's stake until `resolve`.
    /// @param receipt the node's receipt.
    /// @param nodeSignature the node's 65-byte low-s EIP-712 signature on it.
    /// @param evidence the challenger's recomputation (opaque to the contract; published for voters).
    /// @param salt the salt of the earlier commitment.
    /// @return receiptDigest the challenge id.
    function challenge(Receipt calldata receipt, bytes calldata nodeSignature, bytes calldata evidence, bytes32 salt)
        external
        nonReentrant
        returns (bytes32 receiptDigest)
    {
        receiptDigest = receiptDigestOf(receipt);
        bytes32 evidenceHash = _consumeCommitment(receiptDigest, evidence, salt);
        if (_challenges[receiptDigest].status != Status.None) revert CourtAlreadyChallenged(receiptDigest);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(receiptDigest, nodeSignature);
        if (err != ECDSA.RecoverError.NoError || signer != receipt.node) {
            revert CourtInvalidReceiptSignature(receipt.node);
        }
        _open(receiptDigest, receipt.node, evidenceHash, evidence);
    }

    /// @notice Votes on an open challenge. Eligible: bonded (>= minValidatorBond, not unbonding) since
    /// before the challenge opened, and neither its challenger nor its node.
    /// @param receiptDigest the challenge id.
    /// @param uphold true if the node's commitment is out of tolerance.
    function vote(bytes32 receiptDigest, bool uphold) external {
        Challenge storage c = _challenges[receiptDigest];
        if (c.status != Status.Open) revert CourtChallengeNotOpen(receiptDigest, c.status);
        if (block.timestamp > c.deadline) revert CourtVotingClosed(receiptDigest, c.deadline);
        Validator storage v = _validators[msg.sender];
        if (v.bond < _params.minValidatorBond || v.unbondableAt != 0 || v.bondedAt >= c.openedAt
            || msg.sender == c.challenger || msg.sender == c.node) {
            revert CourtNotEligible(receiptDigest, msg.sender);
        }
        mapping(address => Ballot) storage ballots = _ballots[receiptDigest];
        if (ballots[msg.sender] != Ballot.None) revert CourtAlreadyVoted(receiptDigest, msg.sender);
        if (uphold) {
            ballots[msg.sender] = Ballot.Uphold;
            ++c.upheldVotes;
        } else {
            ballots[msg.sender] = Ballot.Reject;
            ++c.rejectedVotes;
        }
        emit Voted(receiptDigest, msg.sender, uphold);
    }

    /// @notice Closes a challenge after its voting period. Anyone may call. With fewer than `quorum` votes
    /// it expires; else a strict majority of uphold votes upholds it, otherwise it is rejected.
    /// @param receiptDigest the challenge id.
    function resolve(bytes32 receiptDigest) external nonReentrant {
        Challenge storage c = _challenges[receiptDigest];
        if (c.status != Status.Open) revert CourtChallengeNotOpen(receiptDigest, c.status);
        if (block.timestamp <= c.deadline) revert CourtVotingOpen(receiptDigest, c.deadline);
        _syncRewardPool();
        uint256 votes = uint256(c.upheldVotes) + c.rejectedVotes;
        uint256 slashed;
        uint256 winners;
        _totalOwed -= c.bond;
        if (votes >= _params.quorum && c.upheldVotes > c.rejectedVotes) {
            c.status = Status.Upheld;
            winners = c.upheldVotes;
            slashed = _staking.slash(c.node, _params.slashBps); // tokens arrive here
            uint256 reward = (slashed * _params.challengerRewardBps) / BPS;
            _rewardPool += slashed - reward;
            _credit(c.challenger, c.bond + reward);
        } else {
            c.status = votes >= _params.quorum ? Status.Rejected : Status.Expired;
            winners = c.status == Status.Rejected ? c.rejectedVotes : 0;
            _credit(c.node, c.bond);
        }
        if (winners != 0) {
            uint256 perVoter = _rewardPool / winners;
            if (perVoter > _params.voterReward) perVoter = _params.voterReward;
            c.rewardPerVoter = perVoter;
            _rewardPool -= perVoter * winners;
            _totalOwed += perVoter * winners; // reserved for the winners' claims
        }
        emit ChallengeResolved(receiptDigest, c.status, slashed, c.rewardPerVoter);
        emit RewardPoolChanged(_rewardPool);
        _staking.unfreeze(c.node);
    }

    /// @notice Credits the caller's reward for having voted with the outcome of a resolved challenge.
    /// @param receiptDigest the challenge id.
    function claimVoteReward(bytes32 receiptDigest) external {
        Challenge storage c = _challenges[receiptDigest];
        Ballot b = _ballots[receiptDigest][msg.sender];
        bool won = (c.status == Status.Upheld && b == Ballot.Uphold)
            || (c.status == Status.Rejected && b == Ballot.Reject);
        if (!won || c.rewardPerVoter == 0) revert CourtNothingToClaim(msg.sender);
        _ballots[receiptDigest][msg.sender] = Ballot.Claimed;
        _totalOwed -= c.rewardPerVoter; // moves from "reserved" to "credit" (re-added by _credit)
        _credit(msg.sender, c.rewardPerVoter);
    }

    /// @notice Pays the caller everything credited to it (challenger rewards, bonds won, vote rewards).
    function withdrawCredit() external nonReentrant {
        uint256 amount = _credits[msg.sender];
        if (amount == 0) revert CourtNothingToClaim(msg.sender);
        _credits[msg.sender] = 0;
        _totalOwed -= amount;
        emit CreditWithdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @notice Moves tokens sent here without a call (the escrow's swept fees) into the reward pool.
    function syncRewardPool() external nonReentrant {
        _syncRewardPool();
        emit RewardPoolChanged(_rewardPool);
    }

    // ------------------------------------------------------------------ views

    /// @notice The EIP-712 digest a node signs for `receipt`; also the challenge id.
    /// @param receipt the receipt.
    function receiptDigestOf(Receipt calldata receipt) public view returns (bytes32) {
        // Two halves: twelve fields plus the type hash in one abi.encode is "stack too deep" without via-IR.
        // Both halves are 32-byte words, so the concatenation equals abi.encode of all thirteen.
        bytes memory head = abi.encode(
            RECEIPT_TYPEHASH,
            receipt.node,
            receipt.sessionId,
            receipt.modelId,
            receipt.layerStart,
            receipt.layerEnd,
            receipt.stepStart
        );
        bytes memory tail = abi.encode(
            receipt.stepEnd,
            receipt.inputDigest,
            receipt.outputCommitment,
            receipt.tokens,
            receipt.pricePerToken,
            receipt.client
        );
        return _hashTypedDataV4(keccak256(bytes.concat(head, tail)));
    }

    /// @notice A challenge by id.
    /// @param receiptDigest the challenge id.
    function challengeOf(bytes32 receiptDigest) external view returns (Challenge memory) {
        return _challenges[receiptDigest];
    }

    /// @notice How `validator` voted on a challenge.
    /// @param receiptDigest the challenge id.
    /// @param validator the validator.
    function ballotOf(bytes32 receiptDigest, address validator) external view returns (Ballot) {
        return _ballots[receiptDigest][validator];
    }

    /// @notice A validator's bond.
    /// @param validator the validator.
    function validatorOf(address validator) external view returns (Validator memory) {
        return _validators[validator];
    }

    /// @notice Block number of a commitment (0 when none).
    /// @param commitment the commitment.
    function commitmentBlock(bytes32 commitment) external view returns (uint256) {
        return _commits[commitment];
    }

    /// @notice What `account` can withdraw with `withdrawCredit`.
    /// @param account the account.
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @notice Tokens available for voter rewards.
    function rewardPool() external view returns (uint256) {
        return _rewardPool;
    }

    /// @notice Open challenger bonds + validator bonds + credits + reserved vote rewards. With rewardPool it
    /// equals this contract's token balance (invariant; more only if tokens arrived since the last sync).
    function totalOwed() external view returns (uint256) {
        return _totalOwed;
    }

    /// @notice The court parameters.
    function params() external view returns (Params memory) {
        return _params;
    }

    /// @notice The bond and reward token.
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @notice The staking contract this court freezes and slashes.
    function staking() external view returns (INodeStaking) {
        return _staking;
    }

    /// @notice The EIP-712 domain separator (name "Layermarket", version "1", chainId, this address).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internals

    /// Checks and deletes the caller's earlier commitment to this reveal; returns keccak256(evidence).
    function _consumeCommitment(bytes32 receiptDigest, bytes calldata evidence, bytes32 salt)
        private
        returns (bytes32 evidenceHash)
    {
        evidenceHash = keccak256(evidence);
        bytes32 commitment = keccak256(abi.encode(msg.sender, receiptDigest, evidenceHash, salt));
        uint256 committedAt = _commits[commitment];
        // Same-block commit+reveal is refused: a front-runner copying the reveal could do both at once.
        if (committedAt == 0 || committedAt >= block.number) revert CourtNoPriorCommitment(commitment);
        delete _commits[commitment];
    }

    function _open(bytes32 receiptDigest, address node, bytes32 evidenceHash, bytes calldata evidence) private {
        Challenge storage c = _challenges[receiptDigest];
        uint256 bond = _params.challengerBond;
        c.challenger = msg.sender;
        c.node = node;
        c.openedAt = uint64(block.timestamp);
        c.deadline = uint64(block.timestamp) + _params.votingPeriod;
        c.status = Status.Open;
        c.bond = bond;
        c.evidenceHash = evidenceHash;
        _totalOwed += bond;
        emit ChallengeOpened(receiptDigest, msg.sender, node, c.deadline, evidenceHash, evidence);
        _staking.freeze(node);
        _token.safeTransferFrom(msg.sender, address(this), bond);
    }

    function _credit(address account, uint256 amount) private {
        _credits[account] += amount;
        _totalOwed += amount;
        emit Credited(account, amount);
    }

    function _syncRewardPool() private {
        uint256 balance = _token.balanceOf(address(this));
        uint256 accounted = _totalOwed + _rewardPool;
        if (balance > accounted) _rewardPool += balance - accounted;
    }
}
