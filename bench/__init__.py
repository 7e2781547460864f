"""Benchmarks: each module runs as ``python -m bench.<name> --json`` and prints one JSON object last."""
