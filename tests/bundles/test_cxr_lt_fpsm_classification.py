# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""End-to-end runs of ``bundles/cxr_lt_fpsm_classification`` with its ``configs/demo.json`` small-run overlay (timm
``resnet10t`` FPSM at 32 pixels, one epoch, CPU) on a tiny MIMIC-CXR-LT demo with NIH and VinDr lesion boxes: training
and its checkpoint, the head options, offline DADAM (``dadam_generate.json`` and ``--dadam_dir``), on-the-fly DADAM,
evaluation against sklearn, inference on PNG / JPEG / DICOM, the ensemble configs, the stage combinations, a
two-process run, and the errors a user meets with bad inputs."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from ignite.engine import Events
from monai.transforms import Compose, Identityd
from PIL import Image
from sklearn.metrics import average_precision_score

from monai_ext.bundle.workflow import bundle_parser
from monai_ext.data.cxr import MIMIC_CXR_LT_CLASSES, long_tail_groups
from monai_ext.data.datalist import DatasetLayoutError
from monai_ext.networks import FeaturePyramidSumNet, load_ensemble_members
from monai_ext.transforms import RandDiseasedAreaAugmentd, combine_stage_logits

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "cxr_lt_fpsm_classification"
DEMO = "configs/demo.json"
TRAIN, INFERENCE = ["configs/train.json", DEMO], ["configs/inference.json", DEMO]
EVALUATE = [*TRAIN, "configs/evaluate.json"]
ENSEMBLE_EVALUATE = [*EVALUATE, "configs/ensemble_evaluate.json"]
ENSEMBLE_INFERENCE = [*INFERENCE, "configs/ensemble_inference.json"]
MULTI_GPU = "configs/multi_gpu_train.json"
BATCH = json.loads((BUNDLE / DEMO).read_text())["batch_size"]  # the demo overlay's training batch size
CLASSES = list(MIMIC_CXR_LT_CLASSES)
NO_FINDING = CLASSES.index("No Finding")
STAGES = [4, 3]
# the demo overlay's timm resnet10t FPSM at 32 pixels (stage 4 = stride 32 -> 1 x 1), the stage set {4, 3}
SMALL = {"network_def": "%small_network_def", "image_size": 32, "fpsm_stages": STAGES}
# resnet10t's timm feature levels have 64, 128, 256, 512 channels at strides 4, 8, 16, 32 (stages 1-4)
WIDTHS = {1: 64, 2: 128, 3: 256, 4: 512}
CKPT_KEYS = {"model", "optimizer", "lr_scheduler", "rng", "trainer"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: the runs are tiny and the machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _boxes(root: Path) -> dict[str, str]:
    return {"nih": str(root / "nih"), "vindr": str(root / "vindr")}


def _train(run_bundle, demo: Path, out: Path, config=TRAIN, hooks=(), **override):
    return run_bundle(
        BUNDLE, config, hooks=hooks, dataset_dir=str(demo / "mimic_cxr_lt"), epochs=1, ckpt_dir=str(out / "models"),
        output_dir=str(out / "eval"), **{"box_sources": _boxes(demo), **SMALL, **override},
    )  # fmt: skip


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


@pytest.fixture(scope="module")
def trained(cxr_lt_demo, run_bundle, tmp_path_factory) -> SimpleNamespace:
    """Two one-epoch runs with different seeds (two ensemble members), shared by the tests that need a checkpoint."""
    runs = []
    for seed in (0, 1):
        out = tmp_path_factory.mktemp(f"fpsm_train_{seed}")
        wf = _train(run_bundle, cxr_lt_demo, out, seed=seed)
        runs.append(out / "models")
    datalist = wf.parser.get_parsed_content("train#datalist")
    return SimpleNamespace(ckpt_dir=runs[0], other_ckpt_dir=runs[1], datalist=datalist, demo=cxr_lt_demo)


def _network(ckpt: Path, stages=STAGES) -> FeaturePyramidSumNet:
    """An independent copy of the trained network: the demo overlay's resnet10t FPSM with the checkpoint's weights."""
    net = FeaturePyramidSumNet("resnet10t", num_classes=len(CLASSES), stages=stages)
    net.load_state_dict(_load(ckpt)["model"])
    return net.eval()


@torch.no_grad()
def _stage_logits(net: torch.nn.Module, images: list[torch.Tensor]) -> torch.Tensor:
    """``N x C x S`` stage logits of preprocessed ``3 x H x W`` images, one at a time."""
    return torch.cat([net(torch.as_tensor(x)[None].float()) for x in images])


def test_train_writes_checkpoints_with_stage_heads(trained):
    for ckpt_dir in (trained.ckpt_dir, trained.other_ckpt_dir):
        assert sorted(p.name for p in ckpt_dir.glob("*.pt")) == ["checkpoint_epoch=1.pt", "last.pt", "model.pt"]
    ckpt = _load(trained.ckpt_dir / "last.pt")
    assert set(ckpt) == CKPT_KEYS
    # the train loader drops the last partial batch
    assert ckpt["trainer"]["iteration"] == len(trained.datalist) // BATCH
    assert ckpt["lr_scheduler"]["last_epoch"] == 1
    assert ckpt["optimizer"]["state"], "the optimizer state is empty"
    # stage set {4, 3}: two heads, deepest first (stage 4: 512 features, stage 3: 256), 26 logits each
    heads = {k: tuple(v.shape) for k, v in ckpt["model"].items() if k.startswith("heads.")}
    assert heads == {
        "heads.0.weight": (26, WIDTHS[4]), "heads.0.bias": (26,),
        "heads.1.weight": (26, WIDTHS[3]), "heads.1.bias": (26,),
    }  # fmt: skip
    # the two seeds give two different members
    other = _load(trained.other_ckpt_dir / "last.pt")["model"]
    assert not torch.equal(ckpt["model"]["heads.0.weight"], other["heads.0.weight"])


@pytest.mark.parametrize(
    "override, widths",
    [
        ({"fpsm_stages": [4]}, [WIDTHS[4]]),  # the single-stage baseline
        ({"fpsm_stages": [2, 4, 3]}, [WIDTHS[4], WIDTHS[3], WIDTHS[2]]),  # any order: heads deepest first
        ({"fpsm_stages": [4, 3, 2, 1], "num_datasets": 2}, [WIDTHS[s] + 2 for s in (4, 3, 2, 1)]),
        ({"fpsm_stages": [4, 3, 2], "use_concatenate": True}, [WIDTHS[4] + WIDTHS[3] + WIDTHS[2]]),
        ({"fpsm_stages": [4, 3], "use_concatenate": True, "num_datasets": 2}, [WIDTHS[4] + WIDTHS[3] + 2]),
    ],
)
def test_head_options_build_the_right_head_widths(cxr_lt_demo, override, widths):
    parser = bundle_parser(BUNDLE, TRAIN, {**SMALL, "dataset_dir": str(cxr_lt_demo / "mimic_cxr_lt"), **override})
    net = parser.get_parsed_content("network_def")
    assert [tuple(h.weight.shape) for h in net.heads] == [(26, w) for w in widths]
    x = torch.rand(2, 3, 32, 32)
    ids = torch.tensor([0, 1]) if override.get("num_datasets") else None
    assert net.eval()(x, ids).shape == (2, 26, len(widths))


def test_offline_dadam_rows_join_the_training_split_only(trained, run_bundle, tmp_path, caused_by):
    demo = trained.demo
    out = tmp_path / "dadam"
    generate = dict(dataset_dir=str(demo / "mimic_cxr_lt"), box_sources=_boxes(demo), dadam_dir=str(out))
    run_bundle(BUNDLE, "configs/dadam_generate.json", workflow_type=None, dadam_cutmix=5, dadam_mixup=5, **generate)
    rows = pd.read_csv(out / "cxr-lt-2023" / "train.csv")
    assert len(rows) == 10
    assert list(rows.columns[6:]) == CLASSES  # the MIMIC-CXR-LT layout: 6 metadata columns, then the 26 classes
    assert all((out / p).is_file() for p in rows["path"])
    assert (out / "provenance.csv").is_file() and (out / "dadam_report.json").is_file()
    # generating again into the same folder refuses to overwrite
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    with pytest.raises(RuntimeError) as info:
        run_bundle(BUNDLE, "configs/dadam_generate.json", workflow_type=None, dadam_cutmix=2, dadam_mixup=2, **generate)
    caused_by(info.value, FileExistsError, r"overwrite")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before

    # --dadam_dir: the generated rows are appended to the training datalist with dataset_id 1, to no other split
    base = {**SMALL, "dataset_dir": str(demo / "mimic_cxr_lt")}
    plain, augmented = bundle_parser(BUNDLE, EVALUATE, base), bundle_parser(
        BUNDLE, EVALUATE, {**base, "dadam_dir": str(out)}
    )
    train0, train1 = (p.get_parsed_content("train#datalist") for p in (plain, augmented))
    assert len(train1) == len(train0) + len(rows)
    assert [d["image"] for d in train1[: len(train0)]] == [d["image"] for d in train0]
    assert {d["dataset_id"] for d in train1[: len(train0)]} == {0}
    added = train1[len(train0) :]
    assert [d["dataset_id"] for d in added] == [1] * len(rows)
    assert sorted(Path(d["image"]).resolve() for d in added) == sorted((out / p).resolve() for p in rows["path"])
    np.testing.assert_array_equal(np.array([d["label"] for d in added]), rows[CLASSES].to_numpy())
    assert [d["index"] for d in train1] == list(range(len(train1)))
    for key in ("validate#datalist",):  # evaluate.json's validate#datalist is the test set
        assert all(d["dataset_id"] == 0 for d in augmented.get_parsed_content(key))
    val = bundle_parser(BUNDLE, TRAIN, {**base, "dadam_dir": str(out)}).get_parsed_content("validate#datalist")
    val0 = bundle_parser(BUNDLE, TRAIN, base).get_parsed_content("validate#datalist")
    assert [d["image"] for d in val] == [d["image"] for d in val0] and {d["dataset_id"] for d in val} == {0}

    # training with the rows and a two-dataset embedding works; one dataset (ids 0 only) is a clear error
    seen_ids = []

    def probe(wf):
        wf.parser.get_parsed_content("train#trainer").add_event_handler(
            Events.ITERATION_COMPLETED, lambda e: seen_ids.extend(int(d["dataset_id"]) for d in e.state.batch)
        )

    _train(run_bundle, demo, tmp_path / "emb2", hooks=[probe], dadam_dir=str(out), num_datasets=2)
    assert 1 in seen_ids and 0 in seen_ids
    model = _load(tmp_path / "emb2" / "models" / "last.pt")["model"]
    assert tuple(model["heads.0.weight"].shape) == (26, WIDTHS[4] + 2)
    with pytest.raises(Exception) as info:
        _train(run_bundle, demo, tmp_path / "emb1", dadam_dir=str(out), num_datasets=1)
    caused_by(info.value, ValueError, r"dataset_id 1 at batch position \d+ is out of range for num_datasets=1")


def _dadam_parser(demo: Path, **override):
    return bundle_parser(
        BUNDLE, TRAIN,
        {**SMALL, "dataset_dir": str(demo / "mimic_cxr_lt"), "box_sources": _boxes(demo), **override},
    )  # fmt: skip


def test_on_the_fly_dadam_changes_eligible_items(cxr_lt_demo):
    parser = _dadam_parser(cxr_lt_demo, dadam_prob=1.0)
    chain = parser.get_parsed_content("train#preprocessing")
    steps = [t for t in chain.transforms if isinstance(t, RandDiseasedAreaAugmentd)]
    assert len(steps) == 1, [type(t).__name__ for t in chain.transforms]
    dadam = steps[0]
    dadam.provenance_key = "dadam"
    dadam.set_random_state(0)
    load = Compose(parser.get_parsed_content("train#load_transforms"))
    datalist = parser.get_parsed_content("train#datalist")
    tail = {CLASSES.index(c) for c in long_tail_groups(datalist, CLASSES)["tail"]}
    assert set(dadam.augmenter.tail_classes) <= tail
    normal = next(d for d in datalist if d["label"][NO_FINDING] == 1)
    diseased = next(d for d in datalist if any(d["label"][t] == 1 for t in dadam.augmenter.tail_classes))
    for item, mode in ((normal, "cutmix_normal"), (diseased, "mixup_diseased")):
        loaded = load(dict(item))
        before, label0 = loaded["image"].clone(), np.asarray(item["label"])
        out = dadam(dict(loaded, image=loaded["image"].clone()))
        prov, label = out["dadam"], np.asarray(out["label"], dtype=float)
        assert prov["mode"] == mode
        assert CLASSES.index(prov["tail_class"]) in tail
        assert prov["patches"], prov
        assert label[NO_FINDING] == 0
        for patch in prov["patches"]:
            assert label[CLASSES.index(patch["class"])] == 1
        if mode == "mixup_diseased":
            assert np.all(label >= label0)  # the union with the background's labels
            assert all(p["alpha"] == pytest.approx(0.6) for p in prov["patches"])
        img = torch.as_tensor(out["image"])
        changed = torch.zeros(img.shape, dtype=torch.bool)
        for patch in prov["patches"]:
            x1, y1, x2, y2 = patch["target_box"]  # channel-first (1, W, H): axis 1 is x, axis 2 is y
            assert not torch.equal(img[:, x1:x2, y1:y2], before[:, x1:x2, y1:y2]), patch
            changed[:, x1:x2, y1:y2] = True
        assert torch.equal(img[~changed], before[~changed])  # nothing outside the pasted boxes changes
    # an item neither normal nor tail-positive passes unchanged
    tails = dadam.augmenter.tail_classes
    other = next(d for d in datalist if d["label"][NO_FINDING] == 0 and not any(d["label"][t] for t in tails))
    loaded = load(dict(other))
    out = dadam(dict(loaded, image=loaded["image"].clone()))
    assert out["dadam"] == {} and list(out["label"]) == list(other["label"])
    assert torch.equal(torch.as_tensor(out["image"]), torch.as_tensor(loaded["image"]))


def test_dadam_prob_zero_is_the_identity_and_reads_no_boxes(cxr_lt_demo, tmp_path):
    missing = {"nih": str(tmp_path / "no_nih"), "vindr": str(tmp_path / "no_vindr")}
    parser = _dadam_parser(cxr_lt_demo, dadam_prob=0.0, box_sources=missing)
    chain = parser.get_parsed_content("train#preprocessing")  # builds without reading the missing box folders
    assert not any(isinstance(t, RandDiseasedAreaAugmentd) for t in chain.transforms)
    step = parser.get_parsed_content("train#random_transforms")[0]
    assert isinstance(step, Identityd)
    load = Compose(parser.get_parsed_content("train#load_transforms"))
    item = next(d for d in parser.get_parsed_content("train#datalist") if d["label"][NO_FINDING] == 1)
    loaded = load(dict(item))
    out = step(dict(loaded))
    assert torch.equal(torch.as_tensor(out["image"]), torch.as_tensor(loaded["image"]))
    assert list(out["label"]) == list(item["label"])
    assert tuple(chain(dict(item))["image"].shape) == (3, 32, 32)


def _collect(store: list):
    def collect(engine):
        for item in engine.state.output:
            store.append(
                (item["pred"].detach().cpu().numpy().reshape(-1), item["label"].detach().cpu().numpy().reshape(-1))
            )

    def probe(wf):
        wf.parser.get_parsed_content("validate#evaluator").add_event_handler(Events.ITERATION_COMPLETED, collect)

    return probe


def _independent_eval_logits(demo: Path, ckpt: Path) -> tuple[torch.Tensor, np.ndarray]:
    """Stage logits of the test set from our own network copy and the evaluate config's (deterministic) transforms."""
    parser = bundle_parser(BUNDLE, EVALUATE, {**SMALL, "dataset_dir": str(demo / "mimic_cxr_lt"), "test_set": "test"})
    preprocessing = parser.get_parsed_content("validate#preprocessing")
    items = parser.get_parsed_content("validate#datalist")
    images = [preprocessing(dict(d))["image"] for d in items]
    return _stage_logits(_network(ckpt), images), np.array([d["label"] for d in items], dtype=float)


def _check_report(table: pd.DataFrame, pred: np.ndarray, label: np.ndarray, groups: dict[str, list[str]]) -> None:
    rows = table.set_index("class")
    aps = {}
    for c, name in enumerate(CLASSES):
        aps[name] = average_precision_score(label[:, c], pred[:, c]) if label[:, c].any() else np.nan
        assert rows.loc[name, "n_positive"] == label[:, c].sum(), name
        assert rows.loc[name, "ap"] == pytest.approx(aps[name], abs=1e-6), name
    assert rows.loc["mean", "ap"] == pytest.approx(np.nanmean(list(aps.values())), abs=1e-6)
    for group, names in groups.items():
        assert rows.loc[f"mean ({group})", "ap"] == pytest.approx(np.nanmean([aps[n] for n in names]), abs=1e-6)


def test_evaluate_reports_map_matching_an_independent_pass(trained, run_bundle, tmp_path):
    collected: list = []
    out = tmp_path / "eval"
    run_bundle(
        BUNDLE, EVALUATE, workflow_type="eval", hooks=[_collect(collected)], output_dir=str(out), test_set="test",
        dataset_dir=str(trained.demo / "mimic_cxr_lt"), ckpt_dir=str(trained.ckpt_dir), **SMALL,
    )  # fmt: skip
    for suffix in ("_per_class.csv", "_per_class.md", "_roc.png"):
        assert (out / f"test{suffix}").stat().st_size > 0, suffix
    logits, label = _independent_eval_logits(trained.demo, trained.ckpt_dir / "model.pt")
    assert logits.shape == (len(label), 26, 2)
    pred = combine_stage_logits(logits, "mean_prob").numpy()
    collected_pred = np.stack([p for p, _ in collected])
    np.testing.assert_allclose(collected_pred, pred, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.stack([lab for _, lab in collected]), label)
    groups = long_tail_groups(trained.datalist, CLASSES)
    assert groups["tail"] and groups["head"]
    table = pd.read_csv(out / "test_per_class.csv")
    assert table["class"].tolist()[:26] == CLASSES
    _check_report(table, pred, label, groups)


def test_ensemble_evaluate_averages_the_members(trained, run_bundle, tmp_path):
    members = [trained.ckpt_dir / "model.pt", trained.other_ckpt_dir / "model.pt"]
    collected: list = []
    out = tmp_path / "eval"
    run_bundle(
        BUNDLE, ENSEMBLE_EVALUATE, workflow_type="eval", hooks=[_collect(collected)],
        dataset_dir=str(trained.demo / "mimic_cxr_lt"), ckpt_dir=str(trained.ckpt_dir), output_dir=str(out),
        test_set="test", ensemble_checkpoints=[str(p) for p in members], **SMALL,
    )  # fmt: skip
    single = [_independent_eval_logits(trained.demo, p) for p in members]
    probs = [combine_stage_logits(logits, "mean_prob").numpy() for logits, _ in single]
    assert not np.allclose(probs[0], probs[1], atol=1e-3)  # two different members
    expected = (probs[0] + probs[1]) / 2
    np.testing.assert_allclose(np.stack([p for p, _ in collected]), expected, rtol=1e-4, atol=1e-5)
    _check_report(
        pd.read_csv(out / "test_per_class.csv"), expected, single[0][1], long_tail_groups(trained.datalist, CLASSES)
    )


@pytest.fixture
def inference_inputs(trained, rg1_unci_path, tmp_path) -> Path:
    """A folder with the real RG1_UNCI.dcm, a demo JPEG, the same kind of image as PNG, and a corrupt JPEG."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copy(rg1_unci_path, folder / "RG1_UNCI.dcm")
    jpegs = sorted((trained.demo / "mimic_cxr_lt" / "files").rglob("*.jpg"))
    shutil.copy(jpegs[0], folder / "case_jpeg.jpg")
    Image.open(jpegs[1]).save(folder / "case_png.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"not a jpeg at all" * 8)
    return folder


def _infer(run_bundle, config, inputs: Path, out: Path, ckpt: Path, **override):
    run_bundle(
        BUNDLE, config, workflow_type="infer", dataset_dir=str(inputs), output_dir=str(out), ckpt_path=str(ckpt),
        batch_size=1, **{**SMALL, **override},
    )  # fmt: skip
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def _independent_infer_logits(inputs: Path, ckpt: Path, case: str) -> torch.Tensor:
    parser = bundle_parser(BUNDLE, INFERENCE, {**SMALL, "dataset_dir": str(inputs), "output_dir": "unused"})
    preprocessing = parser.get_parsed_content("preprocessing")
    path = next(p for p in inputs.iterdir() if p.stem == case)
    return _stage_logits(_network(ckpt), [preprocessing({"image": str(path)})["image"]])[0]


def test_inference_writes_one_result_per_readable_case_and_is_idempotent(
    trained, inference_inputs, run_bundle, tmp_path
):
    out = tmp_path / "predictions"
    ckpt = trained.ckpt_dir / "model.pt"
    records = _infer(run_bundle, INFERENCE, inference_inputs, out, ckpt)
    assert sorted(records) == ["RG1_UNCI", "case_jpeg", "case_png"]
    for case, record in records.items():
        assert record["case_id"] == case
        assert list(record["probabilities"]) == CLASSES
        assert all(0.0 <= p <= 1.0 for p in record["probabilities"].values())
    for case in ("RG1_UNCI", "case_png"):  # the DICOM and a PNG, against our own network pass
        logits = _independent_infer_logits(inference_inputs, ckpt, case)
        expected = combine_stage_logits(logits, "mean_prob").numpy()
        np.testing.assert_allclose(list(records[case]["probabilities"].values()), expected, rtol=1e-4, atol=1e-5)
    with open(out / "skipped.csv", newline="") as f:
        skipped = list(csv.DictReader(f))
    assert [(r["case_id"], Path(r["image"]).name) for r in skipped] == [("broken", "broken.jpg")]
    assert skipped[0]["error"]
    assert pd.read_csv(out / "predictions.csv")["case_id"].tolist() == ["RG1_UNCI", "case_jpeg", "case_png"]
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    _infer(run_bundle, INFERENCE, inference_inputs, out, ckpt)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert sorted(after) == sorted(before)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert {k: after[k][1] for k in after if k.endswith(".json")} == {
        k: before[k][1] for k in before if k.endswith(".json")
    }  # results are never rewritten


def test_stage_combination_options_and_ensemble_inference(trained, inference_inputs, run_bundle, tmp_path):
    (inference_inputs / "broken.jpg").unlink()
    members = [trained.ckpt_dir / "model.pt", trained.other_ckpt_dir / "model.pt"]
    logits = {case: _independent_infer_logits(inference_inputs, members[0], case) for case in ("case_jpeg", "case_png")}
    results = {}
    for mode in ("mean_prob", "sum_logits", "deepest"):
        records = _infer(run_bundle, INFERENCE, inference_inputs, tmp_path / mode, members[0], stage_combination=mode)
        results[mode] = records
        for case, z in logits.items():
            expected = combine_stage_logits(z, mode).numpy()
            np.testing.assert_allclose(list(records[case]["probabilities"].values()), expected, rtol=1e-4, atol=1e-5)
    # hand-worked: mean of the stage sigmoids, sigmoid of the summed logits, the stage-4 (first) column alone
    z = logits["case_png"]
    got = {m: np.array(list(results[m]["case_png"]["probabilities"].values())) for m in results}
    np.testing.assert_allclose(
        got["mean_prob"], ((torch.sigmoid(z[:, 0]) + torch.sigmoid(z[:, 1])) / 2).numpy(), atol=1e-5
    )
    np.testing.assert_allclose(got["sum_logits"], torch.sigmoid(z[:, 0] + z[:, 1]).numpy(), atol=1e-5)
    np.testing.assert_allclose(got["deepest"], torch.sigmoid(z[:, 0]).numpy(), atol=1e-5)
    assert not np.allclose(got["mean_prob"], got["sum_logits"], atol=1e-3)
    assert not np.allclose(got["mean_prob"], got["deepest"], atol=1e-3)

    # ensemble inference: the mean of the two members' single-model probabilities
    other = _infer(run_bundle, INFERENCE, inference_inputs, tmp_path / "other", members[1])
    ensemble = _infer(
        run_bundle, ENSEMBLE_INFERENCE, inference_inputs, tmp_path / "ensemble", members[0],
        ensemble_checkpoints=[str(p) for p in members],
    )  # fmt: skip
    assert sorted(ensemble) == sorted(other) == ["RG1_UNCI", "case_jpeg", "case_png"]
    for case in ensemble:
        a = np.array(list(results["mean_prob"][case]["probabilities"].values()))
        b = np.array(list(other[case]["probabilities"].values()))
        assert not np.allclose(a, b, atol=1e-3)
        np.testing.assert_allclose(list(ensemble[case]["probabilities"].values()), (a + b) / 2, rtol=1e-4, atol=1e-5)


def test_stage_the_backbone_lacks_is_a_clear_error(cxr_lt_demo, run_bundle, tmp_path, caused_by):
    with pytest.raises(Exception) as info:
        _train(run_bundle, cxr_lt_demo, tmp_path, fpsm_stages=[5])
    caused_by(info.value, ValueError, r"stage\(s\) \[5\] not available in backbone 'resnet10t'.*stages \[1, 2, 3, 4\]")
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").glob("*.pt"))


def test_checkpoint_of_another_stage_set_names_the_options(trained, run_bundle, tmp_path, caused_by):
    with pytest.raises(RuntimeError) as info:
        run_bundle(
            BUNDLE, EVALUATE, workflow_type="eval", dataset_dir=str(trained.demo / "mimic_cxr_lt"), test_set="test",
            ckpt_dir=str(trained.ckpt_dir), output_dir=str(tmp_path), **{**SMALL, "fpsm_stages": [4, 3, 2]},
        )  # fmt: skip
    # the message names the file, the missing stage-2 head and the options the checkpoint's heads fit
    options = r"--fpsm_stages \"\[4, 3\]\" --num_datasets 0 --use_concatenate false"
    caused_by(info.value, ValueError, r"model\.pt.*missing in the checkpoint: \['heads\.2\.weight'.*" + options)
    assert not list(tmp_path.glob("*.csv"))
    # an ensemble member of another stage set: the same options in the message
    with pytest.raises(ValueError, match=r"(?s)Every ensemble member.*" + options):
        load_ensemble_members(FeaturePyramidSumNet("resnet10t", 26, (4, 3, 2)), [trained.ckpt_dir / "model.pt"])
    # and a two-dataset, concatenated checkpoint read off its single head
    saved = {"model": FeaturePyramidSumNet("resnet10t", 26, (4, 3), num_datasets=2, concatenate=True).state_dict()}
    torch.save(saved, tmp_path / "concat.pt")
    with pytest.raises(RuntimeError) as info:
        run_bundle(
            BUNDLE, INFERENCE, workflow_type="infer", dataset_dir=str(tmp_path), output_dir=str(tmp_path / "out"),
            ckpt_path=str(tmp_path / "concat.pt"), **SMALL,
        )  # fmt: skip
    caused_by(info.value, ValueError, r"--fpsm_stages \"\[4, 3\]\" --num_datasets 2 --use_concatenate true")
    assert not list(tmp_path.rglob("*.json"))


def test_box_outside_its_image_names_file_and_line(trained, run_bundle, tmp_path, caused_by):
    nih = tmp_path / "nih"
    shutil.copytree(trained.demo / "nih", nih, ignore=shutil.ignore_patterns("images"))
    os.symlink(trained.demo / "nih" / "images", nih / "images")
    lines = (nih / "BBox_List_2017.csv").read_text().splitlines()
    cells = lines[3].split(",")
    cells[2] = "500"  # x of the third box (file line 4) beyond the 64-pixel image
    lines[3] = ",".join(cells)
    (nih / "BBox_List_2017.csv").write_text("\n".join(lines) + "\n")
    boxes = {"nih": str(nih), "vindr": str(trained.demo / "vindr")}
    with pytest.raises(Exception) as info:
        _train(run_bundle, trained.demo, tmp_path / "run", dadam_prob=0.5, box_sources=boxes)
    caused_by(info.value, DatasetLayoutError, r"BBox_List_2017\.csv', line 4: nih box .* outside its image")
    # with DADAM off the same broken file is never read
    parser = _dadam_parser(trained.demo, dadam_prob=0.0, box_sources=boxes)
    assert isinstance(parser.get_parsed_content("train#random_transforms")[0], Identityd)


PROBE = '''
"""Records the dataset indices each rank trains on (written by the two-process test)."""
import json
import os

from ignite.engine import Events


def attach(trainer, out_dir):
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.extend(int(d["index"]) for d in e.state.batch))
    rank = int(os.environ.get("RANK", "0"))

    def save(engine):
        with open(os.path.join(out_dir, f"seen_rank{rank}.json"), "w") as f:
            json.dump(seen, f)

    trainer.add_event_handler(Events.COMPLETED, save)
'''


def test_two_process_gloo_training_splits_the_data(cxr_lt_demo, tmp_path):
    (tmp_path / "probe_seen.py").write_text(PROBE)
    overlay = tmp_path / "probe.json"
    overlay.write_text(
        json.dumps(
            {
                "run": [
                    "$import probe_seen",
                    f"$probe_seen.attach(@train#trainer, '{tmp_path}')",
                    "$@train#trainer.run()",
                ]
            }
        )
    )
    n_train = len(
        bundle_parser(BUNDLE, TRAIN, {"dataset_dir": str(cxr_lt_demo / "mimic_cxr_lt")}).get_parsed_content(
            "train#datalist"
        )
    )
    assert n_train % 2 == 0, n_train  # even: no padding repeats, each rank gets exactly half
    half = n_train // 2
    batch = max(b for b in range(2, 9) if half % b == 0)  # every image of a rank's half in full batches
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
        "-m", "monai.bundle", "run", "--config_file", f"['{TRAIN[0]}','{DEMO}','{MULTI_GPU}','{overlay}']",
        "--bundle_root", str(BUNDLE), "--dist_backend", "gloo", "--dataset_dir", str(cxr_lt_demo / "mimic_cxr_lt"),
        "--epochs", "1", "--batch_size", str(batch), "--network_def", SMALL["network_def"], "--image_size", "32",
        "--fpsm_stages", "[4,3]", "--ckpt_dir", str(tmp_path / "models"), "--output_dir", str(tmp_path / "eval"),
    ]  # fmt: skip
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(command, cwd=BUNDLE, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    ckpt = _load(tmp_path / "models" / "last.pt")
    assert set(ckpt) == CKPT_KEYS
    assert ckpt["trainer"]["iteration"] == half // batch  # each rank's loader holds half of the images
    seen = [json.loads((tmp_path / f"seen_rank{r}.json").read_text()) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == half
    assert not set(seen[0]) & set(seen[1])  # different halves
    assert sorted(seen[0] + seen[1]) == list(range(n_train))
