"""``market-devnet``: a local Layermarket network for development, tests and demos."""

from __future__ import annotations

from pathlib import Path

import click

from protocol.cli import command_group, echo, run

devnet = command_group(
    "market-devnet",
    "Run a local Layermarket network: build test models, start a chain, nodes and a market.",
)


@devnet.command("make-model")
@click.option(
    "--family",
    type=click.Choice(["llama", "qwen2", "mistral"]),
    required=True,
    help="Architecture family; all three load with AutoModelForCausalLM.",
)
@click.option(
    "--size",
    type=click.Choice(["tiny", "small"]),
    default="tiny",
    show_default=True,
    help="tiny: hidden 256, 8 layers (~26 MB). small: hidden 1024, 16 layers, GQA (~0.7 GB, sharded).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write (replaced if it exists).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
def make_model(family: str, size: str, out: Path, seed: int) -> None:
    """Write a deterministic random-initialised model and its tokenizer to OUT.

    No model hub is needed: weights come from a seeded random initialisation and the byte-level BPE
    tokenizer is trained on a corpus shipped with Layermarket. Point any Layermarket command (or
    transformers' from_pretrained) at the directory.

    \b
    Example:
      market-devnet make-model --family llama --size tiny --out models/llama-tiny
    """
    from node.devnet.models import build_model

    path = build_model(family, size, out, seed=seed)
    from protocol.manifest import ModelManifest

    echo(f"wrote {path} (model id 0x{ModelManifest.from_dir(path).model_id.hex()})")


def main() -> None:
    run(devnet)


if __name__ == "__main__":
    main()
