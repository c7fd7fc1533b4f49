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
        if len(buffer) < 2:
            return False
        first, second = buffer[0], buffer[1]
        length = second & 0x7F
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                return False
            length = struct.unpack_from("!H", buffer, 2)[0]
            offset = 4
        elif length == 127:
            if len(buffer) < 10:
                return False
            length = struct.unpack_from("!Q", buffer, 2)[0]
            offset = 10
        if length > MAX_MESSAGE:
            self._give_up(f"WebSocket frame of {length} bytes: stream abandoned")
            return False
        masked = second & 0x80
        if masked:
            offset += 4
        if len(buffer) < offset + length:
            return False
        mask = bytes(buffer[offset - 4 : offset]) if masked else b""
        payload = bytes(buffer[offset : offset + length])
        del buffer[: offset + length]
        if masked:
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
