# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Offline checks that the bundles in ``bundles/`` meet the MONAI model-zoo conventions."""
