# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The DICOM node's spool and series state machine without networking: durable instances, the quiet timer, the
bound on waiting series, recovery after a crash (a new Spool on the same folder), sent-result records."""

from __future__ import annotations

import json

import pytest

from monai_ext.serve.routing import parse_bundle_spec, parse_forward, parse_routes
from monai_ext.serve.spool import TRANSITIONS, SeriesState, Spool, StoreOutcome

S1, S2, S3 = "1.2.3.1", "1.2.3.2", "1.2.3.3"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _spool(tmp_path, clock, **kw) -> Spool:
    return Spool(tmp_path / "spool", kw.pop("series_timeout", 5.0), kw.pop("max_queued", 2), clock=clock, **kw)


def test_instances_are_files_before_store_returns_and_timer_completes_the_series(tmp_path):
    clock = Clock()
    spool = _spool(tmp_path, clock)
    assert spool.store_instance(b"first", "1.9.1", S1, bundle="b", modality="CT") == (StoreOutcome.STORED, S1)
    assert (spool.instances_dir(S1) / "1.9.1.dcm").read_bytes() == b"first"
    assert json.loads((spool.series_dir(S1) / "state.json").read_text())["state"] == "receiving"
    clock.now += 4.0
    assert spool.store_instance(b"second", "1.9.2", S1) == (StoreOutcome.STORED, S1)
    clock.now += 4.9  # 4.9 s after the last instance: not quiet long enough
    assert spool.due() == []
    clock.now += 0.1
    assert spool.due() == [S1]
    record = spool.record(S1)
    assert (record.state, record.completed, record.bundle, record.modality) == ("queued", 1009.0, "b", "CT")
    assert sorted(p.name for p in spool.instances_dir(S1).iterdir()) == ["1.9.1.dcm", "1.9.2.dcm"]
    assert list((spool.root / "incoming").iterdir()) == []  # no temporary file left


def test_duplicate_is_not_stored_again_and_a_refused_file_is_not_kept(tmp_path):
    spool = _spool(tmp_path, Clock())
    spool.store_instance(b"a", "1.9.1", S1)
    assert spool.store_instance(b"other bytes", "1.9.1", S1) == (StoreOutcome.DUPLICATE, S1)
    assert (spool.instances_dir(S1) / "1.9.1.dcm").read_bytes() == b"a"
    seen = []
    outcome = spool.store_instance(b"short", "1.9.2", S1, check=lambda p: seen.append(p.read_bytes()) or "too short")
    assert outcome == ("too short", None) and seen == [b"short"]  # checked on the written bytes
    assert not (spool.instances_dir(S1) / "1.9.2.dcm").exists()
    assert list((spool.root / "incoming").iterdir()) == []
    with pytest.raises(ValueError, match="not a DICOM UID"):
        spool.store_instance(b"x", "../evil", S1)


def test_max_queued_refuses_new_series_but_not_instances_of_a_waiting_one(tmp_path):
    clock = Clock()
    spool = _spool(tmp_path, clock, max_queued=2)
    spool.store_instance(b"a", "1.9.1", S1)
    spool.store_instance(b"b", "1.9.2", S2)
    assert spool.store_instance(b"c", "1.9.3", S3) == (StoreOutcome.QUEUE_FULL, None)
    assert not spool.series_dir(S3).exists()
    assert spool.store_instance(b"d", "1.9.4", S1)[0] is StoreOutcome.STORED  # a waiting series keeps receiving
    clock.now += 10
    assert spool.due() == [S1, S2]
    assert spool.store_instance(b"c", "1.9.3", S3)[0] is StoreOutcome.QUEUE_FULL  # queued still counts
    spool.start_processing(S1)
    assert spool.store_instance(b"c", "1.9.3", S3) == (StoreOutcome.STORED, S3)  # processing does not


def test_late_instance_reopens_a_queued_series_and_starts_a_new_batch_after_processing(tmp_path):
    clock = Clock()
    spool = _spool(tmp_path, clock)
    spool.store_instance(b"a", "1.9.1", S1)
    clock.now += 6
    assert spool.due() == [S1]
    spool.store_instance(b"b", "1.9.2", S1)  # before processing: same batch, receiving again
    assert spool.record(S1).state == "receiving" and spool.record(S1).completed is None
    clock.now += 6
    spool.due()
    spool.start_processing(S1)
    assert spool.store_instance(b"c", "1.9.3", S1) == (StoreOutcome.STORED, f"{S1}~2")
    assert spool.record(f"{S1}~2").series_uid == S1


def test_state_machine_refuses_other_transitions(tmp_path):
    spool = _spool(tmp_path, Clock())
    spool.store_instance(b"a", "1.9.1", S1)
    with pytest.raises(ValueError, match="no transition receiving -> processing"):
        spool.start_processing(S1)
    assert TRANSITIONS[SeriesState.SENT] == frozenset() and TRANSITIONS[SeriesState.FAILED] == frozenset()


def test_crash_recovery_rearms_requeues_and_never_redoes_sent(tmp_path):
    """Four series in four states when the process dies; a new Spool on the folder is the restarted node."""
    clock = Clock()
    spool = _spool(tmp_path, clock, max_queued=5)
    for n, uid in enumerate((S1, S2, S3, "1.2.3.4", "1.2.3.5")):
        spool.store_instance(b"x", f"1.9.{n}", uid)
    clock.now += 6
    spool.due()
    job = spool.start_processing(S1)  # S1: processing (crash during inference)
    (job / "partial.dcm").write_bytes(b"half")
    job2 = spool.start_processing(S2)  # S2: results ready, one of two sent (crash while sending)
    for name in ("a.dcm", "b.dcm"):
        (job2 / name).write_bytes(name.encode())
    spool.results_ready(S2, [job2 / "a.dcm", job2 / "b.dcm"])
    spool.mark_sent(S2, job2 / "a.dcm", "9.9.1")
    job3 = spool.start_processing(S3)  # S3: sent
    (job3 / "r.dcm").write_bytes(b"r")
    spool.results_ready(S3, [job3 / "r.dcm"])
    spool.mark_sent(S3, job3 / "r.dcm", "9.9.2")
    spool.finish(S3)
    (spool.root / "incoming" / "1.9.99.123.tmp").write_bytes(b"never acknowledged")
    spool.store_instance(b"y", "1.9.10", "1.2.3.5")  # 1.2.3.5: receiving again at the crash

    clock.now += 100
    restarted = _spool(tmp_path, clock, max_queued=5)
    work = restarted.recover()
    assert work == [S1, S2, "1.2.3.4"]  # S3 (sent) is not; 1.2.3.5 waits for its timer
    assert restarted.record(S1).state == "queued" and restarted.record(S1).attempts == 1
    assert restarted.record(S2).state == "sending"
    assert [p.name for p in restarted.unsent(S2)] == ["b.dcm"]  # a.dcm is never sent again
    assert restarted.record(S3).state == "sent"
    assert list((restarted.root / "incoming").iterdir()) == []
    assert restarted.due() == []  # the receiving series got a full quiet time from the restart
    clock.now += 5
    assert restarted.due() == ["1.2.3.5"]
    assert restarted.store_instance(b"x", "1.9.1", S2)[0] is StoreOutcome.DUPLICATE  # known instances are known
    job_again = restarted.start_processing(S1)
    assert job_again.name == "attempt-2" and not any(job_again.iterdir()) and (job / "partial.dcm").exists()

    clock.now += 1
    again = _spool(tmp_path, clock, max_queued=5)  # a second crash during S1's second attempt
    assert S1 not in again.recover()
    record = again.record(S1)
    assert record.state == "failed" and "interrupted 2 time(s)" in record.reason
    assert [f["key"] for f in again.failures()] == [S1]


def test_finish_refuses_unsent_results_and_fail_is_recorded(tmp_path):
    clock = Clock()
    spool = _spool(tmp_path, clock)
    spool.store_instance(b"a", "1.9.1", S1)
    clock.now += 6
    spool.due()
    job = spool.start_processing(S1)
    (job / "a.dcm").write_bytes(b"a")
    spool.results_ready(S1, [job / "a.dcm"])
    with pytest.raises(ValueError, match="not sent yet"):
        spool.finish(S1)
    spool.fail(S1, "destination down")
    assert spool.failures()[0]["reason"] == "destination down" and spool.record(S1).state == "failed"


def test_routes_and_forward_parsing(tmp_path):
    bundle = tmp_path / "my_bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "inference.json").write_text("{}")
    (bundle / "configs" / "demo.json").write_text("{}")
    route = parse_bundle_spec(f"{bundle}:cr,DX")
    assert route.modalities == ("CR", "DX") and route.name == "my_bundle"
    routes = parse_routes([f"{bundle}:CT"], ["my_bundle=configs/demo.json"],
                          ["my_bundle:network_def=%small_network_def", "my_bundle:image_size=64"])  # fmt: skip
    assert routes[0].configs == [str(bundle / "configs" / "demo.json")]
    assert routes[0].overrides == {"network_def": "%small_network_def", "image_size": 64}
    with pytest.raises(ValueError, match="no --bundle named 'other'"):
        parse_routes([str(bundle)], overrides=["other:a=1"])
    with pytest.raises(FileNotFoundError, match="no configs/inference.json"):
        parse_bundle_spec(str(tmp_path))
    assert parse_forward("127.0.0.1:104:PACS") == parse_forward("127.0.0.1:104:PACS")
    assert parse_forward("::1:104:PACS").host == "::1"
    with pytest.raises(ValueError, match="port"):
        parse_forward("host:x:PACS")


def test_crash_between_record_and_rename_leaves_no_empty_series(tmp_path):
    """The first instance of a series: its record is saved, then the instance renamed in. A crash in between leaves a
    record without instances; the restart removes it (nothing of it was acknowledged) and the resent instance opens
    the series under its own UID again."""
    clock = Clock()
    spool = _spool(tmp_path, clock)
    spool.store_instance(b"a", "1.9.1", S1)
    (spool.instances_dir(S1) / "1.9.1.dcm").unlink()  # as if the rename had not happened
    restarted = _spool(tmp_path, clock)
    assert restarted.recover() == [] and not restarted.series_dir(S1).exists()
    assert restarted.store_instance(b"a", "1.9.1", S1) == (StoreOutcome.STORED, S1)
