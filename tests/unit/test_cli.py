"""The command-line pattern: real --help, typed errors become one line and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.settings import REPO_ROOT


def _devnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.devnet.cli", *args], capture_output=True, text=True, cwd=REPO_ROOT
    )


def test_help_teaches_the_commands() -> None:
    result = _devnet("--help")
    assert result.returncode == 0
    assert "make-model" in result.stdout
    sub = _devnet("make-model", "--help")
    assert sub.returncode == 0
    assert "--family" in sub.stdout and "market-devnet make-model --family llama" in sub.stdout


def test_bad_choice_exits_2_with_a_message(tmp_path: Path) -> None:
    result = _devnet("make-model", "--family", "gpt2", "--out", str(tmp_path / "m"))
    assert result.returncode == 2
    assert "gpt2" in result.stderr
    assert "Traceback" not in result.stderr


def test_make_model_prints_the_model_id(tmp_path: Path) -> None:
    result = _devnet("make-model", "--family", "qwen2", "--size", "tiny", "--out", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    assert "model id 0x" in result.stdout
    assert (tmp_path / "m" / "config.json").is_file()
