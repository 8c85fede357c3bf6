# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The bundles' user-facing scalar ids, checked in one place before a workflow builds anything.

A command-line override arrives through Fire as text (``--overwrite false`` is the string ``'false'``, which Python
takes as true) or as a number where a positive size is needed (``--image_size 0``). :func:`as_flag` parses a boolean
strictly; :data:`PARAMETER_RULES` says what each id allows; :func:`check_parameters`, the first ``initialize`` step of
every workflow config, checks every id it is given and raises one error naming each bad id, its value and what is
allowed.
"""

from __future__ import annotations

import ast
import math
import numbers
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FLAG_SPELLINGS", "ParameterRule", "PARAMETER_RULES", "PATH_IDS", "as_flag", "check_parameters"]
__all__ += ["command_line_overrides", "check_command_line"]

FLAG_SPELLINGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
"""The accepted spellings of a boolean (any case)."""


def as_flag(value: Any, name: str = "value") -> bool:
    """``value`` as a boolean, parsed strictly.

    Args:
        value: a bool, the int 0 or 1, or one of the strings true/false/1/0/yes/no (any case, surrounding spaces
            ignored).
        name: the config id, named in the error.

    Raises:
        ValueError: anything else (naming ``name``, the value and the allowed spellings).
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(int(value))
    if isinstance(value, str) and value.strip().lower() in FLAG_SPELLINGS:
        return FLAG_SPELLINGS[value.strip().lower()]
    raise ValueError(
        f"'{name}' must be a boolean, got {value!r}; use true/false (also 1/0, yes/no, any case), "
        f"e.g. --{name} false."
    )


@dataclass(frozen=True)
class ParameterRule:
    """What one id allows: ``check(value)`` returns the parsed value or raises ``ValueError``/``TypeError``;
    ``allowed`` says it in words for the error message."""

    allowed: str
    check: Callable[[Any], Any]


def _integer(low: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError
        return int(value)

    return check


def _number(low: float, high: float, low_open: bool, high_open: bool) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError
        if value < low or value > high or (low_open and value == low) or (high_open and value == high):
            raise ValueError
        return float(value)

    return check


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _path(value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ValueError
    return str(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError
    return value


def _flag(name: str) -> Callable[[Any], bool]:
    return lambda value: as_flag(value, name)


_POSITIVE_INT = ("a whole number >= 1", _integer(1))


def _spacing3(value: Any) -> list[float]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
        raise ValueError
    return [_number(0.0, math.inf, True, True)(v) for v in value]


def _levels(value: Any) -> list[int]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) == 0:
        raise ValueError
    return [_integer(0)(v) for v in value]


def _odd_integer(value: Any) -> int:
    number = _integer(1)(value)
    if number % 2 == 0:
        raise ValueError(f"{value!r} is even")
    return number


_NON_NEGATIVE_INT = ("a whole number >= 0", _integer(0))
_FRACTION = ("a number strictly between 0 and 1", _number(0.0, 1.0, True, True))
_PORTION = ("a number in (0, 1]", _number(0.0, 1.0, True, False))
_POSITIVE = ("a number > 0", _number(0.0, math.inf, True, True))
_NON_NEGATIVE = ("a number >= 0", _number(0.0, math.inf, False, True))
_FOLDER = ("a folder path (a non-empty string)", _path)
_FILE = ("a file path (a non-empty string)", _path)
_OPTIONAL_FILE = ("null or a file path", _optional(_path))
_OPTIONAL_FOLDER = ("null or a folder path", _optional(_path))
_NAME = ("a non-empty string (the component that takes it names the choices)", _text)


def _rules() -> dict[str, ParameterRule]:
    table: dict[str, tuple[str, Callable[[Any], Any]]] = {
        # flags
        **{
            name: ("true or false (also 1/0, yes/no)", _flag(name))
            for name in ("amp", "overwrite", "evaluate_with_ema", "use_concatenate", "include_noisy", "dicom_results")
        },
        # sizes and counts
        **{name: _POSITIVE_INT for name in ("image_size", "batch_size", "val_batch_size", "epochs", "val_interval",
                                            "sw_batch_size", "slice_batch_size", "num_folds", "num_disturbances",
                                            "assess_every",
                                            "nvum_monitor_interval", "resize_size", "meta_batch_size",
                                            "dr_resize_size", "fpn_channels", "uncertainty_top_k",
                                            "detections_per_image")},  # fmt: skip
        **{name: _NON_NEGATIVE_INT for name in ("num_workers", "seed", "split_seed", "fold", "pivot_epoch",
                                                "warmup_epochs", "num_datasets", "dadam_cutmix",
                                                "dadam_mixup")},  # fmt: skip
        # fractions and rates
        "disturbance_ratio": ("a number in [0, 1) (0: undisturbed)", _number(0.0, 1.0, False, True)),
        **{name: _FRACTION for name in ("val_fraction", "ema_decay", "nvum_beta",
                                        "dr_val_fraction", "decision_threshold")},  # fmt: skip
        **{name: _PORTION for name in ("train_fraction", "self_paced_start_fraction")},
        "self_paced_growth": ("a number >= 1", _number(1.0, math.inf, False, True)),
        "hard_fraction": ("null or a number strictly between 0 and 1", _optional(_FRACTION[1])),
        **{name: _POSITIVE for name in ("learning_rate", "adam_eps", "meta_alpha", "meta_beta", "label_init_scale",
                                        "label_network_lr")},  # fmt: skip
        **{name: _NON_NEGATIVE for name in ("weight_decay", "entropy_weight", "label_network_weight_decay",
                                            "compatibility_weight")},  # fmt: skip
        "momentum": ("a number in [0, 1)", _number(0.0, 1.0, False, True)),
        "num_slices": ("an odd whole number >= 1", _odd_integer),
        "pixel_spacing": _POSITIVE,
        "png_spacing": ("null or three numbers > 0 (x, y, z mm)", _optional(_spacing3)),
        "uncertainty_levels": ("null (all) or a list of 0-based FPN levels", _optional(_levels)),
        "box_loss_weight": _NON_NEGATIVE,
        "score_threshold": ("a number in [0, 1]", _number(0.0, 1.0, False, False)),
        "nms_threshold": ("a number in [0, 1]", _number(0.0, 1.0, False, False)),
        **{
            name: ("a number in [0, 1]", _number(0.0, 1.0, False, False))
            for name in ("dadam_prob", "dadam_min_correlation")
        },
        "dadam_alpha": _PORTION,
        "dadam_max_patches": _POSITIVE_INT,
        "nvum_reg_weight": ("null (the NVUM mode's default) or a number >= 0", _optional(_NON_NEGATIVE[1])),
        "nvum_prior_eps": ("null or a number > 0", _optional(_POSITIVE[1])),
        "tail_threshold": ("null (below the median class count) or a number strictly between 0 and 1",
                           _optional(_FRACTION[1])),  # fmt: skip
        # folders and files
        **{name: _FOLDER for name in ("bundle_root", "dataset_dir", "output_dir", "ckpt_dir", "test_dir",
                                      "difficulty_dir", "demo_dir")},  # fmt: skip
        "ckpt_path": _FILE,
        **{
            name: _OPTIONAL_FILE
            for name in ("resume_ckpt", "pretrained_ckpt", "pretrained_backbone", "dadam_bank_file", "dl_info_csv")
        },
        **{name: _OPTIONAL_FOLDER for name in ("slice_dir", "eval_mask_dir", "dadam_dir")},
        # named choices and keys, checked by the component that takes them
        **{name: _NAME for name in ("setting", "dataset_layout", "empty_slices", "sampling_strategy", "mixed_layout",
                                    "nvum_mode", "read_check", "test_set", "image_key", "label_key",
                                    "noisy_label_source", "validation_split", "soft_label_method",
                                    "soft_label_source", "soft_label_reduction", "test_split",
                                    "label_gradient", "backbone", "stage_combination", "missing_neighbours",
                                    "disturb_at", "ranking_loss")},  # fmt: skip
        "key_metric": ("null or a MONAI metric dict (checked by the engine)", lambda value: value),
    }
    return {name: ParameterRule(allowed, check) for name, (allowed, check) in table.items()}


PARAMETER_RULES: dict[str, ParameterRule] = _rules()
"""The rule of every user-facing scalar id of the bundles (``monai_ext.bundle.conventions`` checks that every
top-level scalar id of every bundle config has one)."""


PATH_IDS = frozenset(name for name, rule in PARAMETER_RULES.items() if "path" in rule.allowed)
"""The ids whose value is a file or folder path: data, never a ``$`` expression, ``@`` reference or ``%`` macro."""


_RUN_ARGS = {"run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file"}


def command_line_overrides(argv: list[str] | None = None) -> tuple[list[str], dict[str, str]] | None:
    """``(config files, {key: value text})`` of a ``python -m monai.bundle run ...`` command line (``sys.argv`` by
    default), or None when the process is not one. ``run``'s own arguments (``--config_file``, ``--meta_file``, ...)
    are not overrides."""
    argv = sys.argv if argv is None else argv
    if len(argv) < 2 or argv[1] != "run" or not argv[0].replace(os.sep, "/").endswith("monai/bundle/__main__.py"):
        return None
    pairs: dict[str, str] = {}
    tokens = argv[2:]
    for k, token in enumerate(tokens):
        if token.startswith("--"):
            key, sep, value = token[2:].partition("=")
            pairs[key] = value if sep else (tokens[k + 1] if k + 1 < len(tokens) else "")
    files = pairs.get("config_file", "")
    try:
        parsed = ast.literal_eval(files)
    except (ValueError, SyntaxError):
        parsed = files
    files_list = [parsed] if isinstance(parsed, str) else [str(f) for f in parsed]
    return files_list, {k: v for k, v in pairs.items() if k not in _RUN_ARGS}


def check_command_line(argv: list[str] | None = None) -> None:
    """When this process is ``python -m monai.bundle run``, refuse a ``--key`` that is no id of the named config
    files (MONAI would add ``--ouput_dir x`` as a new id and run with the default ``output_dir``) and a path id whose
    value the parser would interpret (see :func:`monai_ext.bundle.workflow.check_overrides`). Overrides given in an
    ``--args_file`` are not seen.

    Raises:
        KeyError, ValueError: see ``check_overrides``.
    """
    found = command_line_overrides(argv)
    if found is None or not found[0] or not all(os.path.isfile(f) for f in found[0]):
        return
    from monai.bundle import ConfigParser

    from monai_ext.bundle.workflow import check_overrides

    parser = ConfigParser()
    parser.read_config(found[0])
    check_overrides(parser, {k: v for k, v in found[1].items() if not k.startswith("_meta_")})


def check_parameters(**values: Any) -> dict[str, Any]:
    """Check every given id against its :data:`PARAMETER_RULES` entry; the first ``initialize`` step of a workflow.

    Example: ``"$monai_ext.bundle.check_parameters(image_size=@image_size, overwrite=@overwrite)"``.

    Returns:
        ``{id: parsed value}`` (flags as bools).

    Also runs :func:`check_command_line` (the ``--key`` overrides of ``python -m monai.bundle run``).

    Raises:
        KeyError: an id has no rule (add one to ``PARAMETER_RULES``), or an unknown command-line key.
        ValueError: listing every id whose value is not allowed, with the value and what is allowed.
    """
    check_command_line()
    unknown = sorted(set(values) - set(PARAMETER_RULES))
    if unknown:
        raise KeyError(f"no parameter rule for id(s) {unknown}; add them to monai_ext.bundle.parameters.")
    parsed, problems = {}, []
    for name, value in values.items():
        rule = PARAMETER_RULES[name]
        try:
            parsed[name] = rule.check(value)
        except (TypeError, ValueError):
            problems.append(f"'{name}' = {value!r}: must be {rule.allowed} (override it with --{name} <value>)")
    if problems:
        raise ValueError("invalid bundle parameter(s):\n- " + "\n- ".join(problems))
    return parsed
