# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The bundle's ``required_packages_version["monai-ext"]`` checked against the installed ``monai-ext`` at start.

A bundle's configs call ``monai_ext`` by name (readers, losses, handlers, checks), so a bundle downloaded from a zoo
runs only with a ``monai-ext`` whose API matches the one it was built against. The rule (:func:`compatible_specifier`):
the installed version is at least the required one and below the next minor release, e.g. ``"0.9.0"`` allows
``0.9.0 <= installed < 0.10`` (``0.9.3`` and ``0.9.1.dev0`` pass; ``0.8.9``, ``0.10.0.dev0`` and ``1.0`` do not).
Patch releases only fix bugs, a minor release may change what the configs call (while the major version is 0, PEP 440
and SemVer promise nothing across minors), so a minor bump must come with a bundle release built against it. The
comparison is :class:`packaging.specifiers.SpecifierSet` (PEP 440 ordering; ``<0.10`` excludes ``0.10``'s
pre-releases, pre-releases of allowed versions pass).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = ["MONAI_EXT", "installed_version", "compatible_specifier", "check_monai_ext_version"]
__all__ += ["check_required_packages"]

MONAI_EXT = "monai-ext"
"""The distribution name of this package, the key in ``metadata.json``'s ``required_packages_version``."""


def installed_version(package: str = MONAI_EXT) -> str:
    """The installed version of ``package``: its distribution metadata, or for ``monai-ext`` run from a source tree
    that is not installed, ``monai_ext.__version__``.

    Raises:
        importlib.metadata.PackageNotFoundError: ``package`` (other than ``monai-ext``) is not installed.
    """
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        if package != MONAI_EXT:
            raise
        import monai_ext

        return monai_ext.__version__


def compatible_specifier(required: str) -> SpecifierSet:
    """The versions that satisfy a bundle built against ``required``: ``>=required,<major.(minor+1)``.

    Example: ``"0.9.0"`` gives ``>=0.9.0,<0.10``; ``"1.2.3"`` gives ``>=1.2.3,<1.3``; ``"2"`` gives ``>=2,<2.1``.

    Raises:
        ValueError: ``required`` is not a PEP 440 version (naming it).
    """
    try:
        version = Version(str(required))
    except InvalidVersion as e:
        raise ValueError(
            f"required_packages_version['{MONAI_EXT}'] = {required!r} is not a version (PEP 440, e.g. '0.9.0'); "
            "fix the bundle's configs/metadata.json."
        ) from e
    major, minor = (*version.release, 0)[:2]
    return SpecifierSet(f">={version},<{major}.{minor + 1}", prereleases=True)


def check_monai_ext_version(required: str, installed: str | None = None) -> str:
    """Check that the installed ``monai-ext`` satisfies a bundle built against ``required`` (the module's rule).

    Args:
        required: ``required_packages_version["monai-ext"]`` of the bundle, e.g. ``"0.9.0"``.
        installed: the version to check; None reads the installed one (:func:`installed_version`).

    Returns:
        the installed version.

    Raises:
        ValueError: ``required`` or ``installed`` is not a version.
        ImportError: the installed version is outside the range; the message names both versions and the
            ``pip install "monai-ext>=X,<Y"`` command that fixes it.
    """
    allowed = compatible_specifier(required)
    found = installed_version() if installed is None else str(installed)
    try:
        ok = Version(found) in allowed
    except InvalidVersion as e:
        raise ValueError(f"installed {MONAI_EXT} version {found!r} is not a version (PEP 440).") from e
    if not ok:
        spec = ",".join(str(s) for s in sorted(allowed, key=lambda s: s.operator != ">="))
        raise ImportError(
            f"this bundle needs {MONAI_EXT} {spec} (built against {required}), but {MONAI_EXT} {found} is installed; "
            f'install a compatible version: pip install "{MONAI_EXT}{spec}"'
        )
    return found


def check_required_packages(required_packages: Mapping[str, str]) -> str:
    """The first ``initialize`` step of every standalone bundle config:
    ``"$monai_ext.bundle.check_required_packages(@_meta_#required_packages_version)"``.

    Checks ``monai-ext`` only (:func:`check_monai_ext_version`): the other entries record the environment the bundle
    was built and tested in (MONAI's model-zoo convention) and are not requirements of their exact version.

    Args:
        required_packages: ``metadata.json``'s ``required_packages_version``.

    Returns:
        the installed ``monai-ext`` version.

    Raises:
        KeyError: ``required_packages`` names no ``monai-ext`` (fix ``metadata.json``).
        ValueError, ImportError: see :func:`check_monai_ext_version`.
    """
    if not isinstance(required_packages, Mapping) or MONAI_EXT not in required_packages:
        raise KeyError(
            f"the bundle's configs/metadata.json 'required_packages_version' must name '{MONAI_EXT}' (the version "
            f"the bundle was built against), got {required_packages!r}."
        )
    return check_monai_ext_version(required_packages[MONAI_EXT])
