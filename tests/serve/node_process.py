# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Shared by the DICOM node's end-to-end tests (not collected): the node as a subprocess serving
cxr_nvum_classification (CR/DX) and covid_ct_mombs_segmentation (CT) with their demo overlay's small network and
random weights, the bundle copies it serves, and small DICOM helpers."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import torch

from monai_ext.bundle.workflow import bundle_parser
from monai_ext.demo.dicom_series import write_ct_dicom_series

REPO = Path(__file__).resolve().parents[2]
CXR, COVID = "cxr_nvum_classification", "covid_ct_mombs_segmentation"
DEMO = ["configs/inference.json", "configs/demo.json"]
SMALL = {"network_def": "%small_network_def"}
START_TIMEOUT = 120.0


class NodeProcess:
    """``python -m monai_ext.serve.dicom_node`` serving :data:`CXR` (CR, DX) and :data:`COVID` (CT) at demo size,
    forwarding to ``forward`` (``HOST:PORT:AET``); ``port`` is known after :meth:`start`."""

    def __init__(self, root: Path, bundles: dict[str, Path], forward: str, *options: str) -> None:
        self.root, self.bundles, self.forward, self.options = root, bundles, forward, list(options)
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> None:
        cmd = [sys.executable, "-m", "monai_ext.serve.dicom_node",
               "--bundle", f"{self.bundles[CXR]}:CR,DX", "--bundle", f"{self.bundles[COVID]}:CT",
               "--config", f"{CXR}=configs/demo.json", "--config", f"{COVID}=configs/demo.json",
               "--override", f"{CXR}:network_def=%small_network_def",
               "--override", f"{COVID}:network_def=%small_network_def",
               "--ae-title", "NODE", "--host", "127.0.0.1", "--port", "0", "--forward", self.forward,
               "--spool", str(self.root / "spool"), "--log-file", str(self.root / "node.log"),
               *self.options]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("READY "):
                    self.port = int(line.split()[1])
                    return
            if self.proc.poll() is not None:
                break
        raise AssertionError(f"the node did not start; its log:\n{self.log()}")

    def log(self) -> str:
        path = self.root / "node.log"
        return path.read_text() if path.is_file() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(60)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def bundle_copy(name: str, folder: Path) -> Path:
    """A copy of the bundle with ``models/model.pt`` = the demo overlay's small network, randomly initialised."""
    dst = folder / name
    shutil.copytree(REPO / "bundles" / name, dst, ignore=shutil.ignore_patterns("models", "eval"))
    torch.manual_seed(0)
    network = bundle_parser(dst, DEMO, SMALL).get_parsed_content("network_def")
    (dst / "models").mkdir()
    torch.save({"model": network.state_dict()}, dst / "models" / "model.pt")
    return dst


def referenced_sops(ds: pydicom.Dataset) -> set[str]:
    """Every ReferencedSOPInstanceUID anywhere in ``ds``."""
    found: set[str] = set()

    def _visit(d: pydicom.Dataset) -> None:
        for elem in d:
            if elem.keyword == "ReferencedSOPInstanceUID":
                found.add(str(elem.value))
            elif elem.VR == "SQ":
                for item in elem.value:
                    _visit(item)

    _visit(ds)
    return found


def ct_series(folder: Path) -> list[pydicom.Dataset]:
    """A 40 x 36 x 6 CT (air-filled lung with a 200 HU block) as a DICOM series."""
    volume = np.full((40, 36, 6), -800.0)
    volume[4:18, 20:32, 1:4] = 200.0
    paths = write_ct_dicom_series(volume, (0.8, 0.7, 2.5), folder, uid_seed="node test CT")
    return [pydicom.dcmread(p) for p in paths]
