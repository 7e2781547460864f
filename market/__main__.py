"""``python -m market`` is ``market-server``."""

from market.cli import main

main()
