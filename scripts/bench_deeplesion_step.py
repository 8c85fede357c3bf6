# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Epoch time of MoMBS on the ``deeplesion_mombs_detection`` bundle (``make bench``, issue 14): the bundle's
training epoch (``train.json`` + ``demo.json``, shipped ResNet-18 FPN ``SplitRetinaNet``) with random sampling,
MoMBS with ``K`` head-only passes (target: <= 1.5 x random), MoMBS with the paper-style split point after the
backbone's first block, and the free mode (the undisturbed entropy, one head pass), timed interleaved in one process
with the breakdown per epoch (data, training step, ``K`` passes, planning) and the classification head's time per
FPN level (logic in :mod:`scripts.bench.deeplesion_step`). The demo data are written at the overlay's image size by
:func:`monai_ext.demo.deeplesion.write_deeplesion_demo` (``lesion_contrast=3``). Writes ``deeplesion_step.json`` and
``deeplesion_step.md`` into ``--out`` and prints the table. The default takes about 6-7 minutes on 2 CPU cores.

Examples::

    python -m scripts.bench_deeplesion_step --out bench_results/deeplesion --num-threads 1
    python -m scripts.bench_deeplesion_step --variants random mombs --repeats 5
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from monai_ext.demo.deeplesion import write_deeplesion_demo
from scripts.bench.bundles import DEMO_TRAIN
from scripts.bench.deeplesion_step import DEEPLESION_BUNDLE, VARIANTS, epoch_time_benchmark, results_table
from scripts.bench.results_io import run_environment, write_json

__all__ = ["main", "build_parser", "RESULT_FILES", "DEMO_CONTRAST"]

RESULT_FILES = {"json": "deeplesion_step.json", "table": "deeplesion_step.md"}
DEMO_CONTRAST = 3.0  # lesion_contrast of the demo data (as the detection study's)


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (every default is the ``make bench`` setting)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_results/deeplesion", help="results folder (deeplesion_step.json / .md)")
    p.add_argument("--work-dir", default=None, help="demo data and runs; default a temporary folder, removed after")
    p.add_argument("--bundle-dir", default=str(DEEPLESION_BUNDLE), help="the deeplesion_mombs_detection folder")
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="timed variants (random, the baseline, is always timed)")  # fmt: skip
    p.add_argument("--data-size", type=float, default=1.5, help="write_deeplesion_demo size (1.5: 75 "
                   "training key images)")  # fmt: skip
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--num-images", type=int, default=64, help="training key images drawn from the demo's "
                   "training split (an epoch is num-images / batch-size iterations)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=4, help="the bundle's batch_size")
    p.add_argument("--num-disturbances", type=int, default=8, help="K of mombs and mombs_stem")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs per variant")
    p.add_argument("--repeats", type=int, default=3, help="timed, alternating epochs per variant")
    p.add_argument("--head-repeats", type=int, default=10, help="timed head passes per FPN level")
    p.add_argument("--seed", type=int, default=0, help="training seed and seed of the image draw")
    p.add_argument("--clock", choices=["auto", "wall", "process"], default="auto",
                   help="wall: time.perf_counter; process: this process's CPU seconds (time.process_time), which "
                   "keeps other jobs on a shared CPU out of the numbers; auto: process on a CPU, wall on a "
                   "GPU")  # fmt: skip
    return p


def _image_size(bundle_dir: str) -> int:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(Path(bundle_dir) / c) for c in DEMO_TRAIN])
    return int(parser.get_parsed_content("image_size"))


def main(argv: list[str] | None = None) -> int:
    """Write the demo data, time the variants, write the results and print the table; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("scripts.bench").setLevel(logging.INFO)
    logging.getLogger("monai.bundle.workflows").setLevel(logging.ERROR)  # "Logging file is set to False"
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    start = time.perf_counter()
    use_process = args.clock == "process" or (args.clock == "auto" and not torch.cuda.is_available())
    clock = time.process_time if use_process else time.perf_counter
    variants = tuple(["random"] + [v for v in args.variants if v != "random"])
    with tempfile.TemporaryDirectory(prefix="deeplesion_step_") as tmp:
        work = Path(args.work_dir or tmp)
        dataset_dir = work / "data" / "deeplesion"
        image_size = _image_size(args.bundle_dir)
        demo = write_deeplesion_demo(dataset_dir, size=args.data_size, seed=args.data_seed, image_size=image_size,
                                     lesion_contrast=DEMO_CONTRAST)  # fmt: skip
        result = epoch_time_benchmark(
            dataset_dir, work / "runs", args.num_images, args.batch_size, args.num_disturbances, args.warmup,
            args.repeats, args.seed, variants, args.head_repeats, args.bundle_dir, clock=clock,
        )  # fmt: skip
    result["settings"]["demo"] = {"size": args.data_size, "seed": args.data_seed, "image_size": image_size,
                                  "lesion_contrast": DEMO_CONTRAST, "key_images": demo["key_images"]}  # fmt: skip
    result["environment"] = run_environment(argv, time.perf_counter() - start)
    out_dir = Path(args.out)
    write_json(result, out_dir / RESULT_FILES["json"])
    env = result["environment"]
    table = (
        f"# MoMBS epoch time on deeplesion_mombs_detection ({env['cpu_count']} CPUs, {env['torch_threads']} torch "
        f"threads, {result['settings']['num_images']} images, batch {result['settings']['batch_size']}, "
        f"K={result['settings']['num_disturbances']}, clock {result['settings']['clock']})\n\n" + results_table(result)
    )
    (out_dir / RESULT_FILES["table"]).write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    sys.stdout.write(f"\nwrote {out_dir / RESULT_FILES['json']}, {out_dir / RESULT_FILES['table']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
