"""``market-node``: make keys, serve a stage, show status.

::

    market-node init                                   # keystore + libp2p key in ~/.layermarket/node
    market-node serve --model models/llama --layers 0:16 --device cuda --port 4001
    market-node status                                 # a table: sessions, tokens, capacity, earnings
    market-node info models/llama --devices 24GiB,16GiB # memory per layer and a suggested split

The passphrase comes from ``LAYERMARKET_NODE_PASSPHRASE`` (or ``[node] passphrase``) or a prompt; it is
never echoed or logged.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import click

from node.settings import NodeSettings
from protocol.cli import command_group, echo, run
from protocol.errors import ConfigurationError

logger = logging.getLogger(__name__)

group = command_group(
    "market-node", "Serve layers of a model to the Layermarket network and get paid per token."
)


def _settings(**overrides: Any) -> NodeSettings:
    return NodeSettings(**{k: v for k, v in overrides.items() if v is not None})


def _passphrase(settings: NodeSettings, *, confirm: bool) -> str:
    if settings.passphrase is not None:
        return settings.passphrase.get_secret_value()
    value: str = click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return value


def parse_layers(text: str) -> tuple[int, int]:
    """``"A:B"`` -> ``(A, B)``, the half-open layer range ``[A, B)``."""
    try:
        a, b = (int(x) for x in text.split(":"))
    except ValueError:
        raise ConfigurationError(f"--layers must look like A:B (e.g. 0:16), got {text!r}") from None
    if not 0 <= a < b:
        raise ConfigurationError(f"--layers {text}: need 0 <= A < B")
    return a, b


@group.command("init")
@click.option("--home", type=click.Path(path_type=Path), help="Key directory (default: settings `home`).")
@click.option("--scrypt-n", type=int, default=None, help="scrypt cost (power of 2); lower only for devnets.")
@click.option(
    "--operator-key-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Import this hex private key as the operator key instead of making a new one.",
)
def init(home: Path | None, scrypt_n: int | None, operator_key_file: Path | None) -> None:
    """Create the operator keystore and the libp2p key, both encrypted with one passphrase."""
    from node.keys import SCRYPT_N, NodeKeys

    settings = _settings(home=home)
    imported = None
    if operator_key_file is not None:
        text = operator_key_file.read_text(encoding="utf-8").strip().removeprefix("0x")
        try:
            imported = bytes.fromhex(text)
        except ValueError:
            raise ConfigurationError(f"{operator_key_file} does not hold a hex private key") from None
    keys = NodeKeys.create(
        settings.home,
        _passphrase(settings, confirm=True),
        scrypt_n=scrypt_n or SCRYPT_N,
        operator_key=imported,
    )
    echo(f"operator address: {keys.operator_address}")
    echo(f"libp2p peer id:   {keys.peer_id}")
    echo(f"keys written to {settings.home} (encrypted); fund the operator address, then `market-node stake`")


@group.command("serve")
@click.option(
    "--model", "model_dir", required=True, type=click.Path(path_type=Path, exists=True, file_okay=False)
)
@click.option("--layers", required=True, help="Half-open layer range A:B this node serves.")
@click.option("--device", default=None, help="cpu, cuda, cuda:N or mps.")
@click.option("--dtype", default=None, help="float32, bfloat16 or float16.")
@click.option("--host", "listen_host", default=None, help="Listen address (default 0.0.0.0).")
@click.option("--port", "listen_port", type=int, default=None, help="Listen TCP port (0: a free one).")
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus /metrics on 127.0.0.1:PORT.")
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
@click.option("--price", "price_per_token", type=int, default=None, help="Price per token (token wei).")
@click.option("--home", type=click.Path(path_type=Path), default=None, help="Key directory.")
@click.option(
    "--ready-file", type=click.Path(path_type=Path), default=None, help="Write peer id and addrs here."
)
def serve(
    model_dir: Path,
    layers: str,
    ready_file: Path | None,
    **options: Any,
) -> None:
    """Load layers A:B of a model and serve them until SIGINT/SIGTERM (then drain sessions)."""
    import trio
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from node.daemon.server import serve_node
    from node.keys import NodeKeys
    from node.runtime import StageRuntime
    from protocol.manifest import ModelManifest

    settings = _settings(**options)
    start, end = parse_layers(layers)
    keys = NodeKeys.load(settings.home, _passphrase(settings, confirm=False))
    model_id = ModelManifest.from_dir(model_dir).model_id
    with Progress(
        TextColumn("loading layers {task.fields[layers]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} tensors"),
        TimeElapsedColumn(),
        transient=True,
        console=None,
    ) as progress:
        task = progress.add_task("load", total=None, layers=layers)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        runtime = StageRuntime.load(
            model_dir,
            (start, end),
            device=settings.device,
            dtype=settings.dtype,
            kv_budget_bytes=settings.kv_budget_bytes,
            batch_window_ms=settings.batch_window_ms,
            threads=settings.threads,
            progress=on_progress,
        )
    logger.info("loaded layers [%d, %d) of %s", start, end, model_dir)
    from node.operator import receipt_court

    sign = None
    court = receipt_court(settings)
    if court:
        from node.daemon.receipts import receipt_signer
        from protocol.eip712 import Domain

        sign = receipt_signer(keys.operator_key, Domain(settings.chain_id, court))
        logger.info("receipts are signed for the court %s on chain %d", court, settings.chain_id)
    else:
        logger.warning(
            "no court_address and no deployments file: this node signs no receipts, so it cannot be paid"
        )
    trio.run(lambda: serve_node(runtime, settings, keys, model_id=model_id, sign=sign, ready_file=ready_file))


@group.command("status")
@click.option("--home", type=click.Path(path_type=Path), default=None, help="Key directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw status document.")
def status(home: Path | None, as_json: bool) -> None:
    """Show the node's sessions, tokens served, capacity and earnings (from its status file)."""
    from rich.console import Console
    from rich.table import Table

    from node.daemon.server import STATUS_FILE

    settings = _settings(home=home)
    path = settings.home / STATUS_FILE
    if not path.is_file():
        raise ConfigurationError(f"no status at {path}: is `market-node serve` running with this --home?")
    document = json.loads(path.read_text(encoding="utf-8"))
    if as_json:
        echo(json.dumps(document, indent=2))
        return
    table = Table(title="market-node", show_header=False)
    rows = [
        ("running", "yes" if document.get("running") else "no (last state)"),
        ("peer id", document.get("peer_id")),
        ("operator", document.get("operator")),
        ("model", document.get("model_id")),
        ("layers", "{}:{}".format(*document.get("layers", ["?", "?"]))),
        ("sessions", f"{document.get('sessions')} / {document.get('max_sessions')}"),
        ("tokens served", document.get("tokens_served")),
        (
            "KV used",
            f"{document.get('kv_bytes_used', 0) / 1e6:.1f} / "
            f"{document.get('kv_bytes_budget', 0) / 1e6:.1f} MB",
        ),
        ("step latency", f"{document.get('step_ms')} ms"),
        ("earned (receipts)", f"{document.get('earned_wei')} wei"),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    Console().print(table)


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_size(text: str) -> int:
    """``"24GiB"``, ``"16gb"``, ``"8000000000"`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ConfigurationError(f"memory size {text!r}: use a number with GiB, GB, MiB or MB (e.g. 24GiB)")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


@group.command("info")
@click.argument("model_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--devices",
    default=None,
    help="Comma-separated memory of each device in order, e.g. 24GiB,16GiB: suggest a split over them.",
)
@click.option(
    "--dtype",
    type=click.Choice(["bfloat16", "float16", "float32"]),
    default="bfloat16",
    show_default=True,
    help="Dtype the split is computed for.",
)
@click.option(
    "--kv-fraction",
    type=click.FloatRange(0.0, 0.9),
    default=0.2,
    show_default=True,
    help="Share of each device's memory kept for KV caches.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
def info(model_dir: Path, devices: str | None, dtype: str, kv_fraction: float, as_json: bool) -> None:
    """What MODEL_DIR needs in memory (read from headers, no weights loaded) and how to split it.

    \b
    market-node info models/llama-small
    market-node info models/llama-small --devices 24GiB,8GiB --dtype bfloat16
    """
    from node.info import BYTES_PER_PARAM, model_info, suggest_split

    model = model_info(model_dir)
    document = model.as_dict()
    split: list[tuple[int, int]] = []
    if devices:
        sizes = [parse_size(part) for part in devices.split(",") if part.strip()]
        split = suggest_split(model, sizes, dtype, kv_fraction)
        document["split"] = {
            "dtype": dtype,
            "kv_fraction": kv_fraction,
            "devices": sizes,
            "layers": [list(r) for r in split],
            "weight_bytes": [model.stage_bytes(a, b, dtype) for a, b in split],
        }
    if as_json:
        echo(json.dumps(document, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    def gib(n: int) -> str:
        for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if n >= scale // 4:
                return f"{n / scale:.2f} {unit}" if unit == "GiB" else f"{n / scale:.1f} {unit}"
        return f"{n} B"

    table = Table(title=f"{model_dir} ({model.family}, {model.layers} layers, hidden {model.hidden_size})")
    table.add_column("")
    for name in BYTES_PER_PARAM:
        table.add_column(name, justify="right")
    for label, key in [
        ("per layer", "bytes_per_layer"),
        ("embedding", "embedding_bytes"),
        ("head", "head_bytes"),
        ("whole model", "total_bytes"),
        ("KV per token", "kv_bytes_per_token"),
    ]:
        table.add_row(label, *(gib(document[key][d]) for d in BYTES_PER_PARAM))
    console = Console()
    console.print(table)
    if split:
        plan = Table(title=f"suggested split ({dtype}, {kv_fraction:.0%} kept for KV)")
        for column in ("stage", "layers", "weights"):
            plan.add_column(column, justify="right")
        for i, (a, b) in enumerate(split):
            plan.add_row(str(i), f"{a}:{b}", gib(model.stage_bytes(a, b, dtype)))
        console.print(plan)


def _keys(home: Path | None) -> tuple[NodeSettings, Any]:
    from node.keys import NodeKeys

    settings = _settings(home=home)
    return settings, NodeKeys.load(settings.home, _passphrase(settings, confirm=False))


def _echo_tx(what: str, tx: Any) -> None:
    echo(f"{what}: tx 0x{tx.transaction_hash.hex()} in block {tx.block_number} (gas {tx.gas_used})")


_home_option = click.option("--home", type=click.Path(path_type=Path), default=None, help="Key directory.")


@group.command("stake")
@click.argument("amount", type=int)
@_home_option
def stake(amount: int, home: Path | None) -> None:
    """Bond AMOUNT of the stake token (smallest units): approve, then bond."""
    from node import operator

    settings, keys = _keys(home)
    approve_tx, bond_tx = operator.bond(settings, keys, amount)
    _echo_tx("approve", approve_tx)
    _echo_tx("bond", bond_tx)
    echo(f"bonded: {operator.stake_of(settings, keys).bonded}")


@group.command("unbond")
@click.argument("amount", type=int)
@_home_option
def unbond(amount: int, home: Path | None) -> None:
    """Start unbonding AMOUNT (withdrawable after the unbonding period; still slashable until then)."""
    from node import operator

    settings, keys = _keys(home)
    _echo_tx("unbond", operator.unbond(settings, keys, amount))


@group.command("withdraw")
@_home_option
def withdraw(home: Path | None) -> None:
    """Withdraw stake whose unbonding period has passed."""
    from node import operator

    settings, keys = _keys(home)
    _echo_tx("withdraw", operator.withdraw(settings, keys))


@group.command("register")
@click.option(
    "--model", "model_dir", required=True, type=click.Path(path_type=Path, exists=True, file_okay=False)
)
@click.option("--layers", required=True, help="Half-open layer range A:B this node serves.")
@click.option("--endpoint", required=True, help="The multiaddr the node announces (its hash goes on-chain).")
@_home_option
def register(model_dir: Path, layers: str, endpoint: str, home: Path | None) -> None:
    """Publish this node's record on-chain: peer id, model id, layer range, price, endpoint hash."""
    from node import operator
    from protocol.manifest import ModelManifest

    settings, keys = _keys(home)
    model_id = ModelManifest.from_dir(model_dir).model_id
    _echo_tx("register", operator.register(settings, keys, model_id, parse_layers(layers), endpoint))
    echo(f"model id: 0x{model_id.hex()}  (the market operator adds it with `market-server add-model`)")


def main() -> None:
    run(group)


__all__ = ["group", "main", "parse_layers", "parse_size"]


if __name__ == "__main__":
    main()
