# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``make bench`` for NVUM: step time against BCE and demo-data efficacy against BCE (logic in
:mod:`monai_ext.bench.nvum`); writes ``nvum_bench.json``, ``nvum_bench.png`` and ``README_table.md`` into ``--out``
and prints the table.

Example::

    python scripts/bench_nvum.py --out bench_results/nvum --num-threads 1
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

from monai_ext.bench import nvum

__all__ = ["main", "build_parser"]

SMALL_DENSENET = {
    "_target_": "DenseNet",
    "spatial_dims": 2,
    "in_channels": 3,
    "out_channels": "@num_classes",
    "init_features": 16,
    "growth_rate": 16,
    "block_config": [2, 4, 6, 4],
}


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (every default is the ``make bench`` setting)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_results/nvum", help="results folder (JSON, PNG, README_table.md)")
    p.add_argument("--work-dir", default=None, help="demo data and runs; default a temporary folder, removed after")
    p.add_argument("--parts", nargs="+", choices=["step", "efficacy"], default=["step", "efficacy"])
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bundle-dir", default=str(nvum.BUNDLE_DIR), help="the cxr_nvum_classification bundle folder")
    g = p.add_argument_group("step time (the bundle's DenseNet121)")
    g.add_argument("--step-batch-size", type=int, default=16)
    g.add_argument("--step-image-size", type=int, default=128)
    g.add_argument("--warmup", type=int, default=1)
    g.add_argument("--repeats", type=int, default=8)
    g = p.add_argument_group("efficacy (bundle runs on demo data)")
    g.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    methods = [m.value for m in nvum.Method]
    g.add_argument("--methods", nargs="+", choices=methods, default=methods)
    g.add_argument("--train-size", type=float, default=3.0, help="NIH demo size")
    g.add_argument("--test-size", type=float, default=6.0, help="OpenI and PadChest demo size")
    g.add_argument("--image-size", type=int, default=64)
    g.add_argument("--lesion-contrast", type=float, default=0.6)
    g.add_argument("--epochs", type=int, default=8)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--network", choices=["small", "bundle"], default="small",
                   help="small: DenseNet(init_features=16, growth_rate=16, block_config=(2, 4, 6, 4)); "
                   "bundle: the bundle's DenseNet121")  # fmt: skip
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


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts, write the results, print the table; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("monai_ext.bench").setLevel(logging.INFO)
    logging.getLogger("monai.bundle.workflows").setLevel(logging.ERROR)  # "Logging file is set to False"
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    start = time.perf_counter()
    results: dict = {}
    if "step" in args.parts:
        network = nvum.bundle_network(args.bundle_dir, device=args.device)
        results["step_time"] = nvum.step_time_benchmark(
            network, args.step_batch_size, args.step_image_size, warmup=args.warmup, repeats=args.repeats,
            device=args.device,
        )  # fmt: skip
        results["step_time"]["network"] = "the bundle's DenseNet121 (MONAI, 14 outputs, not pretrained)"
        logging.getLogger("monai_ext.bench").info(f"step time: {json.dumps(results['step_time']['ratio_to_bce'])}")
        nvum.write_results({**results, "environment": _environment(args, argv, start)}, args.out)  # keep if later fails
    if "efficacy" in args.parts:
        network_def = SMALL_DENSENET if args.network == "small" else None
        with tempfile.TemporaryDirectory(prefix="nvum_bench_") as tmp:
            results["efficacy"] = nvum.run_efficacy(
                args.work_dir or tmp, args.methods, args.seeds, args.train_size, args.test_size, args.image_size,
                args.lesion_contrast, args.epochs, args.batch_size, network_def, bundle_dir=args.bundle_dir,
            )  # fmt: skip
    results["environment"] = _environment(args, argv, start)
    paths = nvum.write_results(results, args.out)
    sys.stdout.write(paths["table"].read_text(encoding="utf-8"))
    sys.stdout.write(f"\nwrote {', '.join(str(p) for p in paths.values())}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
