"""Read the pixels of a PNG (8-bit RGB or RGBA, not interlaced, as Chromium's screenshots are) with zlib alone."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from pathlib import Path
from typing import Tuple

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type -> bytes per pixel at bit depth 8


def pixel_counts(path: Path) -> Tuple[int, int, Counter]:
    """Width, height and how many pixels have each (r, g, b) colour."""
    data = path.read_bytes()
    if not data.startswith(_SIGNATURE):
        raise ValueError("%s is not a PNG" % path)
    offset, idat, header = len(_SIGNATURE), b"", None
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    assert header is not None, "%s has no IHDR" % path
    width, height, depth, colour, _compression, _filter, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError("%s: bit depth %d, colour type %d, interlace %d: not read here"
                         % (path, depth, colour, interlace))
    step = _CHANNELS[colour]
    raw = zlib.decompress(idat)
    stride = width * step
    previous = bytearray(stride)
    counts: Counter = Counter()
    for row in range(height):
        start = row * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), previous, step)
        counts.update(zip(line[0::step], line[1::step], line[2::step]))
        previous = line
    return width, height, counts


def _unfilter(kind: int, line: bytearray, previous: bytearray, step: int) -> bytearray:
    # The five PNG filter types (PNG spec, section 9).
    for i in range(len(line)):
        left = line[i - step] if i >= step else 0
        up = previous[i]
        up_left = previous[i - step] if i >= step else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
        elif kind == 4:
            estimate = left + up - up_left
            pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
            predictor = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
            line[i] = (line[i] + predictor) & 0xFF
    return line
