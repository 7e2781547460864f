// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {HookToken, ITokenReceiverHook} from "./HookToken.sol";

/// @title ReentrantAttacker
/// @notice TEST ONLY. Acts as a client/operator of a Layermarket contract and, when HookToken pays it,
/// calls back into that contract with `reentryData` (once). With `swallow`, the reentry's revert is caught
/// so the outer call completes and the test can check that nothing was paid twice.
contract ReentrantAttacker is ITokenReceiverHook {
    address public target;
    bytes public reentryData;
    bool public armed;
    bool public swallow;
    bool public reentryFailed;

    /// @notice Calls `target` with `data` as this contract (approve, deposit, bond, ...).
    function execute(address target_, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = target_.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    /// @notice Arms one reentry into `target_` with `data` on the next token receipt.
    function arm(address target_, bytes calldata data, bool swallow_) external {
        target = target_;
        reentryData = data;
        armed = true;
        swallow = swallow_;
    }

    /// @inheritdoc ITokenReceiverHook
    function onTokenReceived(address, uint256) external {
        if (!armed) return;
        armed = false;
        (bool ok, bytes memory ret) = target.call(reentryData);
        if (!ok) {
            if (swallow) {
                reentryFailed = true;
                return;
            }
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    /// @notice Registers for HookToken's receive hook.
    function register(address hookToken) external {
        HookToken(hookToken).registerHook();
    }

    /// @notice Approves `spender` for `amount` of `token`.
    function approve(IERC20 token, address spender, uint256 amount) external {
        token.approve(spender, amount);
    }
}
