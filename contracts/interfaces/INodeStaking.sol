// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title INodeStaking
/// @notice What the escrow and the court need from the staking contract.
interface INodeStaking {
    /// @notice True when `operator` may be paid: not jailed and with stake still at risk (bonded or
    /// unbonding). A node that has withdrawn everything, or is jailed, cannot redeem vouchers.
    function isPayable(address operator) external view returns (bool);

    /// @notice Marks one more open challenge against `operator`: no stake may leave while any is open.
    function freeze(address operator) external;

    /// @notice Marks one open challenge against `operator` as closed.
    function unfreeze(address operator) external;

    /// @notice Takes `fractionBps` of the operator's bonded and unbonding stake, sends it to the court,
    /// and jails the operator. Returns the amount taken.
    function slash(address operator, uint256 fractionBps) external returns (uint256 amount);

    /// @notice Seconds between `unbond` and the moment the stake can be withdrawn.
    function unbondingPeriod() external view returns (uint64);
}
