# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Which bundle a DICOM node runs on a series: bundle routes from the command line, chosen by the Modality of the
series' first instance."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BundleRoute", "parse_bundle_spec", "parse_routes", "route_for", "parse_forward", "Destination"]

_MODALITIES = re.compile(r"^[A-Z0-9]{1,16}(,[A-Z0-9]{1,16})*$")


@dataclass
class BundleRoute:
    """One bundle the node serves.

    Attributes:
        bundle_dir: the bundle folder (holding ``configs/inference.json`` and ``models/model.pt``).
        modalities: the DICOM Modality values it accepts (e.g. ``("CR", "DX")``); empty: every modality.
        configs: config files merged after ``configs/inference.json``, relative to the bundle folder or absolute
            (e.g. ``["configs/demo.json"]``).
        overrides: config overrides ``{id: value}`` (e.g. ``{"network_def": "%small_network_def"}``).
    """

    bundle_dir: Path
    modalities: tuple[str, ...] = ()
    configs: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The bundle folder name, used in ``--config``/``--override`` and in the series records."""
        return self.bundle_dir.name

    def accepts(self, modality: str) -> bool:
        return not self.modalities or modality.upper() in self.modalities


def parse_bundle_spec(spec: str) -> BundleRoute:
    """``DIR`` or ``DIR:MOD1,MOD2`` (e.g. ``bundles/cxr_nvum_classification:CR,DX``) as a :class:`BundleRoute`.

    Raises:
        FileNotFoundError: ``DIR`` has no ``configs/inference.json``.
    """
    path, modalities = spec, ()
    head, sep, tail = spec.rpartition(":")
    if sep and _MODALITIES.match(tail.upper()) and not Path(spec).exists():
        path, modalities = head, tuple(tail.upper().split(","))
    bundle = Path(path).expanduser().resolve()
    if not (bundle / "configs" / "inference.json").is_file():
        raise FileNotFoundError(
            f"--bundle {spec!r}: '{bundle}' has no configs/inference.json; give a bundle folder, optionally followed "
            "by :MODALITY[,MODALITY...] (e.g. bundles/cxr_nvum_classification:CR,DX)."
        )
    return BundleRoute(bundle, modalities)


def _value(text: str) -> Any:
    """A command-line value: JSON when it parses (``true``, ``3``, ``[1, 2]``), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_routes(
    bundles: Sequence[str], configs: Sequence[str] = (), overrides: Sequence[str] = ()
) -> list[BundleRoute]:
    """Routes from ``--bundle`` specs, ``--config NAME=FILE`` and ``--override NAME:ID=VALUE`` options (``NAME`` =
    bundle folder name; ``VALUE`` read as JSON when it parses, else as text).

    Raises:
        FileNotFoundError: see :func:`parse_bundle_spec`; a config file is missing.
        ValueError: an option is malformed or names no ``--bundle``; two bundles share a folder name.
    """
    if not bundles:
        raise ValueError("give at least one --bundle DIR[:MODALITY,...].")
    routes = [parse_bundle_spec(s) for s in bundles]
    by_name = {r.name: r for r in routes}
    if len(by_name) != len(routes):
        raise ValueError(f"two --bundle folders share a name: {[r.name for r in routes]}; each name must be unique.")

    def _route(name: str, option: str) -> BundleRoute:
        if name not in by_name:
            raise ValueError(f"{option}: no --bundle named '{name}' (bundles: {sorted(by_name)}).")
        return by_name[name]

    for item in configs:
        name, sep, file = item.partition("=")
        if not sep or not file:
            raise ValueError(f"--config {item!r}: expected NAME=FILE, e.g. cxr_nvum_classification=configs/demo.json.")
        route = _route(name, f"--config {item!r}")
        path = Path(file) if Path(file).is_absolute() else route.bundle_dir / file
        if not path.is_file():
            raise FileNotFoundError(f"--config {item!r}: '{path}' not found.")
        route.configs.append(str(path))
    for item in overrides:
        name, sep, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if not sep or not eq or not key:
            raise ValueError(
                f"--override {item!r}: expected NAME:ID=VALUE, e.g. "
                "cxr_nvum_classification:network_def=%small_network_def."
            )
        _route(name, f"--override {item!r}").overrides[key] = _value(value)
    return routes


def route_for(routes: Sequence[BundleRoute], modality: str) -> BundleRoute | None:
    """The first route accepting ``modality``, or None."""
    return next((r for r in routes if r.accepts(modality)), None)


@dataclass(frozen=True)
class Destination:
    """Where results go: a Storage SCP."""

    host: str
    port: int
    ae_title: str


def parse_forward(text: str) -> Destination:
    """``HOST:PORT:AET`` as a :class:`Destination`.

    Raises:
        ValueError: not three fields, a port that is no number in 1..65535, or an AE title over 16 characters.
    """
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise ValueError(f"--forward {text!r}: expected HOST:PORT:AET, e.g. 127.0.0.1:11113:PACS.")
    host, port, aet = parts
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--forward {text!r}: port {port!r} is not a number in 1..65535.")
    if len(aet) > 16:
        raise ValueError(f"--forward {text!r}: AE title {aet!r} is longer than 16 characters.")
    return Destination(host, int(port), aet)
