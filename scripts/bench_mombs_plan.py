# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Time MoMBS epoch planning (:class:`monai_ext.samplers.MoMBSSampler`) for a large training set and print a table.

For every strategy (and layout) it times, from random loss and uncertainty scores, the whole per-epoch work of one
rank: taking new scores (``MoMBSSampler.update_scores``), ranking them, the difficulty order, the layout, the block
shuffle and this rank's share (``MoMBSSampler.local_indices``); the best and the median of ``--repeats`` runs are
printed in milliseconds.

Example::

    python -m scripts.bench_mombs_plan --num-samples 1000000 --batch-size 32 --num-threads 1
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch

from monai_ext.samplers import MoMBSSampler

__all__ = ["main", "build_parser"]

CASES = (
    ("random", None),
    ("mombs", "mirror"),
    ("mombs", "serpentine"),
    ("mombs_loss", "mirror"),
    ("mombs_uncertainty", "mirror"),
    ("anti_mixed", None),
    ("scl_hard", None),
    ("ohem", None),
)


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=1_000_000, help="training set size N")
    p.add_argument("--batch-size", type=int, default=32, help="per-rank minibatch size")
    p.add_argument("--world-size", type=int, default=1, help="number of ranks the plan is made for")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per case (after one warm-up)")
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    p.add_argument("--seed", type=int, default=0)
    return p


def _time_case(sampler: MoMBSSampler, loss: torch.Tensor, uncertainty: torch.Tensor, repeats: int) -> list[float]:
    times = []
    for epoch in range(repeats + 1):
        sampler.set_epoch(sampler.pivot_epoch + epoch)
        start = time.perf_counter()
        sampler.update_scores(loss, uncertainty, epoch=epoch)
        sampler.local_indices()
        times.append(time.perf_counter() - start)
    return times[1:]


def main(argv: list[str] | None = None) -> int:
    """Run the timings and print the table; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    g = torch.Generator().manual_seed(args.seed)
    loss = torch.rand(args.num_samples, generator=g)
    uncertainty = torch.rand(args.num_samples, generator=g)
    lines = [
        f"MoMBS planning, N={args.num_samples:,}, batch_size={args.batch_size}, world_size={args.world_size}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.processor() or platform.machine()}",
        "",
        "| strategy | layout | best (ms) | median (ms) |",
        "|---|---|---|---|",
    ]
    for strategy, layout in CASES:
        sampler = MoMBSSampler(
            range(args.num_samples),
            batch_size=args.batch_size,
            strategy=strategy,
            layout=layout or "mirror",
            pivot_epoch=1,
            num_replicas=args.world_size,
            rank=0,
            seed=args.seed,
        )
        times = _time_case(sampler, loss, uncertainty, args.repeats)
        lines.append(
            f"| {strategy} | {layout or '-'} | {1000 * min(times):.1f} | {1000 * statistics.median(times):.1f} |"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
