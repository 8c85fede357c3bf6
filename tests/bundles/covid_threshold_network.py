# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Shared by the COVID CT inference tests (not collected): a "network" whose mask is known from the image."""

from __future__ import annotations

import torch


class ThresholdInfectionNetwork(torch.nn.Module):
    """Marks infection where the first MultiWindow channel (window -174..274 HU) exceeds 0.5, i.e. HU > 50: logits
    ``(0, 100 * (x0 - 0.5))`` from ``B x 3 x H x W``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[1, 0] = 100.0
            self.conv.bias[1] = -50.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)
