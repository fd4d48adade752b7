"""Benchmarks of Campaign Pulse; run them as modules, e.g. `python -m bench.fanout --quick`."""
