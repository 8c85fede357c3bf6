# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Command line: ``python -m monai_ext.demo --out demo_data [--size 1.0] [--seed 0] [--only nih ...] [--summary]``.

Writes the demo datasets in their real layouts and, with ``--summary``, reads each one back through its reader and
prints datalist sizes and class prevalences.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from tqdm import tqdm

from monai_ext.demo import DEMO_WRITERS, write_demo_datasets

__all__ = ["main"]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m monai_ext.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_data", help="root folder; each dataset goes to <out>/<name>")
    parser.add_argument("--size", type=float, default=1.0, help="scale of the number of cases (1.0 = demo size)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (dataset k uses seed + k)")
    parser.add_argument("--only", nargs="+", choices=sorted(DEMO_WRITERS), help="write only these datasets")
    parser.add_argument("--summary", action="store_true", help="read every dataset back and print sizes/prevalences")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the command; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    args = _parse(argv)
    names = args.only or list(DEMO_WRITERS)
    for name in tqdm(names, desc="demo datasets", unit="dataset"):
        start = time.perf_counter()
        write_demo_datasets(args.out, size=args.size, seed=args.seed, names=[name])
        logging.info("wrote %s/%s in %.1f s", args.out, name, time.perf_counter() - start)
    if args.summary:
        from monai_ext.demo.summary import format_summary, summarize_demo

        print(format_summary(summarize_demo(args.out, names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
