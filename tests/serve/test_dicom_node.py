# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""End to end with the real protocol: the DICOM node runs as a subprocess (``python -m monai_ext.serve.dicom_node``)
serving two bundles (cxr_nvum_classification for CR/DX, covid_ct_mombs_segmentation for CT, both with their demo
overlay's small network and random weights), a pynetdicom SCU in this process sends, and a pynetdicom Storage SCP in
this process is the destination.

One node start per phase (it imports torch): the tests of this module run in order and share the node.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import ComputedRadiographyImageStorage, CTImageStorage, Verification

from tests.serve.node_process import COVID, CXR, REPO, NodeProcess, bundle_copy, ct_series, referenced_sops

SERIES_TIMEOUT = 4.0
NODE_OPTIONS = ("--series-timeout", str(SERIES_TIMEOUT), "--max-queued", "2", "--failure-sr", "--send-retries", "1")
RESULT_TIMEOUT = 90.0
pytestmark = pytest.mark.slow


class Destination:
    """A Storage SCP collecting every dataset it receives (the PACS)."""

    def __init__(self) -> None:
        self.received: list[pydicom.Dataset] = []
        self._cond = threading.Condition()
        self.ae = AE(ae_title="DEST")
        self.ae.supported_contexts = StoragePresentationContexts
        self.server = self.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on)])
        self.port = self.server.server_address[1]

    def _on(self, event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        with self._cond:
            self.received.append(ds)
            self._cond.notify_all()
        return 0x0000

    def wait_for(self, predicate: Callable[[list[pydicom.Dataset]], bool], timeout: float) -> list[pydicom.Dataset]:
        with self._cond:
            self._cond.wait_for(lambda: predicate(self.received), timeout)
            return list(self.received)


def _send(port: int, datasets: list[pydicom.Dataset | Path]) -> list[int]:
    """C-STORE each dataset (one association); the status codes."""
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(ComputedRadiographyImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="NODE")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def _echo(port: int) -> int:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="NODE")
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


def _elsewhere(ds: pydicom.Dataset) -> pydicom.Dataset:
    """``ds`` as an instance of a new study and series (new Study, Series and SOP Instance UIDs)."""
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    return ds


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("node")
    bundles = {name: bundle_copy(name, root / "bundles") for name in (CXR, COVID)}
    dest = Destination()
    node = NodeProcess(root, bundles, f"127.0.0.1:{dest.port}:DEST", *NODE_OPTIONS)
    node.start()
    yield {"root": root, "dest": dest, "node": node}
    node.kill()
    dest.ae.shutdown()


def _new_results(dest: Destination, before: int, predicate, timeout: float = RESULT_TIMEOUT) -> list[pydicom.Dataset]:
    return dest.wait_for(lambda r: predicate(r[before:]), timeout)[before:]


def test_radiograph_sr_and_back_pressure_and_kill_mid_series(setup, rg1_unci_path, tmp_path):
    """RG1_UNCI (series A) and half a CT (series B) wait; a third series gets 0xA700 (max 2 waiting); the node is
    SIGKILLed with B half received, restarted, the rest of B sent: one SR for A, one result set for B referencing
    every slice, the third series accepted once there is room."""
    dest, node = setup["dest"], setup["node"]
    rg1 = pydicom.dcmread(rg1_unci_path)
    ct = ct_series(tmp_path / "ct")
    one_slice = [_elsewhere(ct_series(tmp_path / "other")[0])]  # a third series (one slice: unreadable as a volume)
    assert _send(node.port, [rg1_unci_path]) == [0x0000]
    assert _send(node.port, ct[:3]) == [0x0000] * 3
    assert _send(node.port, one_slice) == [0xA700]  # two series waiting: refused, retry later
    assert _send(node.port, ct[3:4]) == [0x0000]  # a waiting series still receives
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait(30)
    assert dest.received == []  # killed before any quiet time passed

    node.start()
    assert _send(node.port, ct[3:]) == [0x0000] * 3  # the sender resends what it is unsure of; one is a duplicate
    ct_sops = {str(ds.SOPInstanceUID) for ds in ct}

    def _of(study: str, received: list[pydicom.Dataset]) -> list[pydicom.Dataset]:
        return [d for d in received if d.StudyInstanceUID == study]

    def _done(received: list[pydicom.Dataset]) -> bool:
        return len(_of(rg1.StudyInstanceUID, received)) >= 1 and len(_of(ct[0].StudyInstanceUID, received)) >= 2

    received = _new_results(dest, 0, _done)
    assert _done(received), f"results: {[(d.Modality, d.SOPClassUID.name) for d in received]}\n{node.log()}"
    assert _send(node.port, one_slice) == [0x0000]  # room again
    time.sleep(SERIES_TIMEOUT + 1)  # a second result set of A or B would come now: none may
    sr = _of(rg1.StudyInstanceUID, dest.received)
    assert [d.Modality for d in sr] == ["SR"] and rg1.SOPInstanceUID in referenced_sops(sr[0])
    assert sr[0].ConceptNameCodeSequence[0].CodeMeaning != "Failed Analyses"  # a result, not a failure report
    ct_results = _of(ct[0].StudyInstanceUID, dest.received)
    assert sorted(d.Modality for d in ct_results) == ["SEG", "SR"]  # the SEG and its volumes SR, once
    seg = next(d for d in ct_results if d.Modality == "SEG")
    assert referenced_sops(seg) >= ct_sops  # every slice, including those received before the kill
    series = setup["root"] / "spool" / "series"
    for source, results in ((rg1, sr), (ct[0], ct_results)):  # what arrived is what the bundle wrote, all of it
        written = sorted((series / source.SeriesInstanceUID / "jobs").rglob("*.dcm"))
        assert sorted(pydicom.dcmread(f).SOPInstanceUID for f in written) == sorted(d.SOPInstanceUID for d in results)
        assert {f.parent.name for f in written} == {"attempt-1"}  # one inference: the kill came before it
        state = json.loads((series / source.SeriesInstanceUID / "state.json").read_text())
        assert (state["state"], state["attempts"]) == ("sent", 1)
    meta = json.loads((REPO / "bundles" / CXR / "configs" / "metadata.json").read_text())
    assert sr[0].ManufacturerModelName == meta["name"]


def test_failed_case_sends_failure_sr_and_corrupt_instance_is_refused(setup, tmp_path):
    dest, node, root = setup["dest"], setup["node"], setup["root"]
    one = [_elsewhere(ct_series(tmp_path / "one")[0])]
    before = len(dest.received)
    assert _send(node.port, one) == [0x0000]
    failure = _new_results(dest, before, lambda r: any(one[0].SOPInstanceUID in referenced_sops(d) for d in r))
    assert failure, node.log()
    sr = failure[0]
    assert sr.Modality == "SR" and sr.ConceptNameCodeSequence[0].CodeMeaning == "Failed Analyses"
    texts = {i.ConceptNameCodeSequence[0].CodeMeaning: i.get("TextValue") for i in sr.ContentSequence}
    meta = json.loads((REPO / "bundles" / COVID / "configs" / "metadata.json").read_text())
    assert texts["Algorithm Name"] == meta["name"] == sr.ManufacturerModelName
    assert texts["Algorithm Version"] == meta["version"]
    failures = [json.loads(line) for line in (root / "spool" / "failures.jsonl").read_text().splitlines()]
    series_failures = [f for f in failures if f["kind"] == "series" and f["series_uid"] == one[0].SeriesInstanceUID]
    assert len(series_failures) == 1 and texts["Comment"] == series_failures[0]["reason"]

    short = _elsewhere(ct_series(tmp_path / "short")[0])
    short.PixelData = short.PixelData[: len(short.PixelData) // 2]  # rows x columns promise twice as much
    no_series = _elsewhere(ct_series(tmp_path / "no_series")[0])
    del no_series.SeriesInstanceUID
    assert _send(node.port, [short, no_series]) == [0xC001, 0xC000]
    failures = [json.loads(line) for line in (root / "spool" / "failures.jsonl").read_text().splitlines()]
    refused = {f["sop_instance_uid"]: f for f in failures if f["kind"] == "instance"}
    assert "header promises" in refused[short.SOPInstanceUID]["reason"]
    assert refused[no_series.SOPInstanceUID]["status"] == "0xC000"
    assert not list((root / "spool" / "series").glob(f"{short.SeriesInstanceUID}*"))  # nothing kept
    assert _echo(node.port) == 0x0000  # still serving
    assert "association from AE 'MODALITY'" in node.log() and "2 refused" in node.log()


def test_sigterm_finishes_the_current_series_then_exits(setup, rg1_unci_path):
    """SIGTERM while a series is in inference: the node stops listening, finishes it (its result reaches the
    destination), and exits 0."""
    dest, node, root = setup["dest"], setup["node"], setup["root"]
    image = pydicom.dcmread(rg1_unci_path)
    image = _elsewhere(image)
    before = len(dest.received)
    assert _send(node.port, [image]) == [0x0000]
    deadline = time.monotonic() + RESULT_TIMEOUT
    while f"{image.SeriesInstanceUID}: inference with" not in node.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.stop(signal.SIGTERM) == 0
    log = node.log()
    assert log.index("SIGTERM received") < log.index(f"series {image.SeriesInstanceUID}: processing ->")
    assert any(image.SOPInstanceUID in referenced_sops(d) for d in dest.received[before:])
    state = json.loads((root / "spool" / "series" / image.SeriesInstanceUID / "state.json").read_text())
    assert state["state"] in ("sent", "failed") and log.rstrip().endswith("stopped")
