# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Step time of meta soft-label learning (``make bench``, issue 12): one meta-stage iteration of
:class:`monai_ext.engines.MetaSoftLabelTrainer` (label sources ``per_sample`` and ``network``) against one
cross-entropy step of the same network, batch and SGD optimizer, measured side by side in one run, with the share of
the second-order part (logic in :mod:`scripts.bench.meta_step`). Networks: the demo overlay's small network at the
demo sizes (``small``) and the bundle's shipped torchvision ResNet-50 at 224 px (``shipped``; seconds per step on a
CPU: keep its repetitions low). Writes ``rop_step.json`` and ``rop_step.md`` into ``--out`` and prints the tables
and the ratios.

Examples::

    python -m scripts.bench_rop_step --out bench_results/rop
    python -m scripts.bench_rop_step --networks small --small-repeats 3 --num-threads 1
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from scripts.bench.bundles import ROP_BUNDLE
from scripts.bench.meta_step import build_network, meta_step_benchmark, rop_step_setting, step_table
from scripts.bench.results_io import run_environment, write_json

__all__ = ["main", "build_parser", "RESULT_FILES"]

NETWORKS = ("small", "shipped")
RESULT_FILES = {"json": "rop_step.json", "table": "rop_step.md"}
_TITLES = {"small": "Demo overlay's small network", "shipped": "Shipped network (torchvision ResNet-50)"}


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (every default is the ``make bench`` setting)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_results/rop", help="results folder (rop_step.json, rop_step.md)")
    p.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS),
                   help="small: demo.json's small_network_def at the demo sizes; shipped: train.json's "
                   "ResNet-50")  # fmt: skip
    p.add_argument("--label-sources", nargs="+", choices=["per_sample", "network"], default=["per_sample", "network"])
    p.add_argument("--label-gradients", nargs="+", choices=["double_backward", "jvp"],
                   default=["double_backward", "jvp"])  # fmt: skip
    p.add_argument("--small-warmup", type=int, default=3)
    p.add_argument("--small-repeats", type=int, default=15)
    p.add_argument("--shipped-warmup", type=int, default=2)
    p.add_argument("--shipped-repeats", type=int, default=5)
    p.add_argument("--num-samples", type=int, default=1000, help="rows of the soft-label store")
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bundle-dir", default=str(ROP_BUNDLE), help="the rop_meta_softlabel_classification folder")
    p.add_argument("--seed", type=int, default=0)
    return p


def results_table(results: dict) -> str:
    """Markdown of all measured networks (one :func:`~scripts.bench.meta_step.step_table` each)."""
    parts = [step_table(res, _TITLES.get(name, name)) for name, res in results["step_time"].items()]
    return "\n".join(parts)


def ratio_lines(results: dict) -> list[str]:
    """One line per network: the meta / CE ratios and the second-order shares."""
    lines = []
    for name, res in results["step_time"].items():
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in res["ratio_to_ce"].items() if k != "cross_entropy")
        shares = ", ".join(f"{k} {100 * v:.0f} %" for k, v in res["second_order_share"].items())
        lines.append(f"{name}: meta / CE step time {ratios} (target <= {res['target_ratio']}); "
                     f"second-order share {shares}")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    """Measure the selected networks, write the results, print the tables and ratios; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("scripts.bench").setLevel(logging.INFO)
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    start = time.perf_counter()
    out_dir = Path(args.out)
    results: dict = {"step_time": {}}
    for name in args.networks:
        setting = rop_step_setting(name, args.bundle_dir)
        torch.manual_seed(args.seed)
        network = build_network(setting["network_def"], setting["num_classes"])
        if name == "small":
            warmup, repeats = args.small_warmup, args.small_repeats
        else:
            warmup, repeats = args.shipped_warmup, args.shipped_repeats
        res = meta_step_benchmark(
            network, (3, setting["image_size"], setting["image_size"]), setting["num_classes"], setting["batch_size"],
            setting["meta_batch_size"], args.label_sources, args.label_gradients, args.num_samples, warmup, repeats,
            args.seed, args.device,
        )  # fmt: skip
        res["network"] = name
        res["network_def"] = setting["network_def"]
        results["step_time"][name] = res
        results["environment"] = run_environment(argv, time.perf_counter() - start, device=args.device)
        write_json(results, out_dir / RESULT_FILES["json"])  # keep the first network if a later one fails
        sys.stdout.write(ratio_lines({"step_time": {name: res}})[0] + "\n")
        sys.stdout.flush()
    results["environment"] = run_environment(argv, time.perf_counter() - start, device=args.device)
    write_json(results, out_dir / RESULT_FILES["json"])
    table = results_table(results) + "\n" + "\n".join(f"- {line}" for line in ratio_lines(results)) + "\n"
    (out_dir / RESULT_FILES["table"]).write_text(table, encoding="utf-8")
    sys.stdout.write("\n" + table)
    sys.stdout.write(f"\nwrote {out_dir / RESULT_FILES['json']}, {out_dir / RESULT_FILES['table']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
