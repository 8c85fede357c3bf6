# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``make bench`` for MoMBS detection: the powered study on the DeepLesion demo data
(:mod:`scripts.bench.deeplesion_study`, tables by :mod:`scripts.bench.deeplesion_report`); writes
``deeplesion_bench.json``, ``deeplesion_bench.png`` and ``README_table.md`` into ``--out`` and prints the tables.

``--plan default`` (the ``make bench`` setting): the demo at size 8 (about 400 training, 90 validation and 100 test key
images), random / SCL / OHEM / Mo+l / Mo+u / Mo+l+u at 25 % and 50 % of the training patients, 5 paired seeds.
``--plan quick`` runs the same code on a tiny set (a smoke test, not evidence).

Examples::

    python -m scripts.bench_deeplesion --out bench_results/deeplesion
    python -m scripts.bench_deeplesion --out /tmp/deeplesion_quick --plan quick
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench import deeplesion_report, deeplesion_study
from scripts.bench.results_io import run_environment

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (every default is the ``make bench`` setting)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_results/deeplesion", help="results folder (JSON, PNG, README_table.md)")
    p.add_argument("--work-dir", default=None, help="study data and runs; default a temporary folder, removed after")
    p.add_argument("--plan", choices=sorted(deeplesion_study.PLANS), default="default")
    p.add_argument("--arms", nargs="+", choices=deeplesion_study.ARMS, default=None, help="subset of arms")
    p.add_argument("--fractions", type=float, nargs="+", default=None, help="override the plan's fractions")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="override the plan's seeds")
    p.add_argument("--epochs", type=int, default=None, help="override the plan's epochs")
    p.add_argument("--pivot-epoch", type=int, default=None, help="override the plan's pivot epoch")
    p.add_argument("--workers", type=int, default=None, help="parallel runs; default the plan's (2)")
    p.add_argument("--interpretation", default=None, help="text file: a paragraph written under the tables")
    p.add_argument("--from-runs", nargs="+", default=None, metavar="RUNS_DIR",
                   help="do not train: report the finished runs of these study 'runs' folders (of the same plan and "
                        "data; e.g. a study stopped early, or arms run separately)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the study, write the results, print the tables."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("scripts.bench").setLevel(logging.INFO)
    logging.getLogger("monai.bundle.workflows").setLevel(logging.ERROR)
    start = time.perf_counter()
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        raise SystemExit(f"--seeds must be distinct (each seed is one paired run per arm), got {args.seeds}")
    plan = deeplesion_study.with_plan_overrides(
        deeplesion_study.PLANS[args.plan],
        arms=tuple(args.arms) if args.arms else None,
        fractions=tuple(args.fractions) if args.fractions else None,
        seeds=tuple(args.seeds) if args.seeds else None,
        epochs=args.epochs,
        pivot_epoch=args.pivot_epoch,
    )
    results: dict = {}
    if args.from_runs:
        runs = [r for folder in args.from_runs for r in deeplesion_study.collect_runs(folder)]
        results["study"] = {"plan": dataclasses.asdict(plan), "runs": runs, "partial": True,
                            "aggregate": deeplesion_study.aggregate_study(runs), "wall_s": 0.0}  # fmt: skip
    else:
        with tempfile.TemporaryDirectory(prefix="deeplesion_study_") as tmp:
            results["study"] = deeplesion_study.run_study(args.work_dir or tmp, plan, workers=args.workers)
    if args.interpretation is not None:
        results["interpretation"] = " ".join(Path(args.interpretation).read_text(encoding="utf-8").split())
    results["environment"] = run_environment(argv, time.perf_counter() - start, script="scripts/bench_deeplesion.py")
    paths = deeplesion_report.write_results(results, args.out)
    sys.stdout.write(paths["table"].read_text(encoding="utf-8"))
    sys.stdout.write(f"\nwrote {', '.join(str(p) for p in paths.values())}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
