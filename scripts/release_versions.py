# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The release rules for a bundle's metadata and versions, and the record of released versions.

Rules (checked before anything is built):

- ``configs/metadata.json`` names a ``version`` (``MAJOR.MINOR.PATCH``), a ``changelog`` line for that version, and
  ``required_packages_version["monai-ext"]`` equal to the monai-ext version being released: the zip ships the
  repository's metadata byte for byte, so what is committed is what users download.
- Version bump rule: a released version never changes. ``bundles/releases.json`` records, per bundle and version,
  the sha256 of its released content (:func:`scripts.release_zip.content_sha256`). Releasing a version again with
  other content fails; a new version must be higher than every recorded one. A successful release adds its versions
  to the record, which the releaser commits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from scripts.release_zip import ReleaseError

__all__ = [
    "BundleVersion",
    "read_bundle_version",
    "check_version_bump",
    "load_release_record",
    "write_release_record",
]


BUNDLE_NAME = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")
"""Bundle folder names: lower-case words joined by ``_``, as in Project-MONAI/model-zoo (``spleen_ct_segmentation``)."""


@dataclass(frozen=True)
class BundleVersion:
    """What a bundle's ``configs/metadata.json`` says about its release."""

    name: str
    """The bundle folder's name (the zip's base folder and the ``--name`` of ``monai.bundle download``)."""
    version: str
    """``metadata.json`` ``version``."""
    monai_ext: str
    """``metadata.json`` ``required_packages_version["monai-ext"]``."""


def read_bundle_version(bundle_dir: Path, monai_ext_version: str) -> BundleVersion:
    """Read and check a bundle's version fields.

    Args:
        bundle_dir: the bundle folder.
        monai_ext_version: the monai-ext version the release is built against.

    Raises:
        ReleaseError: the folder name is not a zoo bundle name, ``metadata.json`` is not JSON, has no valid
            ``version``, no changelog line for it, or names another monai-ext version (the message says what to write).
    """
    bundle_dir = Path(bundle_dir)
    if not BUNDLE_NAME.fullmatch(bundle_dir.name) or "_v" in bundle_dir.name:
        # MONAI 1.6.1 monai/bundle/scripts.py _get_all_bundles_info splits model_info.json keys at r"_v\d*." to
        # find the name: a name holding "_v" would be cut there
        raise ReleaseError(
            f"bundle folder name {bundle_dir.name!r}: use lower-case words joined by '_' with no word starting with "
            f"'v' (monai.bundle reads '<name>_v<version>' up to the first '_v'); rename the folder"
        )
    path = bundle_dir / "configs" / "metadata.json"
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ReleaseError(f"cannot read {path}: {error}") from error
    version = metadata.get("version")
    try:
        if not isinstance(version, str) or len(Version(version).release) != 3 or str(Version(version)) != version:
            raise InvalidVersion(version)
    except InvalidVersion as error:
        raise ReleaseError(
            f"{path}: 'version' is {version!r}; write a version as MAJOR.MINOR.PATCH, e.g. '0.1.0'"
        ) from error
    changelog = metadata.get("changelog")
    if not isinstance(changelog, dict) or not str(changelog.get(version, "")).strip():
        raise ReleaseError(
            f'{path}: \'changelog\' has no line for version {version}; add "{version}": "<what changed>"'
        )
    required = metadata.get("required_packages_version")
    found = required.get("monai-ext") if isinstance(required, dict) else None
    if found != monai_ext_version:
        raise ReleaseError(
            f"{path}: required_packages_version['monai-ext'] is {found!r} but this release builds monai-ext "
            f'{monai_ext_version}; set it to "{monai_ext_version}" (a changed metadata.json needs a new bundle '
            f"version and changelog line, see the version bump rule)"
        )
    return BundleVersion(name=bundle_dir.name, version=version, monai_ext=found)


def check_version_bump(bundle: BundleVersion, content: str, record: dict[str, dict[str, str]]) -> bool:
    """The version bump rule for one bundle.

    Args:
        bundle: the bundle's version fields.
        content: the sha256 of its released content now.
        record: the released versions, ``{name: {version: content sha256}}``.

    Returns:
        True when this is a new version (to be added to the record), False when the same version was released
        with the same content (a repeated release: same zip).

    Raises:
        ReleaseError: the version was released with other content (its files changed without a new version), or a
            new version is not higher than every released one.
    """
    released = record.get(bundle.name, {})
    if bundle.version in released:
        if released[bundle.version] == content:
            return False
        raise ReleaseError(
            f"bundle {bundle.name}: version {bundle.version} was released with other content (bundles/releases.json) "
            f"and its released files (configs/, docs/, LICENSE, large_files.yml) changed since; bump 'version' in "
            f"bundles/{bundle.name}/configs/metadata.json (e.g. to {_next_patch(bundle.version)}) and add a "
            f"'changelog' line for it. (Only if {bundle.version} was never published: delete its entry from "
            f"bundles/releases.json instead.)"
        )
    higher = sorted((v for v in released if Version(v) >= Version(bundle.version)), key=Version)
    if higher:
        raise ReleaseError(
            f"bundle {bundle.name}: version {bundle.version} is not higher than the released {higher} "
            f"(bundles/releases.json); choose a version above {higher[-1]}"
        )
    return True


def _next_patch(version: str) -> str:
    major, minor, patch = Version(version).release
    return f"{major}.{minor}.{patch + 1}"


def load_release_record(path: Path) -> dict[str, dict[str, str]]:
    """Read ``bundles/releases.json`` (``{name: {version: content sha256}}``); a missing file is an empty record.

    Raises:
        ReleaseError: the file is not JSON or not of that shape.
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ReleaseError(f"cannot read the release record {path}: {error}") from error
    if not isinstance(record, dict) or not all(
        isinstance(versions, dict) and all(isinstance(v, str) and isinstance(h, str) for v, h in versions.items())
        for versions in record.values()
    ):
        raise ReleaseError(f"{path} must map bundle names to {{version: content sha256}}; restore it from git")
    return record


def write_release_record(path: Path, record: dict[str, dict[str, str]]) -> bool:
    """Write the record (sorted, versions in version order) when it differs from the file; True when written."""
    ordered = {name: {v: record[name][v] for v in sorted(record[name], key=Version)} for name in sorted(record)}
    text = json.dumps(ordered, indent=4) + "\n"
    path = Path(path)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return True
