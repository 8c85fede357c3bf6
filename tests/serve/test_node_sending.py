# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The node's worker in this process (no bundle: a runner writing known result files stands in for inference) with a
real pynetdicom destination: results recorded as sent are never sent again after a restart, results of a runner are
sent and the series recorded ``sent``, an unreachable destination fails the series with the reason."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pynetdicom import AE, StoragePresentationContexts, evt

from monai_ext.demo.dicom_series import write_ct_dicom_series
from monai_ext.serve.failure_sr import write_failure_sr
from monai_ext.serve.inference import InferenceResult
from monai_ext.serve.node import DicomNode
from monai_ext.serve.routing import BundleRoute, Destination
from monai_ext.serve.spool import Spool


class Collector:
    def __init__(self) -> None:
        self.sops: list[str] = []
        self.cond = threading.Condition()
        self.ae = AE(ae_title="DEST")
        self.ae.supported_contexts = StoragePresentationContexts
        self.server = self.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on)])
        self.port = self.server.server_address[1]

    def _on(self, event) -> int:
        with self.cond:
            self.sops.append(str(event.dataset.SOPInstanceUID))
            self.cond.notify_all()
        return 0x0000


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.ae.shutdown()


@pytest.fixture
def ct_files(tmp_path) -> list[Path]:
    return write_ct_dicom_series(np.full((8, 8, 2), -800.0), (1.0, 1.0, 2.0), tmp_path / "ct", uid_seed="sending")


def _route(tmp_path: Path) -> BundleRoute:
    return BundleRoute(tmp_path / "fake_bundle", ("CT",))


def _wait(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def _results_runner(route, instances: Path, job: Path) -> InferenceResult:
    """Two result files (SRs referencing the instances) as a bundle would write them."""
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(instances.glob("*.dcm"))]
    for name in ("case_sr.dcm", "case_seg.dcm"):
        write_failure_sr(job / name, sources, "stand-in result", "fake", "0")
    return InferenceResult(sorted(job.glob("*.dcm")))


def _dataset_bytes(data: bytes) -> bytes:
    """The encoded dataset of a DICOM file, after its preamble and file meta group (whose length is the value of
    (0002,0000), explicit VR little endian, at bytes 140..143); the node writes its own file meta."""
    assert data[128:132] == b"DICM" and data[132:136] == b"\x02\x00\x00\x00"
    return data[144 + int.from_bytes(data[140:144], "little") :]


def _store_series(spool: Spool, files: list[Path]) -> str:
    key = None
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        _, key = spool.store_instance(f.read_bytes(), ds.SOPInstanceUID, ds.SeriesInstanceUID, bundle="fake_bundle")
    return key


def test_restart_sends_only_the_results_not_recorded_as_sent(tmp_path, collector, ct_files):
    spool = Spool(tmp_path / "spool", 0.01, 4)
    key = _store_series(spool, ct_files)
    time.sleep(0.02)
    assert spool.due() == [key]
    job = spool.start_processing(key)
    results = _results_runner(None, spool.instances_dir(key), job).files
    spool.results_ready(key, results)
    first = str(pydicom.dcmread(results[0]).SOPInstanceUID)
    spool.mark_sent(key, results[0], first)  # the crash came after the first result was sent

    restarted = Spool(tmp_path / "spool", 0.01, 4)
    node = DicomNode([_route(tmp_path)], Destination("127.0.0.1", collector.port, "DEST"), restarted, "NODE",
                     "127.0.0.1", 0, runner=lambda *a: pytest.fail("no inference may run again"))  # fmt: skip
    node.start()
    try:
        assert _wait(lambda: restarted.record(key).state == "sent")
    finally:
        node.stop()
    assert collector.sops == [str(pydicom.dcmread(results[1]).SOPInstanceUID)]


def test_results_are_sent_over_the_network_and_the_series_is_sent(tmp_path, collector, ct_files):
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom.sop_class import CTImageStorage

    spool = Spool(tmp_path / "spool", 0.5, 4)
    node = DicomNode([_route(tmp_path)], Destination("127.0.0.1", collector.port, "DEST"), spool, "NODE",
                     "127.0.0.1", 0, runner=_results_runner)  # fmt: skip
    node.start()
    try:
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)  # the files' syntax: sent as they are
        assoc = ae.associate("127.0.0.1", node.port, ae_title="NODE")
        assert [assoc.send_c_store(f).Status for f in ct_files] == [0, 0]
        assoc.release()
        key = pydicom.dcmread(ct_files[0]).SeriesInstanceUID
        assert _wait(lambda: spool.record(key).state == "sent")
        results = spool.record(key).results
        assert [Path(r).name for r in results] == ["case_seg.dcm", "case_sr.dcm"]
        sent = [str(pydicom.dcmread(spool.series_dir(key) / r).SOPInstanceUID) for r in results]
        assert collector.sops == sent
        stored = sorted(_dataset_bytes(p.read_bytes()) for p in spool.instances_dir(key).iterdir())
        assert stored == sorted(_dataset_bytes(f.read_bytes()) for f in ct_files)  # as sent: nothing re-encoded
    finally:
        node.stop()


def test_unreachable_destination_fails_the_series_with_the_reason(tmp_path, ct_files):
    spool = Spool(tmp_path / "spool", 0.01, 4)
    key = _store_series(spool, ct_files)
    dead = Destination("127.0.0.1", 9, "NOBODY")  # discard port: nothing listens
    node = DicomNode([_route(tmp_path)], dead, spool, "NODE", "127.0.0.1", 0, send_retries=1, retry_delay=0.1,
                     runner=_results_runner)  # fmt: skip
    node.start()
    try:
        assert _wait(lambda: spool.record(key).state == "failed")
    finally:
        node.stop()
    record = spool.record(key)
    assert "no association with NOBODY@127.0.0.1:9" in record.reason
    assert len(record.results) == 2 and all((spool.series_dir(key) / r).is_file() for r in record.results)
    assert spool.failures()[-1]["reason"] == record.reason
