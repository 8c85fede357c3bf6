# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Build a release: the monai-ext wheel, one model-zoo zip per bundle and the ``model_info.json`` index.

Example::

    python -m scripts.release --out dist/release --base-url file://$PWD/dist/release
    python -m scripts.release --out dist/v0.9.0 \\
        --base-url https://github.com/<owner>/<repo>/releases/download/<tag> --bundles cxr_nvum_classification
    python -m scripts.release --check   # the release rules only; builds and writes nothing

``--out`` receives ``monai_ext-<version>-py3-none-any.whl``, ``<name>_v<version>.zip`` per bundle and
``model_info.json`` ``{"<name>_v<version>": {"checksum": <sha1 of the zip>, "source": "<base-url>/<zip>"}}``, the
format of Project-MONAI/model-zoo's ``models/model_info.json``. Uploading the zips to the GitHub release ``<tag>``
lets ``python -m monai.bundle download --name <name> --version <version> --source github --repo
<owner>/<repo>/<tag>`` fetch them; ``--url <source>`` works for any host, ``file://`` included. Without
``--version``, MONAI 1.6.1 looks the latest version up in ``models/model_info.json`` of the repository at ``<tag>``
(``https://raw.githubusercontent.com/<owner>/<repo>/<tag>/models/model_info.json``, ``_get_all_bundles_info``) and
compares versions as strings, so give ``--version``, or commit the index there.

Files already in ``--out`` are kept; one with other contents than this release's is an error (nothing is replaced),
and ``model_info.json`` gains the new entries. The rules (:mod:`scripts.release_versions`) run first, over every
bundle; ``bundles/releases.json`` (``--releases``) records each released version's content hash and is updated last.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from scripts.release_versions import (
    BundleVersion,
    check_version_bump,
    load_release_record,
    read_bundle_version,
    write_release_record,
)
from scripts.release_zip import (
    ReleaseError,
    bundle_zip_bytes,
    content_sha256,
    released_files,
    write_new_file,
    zip_name,
)

__all__ = [
    "REPO_ROOT",
    "BundleRelease",
    "monai_ext_version",
    "plan_release",
    "build_wheel",
    "model_info_entry",
    "release",
    "build_parser",
    "main",
]

logger = logging.getLogger("release")

REPO_ROOT = Path(__file__).resolve().parents[1]
WHEEL_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "monai_ext")
"""What the wheel is built from, copied into a clean folder first: setuptools reuses a ``build/`` folder, which would
carry modules deleted from the source into the wheel."""
WHEEL_EPOCH = "315532800"
"""``SOURCE_DATE_EPOCH`` for the wheel build (1980-01-01, the earliest zip timestamp): equal sources, equal wheels."""
URL_SCHEMES = ("file", "http", "https")


@dataclass(frozen=True)
class BundleRelease:
    """One bundle as it will be released."""

    bundle: BundleVersion
    bundle_dir: Path
    files: list[str]
    """Released files, relative to ``bundle_dir``."""
    content: str
    """sha256 of the released content (:func:`scripts.release_zip.content_sha256`)."""
    new: bool
    """True when the version is not in the release record yet."""

    @property
    def key(self) -> str:
        """``<name>_v<version>``: the ``model_info.json`` key."""
        return f"{self.bundle.name}_v{self.bundle.version}"


def monai_ext_version(source_root: Path) -> str:
    """The monai-ext version being released: ``pyproject.toml`` ``[project] version``, which the wheel gets.

    Raises:
        ReleaseError: ``monai_ext/__init__.py`` ``__version__`` says another version.
    """
    source_root = Path(source_root)
    with open(source_root / "pyproject.toml", "rb") as file:
        version = tomllib.load(file)["project"]["version"]
    init = source_root / "monai_ext" / "__init__.py"
    spec = importlib.util.spec_from_file_location("_monai_ext_released", init)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # only reads __version__: subpackages load lazily
    if module.__version__ != version:
        raise ReleaseError(
            f"{init} says __version__ = {module.__version__!r} but pyproject.toml says version = {version!r}; "
            f"make them equal"
        )
    return version


def plan_release(
    bundles_root: Path, names: Sequence[str] | None, version: str, record: dict[str, dict[str, str]]
) -> list[BundleRelease]:
    """Check the release rules for every bundle; nothing is written.

    Args:
        bundles_root: the folder holding the bundle folders.
        names: bundles to release (folder names); None for every folder holding ``configs/metadata.json``.
        version: the monai-ext version being released.
        record: the released versions (``bundles/releases.json``).

    Raises:
        ReleaseError: listing every bundle that breaks a rule, each with what to do.
    """
    bundles_root = Path(bundles_root)
    if names is None:
        names = sorted(p.parent.parent.name for p in bundles_root.glob("*/configs/metadata.json"))
        if not names:
            raise ReleaseError(f"no bundles (*/configs/metadata.json) under {bundles_root}")
    plans, errors = [], []
    for name in names:
        bundle_dir = bundles_root / name
        if not bundle_dir.is_dir():
            errors.append(f"bundle {name}: no folder {bundle_dir}")
            continue
        try:
            bundle = read_bundle_version(bundle_dir, version)
            files = released_files(bundle_dir)
            content = content_sha256(bundle_dir, files)
            new = check_version_bump(bundle, content, record)
        except ReleaseError as error:
            errors.append(str(error))
            continue
        plans.append(BundleRelease(bundle=bundle, bundle_dir=bundle_dir, files=files, content=content, new=new))
    if errors:
        raise ReleaseError("cannot release:\n- " + "\n- ".join(errors))
    return plans


def build_wheel(source_root: Path, out_dir: Path, version: str) -> Path:
    """Build the monai-ext wheel offline (``pip wheel --no-deps --no-build-isolation --no-index``) into ``out_dir``.

    Returns:
        the wheel's path in ``out_dir``.

    Raises:
        ReleaseError: the build fails, the wheel is not ``monai_ext-<version>-py3-none-any.whl``, a file of the
            ``monai_ext`` source (module or package data) is missing from it, or ``out_dir`` holds another wheel of
            that name.
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*")
    with tempfile.TemporaryDirectory(prefix="release_wheel_") as tmp:
        source, built = Path(tmp, "source"), Path(tmp, "wheel")
        source.mkdir()
        for name in WHEEL_SOURCES:
            path = Path(source_root, name)
            if path.is_dir():
                shutil.copytree(path, source / name, ignore=ignore)
            else:
                shutil.copy2(path, source / name)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        command += ["--disable-pip-version-check", "--quiet", "--wheel-dir", str(built), str(source)]
        env = {**os.environ, "SOURCE_DATE_EPOCH": WHEEL_EPOCH}
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ReleaseError(f"building the monai-ext wheel failed ({' '.join(command)}):\n{result.stderr[-4000:]}")
        wheel = built / f"monai_ext-{version}-py3-none-any.whl"
        if not wheel.is_file():
            raise ReleaseError(f"the wheel build gave {sorted(p.name for p in built.iterdir())}, not {wheel.name}")
        with zipfile.ZipFile(wheel) as archive:
            packed = set(archive.namelist())
        expected = {p.relative_to(source).as_posix() for p in (source / "monai_ext").rglob("*") if p.is_file()}
        missing = sorted(expected - packed)
        if missing:
            raise ReleaseError(
                f"the wheel lacks {missing}; list package data in pyproject.toml [tool.setuptools.package-data]"
            )
        target = Path(out_dir) / wheel.name
        write_new_file(target, wheel.read_bytes(), f"monai-ext {version} wheel")
    return target


def model_info_entry(zip_bytes: bytes, source: str) -> dict[str, str]:
    """A ``model_info.json`` value: ``{"checksum": <sha1 hex of the zip>, "source": <url>}``."""
    return {"checksum": hashlib.sha1(zip_bytes).hexdigest(), "source": source}


def _check_base_url(base_url: str) -> str:
    parsed = urlparse(base_url)
    if parsed.scheme not in URL_SCHEMES or not (parsed.netloc or parsed.path.strip("/")):
        raise ReleaseError(
            f"--base-url {base_url!r} is not a URL of the folder the zips are served from; give e.g. "
            f"file:///abs/path, https://github.com/<owner>/<repo>/releases/download/<tag> or https://host/path"
        )
    return base_url.rstrip("/")


def release(
    out_dir: Path,
    base_url: str,
    names: Sequence[str] | None = None,
    bundles_root: Path = REPO_ROOT / "bundles",
    releases_path: Path | None = None,
    source_root: Path = REPO_ROOT,
    wheel: bool = True,
) -> dict[str, dict[str, str]]:
    """Build the release into ``out_dir`` (see the module docstring).

    Args:
        out_dir: the release folder (created; existing files are kept, never replaced by other contents).
        base_url: URL of ``out_dir``'s contents once published; ``model_info.json`` sources are ``<base_url>/<zip>``.
        names: bundle folder names; None for all.
        bundles_root: the folder holding the bundles.
        releases_path: the release record; default ``<bundles_root>/releases.json``.
        source_root: the monai-ext source (``pyproject.toml`` and ``monai_ext/``).
        wheel: False skips the wheel (the bundles are still checked against the source's monai-ext version).

    Returns:
        the ``model_info.json`` entries of this release's bundles.

    Raises:
        ReleaseError: a release rule fails (nothing is written then), the wheel build fails, or ``out_dir`` holds
            a different file of the same name.
    """
    base_url = _check_base_url(base_url)
    releases_path = Path(releases_path) if releases_path is not None else Path(bundles_root) / "releases.json"
    version = monai_ext_version(source_root)
    record = load_release_record(releases_path)
    plans = plan_release(bundles_root, names, version, record)
    out_dir = Path(out_dir)
    info_path = out_dir / "model_info.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    except json.JSONDecodeError as error:
        raise ReleaseError(f"{info_path} is not JSON ({error}); release into an empty --out folder") from error
    entries, zips = {}, {}
    for plan in plans:
        zips[plan.key] = bundle_zip_bytes(plan.bundle_dir, plan.bundle.name, plan.files)
        name = zip_name(plan.bundle.name, plan.bundle.version)
        entries[plan.key] = model_info_entry(zips[plan.key], f"{base_url}/{name}")
        if plan.key in info and info[plan.key] != entries[plan.key]:
            raise ReleaseError(
                f"{info_path} already lists {plan.key} as {info[plan.key]}, not {entries[plan.key]}; "
                f"release into an empty --out folder"
            )
        existing = out_dir / name
        if existing.exists() and existing.read_bytes() != zips[plan.key]:  # checked before anything is written
            write_new_file(existing, zips[plan.key], f"{plan.key} zip")  # raises, naming the file
    out_dir.mkdir(parents=True, exist_ok=True)
    if wheel:
        logger.info(f"wheel   {build_wheel(source_root, out_dir, version)}")
    for plan in plans:
        write_new_file(out_dir / zip_name(plan.bundle.name, plan.bundle.version), zips[plan.key], f"{plan.key} zip")
        logger.info(f"bundle  {plan.key}  sha1 {entries[plan.key]['checksum']}{'  (new version)' if plan.new else ''}")
    info.update(entries)
    tmp = info_path.with_name(info_path.name + ".partial")
    tmp.write_text(json.dumps(dict(sorted(info.items())), indent=4) + "\n", encoding="utf-8")
    tmp.replace(info_path)
    for plan in plans:
        record.setdefault(plan.bundle.name, {})[plan.bundle.version] = plan.content
    if write_release_record(releases_path, record):
        logger.info(f"record  {releases_path} updated: commit it")
    return entries


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="release folder (required unless --check)")
    parser.add_argument("--base-url", help="URL the --out files are served from (required unless --check)")
    parser.add_argument("--bundles", nargs="+", default=None, help="bundle folder names (default: every bundle)")
    parser.add_argument("--bundles-root", type=Path, default=REPO_ROOT / "bundles", help="folder of the bundles")
    parser.add_argument(
        "--releases", type=Path, default=None, help="release record (default: <bundles-root>/releases.json)"
    )
    parser.add_argument("--no-wheel", action="store_true", help="skip the monai-ext wheel")
    parser.add_argument("--check", action="store_true", help="check the release rules only; write nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the release; return the exit status (1 with the reasons when a rule or the build fails)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    releases = args.releases if args.releases is not None else args.bundles_root / "releases.json"
    try:
        if args.check:
            version = monai_ext_version(REPO_ROOT)
            for plan in plan_release(args.bundles_root, args.bundles, version, load_release_record(releases)):
                logger.info(f"ok      {plan.key}{'  (new version)' if plan.new else '  (released, unchanged)'}")
            return 0
        if args.out is None or args.base_url is None:
            parser.error("--out and --base-url are required (or --check)")
        release(args.out, args.base_url, args.bundles, args.bundles_root, releases, wheel=not args.no_wheel)
    except ReleaseError as error:
        logger.error(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
