# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""DADAM on-the-fly throughput benchmark: the pipelines are the bundle's training chain at the given DADAM
probabilities, the eligible count and tail classes agree with an independent count from the labels, the ratios are
the rates' quotients, bad arguments are refused (timings are never asserted)."""

from __future__ import annotations

import numpy as np
import pytest
from monai.transforms import Identityd

from monai_ext.data.cxr import MIMIC_CXR_LT_CLASSES
from monai_ext.transforms import RandDiseasedAreaAugmentd, tail_class_indices
from scripts.bench.dadam_throughput import (
    dadam_pipeline,
    dadam_throughput_benchmark,
    dadam_throughput_table,
    write_throughput_data,
)
from scripts.bench.fpsm_step import FPSM_BUNDLE


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    work = tmp_path_factory.mktemp("dadam_tp")
    res = dadam_throughput_benchmark(work, FPSM_BUNDLE, probs=(0.5, 1.0), num_items=6, image_size=64, warmup=0,
                                     repeats=1)  # fmt: skip
    return work, res


def test_pipelines_are_the_bundle_chain_at_each_probability(result):
    work, _ = result
    data = {"dataset_dir": str(work / "mimic_cxr_lt"),
            "box_sources": {"nih": str(work / "nih"), "vindr": str(work / "vindr")}}  # fmt: skip
    plain, step0, datalist = dadam_pipeline(FPSM_BUNDLE, data, 0.0)
    assert isinstance(step0, Identityd) and step0 in plain.transforms
    with_dadam, step, _ = dadam_pipeline(FPSM_BUNDLE, data, 0.5)
    assert isinstance(step, RandDiseasedAreaAugmentd) and step.prob == pytest.approx(0.5)
    assert step in with_dadam.transforms and len(with_dadam.transforms) == len(plain.transforms)
    assert all(item["dataset_id"] == 0 for item in datalist)


def test_counts_and_ratios(result):
    work, res = result
    assert list(res["images_per_s"]) == ["plain", "dadam_p0.5", "dadam_p1"] and res["reference"] == "plain"
    assert res["num_items"] == 6 and res["image_size"] == 64
    for name, rate in res["images_per_s"].items():
        assert res["ratio_to_reference"][name] == pytest.approx(rate / res["images_per_s"]["plain"])
    # independent count: tail classes by the median rule on the training labels, eligible = No Finding or a tail class
    data = {"dataset_dir": str(work / "mimic_cxr_lt"), "box_sources": {}}
    _, _, datalist = dadam_pipeline(FPSM_BUNDLE, data, 0.0)
    labels = np.asarray([item["label"] for item in datalist])
    tails = list(tail_class_indices(labels))
    assert res["tail_classes"] == [MIMIC_CXR_LT_CLASSES[t] for t in tails]
    nf = MIMIC_CXR_LT_CLASSES.index("No Finding")
    eligible = sum(int(lab[nf] >= 0.5 or any(lab[t] >= 0.5 for t in tails)) for lab in labels[:6])
    assert res["eligible_items"] == eligible and res["num_patches"] > 0
    table = dadam_throughput_table(res)
    assert "| dadam_p1 |" in table and f"{eligible} of 6 items are eligible" in table


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="probs"):
        dadam_throughput_benchmark(tmp_path, FPSM_BUNDLE, probs=(0.0,))
    with pytest.raises(ValueError, match="num_items"):
        dadam_throughput_benchmark(tmp_path, FPSM_BUNDLE, num_items=0)


def test_written_data_layout(tmp_path):
    data = write_throughput_data(tmp_path, image_size=32, size=0.5)
    assert (tmp_path / "mimic_cxr_lt").is_dir() and set(data["box_sources"]) == {"nih", "vindr"}
