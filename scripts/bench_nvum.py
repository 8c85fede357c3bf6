# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``make bench`` for NVUM: step time against BCE and demo-data efficacy against BCE (logic in
:mod:`scripts.bench`: ``nvum_step``, ``nvum``, ``nvum_audit``, ``nvum_report``); writes ``nvum_bench.json``,
``nvum_bench.png`` and ``README_table.md`` into ``--out`` and prints the table.

``--parts audit`` trains nothing: it reads ``--out/nvum_bench.json`` back, recomputes the label audit of its runs
from the memories saved in ``--work-dir`` (the folder those runs were trained in) and writes the results again,
keeping the measured step times and AUCs. ``--interpretation FILE`` puts a paragraph of plain text under the tables.

Examples::

    python -m scripts.bench_nvum --out bench_results/nvum --num-threads 1
    python -m scripts.bench_nvum --out bench_results/nvum --parts audit --work-dir /tmp/nvum_work
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import monai
import torch

from scripts.bench import nvum, nvum_report, nvum_step
from scripts.bench.bundles import shipped_network_def
from scripts.bench.nvum_bundle import BUNDLE_DIR, Method, bundle_network

__all__ = ["main", "build_parser"]

PARTS = ("step", "efficacy", "audit")


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (every default is the ``make bench`` setting)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_results/nvum", help="results folder (JSON, PNG, README_table.md)")
    p.add_argument("--work-dir", default=None, help="demo data and runs; default a temporary folder, removed after "
                   "(--parts audit: the folder the earlier runs were trained in, required)")  # fmt: skip
    p.add_argument("--parts", nargs="+", choices=PARTS, default=["step", "efficacy"],
                   help="step: step time; efficacy: train and evaluate (with the label audit); audit: recompute "
                   "the label audit of the runs in --out/nvum_bench.json from their saved memories")  # fmt: skip
    p.add_argument("--interpretation", default=None, help="text file: a paragraph written under the tables "
                   "(--parts audit keeps the earlier one when not given)")  # fmt: skip
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bundle-dir", default=str(BUNDLE_DIR), help="the cxr_nvum_classification bundle folder")
    g = p.add_argument_group("step time (the bundle's DenseNet121)")
    g.add_argument("--step-batch-size", type=int, default=16)
    g.add_argument("--step-image-size", type=int, default=128)
    g.add_argument("--warmup", type=int, default=1)
    g.add_argument("--repeats", type=int, default=8)
    g = p.add_argument_group("efficacy (bundle runs on demo data)")
    g.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    methods = [m.value for m in Method]
    g.add_argument("--methods", nargs="+", choices=methods, default=methods)
    g.add_argument("--train-size", type=float, default=3.0, help="NIH demo size")
    g.add_argument("--test-size", type=float, default=6.0, help="OpenI and PadChest demo size")
    g.add_argument("--image-size", type=int, default=64)
    g.add_argument("--lesion-contrast", type=float, default=0.6)
    g.add_argument("--epochs", type=int, default=8)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--network", choices=["small", "bundle"], default="small",
                   help="small: the demo overlay's DenseNet(init_features=16, growth_rate=16, "
                   "block_config=(2, 4, 6, 4)) (configs/demo.json); bundle: the bundle's DenseNet121")  # fmt: skip
    return p


def _environment(args: argparse.Namespace, argv: list[str] | None, start: float) -> dict:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": args.device,
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "wall_s": time.perf_counter() - start,
    }


def _load_results(out_dir: Path) -> dict:
    json_file = out_dir / nvum_report.RESULT_FILES["json"]
    if not json_file.is_file():
        raise FileNotFoundError(f"--parts audit reads the earlier results back, but '{json_file}' does not exist.")
    results = json.loads(json_file.read_text(encoding="utf-8"))
    if not results.get("efficacy"):
        raise ValueError(f"'{json_file}' holds no efficacy runs whose label audit could be recomputed.")
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts, write the results, print the table; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if "audit" in args.parts and ("efficacy" in args.parts or args.work_dir is None):
        parser.error("--parts audit recomputes the audits of earlier runs: it needs --work-dir and no 'efficacy'.")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("scripts.bench").setLevel(logging.INFO)
    logging.getLogger("monai.bundle.workflows").setLevel(logging.ERROR)  # "Logging file is set to False"
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    start = time.perf_counter()
    out_dir = Path(args.out)
    results: dict = _load_results(out_dir) if "audit" in args.parts else {}
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
        results["environment"] = _environment(args, argv, start)
        nvum_report.write_results(results, out_dir)  # keep the step times if a later part fails
    if "efficacy" in args.parts:
        network_def = shipped_network_def(args.bundle_dir) if args.network == "bundle" else None
        with tempfile.TemporaryDirectory(prefix="nvum_bench_") as tmp:
            results["efficacy"] = nvum.run_efficacy(
                args.work_dir or tmp, args.methods, args.seeds, args.train_size, args.test_size, args.image_size,
                args.lesion_contrast, args.epochs, args.batch_size, network_def, bundle_dir=args.bundle_dir,
            )  # fmt: skip
    if "audit" in args.parts:
        results["efficacy"] = nvum.recompute_audits(results["efficacy"], args.work_dir, args.bundle_dir)
        results.setdefault("environment", {})["audit_command"] = _environment(args, argv, start)["command"]
    else:
        results["environment"] = _environment(args, argv, start)
    paths = nvum_report.write_results(results, out_dir)
    sys.stdout.write(paths["table"].read_text(encoding="utf-8"))
    sys.stdout.write(f"\nwrote {', '.join(str(p) for p in paths.values())}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
