# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The released files of a bundle, their content hash, and the bundle's deterministic model-zoo zip.

A release zip ``<name>_v<version>.zip`` holds the folder ``<name>/`` with ``configs/``, ``docs/``, ``LICENSE`` and
``large_files.yml`` when present, the layout of the zips that Project-MONAI/model-zoo publishes and that
``monai.bundle download`` unpacks (MONAI 1.6.1 ``monai/apps/utils.py`` ``extractall(..., has_base=True)``: one base
folder named after the bundle). Trained weights (``models/``), results (``eval/``), demo data and caches never go in.

The zip is deterministic: entries sorted by path, every timestamp 1980-01-01 00:00:00 (the earliest a zip can hold),
mode 0644, DEFLATE level 9, so the same files always give the same bytes and the same sha1.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

__all__ = [
    "RELEASED_ENTRIES",
    "NOT_RELEASED_ENTRIES",
    "ReleaseError",
    "released_files",
    "content_sha256",
    "zip_name",
    "bundle_zip_bytes",
    "write_new_file",
]

RELEASED_ENTRIES = ("configs", "docs", "LICENSE", "large_files.yml")
"""Top-level entries of a bundle folder that go into its release zip (when present)."""

NOT_RELEASED_ENTRIES = ("models", "eval", "demo_data", "runs", "__pycache__")
"""Top-level entries that stay out of a release zip: weights (published through ``large_files.yml``), results,
demo data, run folders, caches. Hidden entries (``.name``) stay out too."""

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o100644  # a regular file, rw-r--r--


class ReleaseError(ValueError):
    """A bundle or the package cannot be released as it is; the message says which file and how to fix it."""


def _is_skipped(path: Path) -> bool:
    return path.name.startswith(".") or path.name == "__pycache__" or path.suffix == ".pyc"


def released_files(bundle_dir: Path) -> list[str]:
    """The files of ``bundle_dir`` that go into its release zip.

    Args:
        bundle_dir: a bundle folder (holding ``configs/metadata.json``).

    Returns:
        paths relative to ``bundle_dir``, POSIX style, sorted; hidden files, ``__pycache__`` and ``*.pyc`` left out.

    Raises:
        ReleaseError: ``configs/metadata.json`` or ``LICENSE`` is missing, or the folder holds a top-level entry that
            is neither released nor known to stay out (it would be lost from the zip silently).
    """
    bundle_dir = Path(bundle_dir)
    for required in ("configs/metadata.json", "LICENSE"):
        if not (bundle_dir / required).is_file():
            raise ReleaseError(f"bundle '{bundle_dir}' has no {required}; every released bundle needs one")
    unknown = sorted(
        entry.name
        for entry in bundle_dir.iterdir()
        if entry.name not in RELEASED_ENTRIES + NOT_RELEASED_ENTRIES and not _is_skipped(entry)
    )
    if unknown:
        raise ReleaseError(
            f"bundle '{bundle_dir}' holds {unknown}, which a release zip would leave out; a zip holds only "
            f"{list(RELEASED_ENTRIES)}: move the files there (configs/ or docs/) or delete them"
        )
    files = []
    for name in RELEASED_ENTRIES:
        entry = bundle_dir / name
        if entry.is_file():
            files.append(name)
        elif entry.is_dir():
            for path in entry.rglob("*"):
                relative = path.relative_to(bundle_dir)
                if path.is_file() and not any(_is_skipped(Path(part)) for part in relative.parts):
                    files.append(relative.as_posix())
    return sorted(files)


def content_sha256(bundle_dir: Path, files: list[str]) -> str:
    """The hash that identifies a bundle's released content, for the version bump rule.

    Args:
        bundle_dir: the bundle folder.
        files: its released files (:func:`released_files`), relative POSIX paths.

    Returns:
        the sha256 hex digest of the ``sha256sum``-style listing ``"<sha256 of the file>  <path>\\n"``, one line per
        file in sorted path order: it changes when a file's bytes, its path, or the set of files changes.
    """
    listing = "".join(
        f"{hashlib.sha256((Path(bundle_dir) / path).read_bytes()).hexdigest()}  {path}\n" for path in sorted(files)
    )
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def zip_name(name: str, version: str) -> str:
    """``<name>_v<version>.zip``: the file name ``monai.bundle download --source github`` asks a release for
    (MONAI 1.6.1 ``monai/bundle/scripts.py``: ``"_v".join([name, version])`` + ``".zip"`` under
    ``https://github.com/<owner>/<repo>/releases/download/<tag>/``)."""
    return f"{name}_v{version}.zip"


def bundle_zip_bytes(bundle_dir: Path, name: str, files: list[str]) -> bytes:
    """The release zip of a bundle, in memory (bundles are configuration only: kilobytes).

    Args:
        bundle_dir: the bundle folder.
        name: the bundle name, the zip's base folder (``<name>/configs/...``).
        files: its released files (:func:`released_files`).

    Returns:
        the zip's bytes; equal inputs give equal bytes (sorted entries, fixed timestamps and modes).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(f"{name}/{path}", date_time=ZIP_DATE_TIME)
            info.create_system = 3  # unix, so that external_attr means the same on every platform
            info.external_attr = ZIP_FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (Path(bundle_dir) / path).read_bytes(), compresslevel=9)
    return buffer.getvalue()


def write_new_file(path: Path, data: bytes, what: str) -> bool:
    """Write ``data`` to ``path`` unless the file is there already; never replace different contents.

    Returns:
        True when the file was written, False when it already held exactly ``data``.

    Raises:
        ReleaseError: ``path`` exists with other contents (``what`` names it in the message).
    """
    path = Path(path)
    if path.exists():
        if path.read_bytes() == data:
            return False
        raise ReleaseError(
            f"{path} exists with other contents than this release's {what}; released files are never replaced: "
            f"release into an empty --out folder, or bump the version if the content changed"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True
