"""``deployments/<chainId>.json``: where the contracts of one chain live, read by every Python component.

    >>> d = Deployment.load(31337, Path("deployments"))          # doctest: +SKIP
    >>> d.address("PaymentEscrow")                               # doctest: +SKIP
    '0x...'

File format (written by ``protocol.chain.deploy``)::

    {"chainId": 31337, "deployBlock": 1, "deployer": "0x...",
     "contracts": {"MarketToken": "0x...", "NodeStaking": "0x...", "PaymentEscrow": "0x...",
                   "SpotCheckCourt": "0x..."},
     "parameters": {"unbondingPeriod": 604800, ...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.errors import ConfigurationError

__all__ = ["Deployment", "DeploymentNotFound"]


class DeploymentNotFound(ConfigurationError):
    """No deployments file for the chain, or it lacks a contract."""


@dataclass(frozen=True)
class Deployment:
    """Addresses, deploy block and parameters of one chain's Layermarket contracts."""

    chain_id: int
    deploy_block: int  # indexers start reading events here
    deployer: str
    contracts: dict[str, str]  # contract name -> checksummed address
    parameters: dict[str, int] = field(default_factory=dict)

    def address(self, name: str) -> str:
        """The address of contract ``name``; DeploymentNotFound when it was not deployed."""
        try:
            return self.contracts[name]
        except KeyError:
            raise DeploymentNotFound(f"chain {self.chain_id} has no {name} deployment") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "chainId": self.chain_id,
            "deployBlock": self.deploy_block,
            "deployer": self.deployer,
            "contracts": dict(self.contracts),
            "parameters": dict(self.parameters),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Deployment:
        return cls(
            chain_id=int(raw["chainId"]),
            deploy_block=int(raw["deployBlock"]),
            deployer=str(raw["deployer"]),
            contracts={str(k): str(v) for k, v in raw["contracts"].items()},
            parameters={str(k): int(v) for k, v in raw.get("parameters", {}).items()},
        )

    @staticmethod
    def path_for(chain_id: int, directory: Path) -> Path:
        return directory / f"{chain_id}.json"

    def save(self, directory: Path) -> Path:
        """Writes ``<directory>/<chainId>.json`` atomically and returns its path."""
        directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(self.chain_id, directory)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(target)
        return target

    @classmethod
    def load(cls, chain_id: int, directory: Path) -> Deployment:
        """Reads ``<directory>/<chainId>.json``; DeploymentNotFound when missing."""
        return cls.load_file(cls.path_for(chain_id, directory))

    @classmethod
    def load_file(cls, path: Path) -> Deployment:
        if not path.is_file():
            raise DeploymentNotFound(f"no deployments file {path}: run `python -m protocol.chain.deploy`")
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
