# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Events
from matplotlib.image import imread
from monai.data import DataLoader, Dataset

from monai_ext.data.datalist import assign_indices
from monai_ext.engines.per_sample import PerSampleTrainer
from monai_ext.handlers import MoMBSHandler, PerSampleRecorder
from monai_ext.handlers.mombs import DIFFICULTY_COLUMNS
from monai_ext.samplers import MoMBSSampler

NAN = math.nan
KEYS = ["loss_per_sample", "uncertainty"]


def _engine(epoch: int) -> SimpleNamespace:
    return SimpleNamespace(state=SimpleNamespace(epoch=epoch))


def _setup(tmp_path, loss, uncertainty, pivot_epoch=4):
    n = len(loss)
    recorder = PerSampleRecorder(num_samples=n, keys=KEYS)
    visited = [i for i in range(n) if not math.isnan(loss[i])]
    recorder.update(torch.tensor(visited), torch.tensor([[loss[i], uncertainty[i]] for i in visited]), epoch=1)
    sampler = MoMBSSampler(range(n), batch_size=2, pivot_epoch=pivot_epoch)
    handler = MoMBSHandler(sampler, recorder, output_dir=tmp_path / "mombs", name="test_mombs")
    return recorder, sampler, handler


def test_scores_reach_the_sampler_and_map_is_written_from_the_epoch_before_the_pivot(tmp_path):
    loss, unc = [0.9, 0.1, 0.5, 0.3], [0.4, 0.1, 0.2, 0.3]
    _, sampler, handler = _setup(tmp_path, loss, unc, pivot_epoch=4)
    handler(_engine(2))  # plans epoch 3 < pivot: scores passed on, nothing written
    assert torch.equal(sampler.loss, torch.tensor(loss)) and torch.equal(sampler.uncertainty, torch.tensor(unc))
    assert sampler.scores_epoch == 2 and not (tmp_path / "mombs").exists()

    handler(_engine(3))  # plans epoch 4 = pivot
    table = pd.read_csv(tmp_path / "mombs" / "difficulty_epoch0003.csv")
    assert list(table.columns) == list(DIFFICULTY_COLUMNS)
    assert table["index"].tolist() == [0, 1, 2, 3]
    assert table["loss_rank"].tolist() == [3, 0, 2, 1]
    assert table["uncertainty_rank"].tolist() == [3, 0, 1, 2]
    assert table["difficulty"].tolist() == [6, 0, 3, 3]
    assert table["difficulty_rank"].tolist() == [3, 0, 1, 2]
    assert table["category"].tolist() == ["under_represented", "well_represented", "poorly_labelled", "overfitted"]
    assert np.allclose(table["loss"], loss) and np.allclose(table["uncertainty"], unc)
    png = tmp_path / "mombs" / "difficulty_map_epoch0003.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    # the next plan pairs the hardest (0) with the easiest (1) and the two mid ones (2, 3)
    sampler.set_epoch(4)
    assert {tuple(b) for b in sampler.global_batches()} == {(1, 0), (2, 3)}


def test_never_visited_sample_is_written_with_median_ranks(tmp_path):
    loss, unc = [0.9, NAN, 0.5, 0.3, 0.1], [0.4, NAN, 0.2, 0.3, 0.0]
    _, _, handler = _setup(tmp_path, loss, unc, pivot_epoch=1)
    handler(_engine(1))
    table = pd.read_csv(tmp_path / "mombs" / "difficulty_epoch0001.csv")
    assert math.isnan(table["loss"][1]) and math.isnan(table["uncertainty"][1])
    # NaN -> lower median of the known values (loss 0.3, uncertainty 0.2), ranked just before the known equal value
    assert table["loss_rank"].tolist() == [4, 1, 3, 2, 0]
    assert table["uncertainty_rank"].tolist() == [4, 1, 2, 3, 0]
    assert table["category"][1] == "well_represented"  # ranks 1 and 1 of 5: not above the median rank 2


def test_large_map_draws_a_subsample(tmp_path):
    n = 120
    rng = np.random.default_rng(0)
    _, _, handler = _setup(tmp_path, rng.random(n).tolist(), rng.random(n).tolist(), pivot_epoch=1)
    handler.max_points = 10
    handler(_engine(5))
    assert (tmp_path / "mombs" / "difficulty_map_epoch0005.png").stat().st_size > 0
    assert len(pd.read_csv(tmp_path / "mombs" / "difficulty_epoch0005.csv")) == n


def test_without_output_dir_nothing_is_written(tmp_path):
    recorder = PerSampleRecorder(num_samples=4, keys=KEYS)
    sampler = MoMBSSampler(range(4), batch_size=2, pivot_epoch=1)
    MoMBSHandler(sampler, recorder, name="t")(_engine(3))
    assert list(tmp_path.iterdir()) == [] and sampler.scores_epoch == 3


def test_no_uncertainty_recorded_plans_from_loss_and_skips_the_map(tmp_path):
    loss = [0.7, 0.1, 0.5, 0.3]
    recorder = PerSampleRecorder(num_samples=4, keys=KEYS)
    recorder.update(torch.arange(4), {"loss_per_sample": torch.tensor(loss), "uncertainty": torch.full((4,), NAN)}, 2)
    sampler = MoMBSSampler(range(4), batch_size=2, pivot_epoch=1)
    handler = MoMBSHandler(sampler, recorder, output_dir=tmp_path / "mombs", name="t")
    with pytest.warns(UserWarning, match="no sample has a finite 'uncertainty' after epoch 2"):
        handler(_engine(2))
    assert not (tmp_path / "mombs").exists()
    sampler.set_epoch(3)  # loss ranks [3, 0, 2, 1]: the hardest (0) with the easiest (1)
    assert {tuple(b) for b in sampler.global_batches()} == {(1, 0), (3, 2)}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"loss_key": "loss"}, KeyError, r"no column 'loss'; its columns are \['loss_per_sample', 'uncertainty'\]"),
        ({"uncertainty_key": "entropy"}, KeyError, "no column 'entropy'"),
        ({"num_samples": 5}, ValueError, "the recorder holds 4 samples but the sampler 5"),
        ({"uncertainty_key": None, "output_dir": "x"}, ValueError, "difficulty map .* needs uncertainty_key"),
        ({"datalist": [{"image": "a"}] * 3}, ValueError, "datalist has 3 items but the recorder 4 samples"),
    ],
)
def test_bad_init(kwargs, error, match):
    recorder = PerSampleRecorder(num_samples=4, keys=KEYS)
    sampler = MoMBSSampler(range(kwargs.pop("num_samples", 4)), batch_size=2)
    with pytest.raises(error, match=match):
        MoMBSHandler(sampler, recorder, **kwargs)


def test_trainer_epochs_after_the_pivot_are_mirror_planned_from_recorded_losses():
    n, batch_size = 8, 4
    g = torch.Generator().manual_seed(1)
    images, labels = torch.randn(n, 4, generator=g), (torch.rand(n, 2, generator=g) > 0.5).float()
    datalist = assign_indices([{"image": images[i], "label": labels[i]} for i in range(n)])
    net = torch.nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(torch.randn(2, 4, generator=g) * 2)
        net.bias.zero_()
        losses = [float(F.binary_cross_entropy_with_logits(net(images[i]), labels[i])) for i in range(n)]
    assert np.diff(np.sort(losses)).min() > 1e-4  # no near ties, the ranking is unambiguous

    sampler = MoMBSSampler(datalist, batch_size=batch_size, pivot_epoch=2, seed=0)
    trainer = PerSampleTrainer(
        device="cpu",
        max_epochs=3,
        train_data_loader=DataLoader(Dataset(datalist), batch_size=batch_size, sampler=sampler, shuffle=False),
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.0),  # losses stay the same every epoch
        loss_function=torch.nn.BCEWithLogitsLoss(reduction="none"),
    )
    recorder = PerSampleRecorder(num_samples=n)
    recorder.attach(trainer)
    MoMBSHandler(sampler, recorder, uncertainty_key=None).attach(trainer)
    seen: dict[int, list[tuple[int, ...]]] = {}

    @trainer.on(Events.ITERATION_COMPLETED)
    def _collect(engine):
        seen.setdefault(engine.state.epoch, []).append(tuple(int(o["index"]) for o in engine.state.output))

    trainer.run()
    order = np.argsort(losses, kind="stable")  # easiest first
    mirror = {tuple(order[[0, 7, 1, 6]].tolist()), tuple(order[[2, 5, 3, 4]].tolist())}
    assert sorted(i for b in seen[1] for i in b) == list(range(n))
    assert set(seen[2]) == mirror and set(seen[3]) == mirror
    assert trainer.state.epoch_length == 2 and sampler.epoch == 3 and sampler.scores_epoch == 3


def test_datalist_columns_name_each_sample(tmp_path):
    loss, unc = [0.9, 0.1, 0.5, 0.3], [0.4, 0.1, 0.2, 0.3]
    recorder, sampler, _ = _setup(tmp_path, loss, unc, pivot_epoch=2)
    datalist = [{"image": f"/data/img{i}.nii.gz", "label": f"/data/lab{i}.nii.gz"} for i in range(3)] + [{"image": "x"}]
    MoMBSHandler(sampler, recorder, output_dir=tmp_path / "m", datalist=datalist, name="t")(_engine(1))
    table = pd.read_csv(tmp_path / "m" / "difficulty_epoch0001.csv", keep_default_na=False)
    assert list(table.columns) == [*DIFFICULTY_COLUMNS, "image", "label"]
    assert table["image"].tolist() == ["/data/img0.nii.gz", "/data/img1.nii.gz", "/data/img2.nii.gz", "x"]
    assert table["label"].tolist()[3] == ""  # the item has no label: empty cell
    assert table.loc[table["category"] == "under_represented", "image"].tolist() == ["/data/img0.nii.gz"]


def test_strategies_without_uncertainty_get_no_map_and_no_warning(tmp_path, recwarn):
    loss = [0.7, 0.1, 0.5, 0.3]
    recorder = PerSampleRecorder(num_samples=4, keys=KEYS)
    recorder.update(torch.arange(4), {"loss_per_sample": torch.tensor(loss), "uncertainty": torch.full((4,), NAN)}, 2)
    sampler = MoMBSSampler(range(4), batch_size=2, strategy="ohem", pivot_epoch=1, hard_fraction=0.25)
    MoMBSHandler(sampler, recorder, output_dir=tmp_path / "mombs", name="t")(_engine(2))
    assert not (tmp_path / "mombs").exists()
    assert not [w for w in recwarn if "uncertainty" in str(w.message)]
    assert torch.equal(sampler.loss, torch.tensor(loss)) and sampler.scores_epoch == 2  # the loss still plans
