# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Run every bundle briefly on the built-in demo data: train, evaluate, infer, then print a results table.

This is the bundle half of ``make demo`` (``python -m scripts.run_demo``). Every step merges the bundle's configs
with its ``configs/demo.json`` small-run overlay (image size, epochs, a small network: a CPU run takes minutes);
each bundle's :class:`BundleDemo` entry names only its demo datasets, evaluation runs and result tables.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from monai_ext.bundle.workflow import run_bundle_workflow

__all__ = [
    "DEMO_OVERLAY",
    "PreparationStep",
    "BundleDemo",
    "BUNDLE_DEMOS",
    "read_result_table",
    "run_bundle_demo",
    "format_results",
]

logger = logging.getLogger(__name__)

DEMO_OVERLAY = "configs/demo.json"
"""The small-run overlay every bundle ships, merged last onto each of its configs."""


@dataclass
class PreparationStep:
    """A bundle workflow run before training (e.g. the offline DADAM generator).

    Attributes:
        config: the workflow's config file in the bundle, e.g. ``"configs/dadam_generate.json"``.
        demo_paths: ids set to demo dataset folders (relative to the demo root): a folder name, or a dict of names
            (e.g. ``{"box_sources": {"nih": "nih", "vindr": "vindr"}}``).
        outputs: ids set to folders under the bundle's work folder, passed on to every later step (training,
            evaluation), e.g. ``{"dadam_dir": "dadam"}``.
        overrides: further ids of this step only.
    """

    config: str
    demo_paths: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class BundleDemo:
    """How to run one bundle on the demo data.

    Attributes:
        name: bundle folder name under ``bundles/``.
        datasets: demo dataset folder of each training data id, e.g. ``{"dataset_dir": "nih"}``.
        evaluations: the overrides of each ``evaluate.json`` run; a value of an id ending in ``_dir`` is a folder
            relative to the demo root, e.g. ``({"test_set": "openi", "test_dir": "openi"}, ...)``.
        result_tables: ``(label, file under output_dir)`` read back into the results table: a CSV, or a JSON report
            of ``{row name: {metric: value}}`` sections (e.g. a FROC report's ``official`` and ``strict``
            conventions), read as one row per section with the name in the ``class`` column.
        result_index: the tables' row column: ``"class"`` (one row per class) or e.g. ``"case_id"`` (one per case).
        result_metric: the column printed: per class, or as mean +- std over the cases.
        inference_inputs: demo files (relative to the demo root) copied into the inference input folder.
        inference_paths: ids of ``inference.json`` only, set to demo files (relative to the demo root), e.g. the
            ``DL_info.csv`` giving the pixel spacing of PNG slice folders.
        prepare_inputs: ``(demo_dir, input_dir) -> None`` adding further inference inputs (e.g. a DICOM series).
        real_radiograph: also infer on the real radiograph shipped by ``pydicom-data`` (``extra_inputs``).
        overrides: ids set for every step (training, evaluation, inference), e.g. the demo overlay's small network.
        preparation: workflows run before training (:class:`PreparationStep`).
    """

    name: str
    datasets: dict[str, str]
    evaluations: Sequence[dict[str, Any]] = ({},)
    result_tables: Sequence[tuple[str, str]] = ()
    result_index: str = "class"
    result_metric: str = "auroc"
    inference_inputs: Sequence[str] = ()
    inference_paths: dict[str, str] = field(default_factory=dict)
    prepare_inputs: Callable[[Path, Path], None] | None = None
    real_radiograph: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    preparation: Sequence[PreparationStep] = ()


def _rop_photographs(demo_dir: Path, input_dir: Path) -> None:
    """Four demo fundus photographs under unique names (every eye's file is called e.g. ``OD_posterior_1.png``)."""
    for src in sorted((demo_dir / "rop" / "images").glob("*/*/OD_posterior_1.png"))[:4]:
        shutil.copy(src, input_dir / f"{src.parent.parent.name}_{src.parent.name}_{src.name}")


def _covid_dicom_series(demo_dir: Path, input_dir: Path) -> None:
    """One demo CT volume re-written as a DICOM series folder, to show DICOM input beside NIfTI."""
    from monai_ext.demo.dicom_series import nifti_to_dicom_series

    nifti_to_dicom_series(demo_dir / "covid_medseg" / "rp_im" / "1.nii.gz", input_dir / "rp_1_dicom_series")


def _deeplesion_series(demo_dir: Path, input_dir: Path) -> None:
    """The first test-split series of the DeepLesion demo as a PNG slice folder (``Images_png`` layout), the same
    series as ``<series>_volume.nii.gz`` in HU (axis 0 = column, axis 1 = row, affine = the spacing) and as a DICOM
    series folder ``<series>_dicom_series`` (whose boxes also come back as a DICOM SR), to show all three inputs."""
    import nibabel as nib
    import numpy as np
    from PIL import Image

    from monai_ext.data.deeplesion import HU_OFFSET, deeplesion_datalist
    from monai_ext.demo.dicom_series import nifti_to_dicom_series

    item = deeplesion_datalist(demo_dir / "deeplesion", split="test")[0]
    folder = demo_dir / "deeplesion" / "Images_png" / item["series"]
    shutil.copytree(folder, input_dir / item["series"])
    files = sorted(folder.glob("*.png"), key=lambda p: int(p.stem))
    hu = np.stack([np.asarray(Image.open(f), dtype=np.int32) - HU_OFFSET for f in files], axis=-1)  # row, column, z
    affine = np.diag([*item["spacing"], 1.0])
    volume = input_dir / f"{item['series']}_volume.nii.gz"
    nib.save(nib.Nifti1Image(hu.transpose(1, 0, 2).astype(np.int16), affine), volume)
    nifti_to_dicom_series(volume, input_dir / f"{item['series']}_dicom_series", patient_id="DEMO_DL")


BUNDLE_DEMOS: dict[str, BundleDemo] = {
    "cxr_nvum_classification": BundleDemo(
        name="cxr_nvum_classification",
        datasets={"dataset_dir": "nih"},
        evaluations=tuple({"test_set": name, "test_dir": name} for name in ("openi", "padchest")),
        result_tables=(("OpenI", "openi_per_class.csv"), ("PadChest", "padchest_per_class.csv")),
        inference_inputs=("openi/NLMCXR_png/*.png",),
        real_radiograph=True,
    ),
    # the shipped ResNet-50, from scratch (no ImageNet weights offline), takes 8 minutes for chance-level results on the
    # 424 demo photographs; the demo overlay's small ResNet shows the method in about a minute
    "rop_meta_softlabel_classification": BundleDemo(
        name="rop_meta_softlabel_classification",
        datasets={"dataset_dir": "rop"},
        result_tables=(("ROP test set (unanimous readings)", "per_class.csv"),),
        result_metric="f1",
        prepare_inputs=_rop_photographs,
        overrides={"network_def": "%small_network_def"},
    ),
    # the shipped TResNet-L takes about 40 s per epoch of the 148 demo training images at 128 px on 2 CPUs; the demo
    # overlay's small timm ResNet at 64 px shows FPSM (stages 4, 3, 2) trained on the demo plus an offline DADAM set
    "cxr_lt_fpsm_classification": BundleDemo(
        name="cxr_lt_fpsm_classification",
        datasets={"dataset_dir": "mimic_cxr_lt"},
        evaluations=({"test_set": "test"},),
        result_tables=(("MIMIC-CXR-LT demo test split", "test_per_class.csv"),),
        result_metric="ap",
        inference_inputs=("mimic_cxr_lt/files/*/*/*/*.jpg",),
        real_radiograph=True,
        overrides={"network_def": "%small_network_def"},
        preparation=(
            PreparationStep(
                config="configs/dadam_generate.json",
                demo_paths={"dataset_dir": "mimic_cxr_lt", "box_sources": {"nih": "nih", "vindr": "vindr"}},
                outputs={"dadam_dir": "dadam"},
                overrides={"dadam_cutmix": 36, "dadam_mixup": 36},  # 2 x 24 % of the 148 training images, as Sec. 4.1
            ),
        ),
    ),
    "covid_ct_mombs_segmentation": BundleDemo(
        name="covid_ct_mombs_segmentation",
        datasets={"dataset_dir": "covid_medseg"},
        evaluations=({"eval_mask_dir": "covid_medseg/demo_clean"},),
        result_tables=(("MedSeg test fold, clean masks", "test_per_case.csv"),),
        result_index="case_id",
        result_metric="dice_infection",
        inference_inputs=("covid_medseg/rp_im/*.nii.gz",),
        prepare_inputs=_covid_dicom_series,
    ),
    # the demo overlay's small SplitRetinaNet (ResNet 1-1-1-1, 32 FPN channels) on the 160-pixel demo slices
    "deeplesion_mombs_detection": BundleDemo(
        name="deeplesion_mombs_detection",
        datasets={"dataset_dir": "deeplesion"},
        result_tables=(("DeepLesion demo test split", "test_froc.json"),),
        result_metric="avg[0.5,1,2]",
        inference_paths={"dl_info_csv": "deeplesion/DL_info.csv"},
        prepare_inputs=_deeplesion_series,
        overrides={"network_def": "%small_network_def"},
    ),
}


def _demo_path(demo_dir: str | os.PathLike, folder: str) -> str:
    path = Path(demo_dir) / folder
    if not path.exists():
        raise FileNotFoundError(f"demo dataset '{path}' not found; run `python -m monai_ext.demo --out {demo_dir}`.")
    return str(path)


def _with_demo_paths(overrides: dict[str, Any], demo_dir: str | os.PathLike) -> dict[str, Any]:
    return {k: _demo_path(demo_dir, v) if k.endswith("_dir") else v for k, v in overrides.items()}


def _demo_folders(paths: dict[str, Any], demo_dir: str | os.PathLike) -> dict[str, Any]:
    """``paths`` with every folder name (or dict of names) replaced by its demo folder."""
    return {
        k: {name: _demo_path(demo_dir, v) for name, v in folder.items()} if isinstance(folder, dict)
        else _demo_path(demo_dir, folder)
        for k, folder in paths.items()
    }  # fmt: skip


def read_result_table(path: str | os.PathLike) -> pd.DataFrame:
    """A result table of :attr:`BundleDemo.result_tables`: a CSV as it is; a JSON report as one row per section whose
    values are all numbers (``{"official": {"sens@1": 0.5, ...}, "num_images": 5}`` -> one row, ``class`` =
    ``"official"``, column ``sens@1``).

    Raises:
        ValueError: a JSON report without such a section (the file named).
    """
    path = Path(path)
    if path.suffix != ".json":
        return pd.read_csv(path)
    report = json.loads(path.read_text())
    rows = [
        {"class": name, **values}
        for name, values in report.items()
        if isinstance(values, dict)
        and values
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values())
    ]
    if not rows:
        raise ValueError(f"'{path}' holds no section of numbers ({{name: {{metric: value}}}}) to tabulate.")
    return pd.DataFrame(rows)


def run_bundle_demo(
    demo: BundleDemo,
    bundles_dir: str | os.PathLike,
    demo_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    extra_inputs: Sequence[str | os.PathLike] = (),
) -> dict[str, pd.DataFrame]:
    """Train, evaluate and run inference of one bundle on the demo data; return its result tables.

    Each step runs the bundle's config merged with :data:`DEMO_OVERLAY` in-process
    (:func:`monai_ext.bundle.workflow.run_bundle_workflow`, with the bundle's ``logging.conf``).

    Args:
        demo: the bundle's demo settings.
        bundles_dir: the repository's ``bundles/`` folder.
        demo_dir: root of the demo datasets (``python -m monai_ext.demo --out``).
        work_dir: where checkpoints (``<work_dir>/<bundle>/models``), evaluation outputs (``.../eval``) and inference
            results (``.../predictions``) go; previous results of the same bundle there are replaced.
        extra_inputs: more files for the inference input folder of bundles with ``real_radiograph`` (a real DICOM).

    Raises:
        FileNotFoundError: the bundle or a demo dataset is missing (run ``python -m monai_ext.demo`` first).
    """
    bundle = Path(bundles_dir) / demo.name
    if not (bundle / "configs").is_dir():
        raise FileNotFoundError(f"bundle configs not found: '{bundle / 'configs'}'.")
    out = Path(work_dir) / demo.name
    common = {"ckpt_dir": str(out / "models"), "output_dir": str(out / "eval"), **demo.overrides}
    common.update(_with_demo_paths(demo.datasets, demo_dir))
    evaluations = [_with_demo_paths(e, demo_dir) for e in demo.evaluations]
    if out.exists():
        shutil.rmtree(out)
    for step in demo.preparation:
        outputs = {k: str(out / folder) for k, folder in step.outputs.items()}
        logger.info("%s: %s", demo.name, step.config)
        run_bundle_workflow(bundle, [step.config], None, logging_file=True,
                            **_demo_folders(step.demo_paths, demo_dir), **outputs, **step.overrides)  # fmt: skip
        common.update(outputs)
    train = ["configs/train.json", DEMO_OVERLAY]
    logger.info("%s: training", demo.name)
    run_bundle_workflow(bundle, train, "train", logging_file=True, **common)
    for overrides in evaluations:
        logger.info("%s: evaluating %s", demo.name, overrides or "")
        run_bundle_workflow(bundle, [*train, "configs/evaluate.json"], "eval", logging_file=True,
                            **{**common, **overrides})  # fmt: skip
    inputs = out / "inference_input"
    inputs.mkdir(parents=True)
    for pattern in demo.inference_inputs:
        for src in sorted(Path(demo_dir).glob(pattern))[:4]:
            shutil.copy(src, inputs / src.name)
    if demo.prepare_inputs is not None:
        demo.prepare_inputs(Path(demo_dir), inputs)
    for src in extra_inputs if demo.real_radiograph else ():
        shutil.copy(src, inputs / Path(src).name)
    logger.info("%s: inference on %d files", demo.name, len(list(inputs.iterdir())))
    run_bundle_workflow(
        bundle,
        ["configs/inference.json", DEMO_OVERLAY],
        "infer",
        logging_file=True,
        **demo.overrides,
        ckpt_dir=common["ckpt_dir"],
        **{k: _demo_path(demo_dir, v) for k, v in demo.inference_paths.items()},
        dataset_dir=str(inputs),
        output_dir=str(out / "predictions"),
    )
    return {label: read_result_table(out / "eval" / name) for label, name in demo.result_tables}


def dicom_results(work_dir: str | os.PathLike, name: str) -> list[Path]:
    """The DICOM results (SR, SEG) that a bundle's demo inference wrote for its DICOM inputs, sorted."""
    return sorted((Path(work_dir) / name / "predictions").rglob("*.dcm"))


def format_results(name: str, tables: dict[str, pd.DataFrame], metric: str = "auroc", index: str = "class") -> str:
    """Markdown table of one bundle's results.

    ``index="class"``: ``metric`` per class (rows) and test set (columns). Any other ``index`` (e.g. ``"case_id"``,
    one row per case): ``metric`` as mean +- std over the cases with a finite value, one row per table.
    """
    if index != "class":
        lines = [f"| {name} | cases | {metric}: mean +- std |", "|---|---|---|"]
        for label, table in tables.items():
            values = pd.to_numeric(table[metric], errors="coerce").dropna()
            cell = "n/a" if values.empty else f"{values.mean():.3f} +- {values.std(ddof=0):.3f}"
            lines.append(f"| {label} | {len(values)} | {cell} |")
        return "\n".join(lines)
    frames = []
    for label, table in tables.items():
        frames.append(table.set_index(index)[metric].rename(label))
    joined = pd.concat(frames, axis=1)
    lines = [f"| {name}: {metric} | " + " | ".join(joined.columns) + " |", "|---" * (len(joined.columns) + 1) + "|"]
    for cls, row in joined.iterrows():
        cells = ["n/a" if pd.isna(v) else f"{float(v):.3f}" for v in row]
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
