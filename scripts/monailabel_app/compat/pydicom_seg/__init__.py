# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Stand-in for ``pydicom-seg`` in the MONAI Label virtual environment: importable, unusable.

monailabel 0.8.5 imports ``pydicom_seg`` at module level in ``monailabel/datastore/utils/convert.py``, which its REST
infer endpoint imports, so the server does not start without a module of that name. The only release,
pydicom-seg 0.4.1, pins ``numpy<2`` and ``jsonschema<4`` and imports ``pydicom._storage_sopclass_uids``, which
pydicom 3 removed; this project needs pydicom 3 (highdicom 0.28), numpy 2 and jsonschema 4. monailabel uses
pydicom-seg only for DICOM SEG labels of a DICOMweb datastore (``dicom_seg_to_itk_image``, and
``nifti_to_dicom_seg(use_itk=False)``; its infer endpoint's ``output=dicom_seg`` calls dcmqi instead), which this app
does not use (its studies are a local folder); the project writes DICOM SEG with highdicom (``monai_ext.dicom``).

Any attribute access raises ``ImportError`` naming the reason, so a DICOMweb datastore fails loudly instead of
writing nothing. The Makefile target ``monailabel-env`` puts this folder on the venv's ``sys.path`` (a ``.pth``
file); it is never on the project's own path.
"""

from __future__ import annotations

__all__: list[str] = []

_REASON = (
    "pydicom-seg is not installed in the MONAI Label environment: pydicom-seg 0.4.1 (its only release) needs "
    "pydicom < 3, numpy < 2 and jsonschema < 4, while this project needs pydicom 3 (highdicom), numpy 2 and "
    "jsonschema 4. monailabel needs it only for DICOM SEG with a DICOMweb datastore; serve a local studies folder, "
    "or write DICOM SEG with the project's highdicom writer (monai_ext.dicom)."
)


def __getattr__(name: str):
    """Refuse every use of the module (PEP 562).

    Raises:
        ImportError: always, with the reason above.
    """
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(name)
    raise ImportError(f"pydicom_seg.{name}: {_REASON}")
