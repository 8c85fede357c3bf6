# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Repository tooling, not part of the installed ``monai_ext`` package: the ``make demo`` runner
(:mod:`scripts.demo_bundles`, ``python -m scripts.run_demo``), the ``make bench`` benchmarks (:mod:`scripts.bench`,
``python -m scripts.bench_nvum`` / ``bench_mombs`` / ``bench_mombs_plan``) and the model-zoo check command line
(``python -m scripts.verify_bundles``). Run them from the repository root, which holds ``bundles/``."""
