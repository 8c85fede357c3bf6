# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Chest X-ray label spaces: class lists of each dataset, torchxrayvision-style term rules for PadChest and OpenI,
and the label alignment used by NVUM (Liu et al., MICCAI 2022).

Class lists keep each dataset's own spelling (NIH ``Pleural_Thickening`` with an underscore, CheXpert
``Pleural Effusion``, VinDr lowercase ``Pleural effusion``). PadChest and OpenI have no fixed label columns: their
free-text terms are mapped onto classes by :data:`PADCHEST_TERM_RULES` / :data:`OPENI_TERM_RULES`, written from the
behaviour documented for torchxrayvision's ``PC_Dataset`` / ``Openi_Dataset`` (Cohen et al., MIDL 2022,
https://github.com/mlmed/torchxrayvision), which NVUM uses for its "label alignment following torchxrayvision".

:func:`align_labels` moves a datalist from one label space to another; :data:`NVUM_NIH_SETTING_CLASSES` and
:data:`NVUM_CHEXPERT_SETTING_CLASSES` are NVUM's two evaluation label spaces (see :mod:`monai_ext.data.cxr.nvum`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from monai.utils import look_up_option
from monai.utils.enums import StrEnum

__all__ = [
    "NO_FINDING",
    "disease_names",
    "NIH_CLASSES",
    "CHEXPERT_CLASSES",
    "MIMIC_CXR_LT_CLASSES",
    "VINDR_CLASSES",
    "PADCHEST_CLASSES",
    "OPENI_CLASSES",
    "NVUM_NIH_SETTING_CLASSES",
    "NVUM_CHEXPERT_SETTING_CLASSES",
    "TermRule",
    "TermMatch",
    "PADCHEST_TERM_RULES",
    "OPENI_TERM_RULES",
    "match_terms",
    "resolve_classes",
    "align_labels",
]

NO_FINDING = "No Finding"
"""Name of the "no disease" class in every label space built here (NIH / CheXpert spelling)."""

NIH_CLASSES: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
"""The 14 NIH ChestX-ray14 diseases, exact ``Finding Labels`` spellings, in the order of Wang et al. (CVPR 2017)."""

CHEXPERT_CLASSES: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""The 14 CheXpert label columns, in ``train.csv`` order (Irvin et al., AAAI 2019)."""

MIMIC_CXR_LT_CLASSES: tuple[str, ...] = (
    "Atelectasis",
    "Calcification of the Aorta",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Enlarged Cardiomediastinum",
    "Fibrosis",
    "Fracture",
    "Hernia",
    "Infiltration",
    "Lung Lesion",
    "Lung Opacity",
    "Mass",
    "No Finding",
    "Nodule",
    "Pleural Effusion",
    "Pleural Other",
    "Pleural Thickening",
    "Pneumomediastinum",
    "Pneumonia",
    "Pneumoperitoneum",
    "Pneumothorax",
    "Subcutaneous Emphysema",
    "Support Devices",
    "Tortuous Aorta",
)
"""The 26 MIMIC-CXR-LT 2023 classes, CSV column order (Holste et al., MedIA 2024)."""

VINDR_CLASSES: tuple[str, ...] = (
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Consolidation",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Nodule/Mass",
    "Other lesion",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
    "No finding",
)
"""The 15 VinDr-CXR ``class_name`` values; position = ``class_id`` (14 = ``No finding``) (Nguyen et al., 2022)."""

NVUM_NIH_SETTING_CLASSES: tuple[str, ...] = tuple(c for c in NIH_CLASSES if c != "Consolidation") + (NO_FINDING,)
"""NVUM's NIH setting: the 13 NIH diseases without Consolidation, then ``No Finding`` (14 outputs)."""

NVUM_CHEXPERT_SETTING_CLASSES: tuple[str, ...] = (
    "Cardiomegaly",
    "Edema",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Effusion",
    "Fracture",
    NO_FINDING,
)
"""NVUM's CheXpert setting: the 7 CheXpert diseases kept after NVUM's class trim (CheXpert ``Pleural Effusion`` is
named ``Effusion`` as in NVUM's code), then ``No Finding`` (8 outputs)."""


class TermMatch(StrEnum):
    """How a class pattern is compared with a report term (both lowercased, term stripped of spaces).

    - ``"substring"``: the pattern occurs anywhere in the term (torchxrayvision / NVUM behaviour: ``nodule`` also
      hits ``pseudonodule``).
    - ``"exact"``: the term equals the pattern.
    """

    SUBSTRING = "substring"
    EXACT = "exact"


@dataclass(frozen=True)
class TermRule:
    """Which report terms make a class positive.

    Args:
        contains: patterns compared with each term under the chosen :class:`TermMatch`.
        endswith: suffixes; a term ending with one is positive under either match mode.
    """

    contains: tuple[str, ...] = ()
    endswith: tuple[str, ...] = ()

    def matches(self, term: str, match: TermMatch) -> bool:
        """Whether the lowercased, stripped ``term`` makes this class positive."""
        if any(term.endswith(s) for s in self.endswith):
            return True
        if match == TermMatch.EXACT:
            return term in self.contains
        return any(p in term for p in self.contains)


# PadChest: 28 classes. torchxrayvision matches each lowercased class name and its synonyms as a substring of the
# label-list text; "Tube" and the "stent" synonym match only terms that end with the word (their "tube'" trick).
_PADCHEST_RULES = {
    "Air Trapping": TermRule(("air trapping",)),
    "Aortic Atheromatosis": TermRule(("aortic atheromatosis",)),
    "Aortic Elongation": TermRule(("aortic elongation",)),
    "Atelectasis": TermRule(("atelectasis",)),
    "Bronchiectasis": TermRule(("bronchiectasis",)),
    "Cardiomegaly": TermRule(("cardiomegaly",)),
    "Consolidation": TermRule(("consolidation", "air bronchogram")),
    "Costophrenic Angle Blunting": TermRule(("costophrenic angle blunting",)),
    "Edema": TermRule(("edema",)),
    "Effusion": TermRule(("effusion",)),
    "Emphysema": TermRule(("emphysema",)),
    "Fibrosis": TermRule(("fibrosis",)),
    "Flattened Diaphragm": TermRule(("flattened diaphragm",)),
    "Fracture": TermRule(("fracture",)),
    "Granuloma": TermRule(("granuloma",)),
    "Hemidiaphragm Elevation": TermRule(("hemidiaphragm elevation",)),
    "Hernia": TermRule(("hernia",)),
    "Hilar Enlargement": TermRule(("hilar enlargement", "adenopathy", "pulmonary artery enlargement")),
    "Infiltration": TermRule(
        (
            "infiltration",
            "infiltrates",
            "interstitial pattern",
            "ground glass pattern",
            "reticular interstitial pattern",
            "reticulonodular interstitial pattern",
            "alveolar pattern",
            "consolidation",
            "air bronchogram",
        )
    ),
    "Mass": TermRule(("mass",)),
    "Nodule": TermRule(("nodule",)),
    "Pleural_Thickening": TermRule(("pleural thickening",)),
    "Pneumonia": TermRule(("pneumonia",)),
    "Pneumothorax": TermRule(("pneumothorax",)),
    "Scoliosis": TermRule(("scoliosis",)),
    "Support Devices": TermRule(("support devices", "device", "pacemaker")),
    "Tube": TermRule(endswith=("tube", "stent")),
    "Tuberculosis": TermRule(("tuberculosis",)),
}
PADCHEST_TERM_RULES: Mapping[str, TermRule] = MappingProxyType(_PADCHEST_RULES)
"""Read-only (``MappingProxyType``); pass a new dict to a reader's ``rules`` to change the mapping."""

# OpenI: 18 classes matched on the lowercased MeSH terms ("Opacity"/"Lesion" renamed to CheXpert's names).
_OPENI_RULES = {
    "Atelectasis": TermRule(("atelectasis", "atelectases")),
    "Calcified Granuloma": TermRule(("calcified granuloma",)),
    "Cardiomegaly": TermRule(("cardiomegaly",)),
    "Edema": TermRule(("edema",)),
    "Effusion": TermRule(("effusion",)),
    "Emphysema": TermRule(("emphysema",)),
    "Fibrosis": TermRule(("fibrosis",)),
    "Fracture": TermRule(("fracture",)),
    "Granuloma": TermRule(("granuloma",)),
    "Hernia": TermRule(("hernia",)),
    "Infiltration": TermRule(("infiltration", "infiltrate")),
    "Lung Lesion": TermRule(("lesion",)),
    "Lung Opacity": TermRule(("opacity",)),
    "Mass": TermRule(("mass",)),
    "Nodule": TermRule(("nodule",)),
    "Pleural_Thickening": TermRule(("pleural thickening",)),
    "Pneumonia": TermRule(("pneumonia",)),
    "Pneumothorax": TermRule(("pneumothorax",)),
}
OPENI_TERM_RULES: Mapping[str, TermRule] = MappingProxyType(_OPENI_RULES)
"""Read-only (``MappingProxyType``); pass a new dict to a reader's ``rules`` to change the mapping."""

PADCHEST_CLASSES: tuple[str, ...] = tuple(PADCHEST_TERM_RULES)
"""The 28 PadChest classes of :data:`PADCHEST_TERM_RULES` (torchxrayvision's list, ``Tube'`` named ``Tube``)."""

OPENI_CLASSES: tuple[str, ...] = tuple(OPENI_TERM_RULES)
"""The 18 OpenI classes of :data:`OPENI_TERM_RULES`."""


def match_terms(
    terms: Iterable[str],
    rules: Mapping[str, TermRule],
    match: TermMatch | str = TermMatch.SUBSTRING,
    cache: dict[str, frozenset[str]] | None = None,
) -> set[str]:
    """Classes of ``rules`` made positive by any of ``terms``.

    Args:
        terms: report terms; each is lowercased and stripped, empty terms are ignored.
        rules: class name -> :class:`TermRule`, e.g. :data:`PADCHEST_TERM_RULES`.
        match: ``{"substring", "exact"}``, see :class:`TermMatch`. Defaults to ``"substring"``.
        cache: optional dict (clean term -> classes) reused across calls with the same ``rules`` and ``match``;
            a reader passes one so that each distinct term is matched once.

    Example:
        >>> sorted(match_terms([" pleural effusion", "pseudonodule"], PADCHEST_TERM_RULES))
        ['Effusion', 'Nodule']
    """
    mode = look_up_option(match, TermMatch)
    cache = {} if cache is None else cache
    out: set[str] = set()
    for term in terms:
        t = term.strip().lower()
        if not t:
            continue
        if t not in cache:
            cache[t] = frozenset(name for name, rule in rules.items() if rule.matches(t, mode))
        out |= cache[t]
    return out


def resolve_classes(
    classes: Sequence[str] | str, known: Sequence[str], what: str, allow_no_finding: bool = True
) -> tuple[str, ...]:
    """Check that every requested class exists in ``known`` and return a tuple.

    Args:
        classes: requested class names.
        known: the dataset's class names.
        what: dataset name for messages.
        allow_no_finding: also accept ``"No Finding"`` (a reader derives it). Defaults to ``True``.

    Raises:
        TypeError: ``classes`` is a single string (a tuple of names is expected).
        ValueError: an unknown or repeated class name; the message lists the known ones.
    """
    if isinstance(classes, (str, Enum)):
        raise TypeError(f"classes must be a sequence of class names, got the string {classes!r}")
    out = tuple(classes)
    allowed = set(known) | ({NO_FINDING} if allow_no_finding else set())
    unknown = [c for c in out if c not in allowed]
    if unknown:
        extra = f" and '{NO_FINDING}'" if allow_no_finding and NO_FINDING not in known else ""
        raise ValueError(f"unknown {what} class name(s) {unknown}; known classes: {list(known)}{extra}")
    if len(set(out)) != len(out):
        raise ValueError(f"repeated class name(s) in {list(out)}")
    if not out:
        raise ValueError("classes must name at least one class")
    return out


def disease_names(class_names: Sequence[str]) -> list[str]:
    """``class_names`` without :data:`NO_FINDING`, in order: the disease classes a report averages over.

    Example: ``disease_names(["Atelectasis", "Effusion", "No Finding"])`` is ``["Atelectasis", "Effusion"]``.
    """
    return [str(c) for c in class_names if str(c) != NO_FINDING]


def align_labels(
    datalist: Sequence[dict],
    source_classes: Sequence[str],
    target_classes: Sequence[str],
    rename: Mapping[str, str] | None = None,
    drop_positive: Sequence[str] = (),
    drop_unlabelled: bool = True,
    key: str = "label",
) -> list[dict]:
    """Move a datalist from one label space to another, the way NVUM aligns its training and test sets.

    Steps (NVUM's ``trim``): rename source classes (``rename``); drop every item positive (value > 0.5) for a source
    class that is not in ``target_classes`` or is listed in ``drop_positive``; reorder the remaining columns to
    ``target_classes``; a target class missing from the source becomes NaN (unknown); with ``drop_unlabelled`` drop
    items that end with no positive entry (all 0 or NaN).

    Args:
        datalist: items whose ``key`` holds a float vector over ``source_classes``.
        source_classes: names of the current label columns (C_src).
        target_classes: names of the new label columns (C_tgt).
        rename: source name -> target name, e.g. ``{"Pleural Effusion": "Effusion"}``. Defaults to none.
        drop_positive: extra (source or renamed) class names whose positives are dropped even if they are in the
            target list. Defaults to ``()``.
        drop_unlabelled: drop items without any positive target label. Defaults to ``True``.
        key: label key. Defaults to ``"label"``.

    Returns:
        New item dicts (shallow copies, ``key`` replaced by a C_tgt float list) in input order; ``index`` is not
        reassigned (call :func:`monai_ext.data.datalist.assign_indices` on the final list).

    Raises:
        ValueError: a label vector's length differs from ``len(source_classes)``, or ``rename`` maps onto a name
            twice.
    """
    rename = dict(rename or {})
    names = [rename.get(c, c) for c in source_classes]
    if len(set(names)) != len(names):
        raise ValueError(f"renamed source classes {names} contain duplicates")
    target = list(target_classes)
    drop_set = set(drop_positive)
    drop_cols = [i for i, n in enumerate(names) if n not in target or n in drop_set]
    take = [names.index(t) if t in names else None for t in target]
    out = []
    for item in datalist:
        vec = list(item[key])
        if len(vec) != len(names):
            raise ValueError(f"label of {item.get('image')} has {len(vec)} entries, expected {len(names)}")
        if any(vec[i] > 0.5 for i in drop_cols):
            continue
        new = [float(vec[i]) if i is not None else math.nan for i in take]
        if drop_unlabelled and not any(v > 0.5 for v in new):
            continue
        out.append({**item, key: new})
    return out
