"""ABIs and creation bytecode of the Layermarket contracts, exported from the Hardhat artifacts by
``contracts/scripts/export-abi.js``. Never hand-edited; load them with ``protocol.chain.abi``."""
