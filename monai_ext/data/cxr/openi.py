# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""OpenI (Indiana University chest X-ray collection) reader: NLM report XML MeSH terms -> labels, views from the
Kaggle ``indiana_projections.csv``.

Citation: Demner-Fushman D, Kohli MD, Rosenman MB, et al. "Preparing a collection of radiology examinations for
distribution and retrieval", JAMIA 23(2), 2016. https://openi.nlm.nih.gov/faq
"""

from __future__ import annotations

import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from monai.utils import look_up_option
from monai.utils.enums import StrEnum

from monai_ext.data.cxr.common import check_images, find_label_file, records
from monai_ext.data.cxr.labels import (
    NO_FINDING,
    OPENI_CLASSES,
    OPENI_TERM_RULES,
    TermMatch,
    TermRule,
    match_terms,
    resolve_classes,
)
from monai_ext.data.datalist import (
    DatasetLayoutError,
    assign_indices,
    csv_lines,
    read_csv_checked,
    require_dir,
    require_unique,
    row_error,
)

__all__ = ["MeshField", "OpenIProjection", "read_openi_reports", "openi_datalist"]

OPENI_LAYOUT = (
    "Expected openi/ecgen-radiology/<n>.xml (NLM report XML with <MeSH> and <parentImage id=...>), "
    "openi/indiana_projections.csv (uid,filename,projection; filename <n>_IM-xxxx-xxxx.dcm.png) and "
    "openi/NLMCXR_png/<parentImage id>.png."
)
_SUFFIX = ".dcm.png"


class MeshField(StrEnum):
    """Which MeSH terms give the labels: ``automatic`` (MTI-extracted terms, present in 2,182 of 3,955 reports;
    torchxrayvision and NVUM use these) or ``major`` (manual terms like ``Cardiomegaly/borderline``, always present,
    ``normal`` for normal reports)."""

    AUTOMATIC = "automatic"
    MAJOR = "major"


class OpenIProjection(StrEnum):
    """Images kept by their ``projection`` in ``indiana_projections.csv``."""

    FRONTAL = "frontal"
    LATERAL = "lateral"
    ALL = "all"


def read_openi_reports(report_dir: str | os.PathLike) -> dict[str, dict]:
    """Parse every ``<n>.xml`` of ``ecgen-radiology/``.

    Returns:
        ``{report uid ("CXR1"): {"file": "1.xml", "number": 1, "major": [...], "automatic": [...], "images":
        [parentImage ids]}}`` in report-number order; terms keep the XML text (stripped).

    Raises:
        FileNotFoundError: the folder is missing.
        DatasetLayoutError: an XML file cannot be parsed or has no ``<uId id=...>``, or two files have the same uid
            (both named).
    """
    folder = require_dir(report_dir, "OpenI report (ecgen-radiology)", OPENI_LAYOUT)
    files = [p for p in folder.iterdir() if p.suffix == ".xml" and p.stem.isdigit()]
    reports = {}
    for p in sorted(files, key=lambda f: int(f.stem)):
        try:
            root = ET.parse(p).getroot()
        except ET.ParseError as e:
            raise DatasetLayoutError(f"OpenI report '{p}' is not valid XML: {e}. {OPENI_LAYOUT}") from e
        uid_node = root.find("uId")
        if uid_node is None or "id" not in uid_node.attrib:
            raise DatasetLayoutError(f"OpenI report '{p}' has no <uId id=...> element. {OPENI_LAYOUT}")

        def texts(tag: str, root=root) -> list[str]:
            return [n.text.strip() for n in root.findall(f".//MeSH/{tag}") if n.text and n.text.strip()]

        uid = uid_node.attrib["id"]
        if uid in reports:
            raise DatasetLayoutError(
                f"OpenI reports '{folder / reports[uid]['file']}' and '{p}' both have <uId id={uid!r}>; each report "
                f"uid may appear once (remove the copy). {OPENI_LAYOUT}"
            )
        reports[uid] = {
            "file": p.name,
            "number": int(p.stem),
            "major": texts("major"),
            "automatic": texts("automatic"),
            "images": [n.attrib["id"] for n in root.findall(".//parentImage") if "id" in n.attrib],
        }
    return reports


def openi_datalist(
    dataset_dir: str | os.PathLike,
    classes: Sequence[str] = OPENI_CLASSES,
    rules: Mapping[str, TermRule] = OPENI_TERM_RULES,
    mesh: MeshField | str = MeshField.AUTOMATIC,
    term_match: TermMatch | str = TermMatch.SUBSTRING,
    projection: OpenIProjection | str = OpenIProjection.FRONTAL,
    one_per_report: bool = False,
    check_files: bool = True,
) -> list[dict]:
    """OpenI as a MONAI datalist, one item per image of ``indiana_projections.csv``.

    Layout (``dataset_dir`` = ``openi/``)::

        ecgen-radiology/<n>.xml     # 3,955 reports (3,851 with images, 7,470 <parentImage id="CXR<n>_IM-...">)
        indiana_projections.csv     # Kaggle raddar: uid,filename,projection; 7,466 rows = 3,818 Frontal + 3,648 Lateral
        NLMCXR_png/CXR<n>_IM-xxxx-xxxx.png   # 8-bit PNG, named by the parentImage id

    A CSV row ``uid=n, filename=<n>_IM-xxxx-xxxx.dcm.png`` is joined to the report ``CXR<n>`` image
    ``CXR<n>_IM-xxxx-xxxx``; if the report names that image with an extra prefix (``CXR1_1_IM-0001-3001``) it is
    joined by the ``IM-...`` suffix; a row that still has no image in its report is skipped with a warning.
    Labels: every term of the chosen MeSH field is lowercased and matched with ``rules`` (torchxrayvision-style
    substrings by default, e.g. ``atelectases`` -> Atelectasis, ``opacity`` -> Lung Opacity); ``"No Finding"`` is 1
    when no class of ``rules`` is positive (an empty ``<automatic>`` list gives No Finding, as in NVUM).
    OpenI has no patient ids; ``patient_id`` is the report uid (one report = one study).

    Args:
        dataset_dir: the ``openi/`` folder.
        classes: label columns, names of ``rules`` plus optionally ``"No Finding"``. Defaults to the 18
            :data:`OPENI_CLASSES`.
        rules: class -> :class:`TermRule`. Defaults to :data:`OPENI_TERM_RULES`.
        mesh: ``{"automatic", "major"}``, see :class:`MeshField`. Defaults to ``"automatic"``.
        term_match: ``{"substring", "exact"}``, see :class:`TermMatch`. Defaults to ``"substring"``.
        projection: ``{"frontal", "lateral", "all"}``. Defaults to ``"frontal"`` (3,818 images).
        one_per_report: keep only the first image (sorted id) per report. Defaults to ``False`` (NVUM keeps all).
        check_files: raise if an image file is missing. Defaults to ``True``.

    Returns:
        Items ``{"image", "label", "terms", "index", "patient_id" (report uid), "split" ("all"), "image_id",
        "projection"}`` sorted by (report number, image id).

    Raises:
        FileNotFoundError: a folder, the CSV or (with ``check_files``) an image is missing.
        DatasetLayoutError: bad XML, missing CSV column, a projection other than Frontal/Lateral or a filename
            not ending in ``.dcm.png`` (file, line, column named), two reports with one uid, or two CSV rows naming
            the same image (a repeated filename, in any letter case, or two filenames joined to one image; file and
            both lines named).
        ValueError: bad option values.
    """
    root = require_dir(dataset_dir, "OpenI", OPENI_LAYOUT).absolute()
    classes = resolve_classes(classes, tuple(rules), "OpenI")
    mesh = look_up_option(mesh, MeshField)
    term_match = look_up_option(term_match, TermMatch)
    projection = look_up_option(projection, OpenIProjection)
    reports = read_openi_reports(root / "ecgen-radiology")
    path = find_label_file(root, ["indiana_projections.csv"], "OpenI indiana_projections.csv", OPENI_LAYOUT)
    df = read_csv_checked(
        path, ["uid", "filename", "projection"], "OpenI projections CSV", OPENI_LAYOUT, dtype=str, keep_default_na=False
    )
    require_unique(df["filename"], csv_lines(len(df)), path, "image (column 'filename')", hint=OPENI_LAYOUT)
    term_cache: dict[str, frozenset[str]] = {}
    found: dict[str, dict] = {}
    skipped = []
    for i, rec in enumerate(records(df)):
        view = rec["projection"].strip()
        if view not in ("Frontal", "Lateral"):
            raise row_error(path, i, "projection", f"unknown projection {view!r}; expected 'Frontal' or 'Lateral'")
        if projection != OpenIProjection.ALL and view.lower() != projection:
            continue
        fname, uid = rec["filename"].strip(), f"CXR{rec['uid'].strip()}"
        if not fname.endswith(_SUFFIX):
            raise row_error(path, i, "filename", f"file name {fname!r} does not end with '{_SUFFIX}'")
        report = reports.get(uid)
        stem = fname[: -len(_SUFFIX)]
        image_id = None
        if report is not None:
            if f"CXR{stem}" in report["images"]:
                image_id = f"CXR{stem}"
            else:
                tail = re.sub(rf"^{re.escape(rec['uid'].strip())}_", "", stem)
                cands = [x for x in report["images"] if x.endswith(f"_{tail}")]
                image_id = cands[0] if len(cands) == 1 else None
        if image_id is None:
            skipped.append(f"{fname} (line {i + 2})")
            continue
        if image_id in found:
            raise row_error(
                path,
                i,
                "filename",
                f"{fname!r} is the image {image_id!r} of line {found[image_id]['_line']} "
                "again; each image may appear once (remove one of the two lines)",
            )
        terms = report[str(mesh)]
        positive = match_terms(terms, rules, term_match, term_cache)
        found[image_id] = {
            "image": str(root / "NLMCXR_png" / f"{image_id}.png"),
            "label": [float(not positive) if c == NO_FINDING else float(c in positive) for c in classes],
            "terms": list(terms),
            "patient_id": uid,
            "split": "all",
            "image_id": image_id,
            "projection": view,
            "_number": report["number"],
            "_line": i + 2,
        }
    if skipped:
        warnings.warn(
            f"{len(skipped)} row(s) of '{path}' match no <parentImage> of their report and were skipped, "
            f"e.g. {skipped[:5]}",
            stacklevel=2,
        )
    out = sorted(found.values(), key=lambda d: (d["_number"], d["image_id"]))
    if one_per_report:
        seen: set[str] = set()
        out = [d for d in out if not (d["patient_id"] in seen or seen.add(d["patient_id"]))]
    for d in out:
        del d["_number"], d["_line"]
    if check_files:
        check_images(out, "OpenI", OPENI_LAYOUT)
    return assign_indices(out)
