# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``make bench`` for MoMBS: epoch time against random sampling and the powered efficacy study (logic in
:mod:`scripts.bench`: ``mombs_step``, ``mombs_study``, ``mombs_audit``, ``study``, ``mombs_report``); writes
``timing.json``, ``study.json``, ``study.png`` and ``README_table.md`` into ``--out`` and prints the tables.

``--plan default`` (what ``make bench`` runs) is the powered study of ``shared/DESIGN.md``: 8 sampling strategies x
3 training fractions (25 / 50 / 100 % of 360 noisy training slices) x 5 paired seeds = 120 runs of 10 epochs, 120
clean test slices (>= 100 with a lesion), about 45-55 minutes on 2 CPU cores with 2 runs in parallel, the epoch-time
part included. ``--plan full`` trains 30 epochs for 10 seeds and adds one 60-epoch audit run per seed (several
hours). ``--plan quick`` runs the same code on 120 slices, 2 strategies, 2 seeds in a few minutes (a smoke test,
not evidence). Parts not run (``--parts``) are kept from an earlier ``timing.json`` / ``study.json`` in ``--out``.

Examples::

    python -m scripts.bench_mombs --out bench_results/mombs --num-threads 1
    python -m scripts.bench_mombs --out /tmp/mombs_quick --plan quick --parts study
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from monai_ext.demo.covid_ct import write_covid_medseg_demo
from scripts.bench import mombs_report, mombs_step, mombs_study
from scripts.bench.mombs_bundle import BUNDLE_DIR
from scripts.bench.results_io import run_environment, write_json

__all__ = ["main", "build_parser", "PARTS"]

PARTS = ("timing", "study")


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (every default is the ``make bench`` setting)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_results/mombs", help="results folder (JSON, PNG, README_table.md)")
    p.add_argument("--work-dir", default=None, help="demo data and runs; default a temporary folder, removed after")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="timing: epoch time MoMBS / random; study: the efficacy study")  # fmt: skip
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads of the timing part; 0 keeps "
                   "torch's default (study runs use one thread each)")  # fmt: skip
    p.add_argument("--bundle-dir", default=str(BUNDLE_DIR), help="the covid_ct_mombs_segmentation bundle folder")
    g = p.add_argument_group("epoch time (the bundle's SplitUNet and Dataset pipeline, on the default demo)")
    g.add_argument("--data-size", type=float, default=1.0, help="COVID CT demo size of the timing part (1.0: 100 "
                   "slices + 3 volumes at 128 px, as make demo)")  # fmt: skip
    g.add_argument("--data-seed", type=int, default=0)
    g.add_argument("--timing-image-size", type=int, default=128, help="network input side")
    g.add_argument("--timing-batch-size", type=int, default=4, help="the bundle's batch_size (paper Sec. 4.4)")
    g.add_argument("--warmup", type=int, default=1, help="untimed epochs per variant")
    g.add_argument("--repeats", type=int, default=3, help="timed, alternating epochs per variant")
    g.add_argument("--num-disturbances", type=int, default=8, help="K of the assessor (timing part)")
    g.add_argument("--deviation-assess-every", type=int, default=3, help="also time MoMBS with the assessor's "
                   "documented deviation assess_every=N (0: skip); the ratio is one of means over the timed epochs, "
                   "so --repeats should be a multiple of N")  # fmt: skip
    g = p.add_argument_group("efficacy study (scripts.bench.mombs_study)")
    g.add_argument("--plan", choices=sorted(mombs_study.PLANS), default="default",
                   help="default: the powered study (about an hour on 2 CPUs); full: longer; quick: a smoke "
                   "test")  # fmt: skip
    g.add_argument("--strategies", nargs="+", default=None, help="override the plan's strategies (must include "
                   "random); plain bundle sampling_strategy values")  # fmt: skip
    g.add_argument("--fractions", type=float, nargs="+", default=None, help="override the training fractions")
    g.add_argument("--seeds", type=int, nargs="+", default=None, help="override the plan's seeds")
    g.add_argument("--epochs", type=int, default=None, help="override the plan's epochs")
    g.add_argument("--pivot-epoch", type=int, default=None, help="override the plan's pivot epoch (1-based)")
    g.add_argument("--n-slices", type=int, default=None, help="override the number of demo slices")
    g.add_argument("--image-size", type=int, default=None, help="override the written and network image side")
    g.add_argument(
        "--audit-epochs",
        type=int,
        default=None,
        help="one extra, longer mombs run per seed at the largest "
        "fraction for the difficulty-map audit (default plan: none, the study's mombs runs are audited)",
    )
    g.add_argument("--workers", type=int, default=None, help="parallel runs; default the plan's (2)")
    g.add_argument("--add-to-study", action="store_true", help="run only --strategies (with random, the baseline) "
                   "and merge them into the earlier study.json in --out (same plan otherwise), e.g. a new "
                   "arm")  # fmt: skip
    return p


def _nan_for_null(value):
    """JSON ``null`` back to ``nan`` (:func:`scripts.bench.results_io.write_json` writes ``nan`` as ``null``), so
    that a part read back formats as when it was measured."""
    if isinstance(value, dict):
        return {k: _nan_for_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_for_null(v) for v in value]
    return float("nan") if value is None else value


def _kept_parts(out_dir: Path, parts: list[str], wall: dict[str, float]) -> dict:
    """The parts not run now, read back from their JSON in ``out_dir`` (their wall time goes into ``wall`` as
    ``"<part> (earlier run)"``); missing files are left out."""
    kept = {}
    for part in PARTS:
        path = out_dir / mombs_report.RESULT_FILES[part]
        if part in parts or not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        seconds = (data.pop("environment", None) or {}).get("wall_s", {}).get(part)
        if seconds is not None:
            wall[f"{part} (earlier run)"] = seconds
        kept[part] = _nan_for_null(data)
    return kept


def _earlier_study(out_dir: Path) -> dict:
    """The study of an earlier run in ``out_dir`` (for ``--add-to-study``).

    Raises:
        FileNotFoundError: there is none.
    """
    path = out_dir / mombs_report.RESULT_FILES["study"]
    if not path.is_file():
        raise FileNotFoundError(f"--add-to-study needs an earlier {path}; run the whole study first.")
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("environment", None)
    for key in ("runs", "audit_runs"):  # results: null was a NaN; the plan keeps its nulls (None settings)
        data[key] = _nan_for_null(data.get(key, []))
    return data


def _plan(args: argparse.Namespace) -> mombs_study.StudyPlan:
    plan = mombs_study.PLANS[args.plan]
    if args.image_size is not None:
        plan = mombs_study.with_plan_overrides(plan, write_size=args.image_size, image_size=args.image_size)
    return mombs_study.with_plan_overrides(
        plan, strategies=tuple(args.strategies) if args.strategies else None,
        fractions=tuple(args.fractions) if args.fractions else None, seeds=tuple(args.seeds) if args.seeds else None,
        epochs=args.epochs, pivot_epoch=args.pivot_epoch, n_slices=args.n_slices, audit_epochs=args.audit_epochs,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts, write the results, print the tables; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("scripts.bench").setLevel(logging.INFO)
    logging.getLogger("monai.bundle.workflows").setLevel(logging.ERROR)  # "Logging file is set to False"
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    out_dir = Path(args.out)
    plan = _plan(args)
    wall: dict[str, float] = {}
    results = _kept_parts(out_dir, args.parts, wall)
    with tempfile.TemporaryDirectory(prefix="mombs_bench_") as tmp:
        work = Path(args.work_dir or tmp)
        if "timing" in args.parts:
            start = time.perf_counter()
            dataset_dir = work / "timing_data" / mombs_study.DATASET
            write_covid_medseg_demo(dataset_dir, size=args.data_size, seed=args.data_seed)
            results["timing"] = mombs_step.epoch_time_benchmark(
                dataset_dir, work / "timing", args.timing_image_size, args.timing_batch_size,
                args.num_disturbances, args.warmup, args.repeats, bundle_dir=args.bundle_dir,
            )  # fmt: skip
            if args.deviation_assess_every > 1:
                deviation = mombs_step.epoch_time_benchmark(
                    dataset_dir, work / "timing_deviation", args.timing_image_size, args.timing_batch_size,
                    args.num_disturbances, args.warmup, args.repeats, bundle_dir=args.bundle_dir,
                    assess_every=args.deviation_assess_every,
                )  # fmt: skip
                results["timing"]["deviation"] = mombs_report.deviation_summary(deviation)
            wall["timing"] = time.perf_counter() - start
            logging.getLogger("scripts.bench").info(
                f"epoch time ratio MoMBS / random: {results['timing']['ratio']:.3f}"
            )
            mombs_report.write_results(out_dir, timing=results["timing"], environment=run_environment(argv, wall))
        if "study" in args.parts:
            start = time.perf_counter()
            results["study"] = mombs_study.run_study(work / "study", plan, workers=args.workers)
            wall["study"] = time.perf_counter() - start
            if args.add_to_study:
                added = out_dir / "study_added.json"  # kept whatever the merge says
                write_json(results["study"], added)
                results["study"] = mombs_study.merge_studies(_earlier_study(out_dir), results["study"])
                added.unlink()
                wall["study"] = results["study"]["wall_s"]
    environment = run_environment(argv, wall)
    if "timing" in args.parts or "study" in args.parts:
        wall["total"] = sum(v for k, v in wall.items() if k in PARTS)
    paths = mombs_report.write_results(
        out_dir,
        timing=results.get("timing") if "timing" in args.parts else None,
        study_result=results.get("study") if "study" in args.parts else None,
        environment=environment,
    )
    table = mombs_report.results_table(results.get("timing"), results.get("study"), environment)
    paths["table"].write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    sys.stdout.write(f"\nwrote {', '.join(str(p) for p in paths.values())}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
