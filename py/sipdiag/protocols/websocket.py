"""One direction of a WebSocket connection (RFC 6455) carrying SIP (RFC 7118).

The direction starts with the HTTP Upgrade request or the 101 response; after
its blank line come frames. Each complete text or binary message (continuation
frames joined, client frames unmasked) is one SIP message.
"""

from __future__ import annotations

import struct

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0, 1, 2
MAX_HANDSHAKE = 16 * 1024
MAX_MESSAGE = 1024 * 1024


def starts_http(data: bytes) -> bool:
    return data.startswith(b"GET ") or data.startswith(b"HTTP/1.")


def unmask(payload: bytes, mask: bytes) -> bytes:
    # XOR as one big integer: far faster in pure Python than a byte loop.
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def frame_header(data: bytes, pos: int = 0) -> tuple[int, int, bytes | None] | None:
    """(payload start, payload length, masking key or None) of the frame at
    `pos`; None while its header is still incomplete."""
    if pos + 2 > len(data):
        return None
    length, start = data[pos + 1] & 0x7F, pos + 2
    if length == 126:
        if start + 2 > len(data):
            return None
        length, start = struct.unpack_from("!H", data, start)[0], start + 2
    elif length == 127:
        if start + 8 > len(data):
            return None
        length, start = struct.unpack_from("!Q", data, start)[0], start + 8
    mask = None
    if data[pos + 1] & 0x80:
        if start + 4 > len(data):
            return None
        mask, start = bytes(data[start : start + 4]), start + 4
    return start, length, mask


class WebSocketStream:
    """Sans-I/O: `feed` stream bytes, get the data messages they complete.

    `upgraded` turns False when the HTTP exchange was not a WebSocket upgrade;
    the caller then ignores the rest of the stream.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._in_handshake = True
        self.upgraded = True
        self._fragments: list[bytes] = []
        self.errors: list[str] = []

    def feed(self, data: bytes) -> list[bytes]:
        if not self.upgraded:
            return []
        self._buffer += data
        if self._in_handshake and not self._read_handshake():
            return []
        messages: list[bytes] = []
        while self._next_frame(messages):
            pass
        return messages

    def _read_handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HANDSHAKE:
                self._give_up("HTTP header block too long")
            return False
        head = bytes(self._buffer[:end]).lower()
        if b"websocket" not in head:
            self._give_up("")
            return False
        del self._buffer[: end + 4]
        self._in_handshake = False
        return True

    def _give_up(self, why: str) -> None:
        if why:
            self.errors.append(why)
        self.upgraded = False
        self._buffer.clear()

    def _next_frame(self, messages: list[bytes]) -> bool:
        buffer = self._buffer
        header = frame_header(buffer)
        if header is None:
            return False
        start, length, mask = header
        if length > MAX_MESSAGE:
            self._give_up(f"WebSocket frame of {length} bytes: stream abandoned")
            return False
        if len(buffer) < start + length:
            return False
        first = buffer[0]
        payload = bytes(buffer[start : start + length])
        del buffer[: start + length]
        if mask:
            payload = unmask(payload, mask)
        self._collect(first & 0x80, first & 0x0F, payload, messages)
        return True

    def _collect(self, fin: int, opcode: int, payload: bytes, messages: list[bytes]) -> None:
        if opcode in (OP_TEXT, OP_BINARY):
            self._fragments = [payload]
        elif opcode == OP_CONTINUATION and self._fragments:
            self._fragments.append(payload)
        else:
            return  # control frames (close, ping, pong) carry no SIP
        if fin:
            messages.append(b"".join(self._fragments))
            self._fragments = []
