# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DetectionTrainer / DetectionEvaluator: the detector's batch loss, per-image losses on the shared per-sample path,
self-paced weights, MoMBS's recorder and assessor, FROC from the evaluator."""

from __future__ import annotations

import copy

import pytest
import torch
from ignite.engine import Events
from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
from monai.data import DataLoader, Dataset
from monai.data.utils import no_collation
from monai.engines.utils import IterationEvents

from monai_ext.engines import DetectionEvaluator, DetectionTrainer, detection_froc_input, detection_inputs
from monai_ext.handlers import MoMBSAssessor, PerSampleRecorder
from monai_ext.metrics import FROCSensitivity
from monai_ext.networks import PerImageLossKeys
from monai_ext.samplers import MoMBSSampler


def _trainer(detector, items, batch_size=4, sampler=None, handlers=(), ranking_loss="sampled_mean", epochs=1):
    dataset = Dataset(items)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, collate_fn=no_collation)
    optimizer = torch.optim.SGD(detector.network.parameters(), lr=0.0)  # lr 0: the weights stay as built
    return DetectionTrainer(
        device="cpu",
        max_epochs=epochs,
        train_data_loader=loader,
        detector=detector,
        optimizer=optimizer,
        ranking_loss=ranking_loss,
        train_handlers=list(handlers),
    )


@pytest.mark.parametrize("ranking_loss", ["sampled_mean", "focal_all", "contribution"])
def test_one_step_trains_on_the_detectors_batch_loss(build_detector, square_items, ranking_loss):
    items = square_items(4)
    reference = build_detector(RetinaNetDetector).train()
    torch.manual_seed(11)
    expected = reference([it["image"] for it in items], [{"box": it["box"], "label": it["label"]} for it in items])
    detector = build_detector()
    trainer = _trainer(detector, items, ranking_loss=ranking_loss)
    seen = {}
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda e: torch.manual_seed(11))
    trainer.add_event_handler(IterationEvents.LOSS_COMPLETED, lambda e: seen.update(e.state.output))
    trainer.run()
    total = expected["classification"] + expected["box_regression"]
    assert float(seen["loss"]) == pytest.approx(float(total), rel=1e-6)
    assert seen["index"].tolist() == [0, 1, 2, 3]
    key = {"sampled_mean": PerImageLossKeys.CLS_SAMPLED_MEAN, "focal_all": PerImageLossKeys.CLS_FOCAL_ALL}.get(
        ranking_loss, PerImageLossKeys.CLS
    )
    assert torch.equal(seen["loss_per_sample"], seen["pred"][key.value])
    assert not seen["loss_per_sample"].requires_grad


def test_loss_weights_from_a_forward_handler(build_detector, square_items):
    items = square_items(4)
    detector = build_detector()
    trainer = _trainer(detector, items)
    weights = torch.tensor([1.0, 0.0, 0.5, 2.0])
    seen = {}
    trainer.add_event_handler(IterationEvents.FORWARD_COMPLETED, lambda e: e.state.output.update(loss_weight=weights))
    trainer.add_event_handler(IterationEvents.LOSS_COMPLETED, lambda e: seen.update(e.state.output))
    trainer.run()
    pred = seen["pred"]
    per_image = pred[PerImageLossKeys.CLS.value] + pred[PerImageLossKeys.BOX.value]
    assert float(seen["loss"]) == pytest.approx(float((weights * per_image).sum()), rel=1e-6)
    assert float(seen["loss"]) != pytest.approx(float(per_image.sum()), rel=1e-3)


def test_missing_index_and_boxes_are_named(build_detector, square_items):
    items = square_items(2)
    del items[1]["index"]
    with pytest.raises(KeyError, match=r"\[1\] have no 'index'"):
        _trainer(build_detector(), items, batch_size=2).run()
    items = square_items(2)
    del items[0]["box"]
    with pytest.raises(KeyError, match="case_000.png"):
        detection_inputs(items)
    items = square_items(2)
    items[0]["label"] = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="case_000.png: 2 boxes but 3 labels"):
        detection_inputs(items)


def test_mombs_scores_reach_the_sampler(build_detector, square_items):
    items = square_items(8)
    detector = build_detector()
    dataset = Dataset(items)
    sampler = MoMBSSampler(dataset, batch_size=4, strategy="mombs", pivot_epoch=2, seed=0, drop_last=True)
    recorder = PerSampleRecorder(num_samples=8, keys=["loss_per_sample", "uncertainty"])
    assessor = MoMBSAssessor(
        activation="sigmoid", top_k=20, num_disturbances=2, sampler=sampler, network=detector.network
    )
    loader = DataLoader(dataset, batch_size=4, sampler=sampler, collate_fn=no_collation)
    optimizer = torch.optim.Adam(detector.network.parameters(), lr=1e-3)
    trainer = DetectionTrainer("cpu", 1, loader, detector, optimizer, train_handlers=[recorder, assessor])
    trainer.run()
    loss, uncertainty = recorder.values[:, 0], recorder.values[:, 1]  # columns in the order of `keys`
    assert bool(torch.isfinite(loss).all()) and bool((loss > 0).all())
    # epoch 1 plans epoch 2 = the pivot, so uncertainty is assessed: the mean binary entropy of 20 anchors, in (0, ln 2]
    assert bool(torch.isfinite(uncertainty).all()) and bool((uncertainty > 0).all() and (uncertainty <= 0.6932).all())


def test_evaluator_feeds_froc(build_detector, square_items):
    items = square_items(3)
    detector = build_detector()
    loader = DataLoader(Dataset(items), batch_size=3, collate_fn=no_collation)
    metric = FROCSensitivity(output_transform=detection_froc_input)
    evaluator = DetectionEvaluator("cpu", loader, detector, key_val_metric={"froc": metric})
    outputs = []
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(copy.copy(e.state.output)))
    evaluator.run()
    preds = outputs[0]["pred"]
    assert len(preds) == 3 and all(p["box"].shape[1] == 4 for p in preds)
    assert outputs[0]["names"] == ["case_000.png", "case_001.png", "case_002.png"]
    assert 0.0 <= evaluator.state.metrics["froc"] <= 1.0


def test_non_finite_image_loss_names_the_image(build_detector):
    from monai_ext.engines.detection import _check_finite

    with pytest.raises(FloatingPointError, match=r"dataset index 7, file 'b.png'"):
        _check_finite(build_detector(), torch.tensor([0.5, float("nan")]), torch.tensor([3, 7]), ["a.png", "b.png"])
