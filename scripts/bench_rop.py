# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``make bench`` for meta soft-label learning: the powered efficacy study on the ROP demo data
(:mod:`scripts.bench.rop_study`, tables by :mod:`scripts.bench.rop_report`); writes ``rop_bench.json``,
``rop_bench.png`` and ``README_table.md`` into ``--out`` and prints the tables. The step time is measured by
``scripts.bench_rop_step`` into the same folder (``rop_step.json``, ``rop_step.md``).

``--plan default`` (the ``make bench`` setting): 1,830 training images, 316 clean meta and 1,046 clean test images,
5 arms x 5 paired seeds plus a 3-run learning-rate search, about an hour on 2 CPU cores. ``--plan quick`` runs the
same code on a few hundred images (a smoke test, not evidence).

Examples::

    python -m scripts.bench_rop --out bench_results/rop
    python -m scripts.bench_rop --out /tmp/rop_quick --plan quick
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench import rop_report, rop_study
from scripts.bench.results_io import run_environment

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (every default is the ``make bench`` setting)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_results/rop", help="results folder (JSON, PNG, README_table.md)")
    p.add_argument("--work-dir", default=None, help="study data and runs; default a temporary folder, removed after")
    p.add_argument("--plan", choices=sorted(rop_study.PLANS), default="default")
    p.add_argument("--arms", nargs="+", choices=[a.value for a in rop_study.Arm], default=None,
                   help="subset of arms (must include ce); default all")  # fmt: skip
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="override the plan's seeds (first tunes)")
    p.add_argument("--workers", type=int, default=None, help="parallel runs; default the plan's (2)")
    p.add_argument("--interpretation", default=None, help="text file: a paragraph written under the tables")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the study, write the results, print the tables."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("scripts.bench").setLevel(logging.INFO)
    logging.getLogger("monai.bundle.workflows").setLevel(logging.ERROR)
    start = time.perf_counter()
    out_dir = Path(args.out)
    results: dict = {}
    plan = rop_study.PLANS[args.plan]
    if args.seeds:
        plan = dataclasses.replace(plan, seeds=tuple(args.seeds))
    arms = args.arms or [a.value for a in rop_study.Arm]
    with tempfile.TemporaryDirectory(prefix="rop_study_") as tmp:
        results["study"] = rop_study.run_study(args.work_dir or tmp, plan, arms, workers=args.workers)
        out_dir.mkdir(parents=True, exist_ok=True)
        rop_report.plot_validation_curves(results["study"], args.work_dir or tmp, out_dir / "rop_val_curves.png")
    if args.interpretation is not None:
        results["interpretation"] = " ".join(Path(args.interpretation).read_text(encoding="utf-8").split())
    results["environment"] = run_environment(argv, time.perf_counter() - start, script="scripts/bench_rop.py")
    paths = rop_report.write_results(results, out_dir)
    sys.stdout.write(paths["table"].read_text(encoding="utf-8"))
    sys.stdout.write(f"\nwrote {', '.join(str(p) for p in paths.values())}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
