# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``make bench`` for NVUM: step time against BCE and the powered efficacy study (logic in :mod:`scripts.bench`:
``nvum_step``, ``nvum_study``, ``study``, ``nvum_report``); writes ``nvum_bench.json``, ``nvum_bench.png`` and
``README_table.md`` into ``--out`` and prints the tables.

``--plan full`` (the ``make bench`` default) is the powered study of ``shared/DESIGN.md``: ~5,000 noisy training
images, two clean test sets of 2,000 images, 5 paired seeds, a 3-run tuning budget per arm; about 45-60 minutes on
2 CPU cores (2 runs in parallel). ``--plan quick`` runs the same code on a few hundred images in a few minutes (a
smoke test, not evidence). ``--interpretation FILE`` puts a paragraph of plain text under the tables. Parts not
run are kept from an earlier ``nvum_bench.json`` in ``--out`` (``--parts step`` re-measures the step time of a
finished study).

Examples::

    python -m scripts.bench_nvum --out bench_results/nvum
    python -m scripts.bench_nvum --out /tmp/nvum_quick --plan quick --parts efficacy
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

from scripts.bench import nvum_report, nvum_step, nvum_study
from scripts.bench.nvum_bundle import BUNDLE_DIR, bundle_network
from scripts.bench.results_io import run_environment

__all__ = ["main", "build_parser"]

PARTS = ("step", "efficacy")


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (every default is the ``make bench`` setting)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_results/nvum", help="results folder (JSON, PNG, README_table.md)")
    p.add_argument("--work-dir", default=None, help="study data and runs; default a temporary folder, removed after")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="step: step time; efficacy: the powered study")  # fmt: skip
    p.add_argument("--interpretation", default=None, help="text file: a paragraph written under the tables")
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads of the step-time part; 0 keeps "
                   "torch's default (study runs use one thread each)")  # fmt: skip
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bundle-dir", default=str(BUNDLE_DIR), help="the cxr_nvum_classification bundle folder")
    g = p.add_argument_group("step time (the bundle's DenseNet121)")
    g.add_argument("--step-batch-size", type=int, default=16)
    g.add_argument("--step-image-size", type=int, default=128)
    g.add_argument("--warmup", type=int, default=1)
    g.add_argument("--repeats", type=int, default=8)
    g = p.add_argument_group("efficacy study (scripts.bench.nvum_study)")
    g.add_argument("--plan", choices=sorted(nvum_study.PLANS), default="full", help="full: the powered study; "
                   "quick: the same code on small data (a smoke test)")  # fmt: skip
    g.add_argument("--arms", nargs="+", choices=[a.value for a in nvum_study.Arm], default=None,
                   help="subset of arms (must include bce); default all")  # fmt: skip
    g.add_argument("--seeds", type=int, nargs="+", default=None, help="override the plan's seeds (first tunes)")
    g.add_argument("--epochs", type=int, default=None, help="override the plan's epochs")
    g.add_argument("--workers", type=int, default=None, help="parallel runs; default the plan's (2)")
    return p


def _kept_parts(out_dir: Path, parts: list[str]) -> dict:
    """The results of the parts not run now, from an earlier ``nvum_bench.json`` in ``out_dir`` (so that
    ``--parts step`` re-measures the step time and keeps a finished study); ``{}`` when there is none."""
    json_file = out_dir / nvum_report.RESULT_FILES["json"]
    if not json_file.is_file():
        return {}
    earlier = json.loads(json_file.read_text(encoding="utf-8"))
    kept = {key: earlier[key] for key, part in (("step_time", "step"), ("study", "efficacy")) if part not in parts
            and key in earlier}  # fmt: skip
    if "study" in kept:
        kept["environment"] = {"study_command": earlier.get("environment", {}).get("command"),
                               "study_wall_s": kept["study"].get("wall_s")}  # fmt: skip
    return kept


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts, write the results, print the tables; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("scripts.bench").setLevel(logging.INFO)
    logging.getLogger("monai.bundle.workflows").setLevel(logging.ERROR)  # "Logging file is set to False"
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    start = time.perf_counter()
    out_dir = Path(args.out)
    results = _kept_parts(out_dir, args.parts)
    if args.interpretation is not None:
        results["interpretation"] = " ".join(Path(args.interpretation).read_text(encoding="utf-8").split())
    if "step" in args.parts:
        network = bundle_network(args.bundle_dir, device=args.device)
        results["step_time"] = nvum_step.step_time_benchmark(
            network, args.step_batch_size, args.step_image_size, warmup=args.warmup, repeats=args.repeats,
            device=args.device,
        )  # fmt: skip
        results["step_time"]["network"] = "the bundle's DenseNet121 (MONAI, 14 outputs, not pretrained)"
        logging.getLogger("scripts.bench").info(f"step time: {json.dumps(results['step_time']['ratio_to_bce'])}")
        results["environment"] = {
            **results.get("environment", {}),
            **run_environment(argv, time.perf_counter() - start, device=args.device),
        }
        nvum_report.write_results(results, out_dir)  # keep the step times if a later part fails
    if "efficacy" in args.parts:
        plan = nvum_study.with_plan_overrides(
            nvum_study.PLANS[args.plan], seeds=tuple(args.seeds) if args.seeds else None, epochs=args.epochs
        )
        arms = args.arms or [a.value for a in nvum_study.Arm]
        with tempfile.TemporaryDirectory(prefix="nvum_study_") as tmp:
            results["study"] = nvum_study.run_study(args.work_dir or tmp, plan, arms, workers=args.workers)
    results["environment"] = {
        **results.get("environment", {}),
        **run_environment(argv, time.perf_counter() - start, device=args.device),
    }
    paths = nvum_report.write_results(results, out_dir)
    sys.stdout.write(paths["table"].read_text(encoding="utf-8"))
    sys.stdout.write(f"\nwrote {', '.join(str(p) for p in paths.values())}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
