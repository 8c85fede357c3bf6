# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Run the MONAI model-zoo checks (:func:`monai_ext.bundle.zoo.verify_bundle`) on bundle folders, offline, on the CPU.

Example::

    python -m scripts.verify_bundles bundles/cxr_nvum_classification
    python -m scripts.verify_bundles bundles/* --checks layout metadata net_in_out --demo-dir demo_data

Exit status 0 when every check passes, 1 otherwise; one line per bundle and check.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from monai_ext.bundle.zoo import ZooCheck, verify_bundle

__all__ = ["build_parser", "main"]

logger = logging.getLogger("verify_bundles")


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+", type=Path, help="bundle folders (each holding configs/metadata.json)")
    parser.add_argument(
        "--checks", nargs="+", choices=[c.value for c in ZooCheck], default=None, help="checks to run (default: all)"
    )
    parser.add_argument(
        "--demo-dir", type=Path, default=None,
        help="demo-data root for the property checks; missing datasets are written there (default: a temporary folder)",
    )  # fmt: skip
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: a temporary folder)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    failed = False
    with tempfile.TemporaryDirectory(prefix="verify_bundles_") as tmp:
        work_root = args.work_dir if args.work_dir is not None else Path(tmp)
        demo = args.demo_dir if args.demo_dir is not None else work_root / "demo_data"
        for bundle in args.bundles:
            results = verify_bundle(bundle, work_root / bundle.resolve().name, demo_root=demo, checks=args.checks)
            for check, result in results.items():
                logger.info(f"{bundle.resolve().name:32s} {check:12s} {result}")
                failed |= result != "ok"
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
