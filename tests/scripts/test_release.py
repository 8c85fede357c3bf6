# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""``make release`` (scripts/release.py): the wheel, the model-zoo zips, model_info.json, the version bump rule, and
``monai.bundle download`` of the zips outside the repository."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from monai.bundle import ConfigParser
from monai.bundle import download as bundle_download

import monai_ext
from scripts.release import main, release
from scripts.release_zip import ReleaseError

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"
NAMES = sorted(p.parent.parent.name for p in BUNDLES.glob("*/configs/metadata.json"))


def _metadata(bundle_dir: Path) -> dict:
    return json.loads((bundle_dir / "configs" / "metadata.json").read_text())


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_every_bundle_zip_matches_model_info(released):
    out, entries, _ = released
    info = json.loads((out / "model_info.json").read_text())
    assert info == entries
    assert len(NAMES) == 5 and sorted(info) == sorted(f"{n}_v{_metadata(BUNDLES / n)['version']}" for n in NAMES)
    for name in NAMES:
        key = f"{name}_v{_metadata(BUNDLES / name)['version']}"
        assert info[key]["checksum"] == _sha1(out / f"{key}.zip")
        assert info[key]["source"] == f"{out.as_uri()}/{key}.zip"


def test_zip_holds_the_committed_bundle_files_unchanged(released):
    out, _, _ = released
    for name in NAMES:
        version = _metadata(BUNDLES / name)["version"]
        tracked = subprocess.run(
            ["git", "ls-files", "--", f"bundles/{name}"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
        with zipfile.ZipFile(out / f"{name}_v{version}.zip") as archive:
            members = archive.infolist()
            assert [m.filename for m in members] == sorted(m.filename for m in members)  # sorted entries
            assert {m.date_time for m in members} == {(1980, 1, 1, 0, 0, 0)}  # fixed timestamps
            names = [m.filename for m in members]
            assert sorted(names) == sorted(p.replace("bundles/", "", 1) for p in tracked)
            assert {n.split("/")[1] for n in names} <= {"configs", "docs", "LICENSE", "large_files.yml"}
            assert f"{name}/configs/inference.json" in names and f"{name}/LICENSE" in names
            for member in names:  # byte for byte: the released metadata is the committed one, not stamped
                assert archive.read(member) == (BUNDLES / member).read_bytes()
            meta = json.loads(archive.read(f"{name}/configs/metadata.json"))
        assert meta["required_packages_version"]["monai-ext"] == monai_ext.__version__
        assert meta["version"] in meta["changelog"]


def test_wheel_holds_the_package_and_its_data(released):
    out, _, _ = released
    wheel = out / f"monai_ext-{monai_ext.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"monai_ext-{monai_ext.__version__}.dist-info/METADATA").decode()
    assert f"Version: {monai_ext.__version__}\n" in metadata
    for data in ("bundle/schemas/meta_schema_20240725.json", "demo/stats/cxr_label_stats.json", "__init__.py"):
        assert f"monai_ext/{data}" in names
    for path in (REPO / "monai_ext" / "demo" / "stats").iterdir():
        if path.suffix in (".json", ".md"):
            assert f"monai_ext/demo/stats/{path.name}" in names


def test_today_tree_passes_the_release_rules():
    """A bundle whose released files changed without a new version and changelog line fails here (make test)."""
    assert main(["--check"]) == 0


def test_recorded_content_hash_is_that_of_the_zip(released):
    out, _, _ = released
    record = json.loads((BUNDLES / "releases.json").read_text())
    assert sorted(record) == NAMES
    for name in NAMES:
        version = _metadata(BUNDLES / name)["version"]
        if version in record[name]:  # else a new version, not released yet
            assert record[name][version] == _listing_sha256(out / f"{name}_v{version}.zip")


def test_release_is_deterministic(released, tmp_path):
    out, entries, record = released
    again = release(tmp_path / "again", "https://example.org/rel/", releases_path=record)
    assert {k: v["checksum"] for k, v in again.items()} == {k: v["checksum"] for k, v in entries.items()}
    assert again[NAMES[0] + f"_v{_metadata(BUNDLES / NAMES[0])['version']}"]["source"].startswith(
        "https://example.org/rel/" + NAMES[0]
    )
    for path in sorted(out.iterdir()):
        if path.suffix in (".zip", ".whl"):
            assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes(), path.name
    # releasing into the same folder again keeps everything as it was
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert release(out, out.as_uri(), releases_path=record, wheel=False) == entries
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.fixture
def bundle_copy(tmp_path):
    """A temporary copy of one bundle, with no release record (``bundles/releases.json``) yet."""
    root = tmp_path / "bundles"
    shutil.copytree(BUNDLES / "cxr_nvum_classification", root / "cxr_nvum_classification")
    return root / "cxr_nvum_classification"


def _set_metadata(bundle_dir: Path, **changes) -> None:
    path = bundle_dir / "configs" / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata.update(changes)
    path.write_text(json.dumps(metadata, indent=4))


def _listing_sha256(zip_path: Path) -> str:
    """The release record's content hash, from the zip: sha256 of the sha256sum listing of its files."""
    with zipfile.ZipFile(zip_path) as archive:
        lines = [
            f"{hashlib.sha256(archive.read(n)).hexdigest()}  {n.split('/', 1)[1]}\n" for n in sorted(archive.namelist())
        ]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def test_version_bump_rule(bundle_copy, tmp_path):
    root, record = bundle_copy.parent, bundle_copy.parent / "releases.json"
    version = _metadata(bundle_copy)["version"]
    assert release(tmp_path / "r1", "file:///r1", bundles_root=root, wheel=False)  # the first release is recorded
    seeded = record.read_text()
    assert json.loads(seeded) == {
        "cxr_nvum_classification": {
            version: _listing_sha256(tmp_path / "r1" / f"cxr_nvum_classification_v{version}.zip")
        }
    }
    assert release(tmp_path / "r1", "file:///r1", bundles_root=root, wheel=False)  # unchanged: releases again

    inference = bundle_copy / "configs" / "inference.json"
    inference.write_text(inference.read_text().replace('"amp"', '"amp" ', 1))  # one changed byte in a config
    with pytest.raises(ReleaseError, match=rf"cxr_nvum_classification: version {version} was released with other"):
        release(tmp_path / "r2", "file:///r2", bundles_root=root, wheel=False)
    assert not (tmp_path / "r2").exists() and record.read_text() == seeded  # nothing written
    assert main(["--check", "--bundles-root", str(root)]) == 1

    major, minor, patch = (int(x) for x in version.split("."))
    bumped = f"{major}.{minor}.{patch + 1}"
    _set_metadata(bundle_copy, version=bumped)  # a new version without a changelog line
    with pytest.raises(ReleaseError, match=rf"'changelog' has no line for version {bumped}"):
        release(tmp_path / "r2", "file:///r2", bundles_root=root, wheel=False)

    changelog = {bumped: "a changed inference config", **_metadata(bundle_copy)["changelog"]}
    _set_metadata(bundle_copy, changelog=changelog)
    assert main(["--check", "--bundles-root", str(root)]) == 0
    entries = release(tmp_path / "r2", "file:///r2", bundles_root=root, wheel=False)
    key = f"cxr_nvum_classification_v{bumped}"
    assert entries[key]["checksum"] == _sha1(tmp_path / "r2" / f"{key}.zip")
    recorded = json.loads(record.read_text())["cxr_nvum_classification"]
    assert recorded[version] == json.loads(seeded)["cxr_nvum_classification"][version]
    assert recorded[bumped] == _listing_sha256(tmp_path / "r2" / f"{key}.zip")

    _set_metadata(bundle_copy, version="0.0.1", changelog={"0.0.1": "older", **changelog})  # going back
    with pytest.raises(ReleaseError, match=r"version 0.0.1 is not higher than the released"):
        release(tmp_path / "r3", "file:///r3", bundles_root=root, wheel=False)


def test_left_out_content_needs_no_bump_and_unknown_content_fails(bundle_copy, tmp_path):
    root = bundle_copy.parent
    (first,) = release(tmp_path / "out1", "file:///out", bundles_root=root, wheel=False)
    for junk in ("models/model.pt", "eval/metrics.csv", "configs/__pycache__/x.pyc", "docs/.ipynb_checkpoints/a.md"):
        (bundle_copy / junk).parent.mkdir(parents=True, exist_ok=True)
        (bundle_copy / junk).write_bytes(b"not released")
    entries = release(tmp_path / "out", "file:///out", bundles_root=root, wheel=False)
    (key,) = entries  # the same version released again: its content did not change
    assert key == first
    assert (tmp_path / "out" / f"{key}.zip").read_bytes() == (tmp_path / "out1" / f"{key}.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "out" / f"{key}.zip") as archive:
        parts = {part for n in archive.namelist() for part in n.split("/")}
    assert not parts & {"models", "eval", "__pycache__", ".ipynb_checkpoints", "model.pt", "x.pyc"}
    (bundle_copy / "notes.txt").write_text("a file no zip would carry")
    with pytest.raises(ReleaseError, match=r"holds \['notes.txt'\], which a release zip would leave out"):
        release(tmp_path / "out2", "file:///out2", bundles_root=root, wheel=False)


def test_other_monai_ext_version_and_bad_input_fail(bundle_copy, tmp_path):
    root = bundle_copy.parent
    metadata = _metadata(bundle_copy)
    _set_metadata(
        bundle_copy, required_packages_version={**metadata["required_packages_version"], "monai-ext": "0.1.0"}
    )
    with pytest.raises(ReleaseError, match=rf"is '0.1.0' but this release builds monai-ext {monai_ext.__version__}"):
        release(tmp_path / "out", "file:///out", bundles_root=root, wheel=False)
    with pytest.raises(ReleaseError, match="is not a URL"):
        release(tmp_path / "out", "dist/release", bundles_root=root, wheel=False)
    with pytest.raises(ReleaseError, match="bundle absent: no folder"):
        release(tmp_path / "out", "file:///out", names=["absent"], bundles_root=root, wheel=False)
    assert not (tmp_path / "out").exists()


def test_bundle_name_that_monai_would_misread_fails(tmp_path):
    root = tmp_path / "bundles"
    shutil.copytree(BUNDLES / "cxr_nvum_classification", root / "cxr_vit_classification")
    with pytest.raises(ReleaseError, match=r"bundle folder name 'cxr_vit_classification'.*rename the folder"):
        release(tmp_path / "out", "file:///out", bundles_root=root, releases_path=tmp_path / "r.json", wheel=False)


def test_released_file_is_never_replaced(bundle_copy, tmp_path):
    root, out = bundle_copy.parent, tmp_path / "out"
    out.mkdir()
    version = _metadata(bundle_copy)["version"]
    (out / f"cxr_nvum_classification_v{version}.zip").write_bytes(b"an earlier, different zip")
    with pytest.raises(ReleaseError, match="exists with other contents"):
        release(out, "file:///out", bundles_root=root, wheel=False)
    assert (out / f"cxr_nvum_classification_v{version}.zip").read_bytes() == b"an earlier, different zip"
    assert sorted(p.name for p in out.iterdir()) == [f"cxr_nvum_classification_v{version}.zip"]  # nothing else


@pytest.mark.filterwarnings("ignore:No hash value provided")
@pytest.mark.parametrize("name", NAMES)
def test_monai_bundle_download_unpacks_a_parsable_bundle(released, name, tmp_path):
    out, entries, _ = released
    version = _metadata(BUNDLES / name)["version"]
    source = entries[f"{name}_v{version}"]["source"]
    bundle_download(name=name, version=version, url=source, bundle_dir=str(tmp_path), progress=False)
    assert _sha1(tmp_path / f"{name}.zip") == entries[f"{name}_v{version}"]["checksum"]
    root = tmp_path / name
    parser = ConfigParser()
    parser.read_meta(root / "configs" / "metadata.json")
    parser.read_config(root / "configs" / "inference.json")
    parser["bundle_root"] = str(root)
    assert parser.get_parsed_content("bundle_root") == str(root)
    assert parser["_meta_"]["version"] == version
    assert Path(parser.get_parsed_content("ckpt_path")).is_relative_to(root)


def test_github_release_url_is_the_one_monai_bundle_download_asks_for(released, tmp_path, monkeypatch):
    """``--source github --repo <owner>/<repo>/<tag>``: MONAI's own code builds the URL; the release has that file."""
    out, _, record = released
    base = "https://github.com/owner/repo/releases/download/v1"
    entries = release(tmp_path / "gh", base, releases_path=record, wheel=False)
    requested = []

    def serve_from_release(url, filepath, **kwargs):  # offline stand-in for the HTTP download
        requested.append(url)
        Path(filepath).parent.mkdir(parents=True, exist_ok=True)  # as monai.apps.utils.download_url does
        shutil.copy(tmp_path / "gh" / url.rsplit("/", 1)[1], filepath)

    monkeypatch.setattr("monai.bundle.scripts.download_url", serve_from_release)
    name = "rop_meta_softlabel_classification"
    version = _metadata(BUNDLES / name)["version"]
    bundle_download(name=name, version=version, source="github", repo="owner/repo/v1", bundle_dir=str(tmp_path / "zoo"))
    assert requested == [entries[f"{name}_v{version}"]["source"]]
    assert (tmp_path / "zoo" / name / "configs" / "metadata.json").read_bytes() == (
        BUNDLES / name / "configs" / "metadata.json"
    ).read_bytes()


def test_monai_bundle_download_command_outside_the_repository(released, tmp_path):
    out, entries, _ = released
    name = "cxr_nvum_classification"
    version = _metadata(BUNDLES / name)["version"]
    command = [sys.executable, "-m", "monai.bundle", "download", "--name", name, "--version", version]
    command += ["--url", entries[f"{name}_v{version}"]["source"], "--bundle_dir", str(tmp_path / "zoo")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(command, cwd=tmp_path, env={**env, "OMP_NUM_THREADS": "1"}, check=True, capture_output=True)
    assert (tmp_path / "zoo" / name / "configs" / "inference.json").read_bytes() == (
        BUNDLES / name / "configs" / "inference.json"
    ).read_bytes()
