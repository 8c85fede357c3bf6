# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``make bench`` for MoMBS: epoch time against random sampling and demo-data efficacy against random, SCL, OHEM and
anti-mixed sampling (logic in :mod:`scripts.bench`: ``mombs_step``, ``mombs_efficacy``, ``mombs_audit``,
``mombs_report``); writes ``timing.json``, ``efficacy.json``, ``efficacy.png`` and ``README_table.md`` into
``--out`` and prints the table.

A part left out with ``--skip-timing`` / ``--skip-efficacy`` is read back from its JSON in ``--out`` when present,
so the table always shows the latest measurement of both.

Examples::

    python -m scripts.bench_mombs --out bench_results/mombs --num-threads 1
    python -m scripts.bench_mombs --out /tmp/mombs --skip-timing --seeds 0 --strategies mombs random --epochs 2
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

from monai_ext.samplers.mombs import SamplingStrategy
from scripts.bench import mombs_efficacy, mombs_report, mombs_step
from scripts.bench.bundles import shipped_network_def
from scripts.bench.mombs_bundle import BUNDLE_DIR

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (every default is the ``make bench`` setting)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_results/mombs", help="results folder (JSON, PNG, README_table.md)")
    p.add_argument("--work-dir", default=None, help="demo data and runs; default a temporary folder, removed after")
    p.add_argument("--skip-timing", action="store_true", help="do not measure the epoch time")
    p.add_argument("--skip-efficacy", action="store_true", help="do not train and evaluate the strategies")
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    p.add_argument("--bundle-dir", default=str(BUNDLE_DIR), help="the covid_ct_mombs_segmentation bundle folder")
    p.add_argument("--data-size", type=float, default=1.0, help="COVID CT demo size (1.0: 100 + 3 volumes)")
    p.add_argument("--data-seed", type=int, default=0)
    g = p.add_argument_group("epoch time (the bundle's SplitUNet and Dataset pipeline)")
    g.add_argument("--timing-image-size", type=int, default=128, help="network input side (demo native 128)")
    g.add_argument("--timing-batch-size", type=int, default=8)
    g.add_argument("--warmup", type=int, default=1, help="untimed epochs per variant")
    g.add_argument("--repeats", type=int, default=3, help="timed, alternating epochs per variant")
    g.add_argument("--num-disturbances", type=int, default=8, help="K of the assessor (both parts)")
    g = p.add_argument_group("efficacy (bundle runs on the noisy demo masks, tested on the clean ones)")
    g.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    strategies = [s.value for s in SamplingStrategy]
    g.add_argument("--strategies", nargs="+", choices=strategies, default=strategies)
    g.add_argument("--image-size", type=int, default=64)
    g.add_argument("--epochs", type=int, default=12)
    g.add_argument("--pivot-epoch", type=int, default=4)
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--split-seed", type=int, default=None, help="fixed split seed; default: each run's seed")
    g.add_argument("--network", choices=["small", "bundle"], default="small",
                   help="small: the demo overlay's SplitUNet(channels=(8, 16, 32, 64, 128), num_res_units=1) "
                   "(configs/demo.json); bundle: the bundle's "
                   "SplitUNet (channels up to 256, 2 residual units)")  # fmt: skip
    return p


def _environment(argv: list[str] | None, wall: dict[str, float]) -> dict:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "wall_s": wall,
    }


def _earlier(out_dir: Path, key: str, wall: dict[str, float]) -> dict | None:
    """Part ``key`` read back from its JSON in ``out_dir`` (``None`` when absent); its wall time goes into ``wall``
    as ``"<key> (earlier run)"``."""
    path = out_dir / mombs_report.RESULT_FILES[key]
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    seconds = (data.pop("environment", None) or {}).get("wall_s", {}).get(key)
    if seconds is not None:
        wall[f"{key} (earlier run)"] = seconds
    return data


def main(argv: list[str] | None = None) -> int:
    """Run the parts not skipped, write the results, print the table; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("scripts.bench").setLevel(logging.INFO)
    logging.getLogger("monai.bundle.workflows").setLevel(logging.ERROR)  # "Logging file is set to False"
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    out_dir = Path(args.out)
    wall: dict[str, float] = {}
    timing = None if args.skip_timing else {}
    efficacy = None if args.skip_efficacy else {}
    with tempfile.TemporaryDirectory(prefix="mombs_bench_") as tmp:
        work = Path(args.work_dir or tmp)
        dataset_dir = work / "data" / mombs_efficacy.DATASET
        if timing is not None or efficacy is not None:
            start = time.perf_counter()
            mombs_efficacy.write_bench_data(work / "data", args.data_size, args.data_seed)
            wall["data"] = time.perf_counter() - start
        if timing is not None:
            start = time.perf_counter()
            timing = mombs_step.epoch_time_benchmark(
                dataset_dir, work / "timing", args.timing_image_size, args.timing_batch_size, args.num_disturbances,
                args.warmup, args.repeats, bundle_dir=args.bundle_dir,
            )  # fmt: skip
            wall["timing"] = time.perf_counter() - start
            logging.getLogger("scripts.bench").info(f"epoch time ratio MoMBS / random: {timing['ratio']:.3f}")
            mombs_report.write_results(out_dir, timing=timing, environment=_environment(argv, wall))
        if efficacy is not None:
            start = time.perf_counter()
            network_def = shipped_network_def(args.bundle_dir) if args.network == "bundle" else None
            efficacy = mombs_efficacy.run_efficacy(
                work / "efficacy", args.strategies, args.seeds, args.image_size, args.epochs, args.pivot_epoch,
                args.batch_size, args.num_disturbances, network_def, args.split_seed, data_dir=dataset_dir,
                bundle_dir=args.bundle_dir,
            )  # fmt: skip
            efficacy["settings"].update(data_size=args.data_size, data_seed=args.data_seed)
            wall["efficacy"] = time.perf_counter() - start
    if wall:
        wall["total"] = sum(wall.values())
    environment = _environment(argv, wall)
    paths = mombs_report.write_results(out_dir, timing=timing, efficacy=efficacy, environment=environment)
    shown = {**environment, "wall_s": dict(wall)}
    table = mombs_report.results_table(
        timing if timing is not None else _earlier(out_dir, "timing", shown["wall_s"]),
        efficacy if efficacy is not None else _earlier(out_dir, "efficacy", shown["wall_s"]),
        shown,
    )
    paths["table"].write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    sys.stdout.write(f"\nwrote {', '.join(str(p) for p in paths.values())}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
