# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The hospital path against a real PACS: Orthanc (Debian's 1.10 with its DICOMweb plugin, installed by
``make pacs-tools``) holds a study, pushes it to the DICOM node by C-STORE, the node sends its results back into
Orthanc, and the test reads them as a viewer would (DICOMweb QIDO-RS) and parses them with DCMTK's ``dsrdump``, a
DICOM SR implementation independent of highdicom and pydicom.

Flow: free ports for Orthanc -> the node (``--forward`` Orthanc) -> Orthanc with the node as a modality -> upload
``RG1_UNCI.dcm`` and a demo CT series over Orthanc's REST API -> ``POST /modalities/node/store`` -> wait for the SR
and the SEG in the sources' studies.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from monai_ext.dicom import read_segmentation_seg
from tests.serve.node_process import COVID, CXR, NodeProcess, bundle_copy, ct_series, referenced_sops

ORTHANC = shutil.which("Orthanc")
DSRDUMP = shutil.which("dsrdump")
DICOMWEB_PLUGINS = Path("/usr/share/orthanc/plugins")
RESULT_TIMEOUT = 120.0
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        ORTHANC is None or DSRDUMP is None or not DICOMWEB_PLUGINS.is_dir(),
        reason="Orthanc, its DICOMweb plugin and DCMTK are not installed; run `make pacs-tools` (apt, as root)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Orthanc:
    """An Orthanc server on free localhost ports, its database in ``root``; the node is its modality ``node``."""

    def __init__(self, root: Path) -> None:
        self.root, self.http_port, self.dicom_port = root, _free_port(), _free_port()
        self.proc: subprocess.Popen | None = None

    def start(self, node_port: int) -> None:
        config = {
            "Name": "robust-medical-bundles test PACS",
            "StorageDirectory": str(self.root / "db"),
            "IndexDirectory": str(self.root / "db"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomModalities": {"node": ["NODE", "127.0.0.1", node_port]},
            "Plugins": [str(DICOMWEB_PLUGINS)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        (self.root / "orthanc.json").write_text(json.dumps(config))
        log = open(self.root / "orthanc.log", "w")
        self.proc = subprocess.Popen([ORTHANC, str(self.root / "orthanc.json")], stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/system")
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"Orthanc did not start:\n{(self.root / 'orthanc.log').read_text()[-3000:]}")

    def request(self, path: str, body: bytes | None = None, method: str | None = None) -> bytes:
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=body, method=method)
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.read()

    def get(self, path: str) -> object:
        return json.loads(self.request(path))

    def upload(self, path: Path) -> dict:
        return json.loads(self.request("/instances", path.read_bytes(), "POST"))

    def series_of_study(self, study_uid: str) -> list[dict]:
        """QIDO-RS ``/studies/{uid}/series``: the DICOM JSON of each series of the study."""
        return self.get(f"/dicom-web/studies/{study_uid}/series")

    def instance_file(self, study_uid: str, modality: str) -> bytes:
        """The first instance of the study's series of ``modality``, through Orthanc's REST API."""
        lookup = json.loads(self.request("/tools/lookup", study_uid.encode(), "POST"))
        [study_id] = [m["ID"] for m in lookup if m["Type"] == "Study"]
        for series_id in self.get(f"/studies/{study_id}")["Series"]:
            series = self.get(f"/series/{series_id}")
            if series["MainDicomTags"].get("Modality") == modality:
                return self.request(f"/instances/{series['Instances'][0]}/file")
        raise AssertionError(f"no {modality} series in study {study_uid}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def _modalities(orthanc: Orthanc, study_uid: str) -> list[str]:
    return sorted(s["00080060"]["Value"][0] for s in orthanc.series_of_study(study_uid))


def _wait_for(orthanc: Orthanc, study_uid: str, wanted: list[str]) -> list[str]:
    deadline = time.monotonic() + RESULT_TIMEOUT
    while time.monotonic() < deadline:
        found = _modalities(orthanc, study_uid)
        if found == wanted:
            return found
        time.sleep(0.5)
    return _modalities(orthanc, study_uid)


def _dsrdump_findings(path: Path) -> dict[str, tuple[float, str]]:
    """``{class: (probability, "Present"|"Absent")}`` parsed from DCMTK's ``dsrdump`` text of a classification SR."""
    text = subprocess.run([DSRDUMP, str(path)], capture_output=True, text=True, check=True).stdout
    findings = {}
    for group in text.split('"Measurement Group")')[1:]:
        name = re.search(r'"Tracking Identifier"\)="([^"]+)"', group).group(1)
        value = float(re.search(r'NUM:\(,,"Probability"\)="([^"]+)"', group).group(1))
        decision = re.search(rf'CODE:\(,,"{re.escape(name)}"\)=\(\d+,SCT,"(Present|Absent)"\)', group).group(1)
        findings[name] = (value, decision)
    return findings


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pacs")
    bundles = {name: bundle_copy(name, root / "bundles") for name in (CXR, COVID)}
    orthanc = Orthanc(root)
    node = NodeProcess(root, bundles, f"127.0.0.1:{orthanc.dicom_port}:ORTHANC", "--series-timeout", "3")
    node.start()
    orthanc.start(node.port)
    yield orthanc, node, root
    node.kill()
    orthanc.stop()


def test_orthanc_pushes_a_study_and_receives_the_sr_and_seg(pacs, rg1_unci_path, tmp_path):
    orthanc, node, root = pacs
    rg1 = pydicom.dcmread(rg1_unci_path)
    ct = ct_series(tmp_path / "ct")
    uploaded = [orthanc.upload(rg1_unci_path)] + [orthanc.upload(p) for p in sorted((tmp_path / "ct").iterdir())]
    studies = sorted({u["ParentStudy"] for u in uploaded})
    orthanc.request("/modalities/node/store", json.dumps({"Resources": studies, "Synchronous": True}).encode(), "POST")

    assert _wait_for(orthanc, rg1.StudyInstanceUID, ["CR", "SR"]) == ["CR", "SR"], node.log()
    assert _wait_for(orthanc, ct[0].StudyInstanceUID, ["CT", "SEG", "SR"]) == ["CT", "SEG", "SR"], node.log()

    # the SR, as stored by the PACS, parsed by DCMTK: the node's per-case probabilities and the 0.5 decisions
    sr_path = tmp_path / "sr.dcm"
    sr_path.write_bytes(orthanc.instance_file(rg1.StudyInstanceUID, "SR"))
    jobs = root / "spool" / "series" / rg1.SeriesInstanceUID / "jobs"
    [case_json] = [p for p in jobs.rglob("*.json") if "probabilities" in json.loads(p.read_text())]
    probabilities = json.loads(case_json.read_text())["probabilities"]
    findings = _dsrdump_findings(sr_path)
    assert sorted(findings) == sorted(probabilities)
    for name, p in probabilities.items():
        assert findings[name][0] == pytest.approx(p, rel=1e-12, abs=1e-14)
        assert findings[name][1] == ("Present" if p >= 0.5 else "Absent")
    sr = pydicom.dcmread(sr_path)
    assert rg1.SOPInstanceUID in referenced_sops(sr) and sr.StudyInstanceUID == rg1.StudyInstanceUID

    # the SEG, as stored by the PACS: its frames are the node's mask, slice by slice on the source instances
    seg_path = tmp_path / "seg.dcm"
    seg_path.write_bytes(orthanc.instance_file(ct[0].StudyInstanceUID, "SEG"))
    labels, uids = read_segmentation_seg(seg_path, source=tmp_path / "ct")
    [mask] = (root / "spool" / "series" / ct[0].SeriesInstanceUID / "jobs").rglob("*_seg.nii.gz")
    np.testing.assert_array_equal(labels, np.asarray(nib.load(mask).dataobj))
    assert list(uids) == [str(ds.SOPInstanceUID) for ds in sorted(ct, key=lambda d: float(d.ImagePositionPatient[2]))]
