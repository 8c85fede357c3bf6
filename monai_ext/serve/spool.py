# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The DICOM node's spool: received instances and the state of each series on disk, so that a crash or a restart
loses nothing and processes nothing twice. No networking here; :mod:`monai_ext.serve.node` drives it.

Layout under the spool folder::

    incoming/                          temporary files of instances being received (cleared at start)
    series/<key>/                      one batch of a series; key = SeriesInstanceUID, or <uid>~<n> (n >= 2) for
                                       instances of the series that arrive after its batch went to processing
        state.json                     the series record (:class:`SeriesRecord`), replaced atomically
        instances/<SOPInstanceUID>.dcm the received instances, as sent (DICOM file: preamble, file meta, dataset)
        jobs/attempt-<n>/              ``output_dir`` of inference attempt n (kept: results are never overwritten)
        sent/<result file>.sent        one marker per result C-STOREd to the destination (its SOPInstanceUID)
    failures.jsonl                     one JSON line per failed series or refused instance, with the reason

State machine of a series (:class:`SeriesState`)::

    receiving -> queued         no instance for ``series_timeout`` seconds
    queued -> receiving         a further instance arrived before processing started (the quiet timer re-arms)
    queued -> processing        the worker started inference attempt n (``attempts`` = n, persisted first)
    processing -> sending       inference finished; ``results`` lists the DICOM files to send
    processing -> queued        a restart found it interrupted (attempts < max_attempts), or a clean shutdown
    processing -> failed        the bundle failed, wrote no DICOM result, or attempts reached max_attempts
    sending -> sent             every result was C-STOREd (each one recorded under sent/ as it succeeded)
    sending -> failed           the destination refused or could not be reached after the retries

Every change is written (temp file, fsync, rename, fsync of the folder) before it takes effect, and an instance is
renamed into ``instances/`` before the node answers its C-STORE with success.

Crash semantics (what :meth:`Spool.recover` does at the next start):

- an instance whose C-STORE got no success is not in the spool (its temporary file is deleted); the sender sends it
  again; an instance sent again after its success is recognised by its SOPInstanceUID and not stored twice;
- a ``receiving`` series waits a full ``series_timeout`` from the restart (the sender may still be sending);
- a ``queued`` series is processed; a ``processing`` series (crash during inference) is processed once more, in a new
  ``jobs/attempt-<n+1>`` folder: inference may run twice, but nothing of the interrupted attempt is ever sent, so
  the destination gets one result set; after ``max_attempts`` interrupted attempts it fails instead;
- a ``sending`` series sends the results not yet recorded under ``sent/``, without new inference: a result is sent
  once, except when the crash falls between the destination's success and the fsync of its marker, where that one
  result is sent again with the same SOPInstanceUID (the destination sees the same instance twice);
- ``sent`` and ``failed`` series are never processed again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

__all__ = ["SeriesState", "SeriesRecord", "StoreOutcome", "Spool", "write_durably", "TRANSITIONS"]

logger = logging.getLogger("monai_ext.serve")


class SeriesState(str, Enum):
    """Where a series is in the node (see the module docstring for the transitions)."""

    RECEIVING = "receiving"
    QUEUED = "queued"
    PROCESSING = "processing"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


TRANSITIONS: dict[SeriesState, frozenset[SeriesState]] = {
    SeriesState.RECEIVING: frozenset({SeriesState.QUEUED}),
    SeriesState.QUEUED: frozenset({SeriesState.RECEIVING, SeriesState.PROCESSING}),
    SeriesState.PROCESSING: frozenset({SeriesState.SENDING, SeriesState.QUEUED, SeriesState.FAILED}),
    SeriesState.SENDING: frozenset({SeriesState.SENT, SeriesState.FAILED}),
    SeriesState.SENT: frozenset(),
    SeriesState.FAILED: frozenset(),
}
"""The allowed state changes; any other raises ``ValueError``."""

_OPEN = (SeriesState.RECEIVING, SeriesState.QUEUED)  # a batch still taking instances


@dataclass
class SeriesRecord:
    """The persisted record of one batch of a series (``series/<key>/state.json``).

    Attributes:
        key: folder name (``SeriesInstanceUID`` or ``<uid>~<n>``).
        series_uid: the SeriesInstanceUID.
        state: :class:`SeriesState` value.
        bundle: name of the bundle route chosen from the first instance's Modality.
        modality: the first instance's Modality.
        last_received: time of the last instance stored (seconds since the epoch).
        completed: when the series went to ``queued`` (seconds since the epoch), or None.
        attempts: inference attempts started.
        results: result files of the finished attempt, relative to the series folder (``sending``/``sent``).
        reason: why the series failed, or None.
        calling_ae: AE title of the first sender.
    """

    key: str
    series_uid: str
    state: str = SeriesState.RECEIVING.value
    bundle: str = ""
    modality: str = ""
    last_received: float = 0.0
    completed: float | None = None
    attempts: int = 0
    results: list[str] = field(default_factory=list)
    reason: str | None = None
    calling_ae: str = ""


class StoreOutcome(str, Enum):
    """What :meth:`Spool.store_instance` did with an instance."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # the same SOPInstanceUID is already in the spool: not stored again
    QUEUE_FULL = "queue_full"  # it would open a new series while max_queued series wait


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that after a crash ``path`` holds either its old content or all of ``data``:
    a temporary name in the same folder, fsync, ``os.replace``, fsync of the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _safe_name(uid: str) -> str:
    """A UID as a file name; raises ``ValueError`` for anything but a DICOM UID (digits and dots, at most 64)."""
    uid = str(uid).strip().rstrip("\x00")
    if not uid or len(uid) > 64 or any(c not in "0123456789." for c in uid):
        raise ValueError(f"'{uid}' is not a DICOM UID (digits and dots, at most 64 characters).")
    return uid


class Spool:
    """The node's persistent series store and state machine (thread-safe: one lock around every change).

    Args:
        root: the spool folder (created).
        series_timeout: seconds without an instance after which a receiving series is complete.
        max_queued: at most this many series may wait (``receiving`` + ``queued``); an instance that would open a
            further series is refused (:attr:`StoreOutcome.QUEUE_FULL`).
        max_attempts: inference attempts of a series before an interrupted one is failed (a series that crashed the
            node every time is not retried forever). Defaults to 2.
        clock: the time source (seconds). Defaults to ``time.time``.

    Raises:
        ValueError: ``series_timeout`` <= 0, ``max_queued`` < 1 or ``max_attempts`` < 1.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        series_timeout: float,
        max_queued: int,
        max_attempts: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if series_timeout <= 0 or max_queued < 1 or max_attempts < 1:
            raise ValueError(
                f"series_timeout={series_timeout} must be > 0, max_queued={max_queued} and "
                f"max_attempts={max_attempts} >= 1."
            )
        self.root = Path(root)
        self.series_timeout = float(series_timeout)
        self.max_queued = int(max_queued)
        self.max_attempts = int(max_attempts)
        self.clock = clock
        self._lock = threading.RLock()
        self._records: dict[str, SeriesRecord] = {}
        self._deadlines: dict[str, float] = {}  # receiving series: when they become complete
        self._open: dict[str, str] = {}  # series uid -> key of its batch still taking instances
        self._sops: dict[str, str] = {}  # SOPInstanceUID -> key holding it
        for sub in ("incoming", "series"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- paths -------------------------------------------------------------------------------------------------------
    def series_dir(self, key: str) -> Path:
        return self.root / "series" / key

    def instances_dir(self, key: str) -> Path:
        return self.series_dir(key) / "instances"

    def job_dir(self, key: str, attempt: int) -> Path:
        return self.series_dir(key) / "jobs" / f"attempt-{attempt}"

    @property
    def failures_path(self) -> Path:
        return self.root / "failures.jsonl"

    # -- records -----------------------------------------------------------------------------------------------------
    def record(self, key: str) -> SeriesRecord:
        """A copy of the record of ``key``."""
        with self._lock:
            return SeriesRecord(**asdict(self._records[key]))

    def records(self) -> list[SeriesRecord]:
        with self._lock:
            return [SeriesRecord(**asdict(r)) for r in self._records.values()]

    def _save(self, record: SeriesRecord) -> None:
        folder = self.series_dir(record.key)
        folder.mkdir(parents=True, exist_ok=True)
        write_durably(folder / "state.json", json.dumps(asdict(record), indent=1).encode())
        self._records[record.key] = record

    def _move(self, key: str, new: SeriesState, **changes: Any) -> SeriesRecord:
        """Persist ``key``'s change to ``new`` (with further field ``changes``)."""
        with self._lock:
            old = self._records[key]
            if new not in TRANSITIONS[SeriesState(old.state)]:
                raise ValueError(f"series {key}: no transition {old.state} -> {new.value}.")
            record = SeriesRecord(**{**asdict(old), **changes, "state": new.value})
            self._save(record)
            if new is not SeriesState.RECEIVING:
                self._deadlines.pop(key, None)
            if new not in _OPEN and self._open.get(record.series_uid) == key:
                del self._open[record.series_uid]
            logger.info(f"series {key}: {old.state} -> {new.value}" + (f" ({record.reason})" if record.reason else ""))
            return record

    def waiting_count(self) -> int:
        """Series waiting: ``receiving`` or ``queued`` (the bound of ``max_queued``)."""
        with self._lock:
            return sum(SeriesState(r.state) in _OPEN for r in self._records.values())

    # -- start -------------------------------------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Read every ``state.json`` (at start): receiving series re-arm a full quiet timer from now, processing ones
        go back to ``queued`` (or to ``failed`` after ``max_attempts``), and return the keys to work on, oldest
        completion first: ``queued`` then ``sending`` (whose unsent results are sent, without new inference).

        Raises:
            ValueError: a ``state.json`` cannot be read (names it; move the folder away to skip it).
        """
        with self._lock:
            for tmp in (self.root / "incoming").iterdir():
                tmp.unlink()  # never acknowledged: the sender got no success and sends it again
            now = self.clock()
            for folder in sorted((self.root / "series").iterdir()):
                state_file = folder / "state.json"
                if not state_file.is_file():
                    continue
                try:
                    record = SeriesRecord(**json.loads(state_file.read_text()))
                    SeriesState(record.state)
                except (ValueError, TypeError) as e:
                    raise ValueError(f"cannot read the series record '{state_file}': {e}; move its folder away.")
                self._records[record.key] = record
                for f in self.instances_dir(record.key).glob("*.dcm"):
                    self._sops[f.stem] = record.key
                state = SeriesState(record.state)
                if state in _OPEN and not any(self.instances_dir(record.key).glob("*.dcm")):
                    shutil.rmtree(folder)  # created for an instance whose rename the crash cut off: never acknowledged
                    del self._records[record.key]
                    continue
                if state in _OPEN:
                    self._open[record.series_uid] = record.key
                if state is SeriesState.RECEIVING:
                    self._deadlines[record.key] = now + self.series_timeout
                elif state is SeriesState.PROCESSING:
                    if record.attempts >= self.max_attempts:
                        self.fail(record.key, f"inference was interrupted {record.attempts} time(s) (node crash?)")
                    else:
                        self._move(record.key, SeriesState.QUEUED)
            work = [r for r in self._records.values() if r.state in (SeriesState.QUEUED, SeriesState.SENDING)]
            return [r.key for r in sorted(work, key=lambda r: (r.completed or 0.0, r.key))]

    # -- receiving ---------------------------------------------------------------------------------------------------
    def store_instance(
        self,
        encoded: bytes,
        sop_uid: str,
        series_uid: str,
        check: Callable[[Path], str | None] = lambda path: None,
        bundle: str = "",
        modality: str = "",
        calling_ae: str = "",
    ) -> tuple[StoreOutcome | str, str | None]:
        """Persist one received instance before it is acknowledged.

        The bytes go to ``incoming/`` (fsync), ``check(path)`` may refuse them (e.g. pixel data shorter than the
        header promises), then they are renamed into their series' ``instances/`` and the series record is saved.

        Args:
            encoded: the DICOM file bytes (preamble, file meta, dataset as received).
            sop_uid, series_uid: the instance's SOPInstanceUID and SeriesInstanceUID.
            check: returns why the stored file is unusable, or None.
            bundle, modality, calling_ae: recorded with a new series.

        Returns:
            ``(outcome, key)``: a :class:`StoreOutcome` and the series key; or ``(error text, None)`` when ``check``
            refused the file (nothing kept).

        Raises:
            ValueError: a UID is not a DICOM UID.
            OSError: the disk write failed (nothing kept).
        """
        sop, series = _safe_name(sop_uid), _safe_name(series_uid)
        with self._lock:
            if sop in self._sops:
                return StoreOutcome.DUPLICATE, self._sops[sop]
            if series not in self._open and self.waiting_count() >= self.max_queued:
                return StoreOutcome.QUEUE_FULL, None
        tmp = self.root / "incoming" / f"{sop}.{threading.get_ident()}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(encoded)
                f.flush()
                os.fsync(f.fileno())
            error = check(tmp)
            if error is not None:
                return error, None
            with self._lock:
                if sop in self._sops:  # the same instance on two associations at once
                    return StoreOutcome.DUPLICATE, self._sops[sop]
                key = self._open.get(series)
                now = self.clock()
                if key is None:  # a new series: its record first, so that a crash never leaves an unknown folder
                    if self.waiting_count() >= self.max_queued:
                        return StoreOutcome.QUEUE_FULL, None
                    key = self._new_key(series)
                    self.instances_dir(key).mkdir(parents=True)
                    self._save(SeriesRecord(key, series, bundle=bundle, modality=modality, calling_ae=calling_ae,
                                            last_received=now))  # fmt: skip
                    self._open[series] = key
                    logger.info(f"series {key}: receiving ({modality} for bundle {bundle})")
                target = self.instances_dir(key) / f"{sop}.dcm"
                os.replace(tmp, target)
                _fsync_dir(target.parent)
                self._sops[sop] = key
                record = self._records[key]
                if record.state == SeriesState.QUEUED.value:
                    self._move(key, SeriesState.RECEIVING, last_received=now, completed=None)
                else:
                    self._save(SeriesRecord(**{**asdict(record), "last_received": now}))
                self._deadlines[key] = now + self.series_timeout
                return StoreOutcome.STORED, key
        finally:
            tmp.unlink(missing_ok=True)

    def _new_key(self, series: str) -> str:
        key, n = series, 1
        while key in self._records or self.series_dir(key).exists():
            n += 1
            key = f"{series}~{n}"
        return key

    def due(self) -> list[str]:
        """Move every receiving series whose quiet time has passed to ``queued``; return their keys."""
        with self._lock:
            now = self.clock()
            done = sorted((t, k) for k, t in self._deadlines.items() if t <= now)
            for _, key in done:
                self._move(key, SeriesState.QUEUED, completed=now)
            return [k for _, k in done]

    # -- processing --------------------------------------------------------------------------------------------------
    def start_processing(self, key: str) -> Path:
        """``queued -> processing``, counting the attempt (persisted before inference starts); returns the new, empty
        job folder of this attempt."""
        with self._lock:
            attempt = self._records[key].attempts + 1
            self._move(key, SeriesState.PROCESSING, attempts=attempt)
            job = self.job_dir(key, attempt)
            if job.exists():  # a partial folder of an attempt that died before its record was saved: keep it aside
                shutil.move(str(job), str(job.with_name(f"{job.name}-interrupted-{int(self.clock())}")))
            job.mkdir(parents=True)
            return job

    def requeue(self, key: str) -> SeriesRecord:
        """``processing -> queued`` (a clean shutdown during inference); the attempt still counts."""
        return self._move(key, SeriesState.QUEUED)

    def results_ready(self, key: str, files: list[Path]) -> SeriesRecord:
        """``processing -> sending`` with the result files (absolute, under the series folder)."""
        folder = self.series_dir(key)
        return self._move(key, SeriesState.SENDING, results=[str(Path(f).relative_to(folder)) for f in files])

    def _marker(self, key: str, result: str) -> Path:
        return self.series_dir(key) / "sent" / (result.replace("/", "__") + ".sent")

    def unsent(self, key: str) -> list[Path]:
        """The result files of ``key`` not yet recorded as sent, in order."""
        record = self.record(key)
        return [self.series_dir(key) / r for r in record.results if not self._marker(key, r).exists()]

    def mark_sent(self, key: str, path: Path, sop_uid: str) -> None:
        """Record (durably) that the result ``path`` (SOPInstanceUID ``sop_uid``) was C-STOREd."""
        result = str(Path(path).relative_to(self.series_dir(key)))
        marker = self._marker(key, result)
        marker.parent.mkdir(exist_ok=True)
        write_durably(marker, json.dumps({"sop_instance_uid": sop_uid, "time": self.clock()}).encode())

    def finish(self, key: str) -> SeriesRecord:
        """``sending -> sent``.

        Raises:
            ValueError: a result is not recorded as sent.
        """
        if self.unsent(key):
            raise ValueError(f"series {key}: results not sent yet: {[p.name for p in self.unsent(key)]}.")
        return self._move(key, SeriesState.SENT)

    def fail(self, key: str, reason: str) -> SeriesRecord:
        """``-> failed`` with ``reason``, appended to ``failures.jsonl``."""
        with self._lock:
            record = self._move(key, SeriesState.FAILED, reason=reason)
            self.record_failure({"kind": "series", "key": key, "series_uid": record.series_uid,
                                 "bundle": record.bundle, "attempts": record.attempts, "reason": reason})  # fmt: skip
            return record

    def record_failure(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` (with the time) as one JSON line to ``failures.jsonl`` (fsync)."""
        line = json.dumps({"time": self.clock(), **entry}) + "\n"
        with self._lock, open(self.failures_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def failures(self) -> list[dict[str, Any]]:
        """The entries of ``failures.jsonl``."""
        if not self.failures_path.is_file():
            return []
        return [json.loads(line) for line in self.failures_path.read_text(encoding="utf-8").splitlines() if line]
