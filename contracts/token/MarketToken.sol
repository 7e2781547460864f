// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title MarketToken
/// @notice ERC20 + ERC20Permit token for devnets and tests. The staking, escrow and court contracts take
/// any ERC20's address; this one exists so a devnet has a token whose supply the deployer controls.
contract MarketToken is ERC20, ERC20Permit, Ownable {
    /// @param initialHolder receives `initialSupply` and owns the mint right.
    /// @param initialSupply amount minted at deployment, in the token's smallest unit (18 decimals).
    constructor(address initialHolder, uint256 initialSupply)
        ERC20("Layermarket Token", "LMT")
        ERC20Permit("Layermarket Token")
        Ownable(initialHolder)
    {
        _mint(initialHolder, initialSupply);
    }

    /// @notice Mints `amount` to `to`. Devnet faucet; only the owner.
    /// @param to recipient of the new tokens.
    /// @param amount amount to mint (smallest unit).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
