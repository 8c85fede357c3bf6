# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Bundle half of ``make demo``: train, evaluate and infer every bundle at demo size and print a results table.

Usage: ``python -m scripts.run_demo --demo-dir demo_data --work-dir runs/demo [--only cxr_nvum_classification]``.
The logic lives in :mod:`scripts.demo_bundles`.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path

from scripts.demo_bundles import BUNDLE_DEMOS, dicom_results, format_results, run_bundle_demo


def _real_dicom() -> list[Path]:
    """The real PA chest CR ``RG1_UNCI.dcm`` shipped by the pydicom-data package, when it is installed."""
    spec = importlib.util.find_spec("data_store")
    if spec is None or not spec.submodule_search_locations:
        return []
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "RG1_UNCI.dcm"
    return [path] if path.is_file() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", default="demo_data")
    parser.add_argument("--work-dir", default="runs/demo")
    parser.add_argument("--bundles-dir", default=str(Path(__file__).resolve().parents[1] / "bundles"))
    parser.add_argument("--only", nargs="+", choices=sorted(BUNDLE_DEMOS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    reports = []
    for name in args.only or list(BUNDLE_DEMOS):
        tables = run_bundle_demo(BUNDLE_DEMOS[name], args.bundles_dir, args.demo_dir, args.work_dir, _real_dicom())
        demo = BUNDLE_DEMOS[name]
        report = format_results(name, tables, demo.result_metric, demo.result_index)
        written = [p.name for p in dicom_results(args.work_dir, name)]
        reports.append(f"{report}\n\nDICOM results of the DICOM inputs: {', '.join(written) or 'none'}")
    print("\n\n".join(["## Demo results (clean test sets, trained briefly on noisy demo labels or masks)"] + reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
