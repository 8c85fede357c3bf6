# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Parts of the MONAI Label app (``scripts/monailabel_app/main.py``) that serves this collection's bundles."""
