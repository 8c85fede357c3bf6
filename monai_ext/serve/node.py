# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The DICOM node: a pynetdicom Storage SCP that spools received series (:class:`~monai_ext.serve.spool.Spool`),
runs a bundle's inference on each complete series in one worker thread, and C-STOREs the DICOM results to a
destination.

C-STORE statuses it answers (PS3.4 Annex B.2.3; ``ErrorComment`` says why):

- ``0x0000`` success: the instance is on disk (fsync, atomic rename) - or was already (same SOPInstanceUID);
- ``0xA700`` refused, out of resources: ``max_queued`` series are waiting and the instance would open another one,
  or the spool could not be written (the sender retries later);
- ``0xC000`` cannot understand: the dataset cannot be decoded, or lacks SOPInstanceUID / SeriesInstanceUID (no
  series to put it in);
- ``0xC001`` cannot understand: no usable pixel data (missing, or shorter than Rows x Columns x ... promise;
  :func:`monai_ext.data.inference.dicom_pixels.dicom_pixel_data_error`);
- ``0xC002`` cannot understand: no bundle of this node accepts the instance's Modality.

A corrupt instance is refused at once rather than accepted and failed later: the header and pixel-length checks are
cheap, the sender learns which instance is bad while it can still act, and the instance cannot spoil the series it
claims to belong to (a CT volume with one short slice). Each refusal is logged and appended to ``failures.jsonl``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from monai_ext.data.inference.dicom_pixels import dicom_pixel_data_error
from monai_ext.serve.failure_sr import write_failure_sr
from monai_ext.serve.inference import InferenceResult, bundle_identity, run_series_inference
from monai_ext.serve.routing import BundleRoute, Destination, route_for
from monai_ext.serve.sender import SendError, send_files
from monai_ext.serve.spool import SeriesState, Spool, StoreOutcome

__all__ = ["DicomNode", "STATUS_SUCCESS", "STATUS_OUT_OF_RESOURCES", "STATUS_CANNOT_UNDERSTAND"]
__all__ += ["STATUS_BAD_PIXEL_DATA", "STATUS_NO_BUNDLE"]

logger = logging.getLogger("monai_ext.serve")

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_BAD_PIXEL_DATA = 0xC001
STATUS_NO_BUNDLE = 0xC002

Runner = Callable[[BundleRoute, Path, Path], InferenceResult]


def _status(code: int, comment: str = "") -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment[:64]  # LO
    return status


class DicomNode:
    """A Storage SCP (and Verification SCP) that runs bundles on received series.

    Args:
        routes: the bundles served, tried in order by Modality (:func:`~monai_ext.serve.routing.route_for`).
        destination: where results (and failure SRs) are C-STOREd.
        spool: the persistent series store.
        ae_title: this node's AE title (also the calling AE title when sending).
        host, port: where it listens (port 0: a free port, see :attr:`port` after :meth:`start`).
        failure_sr: also send a failure SR for each failed series. Defaults to False.
        send_retries: further tries of a failed send before the series fails. Defaults to 3.
        retry_delay: seconds between send tries. Defaults to 2.
        runner: runs one series (default :func:`~monai_ext.serve.inference.run_series_inference`).
    """

    def __init__(
        self,
        routes: Sequence[BundleRoute],
        destination: Destination,
        spool: Spool,
        ae_title: str = "MONAI_NODE",
        host: str = "0.0.0.0",
        port: int = 11112,
        failure_sr: bool = False,
        send_retries: int = 3,
        retry_delay: float = 2.0,
        runner: Runner = run_series_inference,
    ) -> None:
        self.routes = list(routes)
        self.destination = destination
        self.spool = spool
        self.ae_title = ae_title
        self.host, self.port = host, port
        self.failure_sr = failure_sr
        self.send_retries, self.retry_delay = send_retries, retry_delay
        self.runner = runner
        self._stop = threading.Event()
        self._queue: collections.deque[str] = collections.deque()
        self._worker: threading.Thread | None = None
        self._server: Any = None
        self._assoc_counts: dict[int, collections.Counter] = {}
        self._counts_lock = threading.Lock()
        self.current: str | None = None  # the series the worker is on

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Recover the spool, start the worker, then listen (instances are only taken once the spool is read)."""
        for key in self.spool.recover():
            self._queue.append(key)
        if self._queue:
            logger.info(f"resuming {len(self._queue)} series from the spool: {list(self._queue)}")
        self._worker = threading.Thread(target=self._work, name="dicom-node-worker", daemon=True)
        self._worker.start()
        ae = AE(ae_title=self.ae_title)
        ae.supported_contexts = StoragePresentationContexts
        ae.add_supported_context(Verification)
        ae.maximum_pdu_size = 0  # no limit on the PDUs we receive
        handlers = [
            (evt.EVT_C_STORE, self._handle_store),
            (evt.EVT_C_ECHO, lambda event: 0x0000),
            (evt.EVT_ACCEPTED, self._handle_accepted),
            (evt.EVT_CONN_CLOSE, self._handle_closed),
        ]
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        self.port = self._server.server_address[1]
        self._ae = ae
        logger.info(
            f"DICOM node {self.ae_title} listening on {self.host}:{self.port}; bundles "
            + ", ".join(f"{r.name} ({','.join(r.modalities) or 'any modality'})" for r in self.routes)
            + f"; results to {self.destination.ae_title}@{self.destination.host}:{self.destination.port}"
        )

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening (open associations are aborted: what they did not get acknowledged, their senders send
        again), let the worker finish the series it is on (inference and sending), and return. Receiving and queued
        series stay in the spool for the next start."""
        logger.info("shutting down: no new associations; finishing the current series" if self.current else
                    "shutting down")  # fmt: skip
        if self._server is not None:
            self._ae.shutdown()
            self._server = None
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout)
        logger.info("stopped")

    # -- association logs --------------------------------------------------------------------------------------------
    @staticmethod
    def _peer(event: Any) -> str:
        req = event.assoc.requestor
        return f"AE '{req.ae_title}' at {req.address}:{req.port}"

    def _handle_accepted(self, event: Any) -> None:
        with self._counts_lock:
            self._assoc_counts[id(event.assoc)] = collections.Counter()
        logger.info(f"association from {self._peer(event)} accepted")

    def _handle_closed(self, event: Any) -> None:
        with self._counts_lock:
            counts = self._assoc_counts.pop(id(event.assoc), None)
        if counts is not None:
            logger.info(
                f"association from {self._peer(event)} closed: {counts['stored']} instance(s) stored, "
                f"{counts['duplicate']} already stored, {counts['refused']} refused"
            )

    def _count(self, event: Any, what: str) -> None:
        with self._counts_lock:
            self._assoc_counts.setdefault(id(event.assoc), collections.Counter())[what] += 1

    # -- C-STORE -----------------------------------------------------------------------------------------------------
    def _refuse(self, event: Any, code: int, reason: str, sop: str = "", series: str = "") -> Dataset:
        self._count(event, "refused")
        logger.warning(f"C-STORE from {self._peer(event)} refused with 0x{code:04X}: {reason}")
        self.spool.record_failure({"kind": "instance", "status": f"0x{code:04X}", "sop_instance_uid": sop,
                                   "series_uid": series, "calling_ae": event.assoc.requestor.ae_title,
                                   "reason": reason})  # fmt: skip
        return _status(code, reason)

    def _handle_store(self, event: Any) -> Dataset:
        if self._stop.is_set():
            return _status(STATUS_OUT_OF_RESOURCES, "node shutting down")
        request_sop = str(getattr(event.request, "AffectedSOPInstanceUID", "") or "")
        try:
            ds = event.dataset
            sop = str(ds.SOPInstanceUID)
            series = str(ds.SeriesInstanceUID)
            modality = str(ds.get("Modality", "") or "")
        except Exception as e:  # noqa: BLE001 -- any decoding error or missing UID: we cannot file the instance
            return self._refuse(event, STATUS_CANNOT_UNDERSTAND, f"no SOP/Series Instance UID ({type(e).__name__})",
                                request_sop)  # fmt: skip
        route = route_for(self.routes, modality)
        if route is None:
            return self._refuse(event, STATUS_NO_BUNDLE, f"no bundle for Modality '{modality}'", sop, series)
        try:
            outcome, key = self.spool.store_instance(
                event.encoded_dataset(), sop, series, check=dicom_pixel_data_error, bundle=route.name,
                modality=modality, calling_ae=event.assoc.requestor.ae_title,
            )  # fmt: skip
        except ValueError as e:  # not a DICOM UID
            return self._refuse(event, STATUS_CANNOT_UNDERSTAND, str(e), sop, series)
        except OSError as e:
            logger.exception(f"cannot spool instance {sop}")
            return self._refuse(event, STATUS_OUT_OF_RESOURCES, f"spool write failed: {e}", sop, series)
        if not isinstance(outcome, StoreOutcome):  # the pixel check's reason
            return self._refuse(event, STATUS_BAD_PIXEL_DATA, outcome.split(": ", 1)[-1], sop, series)
        if outcome is StoreOutcome.QUEUE_FULL:
            self._count(event, "refused")
            logger.warning(
                f"C-STORE of {sop} from {self._peer(event)} refused with 0xA700: {self.spool.max_queued} series "
                "waiting (--max-queued); the sender should retry later"
            )
            return _status(STATUS_OUT_OF_RESOURCES, "too many series waiting; retry later")
        self._count(event, outcome.value)
        return _status(STATUS_SUCCESS)

    # -- worker ------------------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            self._queue.extend(k for k in self.spool.due() if k not in self._queue)
            if not self._queue:
                self._stop.wait(0.2)
                continue
            key = self._queue.popleft()
            self.current = key
            try:
                self._process(key)
            except Exception:  # noqa: BLE001 -- the node keeps serving whatever one series does
                logger.exception(f"series {key}: unexpected error")
            finally:
                self.current = None

    def _process(self, key: str) -> None:
        record = self.spool.record(key)
        state = SeriesState(record.state)
        if state is SeriesState.QUEUED:
            route = next((r for r in self.routes if r.name == record.bundle), None)
            if route is None:
                self._fail(key, f"bundle '{record.bundle}' is not served by this node any more (--bundle)")
                return
            job = self.spool.start_processing(key)
            started = time.monotonic()
            logger.info(f"series {key}: inference with {route.name} (attempt {record.attempts + 1})")
            try:
                result = self.runner(route, self.spool.instances_dir(key), job)
            except Exception as e:  # noqa: BLE001 -- a failed case; the node keeps serving
                logger.exception(f"series {key}: inference failed")
                self._fail(key, f"{type(e).__name__}: {e}")
                return
            for row in result.skipped:
                self.spool.record_failure({"kind": "case", "key": key, "series_uid": record.series_uid,
                                           "reason": f"{row.get('case_id')}: {row.get('error')}"})  # fmt: skip
            logger.info(f"series {key}: {len(result.files)} result(s) in {time.monotonic() - started:.1f} s")
            self.spool.results_ready(key, result.files)
            state = SeriesState.SENDING
        if state is SeriesState.SENDING:
            try:
                self._send(key, lambda: self.spool.unsent(key), lambda path, sop: self.spool.mark_sent(key, path, sop))
            except SendError as e:
                self._fail(key, str(e))
                return
            self.spool.finish(key)

    def _send(self, key: str, files: Callable[[], list[Path]], on_sent: Callable[[Path, str], None]) -> None:
        """Send ``files()`` (asked again before each try: what is left), trying ``send_retries`` more times."""
        for attempt in range(self.send_retries + 1):
            try:
                send_files(files(), self.destination, self.ae_title, on_sent)
                return
            except SendError as e:
                if attempt == self.send_retries or self._stop.is_set():
                    raise
                logger.warning(f"series {key}: {e}; retrying in {self.retry_delay} s")
                time.sleep(self.retry_delay)

    def _fail(self, key: str, reason: str) -> None:
        """Fail the series (log, ``failures.jsonl``) and, with ``failure_sr``, send a failure SR referencing its
        instances (a best effort: an error doing so is logged, the node goes on)."""
        record = self.spool.fail(key, reason)
        route = next((r for r in self.routes if r.name == record.bundle), None)
        logger.error(f"series {key} failed: {reason}")
        if not self.failure_sr:
            return
        try:
            files = sorted(self.spool.instances_dir(key).glob("*.dcm"))
            sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
            name, version = bundle_identity(route.bundle_dir) if route is not None else (record.bundle, "unknown")
            path = self.spool.series_dir(key) / "failure_sr.dcm"
            write_failure_sr(path, sources, reason, name, version)
            self._send(key, lambda: [path], lambda p, sop: logger.info(f"series {key}: failure SR {sop} sent"))
        except Exception:  # noqa: BLE001 -- the report of a failure must not stop the node
            logger.exception(f"series {key}: the failure SR could not be written or sent")
