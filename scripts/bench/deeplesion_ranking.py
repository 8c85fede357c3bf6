# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""How MoMBS's per-image scores rank a trained detector's training images (issue 14's ranking questions).

On one trained checkpoint of the DeepLesion study (:mod:`scripts.bench.deeplesion_study`), every training image gets,
with the same weights and in the same batches:

- the two ranking losses of :class:`monai_ext.networks.PerImageRetinaNetDetector`: ``sampled_mean`` (mean loss over
  the image's sampled anchors; the hard-negative sampler draws at random, so it is computed for two sampler seeds) and
  ``focal_all`` (deterministic);
- the uncertainty of :class:`monai_ext.handlers.MoMBSAssessor` (top-100-anchor entropy) in three modes: K = 8
  disturbances of the FPN levels (the bundle's default), K = 8 at the ResNet stem (the paper's point), and the
  undisturbed prediction (K = 1, r = 0).

It reports the Spearman rank correlation between the scores (how differently they rank), the rank stability of
``sampled_mean`` across sampler seeds, and for each score the AUROC of picking the images that carry a kind of the
demo's recorded diverse quality (``demo_lesions.csv``): an unannotated lesion on the image, a loose box, a tiny or
low-contrast lesion. A score that ranks these images high "ranks better" in the sense of MoMBS's categories.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from monai.apps.detection.utils.detector_utils import preprocess_images
from scipy import stats
from sklearn.metrics import roc_auc_score

from monai_ext.bundle.workflow import bundle_parser
from monai_ext.handlers.mombs_assessor import MoMBSAssessor
from monai_ext.networks import PerImageLossKeys
from scripts.bench.bundles import DEMO_TRAIN
from scripts.bench.deeplesion_study import BUNDLE_DIR, StudyPlan, run_overrides

__all__ = ["image_noise_flags", "score_training_images", "ranking_report"]

SCORES = ("sampled_mean_a", "sampled_mean_b", "focal_all", "u_fpn_k8", "u_stem_k8", "u_undisturbed")
FLAGS = ("unannotated_2plus", "loose_box", "subtle")


def image_noise_flags(demo_lesions_csv: str | os.PathLike, file_names: Sequence[str]) -> pd.DataFrame:
    """Per training image: ``unannotated_2plus`` (two or more drawn lesions without a box: with the demo's 50 % rate
    nearly every training image has one, so one says nothing), ``loose_box``, ``subtle`` (a tiny or low-contrast
    lesion), from the demo writer's record; and ``n_unannotated``."""
    truth = pd.read_csv(demo_lesions_csv)
    groups = truth.groupby("File_name")
    rows = []
    for name in file_names:
        g = groups.get_group(name) if name in groups.groups else truth.iloc[:0]
        rows.append(
            {
                "file_name": name,
                "n_unannotated": int((g["annotation"] == "unannotated").sum()),
                "unannotated_2plus": bool((g["annotation"] == "unannotated").sum() >= 2),
                "loose_box": bool((g["annotation"] == "loose_box").any()),
                "subtle": bool((g["appearance"] != "typical").any()),
            }
        )
    return pd.DataFrame(rows)


def _parser(overrides: Mapping[str, Any]):
    parser = bundle_parser(BUNDLE_DIR, list(DEMO_TRAIN))
    for key, value in overrides.items():
        if "#_target_" not in key and "#progress" not in key:  # plain datasets: every image once, in order
            parser[key] = value
    return parser


def _items(parser) -> list[dict]:
    parser["validate#datalist"] = "$@train#datalist"
    dataset = parser.get_parsed_content("validate#dataset")
    return [dataset[i] for i in range(len(dataset))]


def score_training_images(
    ckpt: str | os.PathLike,
    data: Mapping[str, Any],
    plan: StudyPlan,
    fraction: float = 1.0,
    batch_size: int = 4,
    seed: int = 0,
) -> pd.DataFrame:
    """Every score of :data:`SCORES` for every training image of ``fraction``, from the checkpoint ``ckpt``.

    Returns:
        one row per image: ``file_name``, ``index`` and the scores.
    """
    overrides = run_overrides("mombs", seed, fraction, data, Path(ckpt).parent.parent / "ranking", plan)
    parser = _parser(overrides)
    items = _items(parser)
    detector = parser.get_parsed_content("detector")
    parser.get_parsed_content("detector_ops")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["model"]
    detector.network.load_state_dict(state)
    stem_net = _parser({**overrides, "disturb_at": "stem"}).get_parsed_content("network")
    stem_net.load_state_dict(state)
    assessors = {
        "u_fpn_k8": (detector.network, MoMBSAssessor(8, 0.3, "sigmoid", top_k=100, seed=seed)),
        "u_stem_k8": (stem_net, MoMBSAssessor(8, 0.3, "sigmoid", top_k=100, seed=seed)),
        "u_undisturbed": (detector.network, MoMBSAssessor(1, 0.0, "sigmoid", top_k=100, seed=seed)),
    }
    rows: list[dict[str, Any]] = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        images = [it["image"] for it in batch]
        targets = [{"box": it["box"], "label": it["label"]} for it in batch]
        values: dict[str, torch.Tensor] = {}
        detector.train()
        with torch.no_grad():
            for name, draw in (("a", 1000 + start), ("b", 2000 + start)):
                torch.manual_seed(draw)
                out = detector(images, copy.deepcopy(targets))
                values[f"sampled_mean_{name}"] = out[PerImageLossKeys.CLS_SAMPLED_MEAN.value]
            values["focal_all"] = out[PerImageLossKeys.CLS_FOCAL_ALL.value]
            stacked, _ = preprocess_images(images, 2, detector.size_divisible)  # the training forward's padding
            for key, (net, assessor) in assessors.items():
                net.train()
                features = net.encode(stacked)
                values[key] = assessor.assess(features, net)
        for k, item in enumerate(batch):
            rows.append({"file_name": item["file_name"], "index": int(item["index"]),
                         **{key: float(v[k]) for key, v in values.items()}})  # fmt: skip
    return pd.DataFrame(rows)


def ranking_report(scores: pd.DataFrame, flags: pd.DataFrame) -> dict[str, Any]:
    """Spearman correlations between the scores and AUROCs of each score for each noise flag.

    Returns:
        ``{"n_images", "spearman": {a: {b: rho}}, "auroc": {flag: {score: auc}}, "base_rate": {flag: share}}``.
    """
    table = scores.merge(flags, on="file_name")
    spearman = {a: {b: float(stats.spearmanr(table[a], table[b]).statistic) for b in SCORES if b != a} for a in SCORES}
    auroc, base = {}, {}
    for flag in FLAGS:
        y = table[flag].to_numpy(dtype=bool)
        base[flag] = float(y.mean())
        auroc[flag] = {s: float(roc_auc_score(y, table[s])) if 0 < y.sum() < len(y) else float("nan") for s in SCORES}
    return {"n_images": int(len(table)), "spearman": spearman, "auroc": auroc, "base_rate": base}


def report_markdown(report: Mapping[str, Any]) -> str:
    """The report as two Markdown tables."""
    lines = [f"Training images scored: {report['n_images']}.", "", "Spearman rank correlation between the scores:", ""]
    lines.append("| | " + " | ".join(SCORES) + " |")
    lines.append("|---" * (len(SCORES) + 1) + "|")
    for a in SCORES:
        lines.append(
            f"| {a} | " + " | ".join("1" if a == b else f"{report['spearman'][a][b]:.2f}" for b in SCORES) + " |"
        )
    lines += ["", "AUROC of each score for the images carrying a kind of diverse quality (0.5 = chance):", ""]
    lines.append("| flag (share of images) | " + " | ".join(SCORES) + " |")
    lines.append("|---" * (len(SCORES) + 1) + "|")
    for flag, row in report["auroc"].items():
        lines.append(
            f"| {flag} ({report['base_rate'][flag]:.2f}) | " + " | ".join(f"{row[s]:.2f}" for s in SCORES) + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m scripts.bench.deeplesion_ranking --ckpt RUN/models/model.pt --data-dir DATA --out DIR``: score the
    training images of ``--fraction`` with a study checkpoint and write ``ranking.json`` and ``ranking.md``."""
    import argparse
    import json

    from scripts.bench.deeplesion_study import PLANS
    from scripts.bench.results_io import write_json

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--data-dir", required=True, help="the study's demo DeepLesion folder")
    p.add_argument("--out", required=True)
    p.add_argument("--fraction", type=float, default=0.25)
    p.add_argument("--plan", default="default", choices=sorted(PLANS))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = {"dataset_dir": args.data_dir}
    scores = score_training_images(args.ckpt, data, PLANS[args.plan], args.fraction)
    flags = image_noise_flags(Path(args.data_dir) / "demo_lesions.csv", scores["file_name"].tolist())
    report = {"ckpt": str(args.ckpt), "fraction": args.fraction, **ranking_report(scores, flags)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(report, out / "ranking.json")
    (out / "ranking.md").write_text(report_markdown(report), encoding="utf-8")
    scores.merge(flags, on="file_name").to_csv(out / "ranking_scores.csv", index=False)
    print(report_markdown(report))
    print(json.dumps(report["auroc"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
