# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Serving the bundles in a hospital network: a DICOM node (pynetdicom Storage SCP) that runs a bundle's inference on
each received series and sends the DICOM results on (``python -m monai_ext.serve.dicom_node``).

Only the networking-free parts are imported here (the spool and the routing); :mod:`monai_ext.serve.node` imports
pynetdicom, torch and MONAI.
"""

from __future__ import annotations

from monai_ext.serve.routing import BundleRoute, Destination, parse_forward, parse_routes, route_for
from monai_ext.serve.spool import SeriesRecord, SeriesState, Spool, StoreOutcome

__all__ = ["BundleRoute", "Destination", "parse_forward", "parse_routes", "route_for"]
__all__ += ["SeriesRecord", "SeriesState", "Spool", "StoreOutcome"]
