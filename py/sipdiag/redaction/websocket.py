"""Rewriting SIP carried in WebSocket frames (RFC 6455, RFC 7118).

Client frames are masked, so their text is invisible to a plain search and
would leak to anyone who applies the 4-byte mask. Frames are unmasked,
rewritten, masked again with the same key and given a new length.
"""

from __future__ import annotations

import struct
from typing import Callable

from ..protocols.websocket import frame_header, unmask


def _frame_bounds(data: bytes, pos: int) -> tuple[int, int, bytes | None] | None:
    """(payload start, payload end, mask) of the frame at `pos`, or None when cut."""
    header = frame_header(data, pos)
    if header is None:
        return None
    start, length, mask = header
    return (start, start + length, mask) if start + length <= len(data) else None


def handshake_end(data: bytes) -> int:
    end = data.find(b"\r\n\r\n")
    return end + 4 if end >= 0 else -1


def frames_incomplete(data: bytes, after_handshake: bool) -> bool:
    pos = 0
    if not after_handshake:
        pos = handshake_end(data)
        if pos < 0:
            return True
    while pos < len(data):
        bounds = _frame_bounds(data, pos)
        if bounds is None:
            return True
        pos = bounds[1]
    return False


def rewrite_frames(data: bytes, rewrite: Callable[[bytes], bytes]) -> bytes:
    """Every complete frame's payload through `rewrite`; a cut tail stays as it is."""
    out, pos = [], 0
    while pos < len(data):
        bounds = _frame_bounds(data, pos)
        if bounds is None:
            out.append(data[pos:])
            break
        start, end, mask = bounds
        payload = data[start:end]
        new = rewrite(unmask(payload, mask) if mask else payload)
        if mask:
            new = unmask(new, mask)
        out.append(_header(data[pos], data[pos + 1] & 0x80, len(new)) + (mask or b"") + new)
        pos = end
    return b"".join(out)


def _header(first: int, mask_bit: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, mask_bit | length))
    if length < 65536:
        return bytes((first, mask_bit | 126)) + struct.pack("!H", length)
    return bytes((first, mask_bit | 127)) + struct.pack("!Q", length)
