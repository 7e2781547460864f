"""The one pattern every Layermarket command line follows (``market-node``, ``market-devnet``, ...).

Commands are click groups built with :func:`command_group`; the entry point calls :func:`run`, which
configures logging once, turns a :class:`~protocol.errors.LayermarketError` into a one-line message on
stderr with a distinct exit status, and never shows a traceback for an expected error::

    group = command_group("market-devnet", "Run a local Layermarket network.")

    @group.command("make-model")
    def make_model() -> None: ...

    def main() -> None:
        run(group)

Exit statuses: 0 ok, 1 transient failure (retrying may help), 2 bad input or configuration, 130 Ctrl-C.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from protocol.errors import LayermarketError, TransientError

EXIT_TRANSIENT = 1
EXIT_PERMANENT = 2
EXIT_INTERRUPTED = 130

_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(verbosity: int) -> None:
    """Logging for a command-line entry point: WARNING by default, INFO with -v, DEBUG with -vv."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format=_LOG_FORMAT, stream=sys.stderr, force=True)


def command_group(name: str, help_text: str) -> click.Group:
    """A click group with ``-v/--verbose`` and ``--version`` wired in the same way for every command."""

    @click.group(name=name, help=help_text, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("-v", "--verbose", count=True, help="More logging: -v for INFO, -vv for DEBUG.")
    @click.version_option(package_name="layermarket", prog_name=name)
    def group(verbose: int) -> None:
        configure_logging(verbose)

    return group


def run(group: click.Group, argv: list[str] | None = None) -> None:
    """Run ``group`` as a program: expected errors become one line on stderr and an exit status."""
    try:
        group.main(args=argv, prog_name=group.name, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_PERMANENT if exc.exit_code == 2 else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except LayermarketError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_TRANSIENT if isinstance(exc, TransientError) else EXIT_PERMANENT)


def echo(message: str = "", **kwargs: Any) -> None:
    """Print a line for the user (commands print results; libraries log)."""
    click.echo(message, **kwargs)


__all__ = ["EXIT_PERMANENT", "EXIT_TRANSIENT", "command_group", "configure_logging", "echo", "run"]
