# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Publish a trained checkpoint as a bundle's zoo weights, and download published weights with their hashes checked.

``publish`` turns a training checkpoint into the files a model-zoo bundle ships:

- ``models/model.pt``: ``{"model": state_dict}``, what every bundle's ``configs/inference.json`` loads
  (``CheckpointLoader`` with ``load_dict {"model": "@network"}``), what MONAI Label loads into ``network_def`` and one
  of the layouts MONAI Deploy accepts (``state_dict`` / ``model`` / raw);
- ``models/model.ts``: TorchScript from ``monai.bundle.ckpt_export`` (metadata and inference config embedded), of
  the config's ``network_def`` or, when the config defines one, of its scriptable twin
  :data:`monai_ext.bundle.zoo.EXPORT_NET_ID` (the detection bundle: MONAI's ``RetinaNet`` for ``SplitRetinaNet``);
- ``large_files.yml`` in the model-zoo format: ``large_files:`` a list of ``{path, url, hash_val, hash_type:
  sha256}`` (``url`` = ``<url>/<asset_prefix><file name>``), plus a top-level ``provenance:`` mapping that MONAI ignores
  (``download_large_files`` reads only ``large_files``) and that travels with the release zip: the checkpoint's path
  and sha256, the training ``dataset_dir``, whether that is demo data, the configs and overrides, the UTC date and
  the monai-ext / MONAI / torch versions.

Weights trained on demo data are published only with a warning, and their provenance says ``demo_data: true``: a
``dataset_dir`` with a ``demo_data`` folder in its path (where ``make demo`` and the tests write
:mod:`monai_ext.demo` datasets) counts as demo data.

``download`` wraps ``monai.bundle.download_large_files``, whose ``large_file_name`` argument raises
``UnboundLocalError`` in MONAI 1.6.1 (only its auto-discovery of ``large_files.{yml,yaml,json}`` works); MONAI's
``download_url`` fetches each file (``file://`` URLs work offline) and raises ``HashCheckError`` when its hash differs.

Example::

    python -m monai_ext.bundle.weights publish --bundle_dir bundles/rop_meta_softlabel_classification \\
        --ckpt runs/rop/model.pt --dataset_dir /data/rop --url https://github.com/<owner>/<repo>/releases/download/v1
    python -m monai_ext.bundle.weights download --bundle_dir <downloaded>/rop_meta_softlabel_classification
"""

from __future__ import annotations

import argparse
import ast
import copy
import datetime
import hashlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import monai
import torch
import yaml
from monai.apps.utils import HashCheckError
from monai.bundle import ConfigParser, ckpt_export, download_large_files
from monai.data import load_net_with_metadata

from monai_ext.bundle.checkpoint import check_checkpoint_fits
from monai_ext.bundle.workflow import bundle_folder, bundle_parser, config_paths
from monai_ext.bundle.zoo import EXPORT_NET_ID, BundleCheckError, output_tensors

__all__ = [
    "INFERENCE_CONFIG",
    "LARGE_FILES",
    "MODEL_FILES",
    "DemoWeightsWarning",
    "sha256_of",
    "load_state_dict",
    "export_twin",
    "is_demo_path",
    "publish_weights",
    "download_weights",
    "main",
]

logger = logging.getLogger(__name__)

INFERENCE_CONFIG = "configs/inference.json"
"""The config whose ``network_def`` the weights must fit; overlays are merged onto it."""

LARGE_FILES = "large_files.yml"
"""The model-zoo list of large files, at the bundle root."""

MODEL_FILES = ("models/model.pt", "models/model.ts")
"""The weight files :func:`publish_weights` writes, relative to the bundle."""

_CKPT_KEY = "model"


class DemoWeightsWarning(UserWarning):
    """Weights trained on :mod:`monai_ext.demo` data are being published."""


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def load_state_dict(ckpt_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The network weights of a training checkpoint: its ``"model"`` entry (the bundles' ``CheckpointSaver`` dicts,
    which also hold optimizer and method state), or the file itself when it is a plain state dict.

    Loaded with ``torch.load(weights_only=True)`` on the CPU.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is neither; the message lists its top-level entries.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: '{path}'. Pass the model.pt training wrote (its ckpt_dir).")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(ckpt, Mapping) and isinstance(ckpt.get(_CKPT_KEY), Mapping):
        ckpt = ckpt[_CKPT_KEY]
    if isinstance(ckpt, Mapping) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return dict(ckpt)
    held = sorted(ckpt) if isinstance(ckpt, Mapping) else type(ckpt).__name__
    raise ValueError(
        f"checkpoint '{path}' is neither a state dict nor a dict with a '{_CKPT_KEY}' state dict (it holds {held}); "
        "pass the checkpoint a bundle's CheckpointSaver wrote."
    )


def export_twin(parser: ConfigParser, net_id: str = "network_def") -> dict[str, Any] | None:
    """The raw config of the scriptable twin of ``net_id`` as the merged configs define it, or None when the config
    has no :data:`~monai_ext.bundle.zoo.EXPORT_NET_ID`.

    The twin takes the class (``_target_``) of ``export_network_def`` and, for every argument ``export_network_def``
    names, the value of ``net_id`` after overlays and overrides (macros such as ``%small_network_def`` resolved).
    For the shipped configs this is ``export_network_def`` itself; for an overridden network (the demo overlay's
    small detector) it is the same twin of the smaller network, which a fixed ``export_network_def`` would not fit.

    Args:
        parser: the bundle's merged configs (not modified).
        net_id: the network id. Defaults to ``"network_def"``.
    """
    if EXPORT_NET_ID not in parser:
        return None
    resolved = ConfigParser(copy.deepcopy(parser.get()))
    resolved.resolve_macro_and_relative_ids()
    twin, network = copy.deepcopy(resolved[EXPORT_NET_ID]), resolved[net_id]
    if not isinstance(twin, dict) or not isinstance(network, dict):
        return twin  # an expression: used as written
    twin.update({k: copy.deepcopy(v) for k, v in network.items() if k in twin and k != "_target_"})
    return twin


def is_demo_path(dataset_dir: str | os.PathLike) -> bool:
    """Whether ``dataset_dir`` lies in a ``demo_data`` folder (where ``make demo`` and the tests write the
    :mod:`monai_ext.demo` datasets); its absolute path is checked."""
    return "demo_data" in Path(dataset_dir).resolve().parts


def _fits_strictly(
    state: Mapping[str, torch.Tensor], network: torch.nn.Module, staged_pt: Path, ckpt: str | os.PathLike, what: str
) -> None:
    """:func:`check_checkpoint_fits` on the staged ``{"model": state}`` (its message naming the user's ``ckpt``),
    then a strict ``load_state_dict``."""
    hint = f"Publish with the configs and overrides the checkpoint was trained with ({what})."
    try:
        check_checkpoint_fits(staged_pt, network, key=_CKPT_KEY, hint=hint)
    except ValueError as e:
        raise ValueError(str(e).replace(str(staged_pt), str(ckpt))) from None
    network.load_state_dict(state, strict=True)


def _compare(eager: torch.nn.Module, ts_path: Path, parser: ConfigParser, input_size: int, atol: float) -> None:
    image = parser.get_parsed_content("_meta_#network_data_format#inputs#image")
    spatial = [int(input_size)] * len(image["spatial_shape"])
    x = torch.rand(1, int(image["num_channels"]), *spatial, generator=torch.Generator().manual_seed(0))
    scripted = load_net_with_metadata(str(ts_path), map_location="cpu")[0].eval()
    with torch.no_grad():
        expected, actual = output_tensors(eager.eval()(x)), output_tensors(scripted(x))
    same = len(expected) == len(actual) and all(
        e.shape == a.shape and torch.allclose(a, e, atol=atol, rtol=atol) for e, a in zip(expected, actual)
    )
    if not same:
        raise BundleCheckError(f"the TorchScript export '{ts_path}' does not reproduce the eager network's output.")


def publish_weights(
    bundle_dir: str | os.PathLike,
    ckpt: str | os.PathLike,
    url: str,
    dataset_dir: str | os.PathLike,
    config_file: str | Sequence[str] = (),
    overwrite: bool = False,
    asset_prefix: str = "",
    input_size: int = 64,
    atol: float = 1e-4,
    **overrides: Any,
) -> dict[str, Any]:
    """Write ``models/model.pt``, ``models/model.ts`` and ``large_files.yml`` of ``bundle_dir`` from a checkpoint.

    Args:
        bundle_dir: the bundle folder.
        ckpt: the training checkpoint (a ``CheckpointSaver`` dict with a ``"model"`` entry, or a plain state dict).
        url: base URL the two weight files will be uploaded to (see ``asset_prefix``).
        dataset_dir: the folder the checkpoint was trained on (recorded; a ``demo_data`` path warns).
        config_file: overlays merged onto ``configs/inference.json`` (e.g. ``configs/demo.json``), relative to the
            bundle; ``configs/inference.json`` itself is always first.
        overwrite: replace existing weight files and ``large_files.yml``. Defaults to False.
        asset_prefix: prefix of the uploaded file names, for hosts where the weights of several bundles share one
            folder (a GitHub release): ``url`` becomes ``<url>/<asset_prefix><file name>``, e.g. with
            ``"rop_meta_softlabel_classification_v0.2.0_"``. Defaults to ``""``.
        input_size: side of the random input on which the TorchScript file is compared with the eager network.
        atol: absolute and relative tolerance of that comparison. Defaults to 1e-4.
        overrides: config overrides, e.g. ``network_def="%small_network_def"`` for a demo-overlay checkpoint.

    Returns:
        The content written to ``large_files.yml``.

    Raises:
        FileExistsError: a target file exists and ``overwrite`` is False (all of them are named; nothing written).
        FileNotFoundError: the bundle, a config or the checkpoint is missing.
        ValueError: the checkpoint's tensors do not fit the config's network (missing / unexpected keys or shapes
            named), or the file holds no state dict.
        BundleCheckError: the TorchScript export does not reproduce the network.
    """
    bundle = bundle_folder(bundle_dir)
    overlays = [config_file] if isinstance(config_file, (str, os.PathLike)) else list(config_file)
    configs = [INFERENCE_CONFIG] + [str(c) for c in overlays if Path(str(c)).as_posix() != INFERENCE_CONFIG]
    targets = [bundle / f for f in (*MODEL_FILES, LARGE_FILES)]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing} exist; pass --overwrite to replace them (or publish into a bundle copy).")
    meta_file = bundle / "configs" / "metadata.json"
    parser = bundle_parser(bundle, configs, overrides, meta_file=meta_file)
    state = load_state_dict(ckpt)
    if is_demo_path(dataset_dir):
        warnings.warn(
            f"dataset_dir '{dataset_dir}' is demo data: these weights show that the bundle runs, they are not a "
            "trained model; large_files.yml records provenance demo_data: true.",
            DemoWeightsWarning,
            stacklevel=2,
        )
    (bundle / "models").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=bundle / "models", prefix=".publish_") as tmp:
        staged_pt, staged_ts = Path(tmp) / "model.pt", Path(tmp) / "model.ts"
        torch.save({_CKPT_KEY: state}, staged_pt)
        network = parser.get_parsed_content("network_def", instantiate=True).to("cpu")
        _fits_strictly(state, network, staged_pt, ckpt, "network_def")
        twin, net_id, export_overrides = export_twin(parser), "network_def", dict(overrides)
        if twin is not None:
            net_id, export_overrides[EXPORT_NET_ID] = EXPORT_NET_ID, twin
            parser[EXPORT_NET_ID] = twin
            network = parser.get_parsed_content(EXPORT_NET_ID, instantiate=True).to("cpu")
            _fits_strictly(state, network, staged_pt, ckpt, f"its TorchScript twin {EXPORT_NET_ID}")
        ckpt_export(
            net_id=net_id,
            filepath=str(staged_ts),
            ckpt_file=str(staged_pt),
            meta_file=str(meta_file),
            config_file=config_paths(bundle, configs),
            key_in_ckpt=_CKPT_KEY,
            bundle_root=str(bundle),
            **export_overrides,
        )
        _compare(network, staged_ts, parser, input_size, atol)
        entries = [
            {
                "path": rel,
                "url": f"{url.rstrip('/')}/{asset_prefix}{Path(rel).name}",
                "hash_val": sha256_of(p),
                "hash_type": "sha256",
            }
            for rel, p in zip(MODEL_FILES, (staged_pt, staged_ts))
        ]
        provenance = _provenance(bundle, parser, ckpt, dataset_dir, configs, overrides, net_id)
        content = {"large_files": entries, "provenance": provenance}
        staged_yml = Path(tmp) / LARGE_FILES
        staged_yml.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
        for staged, target in zip((staged_pt, staged_ts, staged_yml), targets):
            os.replace(staged, target)
    logger.info(f"{bundle.name}: wrote {[str(t) for t in targets]}")
    return content


def _provenance(
    bundle: Path,
    parser: ConfigParser,
    ckpt: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    configs: Sequence[str],
    overrides: Mapping[str, Any],
    net_id: str,
) -> dict[str, Any]:
    from monai_ext import __version__ as monai_ext_version

    demo = is_demo_path(dataset_dir)
    return {
        "bundle": bundle.name,
        "version": parser.get("_meta_#version"),
        "checkpoint": str(Path(ckpt).resolve()),
        "checkpoint_sha256": sha256_of(ckpt),
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "demo_data": demo,
        "note": ("trained on generated demo data: not a model for real images" if demo else "trained on dataset_dir"),
        "config_file": list(configs),
        "overrides": {k: v if isinstance(v, (str, int, float, bool)) else repr(v) for k, v in overrides.items()},
        "exported_network_id": net_id,
        "published_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "monai_ext": monai_ext_version,
        "monai": str(monai.__version__),
        "torch": str(torch.__version__),
    }


def download_weights(bundle_dir: str | os.PathLike) -> list[Path]:
    """Download the files of the bundle's ``large_files.yml`` and check each one's hash.

    Calls ``monai.bundle.download_large_files(bundle_path)`` without ``large_file_name`` (MONAI 1.6.1 raises
    ``UnboundLocalError`` when it is given; auto-discovery reads every ``large_files.{yml,yaml,json}`` of the
    bundle root, so only ``large_files.yml`` may be there). A file already present is kept when its hash matches.

    Returns:
        The downloaded (or verified) files.

    Raises:
        FileNotFoundError: the bundle has no ``large_files.yml``.
        ValueError: another ``large_files.*`` file is present, or an entry lacks ``hash_val`` (it would be fetched
            unchecked); the message names it.
        monai.apps.utils.HashCheckError: a downloaded or existing file's hash differs (MONAI's message names the
            URL, the file and the expected hash).
    """
    bundle = bundle_folder(bundle_dir)
    listing = bundle / LARGE_FILES
    if not listing.is_file():
        raise FileNotFoundError(f"'{listing}' not found: the bundle lists no weights (publish them first).")
    others = [p.name for p in bundle.glob("large_files*") if p.suffix in (".yaml", ".json")]
    if others:
        raise ValueError(f"'{bundle}' holds {others} next to {LARGE_FILES}; MONAI would merge them. Remove them.")
    entries = ConfigParser.load_config_file(listing).get("large_files") or []
    unchecked = [e.get("path") for e in entries if not e.get("hash_val")]
    if unchecked:
        raise ValueError(f"'{listing}': entries {unchecked} have no hash_val; add their sha256 (publish writes it).")
    try:
        download_large_files(bundle_path=str(bundle))
    except HashCheckError as e:
        raise HashCheckError(
            f"{e} A file already present with another hash is kept, not replaced: delete it to download it again; "
            f"a fresh download that fails means the upload and '{listing}' differ (republish or fix its url)."
        ) from e
    return [bundle / e["path"] for e in entries]


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_parser() -> argparse.ArgumentParser:
    """The command-line options; ``publish`` takes extra ``--<config id> <value>`` pairs as config overrides."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_ext.bundle.weights", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser(
        "publish",
        allow_abbrev=False,
        help="checkpoint -> models/model.pt, models/model.ts, large_files.yml",
        epilog="Other '--<config id> <value>' pairs override the configs, e.g. '--network_def %small_network_def' "
        "for a checkpoint trained with the demo overlay's small network.",
    )
    pub.add_argument("--bundle_dir", required=True, type=Path, help="the bundle folder")
    pub.add_argument(
        "--ckpt", required=True, type=Path, help="training checkpoint (CheckpointSaver dict or state dict)"
    )
    pub.add_argument("--url", required=True, help="base URL the weight files will be uploaded to")
    pub.add_argument("--dataset_dir", required=True, type=Path, help="the data the checkpoint was trained on")
    pub.add_argument("--config_file", nargs="+", default=[], help="overlays merged onto configs/inference.json")
    pub.add_argument("--overwrite", action="store_true", help="replace existing weight files and large_files.yml")
    pub.add_argument("--asset_prefix", default="", help="prefix of the uploaded file names (one folder, many bundles)")
    down = sub.add_parser("download", help="fetch the files of large_files.yml and check their sha256")
    down.add_argument("--bundle_dir", required=True, type=Path, help="the bundle folder")
    return parser


def _overrides(extra: Sequence[str]) -> dict[str, Any]:
    if len(extra) % 2 or not all(k.startswith("--") for k in extra[::2]):
        raise SystemExit(f"config overrides must be '--<id> <value>' pairs; got {list(extra)}.")
    return {k[2:]: _value(v) for k, v in zip(extra[::2], extra[1::2])}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status (1 with the error on stderr when it fails)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        if args.command == "publish":
            publish_weights(
                args.bundle_dir, args.ckpt, args.url, args.dataset_dir, args.config_file, args.overwrite,
                args.asset_prefix,
                **_overrides(extra),
            )  # fmt: skip
        else:
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            for path in download_weights(args.bundle_dir):
                logger.info(f"{path}: sha256 {sha256_of(path)}")
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
