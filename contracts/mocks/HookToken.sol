// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Receives a callback from HookToken after it receives tokens (ERC777 `tokensReceived`-style).
interface ITokenReceiverHook {
    function onTokenReceived(address from, uint256 amount) external;
}

/// @title HookToken
/// @notice TEST ONLY. An ERC20 that calls `onTokenReceived` on a recipient that registered for it, after
/// every transfer: the shape of ERC777 hooks (registered via ERC1820 there), used to prove the contracts
/// are not reentrant through the token.
contract HookToken is ERC20 {
    mapping(address => bool) public hooked;

    constructor() ERC20("Hook Token", "HOOK") {}

    /// @notice The caller asks to be called back when it receives tokens.
    function registerHook() external {
        hooked[msg.sender] = true;
    }

    /// @notice Open faucet (test only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (hooked[to] && from != address(0)) {
            ITokenReceiverHook(to).onTokenReceived(from, value);
        }
    }
}
