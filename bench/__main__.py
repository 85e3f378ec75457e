"""Run benchmarks by name: ``python -m bench mqtt modbus`` (no name: all of them); options
after the names go to each benchmark: ``python -m bench demo_lag --seconds 60``.

Each ``bench/bench_<name>.py`` has ``main(argv: list[str]) -> None`` that prints its table.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))


def main() -> None:
    args = sys.argv[1:]
    # names first, then options with their values: ``demo_lag --seconds 60``
    first_flag = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    names = args[:first_flag] or available()
    flags = args[first_flag:]
    unknown = [n for n in names if n not in available()]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; available: {available()}")
    for name in names:
        print(f"\n### {name}\n", flush=True)
        importlib.import_module(f"bench.bench_{name}").main(flags)


if __name__ == "__main__":
    main()
