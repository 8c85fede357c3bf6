# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The project's bundle template (``bundles/README.md``) as checks a machine can run on any bundle folder.

- :func:`positional_references`: no config refers to a list element by position (``@train#handlers#<k>``,
  ``"train#handlers#<k>#network"``): a component another id uses has its own top-level id.
- :func:`branching_expressions`: no ``$`` expression decides a policy (``... if ... else ...``, a comprehension
  filter, an ``if`` statement): the choice is an id, the consequences live in ``monai_ext``.
- :func:`handler_list_problems`: every item of ``train#handlers`` / ``validate#handlers`` is a dict with a
  ``_target_`` (MONAI's ``check_properties`` reads each item's ``_target_`` to find the ``ValidationHandler``), so a
  component defined at its own id is listed as ``{"_target_": "@<id>", "_mode_": "callable"}``.
- :func:`overlay_problems`: the small-run overlay ``configs/demo.json`` exists and sets top-level ids only, so that it
  merges onto every config of the bundle (a nested id such as ``train#dataset#_target_`` would fail on
  ``inference.json``).

:func:`check_conventions` runs them all and raises one error listing every problem.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

from monai_ext.bundle.parameters import PARAMETER_RULES
from monai_ext.bundle.workflow import bundle_folder

__all__ = [
    "DEMO_OVERLAY",
    "BundleConventionError",
    "positional_references",
    "branching_expressions",
    "handler_list_problems",
    "overlay_problems",
    "parameter_problems",
    "check_conventions",
]

DEMO_OVERLAY = "configs/demo.json"
"""The small-run overlay every bundle ships (``make demo``, the benchmarks and the tests merge it last)."""

_CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
_POSITIONAL = re.compile(r"#handlers#\d+")
_HANDLER_LISTS = ("train#handlers", "validate#handlers")


class BundleConventionError(ValueError):
    """A bundle breaks the project's bundle template; the message lists each config, id and problem."""


def _configs(bundle: Path) -> list[Path]:
    return [
        p for p in sorted((bundle / "configs").iterdir()) if p.suffix in _CONFIG_SUFFIXES and p.name != "metadata.json"
    ]


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(id, value)`` of every key and leaf below ``value`` (dict keys are yielded as values too)."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}#{k}" if path else str(k)
            yield sub, str(k)
            yield from _walk(v, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}#{i}" if path else str(i))
    else:
        yield path, value


def positional_references(config: dict[str, Any]) -> list[str]:
    """The ids (and override keys) of ``config`` whose text refers to a handler by its position in a list.

    Example: ``{"ema": "@train#handlers#<k>"}`` with ``<k>`` a number gives ``["ema"]``.
    """
    return sorted({i for i, v in _walk(config) if isinstance(v, str) and _POSITIONAL.search(v)})


def _branches(code: str) -> bool:
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError:
        return False  # not Python at all: MONAI reports it when it evaluates the expression
    for node in ast.walk(tree):
        if isinstance(node, (ast.IfExp, ast.If)) or (isinstance(node, ast.comprehension) and node.ifs):
            return True
    return False


def branching_expressions(config: dict[str, Any]) -> list[str]:
    """The ids of ``config`` whose ``$`` expression branches: a conditional expression, an ``if`` statement or a
    filtered comprehension (found in Python's syntax tree, so ``'if'`` inside a string does not count).

    Example: ``{"key": "$'a' if @x else 'b'"}`` gives ``["key"]``; ``{"key": "$f(@x)"}`` gives ``[]``.
    """
    found = []
    for i, v in _walk(config):
        if isinstance(v, str) and v.startswith("$") and _branches(re.sub(r"@([\w#]+)", r"_ref", v[1:])):
            found.append(i)
    return sorted(set(found))


def handler_list_problems(config: dict[str, Any]) -> list[str]:
    """Items of ``train#handlers`` / ``validate#handlers`` (top-level or ``#``-override form) that are not dicts with a
    ``_target_``, as ``"<list id>#<k>: <what it is>"``."""
    problems = []
    for list_id in _HANDLER_LISTS:
        part, key = list_id.split("#")
        handlers = config.get(list_id, config.get(part, {}).get(key) if isinstance(config.get(part), dict) else None)
        if handlers is None:
            continue
        if not isinstance(handlers, list):
            problems.append(f"{list_id}: a {type(handlers).__name__}, not a list of handler dicts")
            continue
        for k, item in enumerate(handlers):
            if not (isinstance(item, dict) and "_target_" in item):
                problems.append(f"{list_id}#{k}: {item!r} (list a component by id as "
                                '{"_target_": "@<id>", "_mode_": "callable"})')  # fmt: skip
    return problems


def overlay_problems(bundle_dir: str | os.PathLike) -> list[str]:
    """Problems of the bundle's :data:`DEMO_OVERLAY`: missing, or setting nested ids (which cannot merge onto every
    config of the bundle)."""
    path = bundle_folder(bundle_dir) / DEMO_OVERLAY
    if not path.is_file():
        return [f"{DEMO_OVERLAY} is missing (the small-run overlay of make demo, the benchmarks and the tests)"]
    nested = [k for k in ConfigParser.load_config_file(str(path)) if "#" in k]
    if nested:
        return [f"{DEMO_OVERLAY} sets nested id(s) {nested}; an overlay for every config sets top-level ids only"]
    return []


_FLAG_USE = re.compile(r"(as_flag|check_parameters)\(")


def parameter_problems(config: dict[str, Any]) -> list[str]:
    """Problems of ``config``'s user-facing scalar ids (a command line gives them as text): a top-level id with a
    literal scalar value (not a ``$``/``@``/``%`` expression) that has no rule in
    :data:`monai_ext.bundle.parameters.PARAMETER_RULES`, and a use of a boolean id (shipped as a JSON boolean) that
    does not parse it with ``as_flag`` (``"$monai_ext.bundle.as_flag(@amp, 'amp')"``) or ``check_parameters``.
    """
    problems = []
    flags = [k for k, v in config.items() if "#" not in k and isinstance(v, bool)]
    for key, value in config.items():
        literal = (
            value is None
            or isinstance(value, (bool, int, float))
            or (isinstance(value, str) and not value.startswith(("$", "@", "%")))
        )
        if "#" not in key and literal and key not in PARAMETER_RULES:
            problems.append(f"'{key}' has no rule in monai_ext.bundle.parameters.PARAMETER_RULES")
    for i, v in _walk(config):
        if not isinstance(v, str):
            continue
        for flag in flags:
            if re.search(rf"@{flag}(?![\w#])", v) and not (v.startswith("$") and _FLAG_USE.search(v)):
                problems.append(f"'{i}' uses the boolean '{flag}' without monai_ext.bundle.as_flag")
    return problems


def check_conventions(bundle_dir: str | os.PathLike) -> None:
    """Run every check of this module on every config of the bundle.

    Raises:
        FileNotFoundError: ``bundle_dir`` is not a bundle folder.
        BundleConventionError: listing each config and its problems.
    """
    bundle = bundle_folder(bundle_dir)
    problems = overlay_problems(bundle)
    for path in _configs(bundle):
        config = ConfigParser.load_config_file(str(path))
        name = f"configs/{path.name}"
        problems += [f"{name}: '{i}' refers to a handler by list position" for i in positional_references(config)]
        problems += [f"{name}: '{i}' branches inside a $ expression" for i in branching_expressions(config)]
        problems += [f"{name}: {p}" for p in handler_list_problems(config)]
        problems += [f"{name}: {p}" for p in parameter_problems(config)]
    if problems:
        raise BundleConventionError(
            f"'{bundle.name}' breaks the bundle template (bundles/README.md):\n- " + "\n- ".join(problems)
        )
