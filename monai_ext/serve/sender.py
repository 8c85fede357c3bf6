# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Sending DICOM result files to a Storage SCP by C-STORE (pynetdicom SCU), one association per batch."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pydicom
from pynetdicom import AE

from monai_ext.serve.routing import Destination

__all__ = ["SendError", "send_files"]

logger = logging.getLogger("monai_ext.serve")


class SendError(RuntimeError):
    """The destination could not be reached or refused a result."""


def send_files(
    files: Sequence[str | os.PathLike],
    destination: Destination,
    calling_ae: str,
    on_sent: Callable[[Path, str], None] = lambda path, sop_uid: None,
    timeout: float = 30.0,
) -> None:
    """C-STORE each file to ``destination`` over one association, calling ``on_sent(path, SOPInstanceUID)`` after each
    success (status 0x0000, or a 0xB000-range warning), in order.

    Args:
        files: DICOM files (their SOP classes and transfer syntaxes are proposed as presentation contexts).
        destination: the Storage SCP.
        calling_ae: our AE title.
        on_sent: called after each acknowledged file (e.g. to record it as sent).
        timeout: seconds for the association, ACSE and DIMSE exchanges.

    Raises:
        SendError: the association was not established, or a file got no or a failure status (the files before it
            were sent; the message names the file and the status).
    """
    if not files:
        return
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    contexts = sorted({(str(h.SOPClassUID), str(h.file_meta.TransferSyntaxUID)) for h in headers})
    for sop_class, syntax in contexts:
        ae.add_requested_context(sop_class, [syntax] if syntax else None)
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        raise SendError(
            f"no association with {destination.ae_title}@{destination.host}:{destination.port} (refused, aborted or "
            "unreachable); the results stay in the spool and are sent again on the next attempt."
        )
    try:
        for path, header in zip(files, headers):
            status = assoc.send_c_store(Path(path))
            code = getattr(status, "Status", None)
            if code is None or not (code == 0x0000 or 0xB000 <= code <= 0xBFFF):
                comment = getattr(status, "ErrorComment", "")
                raise SendError(
                    f"{destination.ae_title} answered C-STORE of '{path}' with "
                    + ("no status (connection lost or timeout)" if code is None else f"0x{code:04X} {comment}")
                )
            on_sent(Path(path), str(header.SOPInstanceUID))
            logger.info(f"sent {Path(path).name} to {destination.ae_title}@{destination.host}:{destination.port}")
    finally:
        assoc.release()
