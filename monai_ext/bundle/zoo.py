# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The MONAI model-zoo checks of a bundle folder, run offline and on the CPU.

Model-zoo CI (``ci/verify_bundle.py``) checks the layout, the version and changelog, the metadata against its schema,
the network's input/output shapes (``verify_net_in_out``), the TorchScript export (``ckpt_export``) and the bundle
properties (``ConfigWorkflow.check_properties``). It needs network access (schema download, large files) and a
released ``models/model.pt``. The functions here run the same MONAI steps without either:

- :func:`check_layout`: required files and ``version`` listed in ``changelog``;
- :func:`check_metadata`: :func:`monai_ext.bundle.verify.verify_bundle_metadata` (vendored schema) and the tensor
  names ``image`` / ``pred`` that ``verify_net_in_out``, MONAI Label and MONAI Deploy read;
- :func:`check_config_ids`: ids that must be overridable on their own (``amp``, ``num_workers``, ...), and the same
  ``network_def`` in every config that defines one (inference must load training checkpoints);
- :func:`monai_ext.bundle.conventions.check_conventions`: the bundle template's rules (no handler by position,
  no branching ``$`` expression, handler lists of dicts, a ``configs/demo.json`` that merges onto every config);
- :func:`check_net_in_out`: ``monai.bundle.verify_net_in_out`` on the inference config;
- :func:`check_ckpt_export`: a random-weight checkpoint ``{"model": state_dict}`` exported with
  ``monai.bundle.ckpt_export``, reloaded with ``torch.jit.load`` and compared with the eager network;
- :func:`check_properties`: ``ConfigWorkflow(workflow_type=...).check_properties()``, stricter than MONAI's: every
  property id of ``TrainProperties`` / ``InferProperties`` must be defined, optional ones included.

:func:`verify_bundle` runs them all (``scripts/verify_bundles.py`` is its command line). Properties are instantiated by
MONAI's check, so it needs data: :func:`demo_overrides` points the configs' demo-data paths at a folder of
:mod:`monai_ext.demo` datasets.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser, ckpt_export, verify_net_in_out
from monai.data import load_net_with_metadata
from monai.utils import look_up_option
from monai.utils.enums import BundleProperty, BundlePropertyConfig, StrEnum

from monai_ext.bundle.conventions import DEMO_OVERLAY, check_conventions
from monai_ext.bundle.verify import verify_bundle_metadata
from monai_ext.bundle.workflow import bundle_folder, bundle_parser, bundle_workflow, config_paths

__all__ = [
    "REQUIRED_FILES",
    "REQUIRED_CONFIG_IDS",
    "DEMO_SIZE",
    "DEMO_SEED",
    "BundleCheckError",
    "ZooCheck",
    "PropertyReport",
    "check_layout",
    "check_metadata",
    "check_config_ids",
    "check_net_in_out",
    "check_ckpt_export",
    "output_tensors",
    "EXPORT_NET_ID",
    "demo_overrides",
    "write_demo_data",
    "check_properties",
    "verify_bundle",
]

logger = logging.getLogger(__name__)

REQUIRED_FILES: tuple[str, ...] = (
    "configs/metadata.json",
    "configs/inference.json",
    "configs/logging.conf",
    DEMO_OVERLAY,
    "docs/README.md",
    "LICENSE",
)
"""Files every bundle ships (model-zoo required + preferred files, less ``models/model.pt``, which training writes,
plus this project's small-run overlay ``configs/demo.json``)."""

REQUIRED_CONFIG_IDS: dict[str, tuple[str, ...]] = {
    "configs/train.json": (
        "bundle_root", "device", "demo_dir", "dataset_dir", "output_dir", "ckpt_dir", "amp", "num_workers", "seed",
        "class_names", "num_classes", "image_size", "batch_size", "epochs", "network_def", "network", "loss_def",
        "loss", "checkpoint", "rng_state", "datalist_args", "training_setup",
    ),
    "configs/evaluate.json": ("ckpt_path",),
    "configs/inference.json": (
        "bundle_root", "device", "dataset_dir", "output_dir", "amp", "num_workers", "class_names", "num_classes",
        "image_size", "overwrite", "ckpt_path", "network_def",
    ),
    "configs/multi_gpu_train.json": ("dist_backend",),
}  # fmt: skip
"""Top-level ids each config (when the bundle has it) defines (the shared ids of ``bundles/README.md``), so that one
flag overrides them (``--amp false``, ``--num_workers 0``, ``--dist_backend gloo``) and every bundle names the same
thing the same way."""

DEMO_SIZE = 0.4
"""``size`` of the demo data for the property checks: small, yet its NIH training split (seed :data:`DEMO_SEED`)
has a positive of every class, which the NVUM prior ``log(pi)`` needs."""

DEMO_SEED = 6
"""``seed`` of the demo data for the property checks (see :data:`DEMO_SIZE`)."""

_DEMO_PATH = re.compile(r"(?:demo_data/|@demo_dir\s*\+\s*['\"]/)([A-Za-z0-9_]+)")
_CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


class BundleCheckError(ValueError):
    """A bundle fails a model-zoo check; the message names the file or config id and the fix."""


class ZooCheck(StrEnum):
    """The checks of :func:`verify_bundle`, in the order they run."""

    LAYOUT = "layout"
    METADATA = "metadata"
    CONFIG_IDS = "config_ids"
    CONVENTIONS = "conventions"
    NET_IN_OUT = "net_in_out"
    CKPT_EXPORT = "ckpt_export"
    PROPERTIES = "properties"


@dataclass
class PropertyReport:
    """Result of :func:`check_properties`.

    Attributes:
        workflow_type: ``"train"`` or ``"infer"``.
        undefined_required: required properties whose id is not in the config.
        undefined_optional: optional properties whose id is not in the config (MONAI accepts these; this project
            defines every one).
        failed: what ``ConfigWorkflow.check_properties()`` returns: required properties that cannot be instantiated,
            and optional ones that the engine does not reference by their id (``"@<id>"``).
    """

    workflow_type: str
    undefined_required: list[str] = field(default_factory=list)
    undefined_optional: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing is undefined or failed."""
        return not (self.undefined_required or self.undefined_optional or self.failed)

    def describe(self) -> str:
        """One line per problem, naming the property and its config id."""
        lines = []
        if self.undefined_required:
            lines.append(f"{self.workflow_type}: required property ids not defined: {self.undefined_required}")
        if self.undefined_optional:
            lines.append(f"{self.workflow_type}: optional property ids not defined: {self.undefined_optional}")
        if self.failed:
            lines.append(f"{self.workflow_type}: ConfigWorkflow.check_properties() reports: {self.failed}")
        return "\n".join(lines) or f"{self.workflow_type}: all properties defined"


def _load_meta(bundle: Path) -> dict[str, Any]:
    path = bundle / "configs" / "metadata.json"
    if not path.is_file():
        raise FileNotFoundError(f"bundle metadata not found: '{path}'. Expected <bundle>/configs/metadata.json.")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def check_layout(bundle_dir: str | os.PathLike) -> None:
    """Check the files of :data:`REQUIRED_FILES`, that ``logging.conf`` has the ``fileConfig`` sections, and that the
    metadata ``version`` is a key of its ``changelog`` (model-zoo CI's ``verify_version_changes``).

    Raises:
        FileNotFoundError: ``bundle_dir`` has no ``configs`` folder.
        BundleCheckError: a file is missing, ``logging.conf`` lacks a section, or the version is not in the changelog.
    """
    bundle = bundle_folder(bundle_dir)
    missing = [f for f in REQUIRED_FILES if not (bundle / f).is_file()]
    if missing:
        raise BundleCheckError(f"bundle '{bundle.name}' lacks {missing} (model-zoo layout: {list(REQUIRED_FILES)}).")
    parser = configparser.ConfigParser()
    try:
        parser.read(bundle / "configs" / "logging.conf", encoding="utf-8")
    except configparser.Error as e:
        raise BundleCheckError(f"'{bundle / 'configs' / 'logging.conf'}' is not a logging fileConfig: {e}") from e
    lacking = [s for s in ("loggers", "handlers", "formatters", "logger_root") if not parser.has_section(s)]
    if lacking:
        raise BundleCheckError(f"'{bundle / 'configs' / 'logging.conf'}' lacks the section(s) {lacking}.")
    meta = _load_meta(bundle)
    version, changelog = meta.get("version"), meta.get("changelog")
    if not isinstance(changelog, Mapping) or version not in changelog:
        raise BundleCheckError(
            f"'{bundle.name}' metadata version {version!r} is not a key of its 'changelog' "
            f"({sorted(changelog) if isinstance(changelog, Mapping) else changelog!r}); add a changelog line for it."
        )


def check_metadata(bundle_dir: str | os.PathLike) -> None:
    """Validate ``configs/metadata.json`` offline against the schema it names, and check that the network's input
    tensor is called ``image`` and its output ``pred`` (what ``verify_net_in_out``, MONAI Label and MONAI Deploy read).

    Raises:
        FileNotFoundError: no metadata file.
        ValueError: the schema check fails (MONAI's message names the key).
        BundleCheckError: the tensors are named otherwise.
    """
    bundle = bundle_folder(bundle_dir)
    verify_bundle_metadata(bundle / "configs" / "metadata.json")
    fmt = _load_meta(bundle)["network_data_format"]
    inputs, outputs = sorted(fmt.get("inputs", {})), sorted(fmt.get("outputs", {}))
    if inputs != ["image"] or "pred" not in outputs:
        raise BundleCheckError(
            f"'{bundle.name}' network_data_format names inputs {inputs} and outputs {outputs}; the zoo tools expect "
            "exactly one input 'image' and an output 'pred'."
        )


def check_config_ids(bundle_dir: str | os.PathLike, required_ids: Mapping[str, Sequence[str]] | None = None) -> None:
    """Check that each config defines its top-level ``required_ids`` and that every config defining ``network_def``
    defines the same one (raw, before parsing), so that inference loads the checkpoints training writes. Overlays
    count too: the small-run overlay ``configs/demo.json`` keeps the shipped network and offers a small one under its
    own id (``small_network_def``), so a ``network_def`` in it would make ``make demo`` train another network.

    Args:
        bundle_dir: the bundle folder.
        required_ids: ``{config path relative to the bundle: ids}``; a config the bundle does not have is skipped.
            Defaults to :data:`REQUIRED_CONFIG_IDS`.

    Raises:
        BundleCheckError: naming each config and its missing ids, or the configs whose ``network_def`` differ.
    """
    bundle = bundle_folder(bundle_dir)
    required_ids = REQUIRED_CONFIG_IDS if required_ids is None else required_ids
    problems, networks = [], {}
    for rel, ids in required_ids.items():
        if (bundle / rel).is_file():
            config = ConfigParser.load_config_file(bundle / rel)
            absent = [i for i in ids if i not in config]
            if absent:
                problems.append(f"{rel} lacks the top-level id(s) {absent}")
    for path in sorted((bundle / "configs").iterdir()):
        if path.suffix in _CONFIG_SUFFIXES and path.name != "metadata.json":
            config = ConfigParser.load_config_file(path)
            if "network_def" in config:
                networks[path.name] = config["network_def"]
    if len({json.dumps(n, sort_keys=True) for n in networks.values()}) > 1:
        problems.append(f"network_def differs between {sorted(networks)}")
    if problems:
        raise BundleCheckError(f"'{bundle.name}': " + "; ".join(problems) + ".")


def check_net_in_out(
    bundle_dir: str | os.PathLike,
    config_file: str = "configs/inference.json",
    net_id: str = "network_def",
    device: str = "cpu",
    **override: Any,
) -> None:
    """Run ``monai.bundle.verify_net_in_out``: a random ``1 C *spatial_shape`` input of the metadata's ``image`` dtype
    through ``net_id``; the output's channel count (dim 1) and dtype must match ``pred``.

    Args:
        bundle_dir: the bundle folder (passed as ``bundle_root``).
        config_file: config defining ``net_id``, relative to the bundle. Defaults to ``"configs/inference.json"``.
        net_id: the network's config id. Defaults to ``"network_def"``.
        device: device of the forward pass. Defaults to ``"cpu"``.
        override: config overrides, e.g. ``{"_meta_#network_data_format#inputs#image#spatial_shape": [64, 64]}``
            for a smaller input.

    A network whose metadata output ``pred`` has ``"type": "object"`` (a detector returning boxes, the model zoo's
    ``lung_nodule_ct_detection`` convention) is skipped, as the model zoo's CI skips it.

    Raises:
        ValueError: output channel count or dtype differs from the metadata (MONAI's message).
        KeyError: ``net_id`` is not in the config.
    """
    bundle = bundle_folder(bundle_dir)
    parser = bundle_parser(bundle, config_file, meta_file=str(bundle / "configs" / "metadata.json"))
    if parser.get("_meta_#network_data_format#outputs#pred#type") == "object":
        logger.info(
            f"{bundle.name}: net_in_out skipped: the network's output is an object (a detector's dict of boxes), which "
            "verify_net_in_out cannot compare; the model zoo skips detection bundles too (its "
            "exclude_verify_shape_list). The detector is tested in tests/bundles instead."
        )
        return
    verify_net_in_out(
        net_id=net_id,
        meta_file=str(bundle / "configs" / "metadata.json"),
        config_file=config_paths(bundle, config_file),
        device=device,
        bundle_root=str(bundle),
        **override,
    )


EXPORT_NET_ID = "export_network_def"
"""Config id of the TorchScript-exportable twin of ``network_def`` (same ``state_dict`` keys), when a bundle's
training network cannot be scripted (``SplitRetinaNet`` carries MoMBS's split; its twin is MONAI's ``RetinaNet``)."""


def output_tensors(output: Any) -> list[torch.Tensor]:
    """The tensors of a network output (a tensor, or dicts / lists / tuples of them), in a fixed order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for key in sorted(output) for t in output_tensors(output[key])]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in output_tensors(item)]
    raise BundleCheckError(f"cannot compare a network output of type {type(output).__name__}.")


def check_ckpt_export(
    bundle_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    config_file: str = "configs/inference.json",
    net_id: str = "network_def",
    key_in_ckpt: str = "model",
    input_size: int | None = 64,
    seed: int = 0,
    atol: float = 1e-4,
    rtol: float = 1e-4,
) -> Path:
    """Export a random-weight checkpoint of ``net_id`` with ``monai.bundle.ckpt_export`` and check the TorchScript file.

    With the default ``net_id`` and a config that defines :data:`EXPORT_NET_ID`, that twin is exported instead.

    Writes ``<work_dir>/model.pt`` (``{key_in_ckpt: state_dict}``, the layout of the bundles' checkpoints) and
    ``<work_dir>/model.ts``, reloads it with ``torch.jit.load`` and compares its output with the eager network (in
    ``eval`` mode) on one random input; also checks that the file embeds the bundle's metadata version.

    Args:
        bundle_dir: the bundle folder.
        work_dir: folder for ``model.pt`` / ``model.ts`` (created).
        config_file: config defining ``net_id``, relative to the bundle. Defaults to ``"configs/inference.json"``.
        net_id: the network's config id. Defaults to ``"network_def"``.
        key_in_ckpt: key of the weights in the checkpoint. Defaults to ``"model"``.
        input_size: side of the square ``1 C input_size input_size`` comparison input; None uses the metadata's
            ``spatial_shape``. Defaults to 64 (fast on a CPU).
        seed: seed of the comparison input's ``torch.Generator``. Defaults to 0.
        atol: absolute tolerance of the comparison. Defaults to 1e-4.
        rtol: relative tolerance of the comparison. Defaults to 1e-4.

    Returns:
        The path of ``model.ts``.

    Raises:
        BundleCheckError: the outputs differ beyond the tolerances, or the metadata is not embedded.
    """
    bundle = bundle_folder(bundle_dir)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    meta_file, configs = str(bundle / "configs" / "metadata.json"), config_paths(bundle, config_file)
    parser = bundle_parser(bundle, config_file, meta_file=meta_file)
    if net_id == "network_def" and EXPORT_NET_ID in parser:
        net_id = EXPORT_NET_ID
    net = parser.get_parsed_content(net_id, instantiate=True).to("cpu").eval()
    ckpt, ts_path = work / "model.pt", work / "model.ts"
    torch.save({key_in_ckpt: net.state_dict()}, ckpt)
    ckpt_export(
        net_id=net_id,
        filepath=str(ts_path),
        ckpt_file=str(ckpt),
        meta_file=meta_file,
        config_file=configs,
        key_in_ckpt=key_in_ckpt,
        bundle_root=str(bundle),
    )
    image = parser.get_parsed_content("_meta_#network_data_format#inputs#image")
    spatial = list(image["spatial_shape"]) if input_size is None else [int(input_size)] * len(image["spatial_shape"])
    x = torch.rand(1, int(image["num_channels"]), *spatial, generator=torch.Generator().manual_seed(seed))
    ts_net, ts_meta, _ = load_net_with_metadata(str(ts_path), map_location="cpu")
    with torch.no_grad():
        expected_all, actual_all = output_tensors(net(x)), output_tensors(ts_net.eval()(x))
    if len(expected_all) != len(actual_all):
        raise BundleCheckError(
            f"TorchScript export of '{net_id}' returns {len(actual_all)} tensors, the eager network "
            f"{len(expected_all)}."
        )
    for expected, actual in zip(expected_all, actual_all):
        if expected.shape != actual.shape or not torch.allclose(actual, expected, atol=atol, rtol=rtol):
            diff = (actual - expected).abs().max().item() if expected.shape == actual.shape else "shape"
            raise BundleCheckError(
                f"TorchScript export of '{net_id}' differs from the eager network: output {tuple(actual.shape)} vs "
                f"{tuple(expected.shape)}, max |difference| {diff} (atol {atol}, rtol {rtol})."
            )
    if ts_meta.get("version") != parser.get("_meta_#version"):
        raise BundleCheckError(f"'{ts_path}' embeds metadata version {ts_meta.get('version')!r}, not the bundle's.")
    return ts_path


def demo_overrides(
    bundle_dir: str | os.PathLike, config_file: str | Sequence[str], demo_root: str | os.PathLike
) -> tuple[dict[str, str], list[str]]:
    """Overrides pointing the configs' default demo-data paths at ``demo_root``.

    Bundle configs default their data folders to the bundle's demo data, e.g. ``"demo_dir": "$@bundle_root +
    '/demo_data'"`` and ``"dataset_dir": "$@demo_dir + '/nih'"`` (older configs: ``"$@bundle_root +
    '/../../demo_data/nih'"``). ``demo_dir`` (when the configs define it) becomes ``demo_root``, which moves the
    nested defaults (``box_sources#nih``) too, and every top-level id whose raw value names ``@demo_dir + '/<dataset>'``
    or ``demo_data/<dataset>`` becomes ``"<demo_root>/<dataset>"``.

    Returns:
        ``(overrides, dataset names)``, names (of every id, nested ones included) in order of first appearance.
    """
    parser = bundle_parser(bundle_dir, config_file)
    config = parser.get()
    overrides = {"demo_dir": str(demo_root)} if "demo_dir" in config else {}
    names: list[str] = []

    def walk(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{key}#{k}", v)
        elif isinstance(value, str):
            match = _DEMO_PATH.search(value)
            if match:
                if "#" not in key:
                    overrides[key] = str(Path(demo_root) / match.group(1))
                names.extend([match.group(1)] * (match.group(1) not in names))

    for key, value in config.items():
        walk(key, value)
    return overrides, names


def write_demo_data(
    demo_root: str | os.PathLike, names: Sequence[str], size: float = DEMO_SIZE, seed: int = DEMO_SEED
) -> Path:
    """Write the :mod:`monai_ext.demo` datasets ``names`` that ``demo_root`` does not hold yet; return the root.

    Each dataset's seed depends only on ``seed`` and its name, so datasets written by separate calls match those of
    one call.
    """
    # imported here: the demo writers are heavy and only the property check needs them
    from monai_ext.demo import write_demo_datasets

    root = Path(demo_root)
    todo = [n for n in names if not (root / n).is_dir()]
    if todo:
        write_demo_datasets(root, size=size, seed=seed, names=todo)
    return root


def check_properties(
    bundle_dir: str | os.PathLike,
    workflow_type: str,
    config_file: str | Sequence[str],
    **override: Any,
) -> PropertyReport:
    """``ConfigWorkflow(workflow_type).initialize()`` and ``check_properties()``, plus the property ids not defined.

    MONAI's check instantiates every required property (datasets, networks, engines), so the overrides must point
    the data ids at real data (:func:`demo_overrides`) and the output ids (``output_dir``, ``ckpt_dir``) at a
    scratch folder: the ``initialize`` list runs. The bundle's logging config is not applied.

    Args:
        bundle_dir: the bundle folder (passed as ``bundle_root``).
        workflow_type: ``"train"`` (TrainProperties) or ``"infer"`` (InferProperties), plus MetaProperties.
        config_file: config path(s) relative to the bundle, merged in order.
        override: config overrides.

    Returns:
        The :class:`PropertyReport`; see :attr:`PropertyReport.ok`.

    Raises:
        BundleCheckError: MONAI's check itself fails on the config (e.g. ``train#handlers`` is an expression, not a
            list of handler dicts, which MONAI iterates to find the ``ValidationHandler``).
    """
    bundle = bundle_folder(bundle_dir)
    wf = bundle_workflow(bundle, config_file, workflow_type, **override)
    report = PropertyReport(workflow_type=str(wf.workflow_type))
    for name, prop in wf.properties.items():
        if prop[BundlePropertyConfig.ID] not in wf.parser:
            required = prop.get(BundleProperty.REQUIRED, False)
            (report.undefined_required if required else report.undefined_optional).append(
                f"{name} ('{prop[BundlePropertyConfig.ID]}')"
            )
    if report.undefined_required:
        return report  # MONAI's check raises KeyError on an undefined required id
    wf.initialize()
    try:
        report.failed = list(wf.check_properties() or [])
    except (TypeError, AttributeError) as e:
        raise BundleCheckError(
            f"ConfigWorkflow.check_properties() fails on {config_file} ({type(e).__name__}: {e}). An optional "
            "property's reference must be '@<id>', and 'train#handlers' a list of handler dicts (MONAI iterates it "
            "to find the ValidationHandler)."
        ) from e
    return report


def verify_bundle(
    bundle_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    demo_root: str | os.PathLike | None = None,
    checks: Sequence[ZooCheck | str] | None = None,
    **override: Any,
) -> dict[str, str]:
    """Run the ``checks`` on one bundle and return ``{check: "ok" | "FAILED: <exception type>: <message>"}``.

    The property check covers ``configs/train.json`` (train) and ``configs/inference.json`` (infer); training's demo
    data is written under ``demo_root`` when missing, and inference reads the images of those demo folders.

    Args:
        bundle_dir: the bundle folder.
        work_dir: scratch folder (exports, property-check outputs).
        demo_root: folder of the demo datasets; None uses ``<work_dir>/demo_data``.
        checks: subset of :class:`ZooCheck`; None runs all.
        override: config overrides of the net in/out and property checks.

    Raises:
        ValueError: an unknown check name.
    """
    bundle, work = bundle_folder(bundle_dir), Path(work_dir)
    demo = Path(demo_root) if demo_root is not None else work / "demo_data"
    selected = [look_up_option(c, ZooCheck) for c in (checks if checks is not None else list(ZooCheck))]
    has_train = (bundle / "configs" / "train.json").is_file()

    def _properties() -> str:
        reports = []
        if has_train:
            data, names = demo_overrides(bundle, "configs/train.json", demo)
            write_demo_data(demo, names)
            scratch = {"output_dir": str(work / "train_out"), "ckpt_dir": str(work / "train_ckpt")}
            reports.append(check_properties(bundle, "train", "configs/train.json", **{**data, **scratch, **override}))
        else:
            names = []
        infer_in = str(demo / names[0]) if names else str(demo)
        scratch = {"dataset_dir": infer_in, "output_dir": str(work / "infer_out")}
        reports.append(check_properties(bundle, "infer", "configs/inference.json", **{**scratch, **override}))
        bad = [r.describe() for r in reports if not r.ok]
        if bad:
            raise BundleCheckError("\n".join(bad))
        return "ok"

    runners = {
        ZooCheck.LAYOUT: lambda: check_layout(bundle),
        ZooCheck.METADATA: lambda: check_metadata(bundle),
        ZooCheck.CONFIG_IDS: lambda: check_config_ids(bundle),
        ZooCheck.CONVENTIONS: lambda: check_conventions(bundle),
        ZooCheck.NET_IN_OUT: lambda: check_net_in_out(bundle, **override),
        ZooCheck.CKPT_EXPORT: lambda: check_ckpt_export(bundle, work / "export"),
        ZooCheck.PROPERTIES: _properties,
    }
    results = {}
    for check in selected:
        try:
            runners[check]()
            results[check.value] = "ok"
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            results[check.value] = f"FAILED: {type(e).__name__}: {e}"
            logger.error(f"{bundle.name}: {check.value} FAILED: {e}")
    return results
