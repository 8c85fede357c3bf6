# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The significant bits a PNG file records in its ``sBIT`` chunk (PNG specification 11.3.3.4), which PIL does not
read: a 16-bit PNG of 12-bit data may say so, and its values must then be scaled by ``2**12 - 1``, not ``2**16 - 1``."""

from __future__ import annotations

import os
import struct

__all__ = ["png_significant_bits"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# colour type -> how many sBIT bytes describe colour (grey or R, G, B); the alpha byte that may follow is ignored
_COLOUR_BYTES = {0: 1, 2: 3, 3: 3, 4: 1, 6: 3}


def png_significant_bits(path: str | os.PathLike) -> int | None:
    """The significant bits of the colour samples of the PNG file ``path`` from its ``sBIT`` chunk (the largest of
    R, G, B for colour images), or None when the file is not a PNG, has no ``sBIT`` chunk before its image data, or
    cannot be read.

    Example:
        A 16-bit grey PNG written with ``PIL.PngImagePlugin.PngInfo().add(b"sBIT", bytes([12]))`` gives ``12``.
    """
    try:
        with open(path, "rb") as f:
            if f.read(8) != _SIGNATURE:
                return None
            colour_type = None
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                length, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND"):  # sBIT must precede the image data
                    return None
                data = f.read(length)
                f.seek(4, os.SEEK_CUR)  # CRC
                if kind == b"IHDR" and len(data) >= 10:
                    colour_type = data[9]
                elif kind == b"sBIT" and colour_type in _COLOUR_BYTES and len(data) >= _COLOUR_BYTES[colour_type]:
                    return max(data[: _COLOUR_BYTES[colour_type]])
    except OSError:
        return None
