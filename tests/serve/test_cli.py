# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The DICOM node's command line refuses bad arguments before it imports torch or opens a port."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_ext.serve.dicom_node import main

CXR = Path(__file__).resolve().parents[2] / "bundles" / "cxr_nvum_classification"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bundle", "no/such/bundle", "--forward", "h:104:PACS"], "has no configs/inference.json"),
        (["--bundle", f"{CXR}:CR", "--forward", "h:port:PACS"], "is not a number in 1..65535"),
        (["--bundle", f"{CXR}:CR", "--forward", "h:104:PACS", "--override", "other:a=1"], "no --bundle named 'other'"),
        (["--bundle", f"{CXR}:CR", "--forward", "h:104:PACS", "--config", "cxr_nvum_classification=nope.json"],
         "not found"),
        (["--bundle", f"{CXR}:CR", "--forward", "h:104:PACS", "--ae-title", "A" * 17], "longer than 16"),
        (["--bundle", f"{CXR}:CR", "--forward", "h:104:PACS", "--series-timeout", "0"], "must be > 0"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_naming_the_problem(args, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main([*args, "--spool", str(tmp_path / "spool")])
    assert info.value.code == 2 and message in capsys.readouterr().err
