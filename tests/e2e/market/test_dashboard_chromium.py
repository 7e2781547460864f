"""The dashboard in a real headless Chromium: the coverage map of a seeded directory is drawn.

Chromium is Debian's ``chromium`` (``make install`` installs it where this test runs). The test renders
the live dashboard twice with a fresh profile: ``--dump-dom`` to check the coverage cells exist for every
served layer, and ``--screenshot`` to check the PNG is not blank and shows the map's routable (green) and
non-routable (grey) cells.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.market.conftest import LiveMarket
from tests.e2e.market.seed import NODES, seed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--hide-scrollbars",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install -y chromium)"
)


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_dashboard_draws_the_coverage_map_in_chromium(live_market: LiveMarket, tmp_path: Path) -> None:
    from PIL import Image

    seed(live_market)
    url = f"{live_market.url}/dashboard"

    dom = _chromium(["--dump-dom", url], tmp_path / "profile-dom").stdout
    cells = re.findall(r'<td class="coverage-cell( down)?" data-layer="(\d+)"', dom)
    expected = sum(end - start for _, start, end in NODES)
    assert len(cells) == expected, f"{len(cells)} coverage cells in the DOM, expected {expected}"
    grey = [layer for down, layer in cells if down]
    assert len(grey) == NODES[3][2] - NODES[3][1]  # the unbonded node is drawn, but not routable
    counts = [int(c) for c in re.findall(r'class="coverage-count[^"]*" data-layer="\d+">(\d+)<', dom)]
    assert counts == [2] * 16 + [1] * 16

    shot = tmp_path / "dashboard.png"  # kept under pytest's tmp dir for a human to look at
    _chromium([f"--screenshot={shot}", "--window-size=1280,900", url], tmp_path / "profile-shot")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 900)
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 20, "the screenshot is (nearly) blank"
    green = sum(n for n, (r, g, b) in colours if g > 100 and g > r + 40 and g > b + 40)
    grey_px = sum(n for n, (r, g, b) in colours if r == g == b and 170 <= r <= 200)
    assert green > 500, f"only {green} green pixels: the routable coverage cells are not drawn"
    assert grey_px > 100, f"only {grey_px} grey pixels: the non-routable node's cells are not drawn"
