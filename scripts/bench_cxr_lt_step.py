# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Step time of the Feature Pyramid Sum Model (``make bench``, issue 13): training steps (forward,
``PyramidSumLoss``, backward, Adam) and inference steps of FPSM on stages {4,3}, {4,3,2}, {4,3,2,1} and the
concatenate variant against the single-stage head {4}, all on the same backbone weights, batch and device, timed
interleaved (logic in :mod:`scripts.bench.fpsm_step`), and the FLOPs of one training step counted by
``FlopCounterMode`` (independent of the machine's load). Networks: the demo overlay's small network at the demo sizes
(``small``: ResNet-10t at the demo overlay's image size, batch 16) and the bundle's shipped TResNet-L at 448 px
(``shipped``; seconds per step on a CPU: its batch defaults to 2 there and its repetitions are few). Then DADAM on
the fly: images per second of the bundle's training transform chain with DADAM (probability 0.5 and 1.0) against the
same chain without it (:mod:`scripts.bench.dadam_throughput`; ``--throughput-items 0`` skips it). Writes
``fpsm_step.json`` and ``fpsm_step.md`` into ``--out`` and prints the tables and the ratios (target: FPSM {4,3,2} /
single-stage <= 1.05).

Examples::

    python -m scripts.bench_cxr_lt_step --out bench_results/cxr_lt --num-threads 1
    python -m scripts.bench_cxr_lt_step --networks small --small-repeats 5 --modes train
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from scripts.bench.dadam_throughput import dadam_throughput_benchmark, dadam_throughput_table
from scripts.bench.fpsm_step import (
    DEFAULT_VARIANTS,
    FPSM_BUNDLE,
    fpsm_flops_table,
    fpsm_step_benchmark,
    fpsm_step_flops,
    fpsm_step_setting,
    fpsm_step_table,
)
from scripts.bench.results_io import run_environment, write_json

__all__ = ["main", "build_parser", "RESULT_FILES", "ratio_lines"]

NETWORKS = ("small", "shipped")
RESULT_FILES = {"json": "fpsm_step.json", "table": "fpsm_step.md"}
CPU_SHIPPED_BATCH = 2
_TITLES = {"small": "Demo overlay's small network", "shipped": "Shipped network (timm TResNet-L)"}


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (every default is the ``make bench`` setting)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_results/cxr_lt", help="results folder (fpsm_step.json, fpsm_step.md)")
    p.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS),
                   help="small: demo.json's small_network_def at the demo sizes; shipped: train.json's TResNet-L "
                   "at 448 px")  # fmt: skip
    p.add_argument("--variants", nargs="+", choices=list(DEFAULT_VARIANTS), default=list(DEFAULT_VARIANTS),
                   help="the first is the baseline of the ratios (default single_4)")  # fmt: skip
    p.add_argument("--modes", nargs="+", choices=["train", "inference"], default=["train", "inference"])
    p.add_argument("--small-warmup", type=int, default=2)
    p.add_argument("--small-repeats", type=int, default=10)
    p.add_argument("--small-batch-size", type=int, default=0, help="0: the demo run's batch (16)")
    p.add_argument("--shipped-warmup", type=int, default=1)
    p.add_argument("--shipped-repeats", type=int, default=5)
    p.add_argument("--shipped-batch-size", type=int, default=0,
                   help=f"0: train.json's batch (16) on a GPU, {CPU_SHIPPED_BATCH} on a CPU")  # fmt: skip
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bundle-dir", default=str(FPSM_BUNDLE), help="the cxr_lt_fpsm_classification folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock", choices=["auto", "wall", "process"], default="auto",
                   help="wall: time.perf_counter; process: this process's CPU seconds (time.process_time), "
                   "which keeps other jobs on a shared CPU out of the ratios; auto: process on a CPU, wall on a "
                   "GPU")  # fmt: skip
    p.add_argument("--throughput-items", type=int, default=64,
                   help="training images per round of the DADAM throughput; 0 skips it")  # fmt: skip
    p.add_argument("--throughput-image-size", type=int, default=512, help="pixels of the written demo images")
    p.add_argument("--throughput-repeats", type=int, default=5)
    p.add_argument("--work-dir", default=None, help="where the throughput data are written; default a temporary folder")
    return p


def results_table(results: dict) -> str:
    """Markdown of all measured networks (one :func:`~scripts.bench.fpsm_step.fpsm_step_table` each) and of the DADAM
    throughput when measured."""
    tables = []
    for name, res in results["step_time"].items():
        tables.append(fpsm_step_table(res, _TITLES.get(name, name)))
        if "flops" in res:
            tables.append(fpsm_flops_table(res["flops"], _TITLES.get(name, name)))
    if "dadam_throughput" in results:
        tables.append(dadam_throughput_table(results["dadam_throughput"]))
    return "\n".join(tables)


def ratio_lines(results: dict) -> list[str]:
    """One line per network and mode: each variant's ratio of medians to the baseline, the target verdict."""
    lines = []
    for name, res in results["step_time"].items():
        for mode in res["settings"]["modes"]:
            ratios = ", ".join(f"{k} {v:.3f}" for k, v in res[mode]["ratio"].items() if k != res["baseline"])
            line = f"{name} {mode}: step time / {res['baseline']}: {ratios}"
            target = res[mode]["ratio"].get(res["target_variant"])
            if mode == "train" and target is not None:
                verdict = "meets" if target <= res["target_ratio"] else "misses"
                line += f" ({res['target_variant']} {verdict} the target <= {res['target_ratio']})"
            lines.append(line)
        if "flops" in res:
            ratios = ", ".join(f"{k} {v:.4f}" for k, v in res["flops"]["ratio"].items() if k != res["baseline"])
            lines.append(f"{name} training-step FLOPs / {res['baseline']}: {ratios}")
    if "dadam_throughput" in results:
        res = results["dadam_throughput"]
        rates = ", ".join(f"{k} {v:.3f}" for k, v in res["ratio_to_reference"].items() if k != res["reference"])
        lines.append(f"DADAM on the fly: images per second / {res['reference']}: {rates}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Measure the selected networks, write the results, print the tables and ratios; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    start = time.perf_counter()
    out_dir = Path(args.out)
    variants = {name: DEFAULT_VARIANTS[name] for name in args.variants}
    on_cpu = torch.device(args.device).type == "cpu"
    use_process = args.clock == "process" or (args.clock == "auto" and on_cpu)
    clock = time.process_time if use_process else time.perf_counter
    results: dict = {"step_time": {}}
    for name in args.networks:
        setting = fpsm_step_setting(name, args.bundle_dir)
        if name == "small":
            warmup, repeats, batch = args.small_warmup, args.small_repeats, args.small_batch_size
        else:
            warmup, repeats, batch = args.shipped_warmup, args.shipped_repeats, args.shipped_batch_size
            if batch <= 0 and on_cpu:
                batch = CPU_SHIPPED_BATCH
        res = fpsm_step_benchmark(setting, variants, batch if batch > 0 else None, None, args.modes, warmup, repeats,
                                  args.seed, args.device, clock=clock)  # fmt: skip
        res["network"] = name
        res["network_def"] = setting["network_def"]
        if "train" in args.modes:
            res["flops"] = fpsm_step_flops(setting, variants, batch_size=1, seed=args.seed, device=args.device)
        results["step_time"][name] = res
        results["environment"] = run_environment(argv, time.perf_counter() - start, device=args.device)
        write_json(results, out_dir / RESULT_FILES["json"])  # keep the first network if a later one fails
        sys.stdout.write("\n".join(ratio_lines({"step_time": {name: res}})) + "\n")
        sys.stdout.flush()
    if args.throughput_items > 0:
        with tempfile.TemporaryDirectory() as tmp:
            results["dadam_throughput"] = dadam_throughput_benchmark(
                args.work_dir or tmp, args.bundle_dir, num_items=args.throughput_items,
                image_size=args.throughput_image_size, repeats=args.throughput_repeats, seed=args.seed,
                clock=time.process_time if use_process else time.perf_counter,
            )  # fmt: skip
        sys.stdout.write("\n".join(ratio_lines({"step_time": {}, **results})[-1:]) + "\n")
    results["environment"] = run_environment(argv, time.perf_counter() - start, device=args.device)
    write_json(results, out_dir / RESULT_FILES["json"])
    table = results_table(results) + "\n" + "\n".join(f"- {line}" for line in ratio_lines(results)) + "\n"
    (out_dir / RESULT_FILES["table"]).write_text(table, encoding="utf-8")
    sys.stdout.write("\n" + table)
    sys.stdout.write(f"\nwrote {out_dir / RESULT_FILES['json']}, {out_dir / RESULT_FILES['table']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
