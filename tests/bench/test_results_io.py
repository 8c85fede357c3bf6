# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
from __future__ import annotations

import json
import math

import numpy as np
from matplotlib.figure import Figure

from scripts.bench.results_io import json_ready, save_figure, write_json


def test_json_ready_hand_worked():
    value = {1: (np.float32(0.5), math.nan, np.int64(3)), "b": [np.inf, "x", None]}
    assert json_ready(value) == {"1": [0.5, None, 3], "b": [None, "x", None]}
    assert type(json_ready(np.int64(3))) is int


def test_write_json_and_save_figure(tmp_path):
    path = write_json({"r": np.float64(1.25), "n": math.nan}, tmp_path / "a" / "r.json")
    assert json.loads(path.read_text()) == {"r": 1.25, "n": None}
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    png = save_figure(fig, tmp_path / "b" / "f.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
