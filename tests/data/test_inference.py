# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for monai_ext.data.inference: input discovery (folder / list / .txt), case ids, pending cases, the read
check on a real DICOM, PNG and JPEG plus a corrupt DICOM and a truncated PNG, and skipped.csv."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from monai_ext.data.inference import (
    case_id_from_path,
    check_readable,
    inference_datalist,
    pending_cases,
    prepare_inference_datalist,
    result_path,
    write_skipped,
)

PREAMBLE = b"\0" * 128 + b"DICM"


def _sha8(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _png(path, seed=0, size=(40, 48)):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
    return path


def _corrupt_dicom(path, seed=0):
    """A valid preamble and random bytes after it: pydicom still parses a 'header' of garbage tags."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PREAMBLE + np.random.default_rng(seed).bytes(4000))
    return path


def _truncated_png(path):
    full = _png(path, seed=3).read_bytes()
    path.write_bytes(full[: len(full) // 2])
    return path


@pytest.mark.parametrize(
    "relative, expected",
    [
        ("a/b/c.dcm", "a__b__c"),
        ("patient 01/study#1/view1_frontal.JPG", "patient_01__study_1__view1_frontal"),
        ("1.2.840.113619.2.55.3", "1.2.840.113619.2.55.3"),  # DICOM UID name without suffix: dots kept
        ("CXR1_1_IM-0001-3001.dcm.png", "CXR1_1_IM-0001-3001.dcm"),  # OpenI: only the last image suffix goes
        ("CON.png", "_CON"),  # Windows device names
        ("nul.dcm", "_nul"),
        (".hidden.png", "hidden"),
        ("-rf.jpeg", "rf"),
        ("ü.png", "_"),
    ],
)
def test_case_id_from_path(relative, expected):
    assert case_id_from_path(relative) == expected


def test_long_case_id_is_cut_with_hash():
    relative = "d/" + "x" * 200 + ".png"
    case_id = case_id_from_path(relative)
    assert len(case_id) == 150
    assert case_id == "d__" + "x" * 138 + "-" + _sha8(relative)


@pytest.fixture
def input_dir(tmp_path, rg1_unci_path):
    root = tmp_path / "in"
    (root / "dicom").mkdir(parents=True)
    os.symlink(rg1_unci_path, root / "dicom" / "RG1_UNCI.dcm")
    _corrupt_dicom(root / "dicom" / "IM0001")  # no suffix: found by its preamble
    _png(root / "png" / "a.png", seed=1)
    _png(root / "png" / "A.jpg", seed=2)  # 'png__A' and 'png__a' collide on a case-insensitive filesystem
    _truncated_png(root / "png" / "broken.png")
    (root / "notes.txt").write_text("not an image\n")
    (root / "DICOMDIR").write_bytes(PREAMBLE)
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    _png(root / ".cache" / "thumb.png")
    _png(root / "png" / "._a.png")  # macOS AppleDouble companion
    return root


def test_folder_datalist_sorted_with_unique_ids(input_dir):
    datalist = inference_datalist(input_dir)
    # sorted by relative POSIX path (upper case sorts first); ignored: notes.txt, DICOMDIR, hidden files and folders
    assert datalist == [
        {"image": str(input_dir / "dicom/IM0001"), "case_id": "dicom__IM0001"},
        {"image": str(input_dir / "dicom/RG1_UNCI.dcm"), "case_id": "dicom__RG1_UNCI"},
        {"image": str(input_dir / "png/A.jpg"), "case_id": "png__A-" + _sha8("png/A.jpg")},
        {"image": str(input_dir / "png/a.png"), "case_id": "png__a-" + _sha8("png/a.png")},
        {"image": str(input_dir / "png/broken.png"), "case_id": "png__broken"},
    ]
    assert inference_datalist(input_dir, image_key="img", case_key="id")[0] == {
        "img": str(input_dir / "dicom/IM0001"),
        "id": "dicom__IM0001",
    }


def test_list_and_text_file_inputs(input_dir, tmp_path):
    files = [input_dir / "png/broken.png", input_dir / "dicom/RG1_UNCI.dcm"]
    # a list keeps its order; ids are relative to the deepest common folder (input_dir)
    assert inference_datalist(files) == [
        {"image": str(files[0]), "case_id": "png__broken"},
        {"image": str(files[1]), "case_id": "dicom__RG1_UNCI"},
    ]
    assert inference_datalist(str(files[1])) == [{"image": str(files[1]), "case_id": "RG1_UNCI"}]
    listing = input_dir / "list.txt"
    listing.write_text(f"# cases of today\n\npng/a.png\n{input_dir / 'dicom/IM0001'}\n")
    assert inference_datalist(listing) == [
        {"image": str(input_dir / "png/a.png"), "case_id": "png__a"},
        {"image": str(input_dir / "dicom/IM0001"), "case_id": "dicom__IM0001"},
    ]


def test_input_errors(input_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="inference input not found: '.*nowhere'"):
        inference_datalist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"1 input path\(s\) .* do not exist: \['.*missing.png'\]"):
        inference_datalist([input_dir / "png/a.png", input_dir / "missing.png"])
    listing = tmp_path / "cases.txt"
    listing.write_text("png/gone.png\n")
    with pytest.raises(FileNotFoundError, match="gone.png"):
        inference_datalist(listing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no DICOM/PNG/JPEG image found under '.*empty'"):
        inference_datalist(tmp_path / "empty")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.md").write_text("x")
    with pytest.raises(ValueError, match="no DICOM/PNG/JPEG image found"):
        inference_datalist(tmp_path / "docs")
    with pytest.raises(ValueError, match="empty list"):
        inference_datalist([])
    listing.write_text("# nothing today\n\n")
    with pytest.raises(ValueError, match="names no image"):
        inference_datalist(listing)
    with pytest.raises(ValueError, match=r"neither DICOM .* \['.*notes.txt'\]"):
        inference_datalist([input_dir / "notes.txt"])
    with pytest.raises(ValueError, match="lists folder"):
        inference_datalist([input_dir / "png"])
    with pytest.raises(ValueError, match="'png/a.png' is listed twice"):
        inference_datalist([input_dir / "png/a.png", input_dir / "dicom/IM0001", input_dir / "png/a.png"])


def test_pending_cases_leave_out_existing_results(tmp_path):
    datalist = [{"image": "/x/a.png", "case_id": "a"}, {"image": "/x/b.png", "case_id": "b"}]
    out = tmp_path / "out"
    out.mkdir()
    assert pending_cases(datalist, out) == datalist
    (out / "b.json").write_text("{}")
    assert pending_cases(datalist, out) == [datalist[0]]
    assert pending_cases(datalist, out, overwrite=True) == datalist
    assert result_path(out, "b") == out / "b.json"
    with pytest.raises(ValueError, match=r"case id '\.\./evil' is not a safe file name"):
        pending_cases([{"image": "/x/c.png", "case_id": "../evil"}], out)
    with pytest.raises(KeyError, match="have no 'case_id'"):
        pending_cases([{"image": "/x/c.png"}], out)


def test_check_readable_header_and_decode(input_dir):
    datalist = inference_datalist(input_dir)
    ids = [d["case_id"] for d in datalist]
    good, bad = check_readable(datalist, level="header")
    # the corrupt DICOM has a parseable garbage "header": only the truncated PNG fails PIL's verify
    assert [d["case_id"] for d in bad] == ["png__broken"]
    assert bad[0]["error"].startswith("OSError: ")
    good, bad = check_readable(datalist, reader="PydicomReader", level="decode")
    assert [d["case_id"] for d in good] == [ids[1], ids[2], ids[3]]
    assert [d["case_id"] for d in bad] == ["dicom__IM0001", "png__broken"]
    assert bad[0]["error"].startswith("ValueError: ") and "IM0001" in bad[0]["error"]
    assert bad[1]["error"] == "OSError: image file is truncated"
    assert "error" not in datalist[0]  # items are copied, not changed
    threaded = check_readable(datalist, reader="PydicomReader", num_workers=2)
    assert threaded == (good, bad)
    with pytest.raises(ValueError, match="pixels"):
        check_readable(datalist, level="pixels")


def test_prepare_writes_skipped_csv_and_resumes(input_dir, tmp_path):
    out = tmp_path / "out"
    todo = prepare_inference_datalist(input_dir, out, reader="PydicomReader")
    assert [d["case_id"] for d in todo] == [
        "dicom__RG1_UNCI",
        "png__A-" + _sha8("png/A.jpg"),
        "png__a-" + _sha8("png/a.png"),
    ]
    with open(out / "skipped.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case_id", "image", "error"]
    assert [r[:2] for r in rows[1:]] == [
        ["dicom__IM0001", str(input_dir / "dicom/IM0001")],
        ["png__broken", str(input_dir / "png/broken.png")],
    ]
    assert rows[2][2] == "OSError: image file is truncated"
    # results of two cases exist and the broken files are fixed: only the third good case and the fixed ones remain
    for case in todo[:2]:
        (out / f"{case['case_id']}.json").write_text(json.dumps({"case_id": case["case_id"]}))
    _png(input_dir / "png/broken.png", seed=4)
    _png(input_dir / "dicom/IM0001.png", seed=5)
    (input_dir / "dicom/IM0001").unlink()
    todo = prepare_inference_datalist(input_dir, out, reader="PydicomReader", level="header")
    assert [d["case_id"] for d in todo] == ["dicom__IM0001", "png__a-" + _sha8("png/a.png"), "png__broken"]
    assert (out / "skipped.csv").read_text().splitlines() == ["case_id,image,error"]


def test_write_skipped_quotes_messages(tmp_path):
    message = 'ValueError: bad "tag", (0028,0004)'
    path = write_skipped([{"case_id": "c", "image": "/d/c.dcm", "error": message}], tmp_path)
    with open(path, newline="") as f:
        assert list(csv.reader(f)) == [["case_id", "image", "error"], ["c", "/d/c.dcm", message]]



def test_write_skipped_leaves_an_unchanged_file_untouched(tmp_path):
    skipped = [{"case_id": "c", "image": "/d/c.dcm", "error": "ValueError: bad"}]
    path = write_skipped(skipped, tmp_path)
    os.utime(path, (1_000_000, 1_000_000))
    assert write_skipped(skipped, tmp_path) == path
    assert os.stat(path).st_mtime == 1_000_000  # same rows: file untouched
    write_skipped([], tmp_path)
    assert path.read_text().splitlines() == ["case_id,image,error"]  # changed rows: replaced
    assert os.stat(path).st_mtime != 1_000_000

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_worker(rank: int, port: int, input_dir: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=60)
    )
    try:
        if rank == 1:  # a result appears after rank 0 listed the cases, before rank 1 would: rank 0's list counts
            time.sleep(0.5)
            (Path(out_dir) / "a.json").write_text("{}")
        todo = prepare_inference_datalist(input_dir, out_dir, level="header")
        try:
            prepare_inference_datalist(f"{input_dir}/missing", out_dir)
            error = ""
        except FileNotFoundError as e:
            error = str(e)
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps({"todo": todo, "error": error}))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_prepare_under_two_gloo_ranks_is_decided_by_rank_0(tmp_path):
    _png(tmp_path / "in" / "a.png", seed=1)
    _png(tmp_path / "in" / "b.png", seed=2)
    (tmp_path / "out").mkdir()
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(
        _prepare_worker,
        args=(_free_port(), str(tmp_path / "in"), str(tmp_path / "out")),
        nprocs=2,
        join=True,
        start_method=start_method,
    )
    results = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in range(2)]
    assert [d["case_id"] for d in results[0]["todo"]] == ["a", "b"]
    assert results[1] == results[0]
    assert "inference input not found" in results[1]["error"]
