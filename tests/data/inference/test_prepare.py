# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference.prepare: pending cases (each kind's result file), the one-call datalist of a
resumable run with skipped.csv, for radiographs and volumes, and the first rank's decision under two gloo ranks."""

from __future__ import annotations

import csv
import json
import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from monai_ext.data.inference import case_kind, pending_cases, prepare_inference_datalist

KINDS = ["radiograph", "volume"]


def test_pending_cases_leave_out_existing_results(tmp_path):
    datalist = [{"image": "/x/a.png", "case_id": "a"}, {"image": "/x/b.png", "case_id": "b"}]
    out = tmp_path / "out"
    out.mkdir()
    assert pending_cases(datalist, out, "radiograph") == datalist
    (out / "b.json").write_text("{}")
    assert pending_cases(datalist, out, "radiograph") == [datalist[0]]
    assert pending_cases(datalist, out, "radiograph", overwrite=True) == datalist
    assert case_kind("radiograph").result_path(out, "b") == out / "b.json"
    with pytest.raises(ValueError, match=r"case id '\.\./evil' is not a safe file name"):
        pending_cases([{"image": "/x/c.png", "case_id": "../evil"}], out, "radiograph")
    with pytest.raises(KeyError, match="have no 'case_id'"):
        pending_cases([{"image": "/x/c.png"}], out, "radiograph")


def test_volume_result_path_and_pending(tmp_path):
    assert case_kind("volume").result_path(tmp_path, "p1__ct") == tmp_path / "p1__ct_seg.nii.gz"
    with pytest.raises(ValueError, match="not a safe file name"):
        case_kind("volume").result_path(tmp_path, "../evil")
    items = [{"case_id": "a", "image": "a"}, {"case_id": "b", "image": "b"}]
    (tmp_path / "a_seg.nii.gz").write_bytes(b"done")
    (tmp_path / "b.json").write_text("{}")  # another kind of result does not count
    assert pending_cases(items, tmp_path, "volume") == [items[1]]
    assert pending_cases(items, tmp_path, "volume", overwrite=True) == items
    with pytest.raises(KeyError, match="have no 'case_id'"):
        pending_cases([{"image": "a"}], tmp_path, "volume")


@pytest.mark.parametrize("kind, other", [("radiograph", "volume"), ("volume", "radiograph")])
def test_only_the_kinds_own_result_marks_a_case_done(tmp_path, kind, other, caplog):
    items = [{"case_id": c, "image": c} for c in ("a", "b", "c")]
    case_kind(kind).result_path(tmp_path, "b").write_bytes(b"done")
    case_kind(other).result_path(tmp_path, "c").write_bytes(b"another kind's result")
    with caplog.at_level("INFO", logger="monai_ext.data.inference.prepare"):
        assert pending_cases(items, tmp_path, kind) == [items[0], items[2]]
    assert "1 of 3 cases already have a result" in caplog.text and "left out (overwrite=False)" in caplog.text
    assert pending_cases(items, tmp_path, kind, overwrite=True) == items
    with pytest.raises(ValueError, match="Unsupported option 'segmentation'"):
        pending_cases(items, tmp_path, "segmentation")


def test_prepare_writes_skipped_csv_and_resumes(input_dir, tmp_path, png, sha8):
    out = tmp_path / "out"
    todo = prepare_inference_datalist(input_dir, out, "radiograph", reader="PydicomReader")
    assert [d["case_id"] for d in todo] == [
        "dicom__RG1_UNCI",
        "png__A-" + sha8("png/A.jpg"),
        "png__a-" + sha8("png/a.png"),
    ]
    with open(out / "skipped.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case_id", "image", "error"]
    assert [r[:2] for r in rows[1:]] == [
        ["dicom__IM0001", str(input_dir / "dicom/IM0001")],
        ["png__broken", str(input_dir / "png/broken.png")],
    ]
    assert rows[2][2].startswith("OSError: ") and "truncated" in rows[2][2].lower()  # PIL: header check runs first
    # results of two cases exist and the broken files are fixed: only the third good case and the fixed ones remain
    for case in todo[:2]:
        (out / f"{case['case_id']}.json").write_text(json.dumps({"case_id": case["case_id"]}))
    png(input_dir / "png/broken.png", seed=4)
    png(input_dir / "dicom/IM0001.png", seed=5)
    (input_dir / "dicom/IM0001").unlink()
    todo = prepare_inference_datalist(input_dir, out, "radiograph", reader="PydicomReader", level="header")
    assert [d["case_id"] for d in todo] == ["dicom__IM0001", "png__a-" + sha8("png/a.png"), "png__broken"]
    assert (out / "skipped.csv").read_text().splitlines() == ["case_id,image,error"]


def test_prepare_writes_skipped_and_keeps_it_when_unchanged(tree, tmp_path):
    out = tmp_path / "out"
    ready = prepare_inference_datalist(tree, out, "volume")
    assert [i["case_id"] for i in ready] == ["a", "p1__ct", "sub__B"]
    with open(out / "skipped.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case_id", "image", "error"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("multi", str(tree / "multi")), ("single", str(tree / "single"))]
    os.utime(out / "skipped.csv", (1_000_000, 1_000_000))
    (out / "a_seg.nii.gz").write_bytes(b"done")
    assert [i["case_id"] for i in prepare_inference_datalist(tree, out, "volume")] == ["p1__ct", "sub__B"]
    assert os.stat(out / "skipped.csv").st_mtime == 1_000_000  # same rows: file untouched


@pytest.mark.parametrize("kind", KINDS)
def test_prepare_resumes_and_rewrites_skipped_only_when_it_changes(tmp_path, case_file, kind_suffix, kind):
    inputs, out = tmp_path / "in", tmp_path / "out"
    for name in ("a", "b", "c"):
        case_file(kind, inputs / name)
    broken = inputs / f"broken{kind_suffix[kind]}"
    broken.write_bytes(b"not an image at all" * 8)
    assert [d["case_id"] for d in prepare_inference_datalist(inputs, out, kind)] == ["a", "b", "c"]
    with open(out / "skipped.csv", newline="") as f:
        assert [r[:2] for r in csv.reader(f)] == [["case_id", "image"], ["broken", str(broken)]]
    os.utime(out / "skipped.csv", (1_000_000, 1_000_000))
    case_kind(kind).result_path(out, "a").write_bytes(b"done")
    assert [d["case_id"] for d in prepare_inference_datalist(inputs, out, kind)] == ["b", "c"]
    assert os.stat(out / "skipped.csv").st_mtime == 1_000_000  # same rows: file untouched
    assert [d["case_id"] for d in prepare_inference_datalist(inputs, out, kind, overwrite=True)] == ["a", "b", "c"]
    broken.unlink()
    assert [d["case_id"] for d in prepare_inference_datalist(inputs, out, kind, level="header")] == ["b", "c"]
    assert (out / "skipped.csv").read_text().splitlines() == ["case_id,image,error"]  # the fixed case is gone


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_worker(rank: int, port: int, input_dir: str, out_dir: str, kind: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=60)
    )
    try:
        if rank == 1:  # a result appears after rank 0 listed the cases, before rank 1 would: rank 0's list counts
            time.sleep(0.5)
            case_kind(kind).result_path(out_dir, "a").write_bytes(b"{}")
        todo = prepare_inference_datalist(input_dir, out_dir, kind, level="header")
        try:
            prepare_inference_datalist(f"{input_dir}/missing", out_dir, kind)
            error = ""
        except FileNotFoundError as e:
            error = str(e)
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps({"todo": todo, "error": error}))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_prepare_under_two_gloo_ranks_is_decided_by_rank_0(tmp_path, case_file, kind):
    case_file(kind, tmp_path / "in" / "a")
    case_file(kind, tmp_path / "in" / "b")
    (tmp_path / "out").mkdir()
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(
        _prepare_worker,
        args=(_free_port(), str(tmp_path / "in"), str(tmp_path / "out"), kind),
        nprocs=2,
        join=True,
        start_method=start_method,
    )
    results = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in range(2)]
    assert [d["case_id"] for d in results[0]["todo"]] == ["a", "b"]
    assert results[1] == results[0]
    assert "inference input not found" in results[1]["error"]
