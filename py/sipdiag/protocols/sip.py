"""SIP message parsing (RFC 3261) and stream framing, tolerant of real-world damage.

Our own parser rather than dpkt's: dpkt drops bodies when headers use compact
forms and raises on malformed input, while a diagnosis tool must read what the
wire really carried and say what was wrong with it. Nothing here raises on bad
input; problems are recorded in `SipMessage.errors` (framing problems too, via
`Framed.errors`).
"""

from __future__ import annotations

import functools
from collections import deque
from typing import NamedTuple

from ..model import DigestCredentials, Headers, NameAddr, SipMessage, Via
from .sdp import decimal_number, parse_sdp

# RFC 3261 section 7.3.3 plus the compact forms registered since (IANA SIP parameters).
COMPACT_FORMS = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

_RESPONSE_START = b"SIP/2.0 "
_REQUEST_END = b" SIP/2.0"
# The first line of a real request fits well within this; a longer scan would
# only cost time on binary payloads that are not SIP anyway.
_FIRST_LINE_LIMIT = 2048
_UPPER = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset(b"0123456789")


def looks_like_sip(payload: bytes | memoryview) -> bool:
    """Cheap test: does the first line read like a SIP request or response line?"""
    if len(payload) < 12 or payload[0] not in _UPPER:  # rejects RTP (0x80..) at once
        return False
    head = bytes(payload[:_FIRST_LINE_LIMIT])
    if head.startswith(_RESPONSE_START):
        return head[8] in _DIGITS and head[9] in _DIGITS and head[10] in _DIGITS
    end = head.find(b"\n")
    line = (head if end < 0 else head[:end]).rstrip(b"\r")
    if not line.endswith(_REQUEST_END):
        return False
    method, space, _ = line.partition(b" ")
    return bool(space) and method.isalpha() and method.isupper()


# ---------------------------------------------------------------- splitting helpers


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on `separator` outside "quoted strings" and <angle-bracketed URIs>.

    Header values such as `Contact: "Doe, J" <sip:a@b;x=1>, <sip:c@d>` need this:
    commas and semicolons inside quotes or brackets are not separators.
    """
    if separator not in text:
        return [text]
    if '"' not in text and "<" not in text:
        return text.split(separator)
    parts: list[str] = []
    start = 0
    in_quotes = in_brackets = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif in_quotes:
            if char == "\\":
                escaped = True
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            in_brackets = True
        elif char == ">":
            in_brackets = False
        elif char == separator and not in_brackets:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _unquote(value: str) -> str:
    """'"a \\"b\\""' -> 'a "b"'; unquoted values are only stripped."""
    value = value.strip()
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    value = value[1:-1]
    if "\\" not in value:
        return value
    chars: list[str] = []
    escaped = False
    for char in value:
        if escaped or char != "\\":
            chars.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(chars)


def parse_params(text: str) -> dict[str, str]:
    """';name=value;flag' -> {"name": "value", "flag": ""} (names lower-cased)."""
    params: dict[str, str] = {}
    for item in split_top_level(text, ";"):
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if name:
            # a repeated parameter (seen: two To tags) keeps its first value, as Wireshark does
            params.setdefault(name, _unquote(value))
    return params


def _split_host_port(text: str) -> tuple[str, int | None]:
    """'host:port', '[v6]:port' or a bare host; a bad port reads as None."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:  # bare host, or an unbracketed IPv6 address seen in the wild
        host, port_text = text, ""
    return host, decimal_number(port_text)


# ---------------------------------------------------------------- header values


def parse_name_addr(value: str) -> NameAddr:
    """A From/To/Contact/Route value, name-addr (`"Bob" <sip:b@h>;tag=1`) or addr-spec."""
    text = value.strip()
    display: str | None = None
    if text.startswith('"'):
        index = 1
        while index < len(text) and text[index] != '"':
            index += 2 if text[index] == "\\" else 1
        display = _unquote(text[: index + 1])
        text = text[index + 1 :]
    open_at = text.find("<")
    if open_at >= 0:
        if display is None:
            display = text[:open_at].strip() or None
        close_at = text.find(">", open_at)
        if close_at < 0:
            return NameAddr(uri=text[open_at + 1 :].strip(), display_name=display)
        uri = text[open_at + 1 : close_at].strip()
        rest = text[close_at + 1 :]
    else:
        # addr-spec: parameters after the URI belong to the header (RFC 3261 20.10).
        uri, _, rest = text.strip().partition(";")
        rest = ";" + rest if rest else ""
    return NameAddr(uri=uri, display_name=display, params=parse_params(rest) if rest else {})


def parse_via(value: str) -> Via | None:
    """One Via value: `SIP/2.0/UDP host:port;branch=...;received=...;rport`."""
    first, _, rest = value.strip().partition(";")
    # LWS is allowed around the slashes of sent-protocol (RFC 3261 25.1).
    first = "/".join(part.strip() for part in first.split("/"))
    protocol, _, sent_by = first.partition(" ")
    pieces = protocol.split("/")
    if len(pieces) != 3 or not sent_by.strip():
        return None
    host, port = _split_host_port(sent_by)
    params = parse_params(rest) if rest else {}
    rport_text = params.get("rport")
    rport = None if rport_text is None else decimal_number(rport_text) or 0
    return Via(
        transport=pieces[2].upper(),
        host=host,
        port=port,
        branch=params.get("branch"),
        received=params.get("received"),
        rport=rport,
        params=params,
    )


def parse_digest(value: str) -> DigestCredentials:
    """Authorization / WWW-Authenticate / Proxy-* value: `Digest realm="x", nonce=y, ...`."""
    text = value.strip()
    scheme, _, rest = text.partition(" ")
    params: dict[str, str] = {}
    for item in split_top_level(rest, ","):
        name, _, param = item.partition("=")
        name = name.strip().lower()
        if name:
            params[name] = _unquote(param)
    return DigestCredentials(scheme=scheme, params=params)


def uri_parts(uri: str) -> tuple[str | None, str | None, int | None]:
    """'sip:alice@example.com:5080;transport=tcp' -> ('alice', 'example.com', 5080).

    A tel: URI yields (number, None, None); a URI without user part (None, host, port).
    """
    text = uri.strip().strip("<>")
    scheme, colon, rest = text.partition(":")
    if not colon:
        rest = text
    elif scheme.lower() == "tel":
        return rest.split(";", 1)[0] or None, None, None
    user: str | None = None
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user = userinfo.split(":", 1)[0] or None  # drop a (deprecated) password
    for stop in ";?":
        rest = rest.split(stop, 1)[0]
    host, port = _split_host_port(rest)
    return user, host or None, port


# ---------------------------------------------------------------- messages


def _header_end(data: bytes, start: int = 0) -> tuple[int, int]:
    """(end of header block, start of body); (-1, -1) when no blank line yet.

    Accepts CRLF CRLF and bare LF line ends (LF LF, LF CRLF).
    """
    candidates = [i for i in (data.find(b"\n\r\n", start), data.find(b"\n\n", start)) if i >= 0]
    if not candidates:
        return -1, -1
    end = min(candidates)
    return end, end + (3 if data[end + 1 : end + 2] == b"\r" else 2)


# Header names as written ("Call-ID", "v", "CSeq ") -> the canonical name, one
# string shared by every message: a busy capture repeats a few dozen spellings
# hundreds of thousands of times, and a known spelling skips the checks.
# Bounded, since a damaged or hostile capture can invent names.
_NAMES: dict[str, str] = {}
_MAX_NAMES = 4096


def _canonical_name(written: str) -> str | None:
    """None for a name no header has ("", or holding a space)."""
    name = written.strip().lower()
    if not name or " " in name:
        return None
    canonical = COMPACT_FORMS.get(name, name)
    if len(_NAMES) < _MAX_NAMES:
        _NAMES[written] = canonical
    return canonical


# The headers `_derive` and `_read_body` read: their values are looked up in one
# pass over the header list instead of a scan per header.
_SINGLE = ("call-id", "cseq", "from", "to", "expires", "content-type", "content-length")
_REPEATED = ("via", "contact")


def _index(headers: Headers) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(first value of each of _SINGLE present, every value of each of _REPEATED present)."""
    first: dict[str, str] = {}
    every: dict[str, list[str]] = {}
    for name, value in headers:
        if name in _REPEATED:
            every.setdefault(name, []).append(value)
        elif name in _SINGLE and name not in first:
            first[name] = value
    return first, every


# The tuples of header names and the header values seen lately, each kept
# once: a dialog's messages repeat Call-ID, From, To, User-Agent, Allow... and
# most messages of one kind list the same headers in the same order. Bounded
# (cleared when full), since every message can bring new values.
_SHARED: dict = {}
_MAX_SHARED = 1 << 16


def _read_headers(lines: list[str], message: SipMessage) -> None:
    """`lines` may still end in CR: stripping a line's value or name drops it."""
    if len(_SHARED) >= _MAX_SHARED - len(lines):
        _SHARED.clear()
    shared = _SHARED.setdefault
    names: list[str] = []
    values: list[str] = []
    for line in lines:
        if not line or line[0] in " \t" or line == "\r":
            text = line.strip()
            if not text:
                continue
            if values:  # folded continuation (RFC 3261 7.3.1): joined with one space
                values[-1] = f"{values[-1]} {text}".strip()
            else:
                message.errors.append(f"continuation line without a header: {text[:60]!r}")
            continue
        written, colon, value = line.partition(":")
        canonical = _NAMES.get(written) if colon else None
        if canonical is None:
            canonical = _canonical_name(written) if colon else None
            if canonical is None:
                message.errors.append(f"malformed header line: {line.strip()[:60]!r}")
                continue
        names.append(canonical)
        value = value.strip()
        values.append(shared(value, value))
    names_in_order = tuple(names)
    message.headers = Headers.of(shared(names_in_order, names_in_order), tuple(values))


def _read_start_line(line: str, message: SipMessage) -> None:
    if line.startswith("SIP/2.0 "):
        code, _, reason = line[8:].partition(" ")
        status = decimal_number(code) if len(code) == 3 else None
        if status is not None:
            message.status = status
            message.reason = reason.strip()
        else:
            message.errors.append(f"bad status line: {line[:80]!r}")
        return
    parts = line.split(" ")
    if len(parts) == 3 and parts[2] == "SIP/2.0" and parts[0].isalpha():
        message.method, message.request_uri = parts[0].upper(), parts[1]
    else:
        message.errors.append(f"bad request line: {line[:80]!r}")


def _read_body(data: bytes, body_start: int, message: SipMessage, length_text: str | None) -> None:
    available = data[body_start:]
    if length_text is None:
        message.body = available  # allowed on UDP (RFC 3261 18.3): the datagram ends it
        return
    length = decimal_number(length_text)
    if length is None:
        message.errors.append(f"bad Content-Length: {length_text[:40]!r}")
        message.body = available
        return
    if len(available) < length:
        message.errors.append(f"body shorter than Content-Length ({len(available)} of {length} bytes)")
        message.body = available
    elif len(available) > length and available[length:].strip():
        message.errors.append(
            f"{len(available) - length} bytes after the Content-Length body ({length} bytes)"
        )
        message.body = available
    else:
        message.body = available[:length]


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _sdp_in_multipart(content_type: str, body: bytes) -> bytes | None:
    """The first application/sdp part of a simple multipart body (RFC 2046)."""
    boundary = parse_params(content_type.partition(";")[2]).get("boundary")
    if not boundary:
        return None
    for part in body.split(b"--" + boundary.encode("utf-8", "replace"))[1:]:
        end, body_start = _header_end(part)
        if end < 0:
            continue
        for line in part[:end].decode("utf-8", "replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type" and _media_type(value) == "application/sdp":
                return part[body_start:].rstrip(b"\r\n")
    return None


# A dialog's messages repeat their From, To and Contact values and a
# transaction's its Via values: each distinct value is parsed once and the
# result shared by every message that carries it (nothing changes a parsed
# value). Bounded: past this many values the least recently used are parsed again.
_PARSED_VALUES = 16384


@functools.lru_cache(maxsize=_PARSED_VALUES)
def _parsed_name_addr(value: str) -> NameAddr:
    return parse_name_addr(value)


@functools.lru_cache(maxsize=_PARSED_VALUES)
def _parsed_vias(value: str) -> tuple[tuple[Via, ...], tuple[str, ...]]:
    """The Vias of one header value, and an error for each one unreadable."""
    vias, errors = [], []
    for item in split_top_level(value, ","):
        via = parse_via(item)
        if via is None:
            errors.append(f"bad Via: {item.strip()[:60]!r}")
        else:
            vias.append(via)
    return tuple(vias), tuple(errors)


@functools.lru_cache(maxsize=_PARSED_VALUES)
def _parsed_contacts(value: str) -> tuple[NameAddr, ...]:
    items = (item.strip() for item in split_top_level(value, ","))
    return tuple(NameAddr(uri="*") if item == "*" else parse_name_addr(item) for item in items if item)


def forget_shared_values() -> None:
    """Let go of the values kept for sharing (_SHARED and the parsed values): once a
    capture is read they only hold memory, and the next capture shares nothing with it."""
    _SHARED.clear()
    for parsed in (_parsed_name_addr, _parsed_vias, _parsed_contacts):
        parsed.cache_clear()


def _derive(message: SipMessage, first: dict[str, str], every: dict[str, list[str]]) -> None:
    """Fill the convenience attributes analyses read instead of headers (from `_index`)."""
    message.call_id = first.get("call-id")
    cseq = first.get("cseq")
    if cseq is not None:
        number, _, method = cseq.strip().partition(" ")
        message.cseq = decimal_number(number)
        if message.cseq is not None:
            message.cseq_method = method.strip().upper() or None
        else:
            message.errors.append(f"bad CSeq: {cseq[:40]!r}")
    value = first.get("from")
    if value is not None:
        message.from_addr = _parsed_name_addr(value)
    value = first.get("to")
    if value is not None:
        message.to_addr = _parsed_name_addr(value)
    for value in every.get("via", ()):
        vias, errors = _parsed_vias(value)
        message.vias += vias
        message.errors += errors
    for value in every.get("contact", ()):
        message.contacts += _parsed_contacts(value)
    expires = first.get("expires")
    if expires is not None:
        message.expires = decimal_number(expires)
    content_type = first.get("content-type")
    if content_type is None:
        return
    message.content_type = _media_type(content_type)
    if message.content_type == "application/sdp":
        message.sdp = parse_sdp(message.body)
    elif message.content_type.startswith("multipart/"):
        sdp_body = _sdp_in_multipart(content_type, message.body)
        if sdp_body is not None:
            message.sdp = parse_sdp(sdp_body)


def parse_message(data: bytes) -> SipMessage:
    """Parse one SIP message; damage is recorded in `errors`, never raised."""
    data = bytes(data)
    message = SipMessage(raw=data)
    end, body_start = _header_end(data)
    if end < 0:
        message.errors.append("no blank line after the headers")
        end = body_start = len(data)
    lines = data[:end].decode("utf-8", "replace").split("\n")
    first = lines[0].rstrip("\r")
    _read_start_line(first, message)
    _read_headers(lines[1:], message)
    first_values, every_value = _index(message.headers)
    _read_body(data, body_start, message, first_values.get("content-length"))
    _derive(message, first_values, every_value)
    return message


# ---------------------------------------------------------------- streams

# A head (start line, headers, blank line) longer than this is cut there: real
# ones take a few kilobytes, and the cap bounds what one stream holds.
MAX_HEADER_BLOCK = 64 * 1024
# A body is read to at most this many bytes: a Content-Length beyond is damage.
MAX_BODY = 1024 * 1024
# `feed` takes its data this much at a time, so a huge chunk never sits whole
# in the buffer: a stream holds at most a head, a body, a start line and a step.
_FEED_STEP = 64 * 1024
# Chunks whose bytes are still buffered, remembered with their tags; past this
# many (a body trickling in a byte per segment) the oldest merges into the next.
MAX_TAGS = 256
# Bodies that carry SIP messages (message/sip, RFC 3420 sipfrag) or parts that
# may (multipart): there a start line right after an empty line is content.
_SIP_CARRYING = ("message/sip", "message/sipfrag", "multipart/")
_LF = 0x0A
_CR = 0x0D

_SEEK, _HEAD, _BODY = range(3)
# How a message that the stream leaves unfinished is described: (the error,
# and where an unusable Content-Length's body stopped).
_STREAM_ENDS = ("the stream ends before this message is complete", "the end of the stream")
_BYTES_MISSING = ("bytes of the stream are missing here (not captured): the message is incomplete",
                  "bytes missing from the capture")


class Framed(NamedTuple):
    """One message cut from a stream, and what framing found wrong with it."""

    data: bytes
    errors: list[str]  # for the parsed message's errors
    tag: object  # the tag `feed` got with the chunk that brought the message's last byte


def _framing_headers(head: bytes) -> tuple[str | None, str]:
    """(Content-Length text, None when absent; media type) of a raw header block."""
    length: str | None = None
    media_type = ""
    for line in head.split(b"\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name = name.strip().lower()
        if name in (b"content-length", b"l") and length is None:
            length = value.decode("latin-1").strip()
        elif name in (b"content-type", b"c") and not media_type:
            media_type = _media_type(value.decode("latin-1"))
    return length, media_type


def _starts_message(buffer: bytearray, pos: int, final: bool) -> bool | None:
    """Does a SIP start line begin at `pos`? None: its line is not all there yet."""
    if buffer[pos] not in _UPPER:
        return False
    head = bytes(buffer[pos : pos + _FIRST_LINE_LIMIT])
    if not final and len(head) < _FIRST_LINE_LIMIT and b"\n" not in head:
        return None
    return looks_like_sip(head)


def _after_empty_line(buffer: bytearray, pos: int) -> bool:
    before = bytes(buffer[max(0, pos - 3) : pos])
    return before.endswith((b"\n\n", b"\n\r\n"))


class SipStreamFramer:
    """Cuts a SIP byte stream (TCP, RFC 3261 18.3) into messages; sans-I/O, h11 style.

    `feed(data, tag)` takes any chunking of the stream and returns the messages
    it completes, each with the tag of the chunk that brought its last byte
    (the engine tags chunks with their frame): the same stream gives the same
    messages however it is cut. Keep-alive CRLFs (RFC 5626 3.5.1) between
    messages are passed over.

    Nothing is dropped without a word. A message framing cannot take whole is
    kept with what could be read, and its `errors` say why: a head over
    MAX_HEADER_BLOCK is cut after its last complete line; a body whose
    Content-Length runs past the next start line ends at that line, so the next
    message is not lost; an unusable Content-Length (not a number, or over
    MAX_BODY) takes the body up to the next start line. That a start line
    inside a body begins the next message holds because bodies (SDP, XML,
    text) have none, except those that carry SIP messages, where one right
    after an empty line is their content. Bytes that start no message are
    skipped up to the next start line and counted (`take_skipped`). `gap()`
    (bytes missing from the capture) and `close()` (end of the stream) give
    back the message they leave unfinished.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._state = _SEEK
        self._mid_line = False  # _SEEK: the buffer starts inside a line being skipped
        self._scanned = 0  # _HEAD: the header-end search resumes here; _BODY: the line-end search
        self._at_line_start = False  # _BODY: `_scanned` is a line start not judged yet
        self._body_start = 0
        self._limit = 0  # _BODY: where the body ends unless a start line comes first
        self._length_text: str | None = None
        self._length: int | None = None  # the usable Content-Length, else None
        self._carries_sip = False
        self._consumed = 0  # stream offset of the buffer's first byte
        self._tags: deque[list] = deque()  # [stream offset past a chunk, its tag], oldest first
        self._skipping = False  # inside a stretch of skipped bytes
        self._skipped_stretches = 0
        self._skipped_bytes = 0

    def feed(self, data: bytes, tag: object = None) -> list[Framed]:
        messages: list[Framed] = []
        for start in range(0, len(data), _FEED_STEP):
            self._buffer += data[start : start + _FEED_STEP]
            self._remember(tag)
            while self._step(messages, None):
                pass
        return messages

    def gap(self) -> list[Framed]:
        """Bytes are missing before the next `feed`: the open message ends here, incomplete."""
        return self._end(_BYTES_MISSING)

    def close(self) -> list[Framed]:
        """The stream ends: the message still open comes out as it is."""
        return self._end(_STREAM_ENDS)

    def take_skipped(self) -> tuple[int, int]:
        """(stretches begun, bytes) skipped since the last call: bytes that start no SIP message."""
        counts = self._skipped_stretches, self._skipped_bytes
        self._skipped_stretches = self._skipped_bytes = 0
        return counts

    # -- state machine: each step consumes something, or says it must wait

    def _end(self, ending: tuple[str, str]) -> list[Framed]:
        messages: list[Framed] = []
        while self._step(messages, ending):
            pass
        # What follows may start a message at its first byte.
        self._mid_line = self._skipping = False
        return messages

    def _step(self, messages: list[Framed], ending: tuple[str, str] | None) -> bool:
        if self._state == _SEEK:
            return self._seek(ending is not None)
        if self._state == _HEAD:
            return self._head(messages, ending)
        return self._body(messages, ending)

    def _seek(self, final: bool) -> bool:
        buffer = self._buffer
        if self._mid_line:
            line_end = buffer.find(b"\n")
            if line_end < 0:
                if buffer:
                    self._skip(len(buffer))
                return False
            self._skip(line_end + 1)
            self._mid_line = False
        blank = 0
        for byte in buffer:
            if byte != _CR and byte != _LF:
                break
            blank += 1
        if blank:
            self._consume(blank)
        if not buffer:
            return False
        starts = _starts_message(buffer, 0, final)
        if starts is None:
            return False
        if starts:
            self._state, self._scanned, self._skipping = _HEAD, 0, False
            return True
        line_end = buffer.find(b"\n")
        self._mid_line = line_end < 0
        self._skip(len(buffer) if line_end < 0 else line_end + 1)
        return True

    def _head(self, messages: list[Framed], ending: tuple[str, str] | None) -> bool:
        buffer = self._buffer
        end, body_start = _header_end(buffer, max(0, self._scanned - 2))
        if end >= 0 and body_start <= MAX_HEADER_BLOCK:
            self._length_text, media_type = _framing_headers(bytes(buffer[:end]))
            length = 0 if self._length_text is None else decimal_number(self._length_text)
            self._length = length if length is not None and length <= MAX_BODY else None
            self._body_start = body_start
            self._limit = body_start + (MAX_BODY if self._length is None else self._length)
            self._carries_sip = media_type.startswith(_SIP_CARRYING)
            self._state, self._scanned, self._at_line_start = _BODY, body_start, True
            return True
        if end >= 0 or len(buffer) > MAX_HEADER_BLOCK:
            # Complete lines are kept; only a single line longer than the limit is cut inside.
            cut = buffer.rfind(b"\n", 0, MAX_HEADER_BLOCK) + 1 or MAX_HEADER_BLOCK
            mid_line = buffer[cut - 1] != _LF
            self._emit(messages, cut, [f"header block longer than {MAX_HEADER_BLOCK} bytes: the message is cut "
                                       f"after {cut} bytes, and its rest skipped up to the next SIP start line"])
            self._mid_line = mid_line
            return True
        if ending is None:
            self._scanned = len(buffer)
            return False
        self._emit(messages, len(buffer), [ending[0]])
        return True

    def _body(self, messages: list[Framed], ending: tuple[str, str] | None) -> bool:
        buffer = self._buffer
        limit = self._limit
        while True:
            if self._at_line_start:
                pos = self._scanned
                if pos >= limit or pos >= len(buffer):
                    break
                starts = _starts_message(buffer, pos, ending is not None)
                if starts is None:
                    return False
                if starts and not (self._carries_sip and _after_empty_line(buffer, pos)):
                    read = pos - self._body_start
                    if self._length is None:
                        error = self._unusable_length(read, "the next SIP start line")
                    else:
                        error = (f"the next SIP message starts {read} bytes into the {self._length}-byte body "
                                 "Content-Length announces: the body ends there")
                    self._emit(messages, pos, [error])
                    return True
                self._at_line_start = False
            line_end = buffer.find(b"\n", self._scanned, limit)
            if line_end < 0:
                self._scanned = min(len(buffer), limit)
                break
            self._scanned, self._at_line_start = line_end + 1, True
        if len(buffer) >= limit:
            if self._length is not None:
                self._emit(messages, limit, [])
            else:
                mid_line = buffer[limit - 1] != _LF
                self._emit(messages, limit, [self._unusable_length(
                    MAX_BODY, f"the {MAX_BODY}-byte limit, and the rest skipped up to the next SIP start line")])
                self._mid_line = mid_line
            return True
        if ending is None:
            return False
        if self._length is None:
            error = self._unusable_length(len(buffer) - self._body_start, ending[1])
        else:
            error = ending[0]
        self._emit(messages, len(buffer), [error])
        return True

    def _unusable_length(self, read: int, where: str) -> str:
        text = self._length_text or ""
        number = decimal_number(text)
        if number is None:
            why = f"Content-Length {text[:40]!r} is not a length"
        else:
            why = f"Content-Length {number} is over the {MAX_BODY}-byte limit"
        return f"{why}: the body is taken up to {where} ({read} bytes)"

    # -- bytes leave the buffer

    def _remember(self, tag: object) -> None:
        end = self._consumed + len(self._buffer)
        tags = self._tags
        if tags and tags[-1][1] is tag:
            tags[-1][0] = end
            return
        tags.append([end, tag])
        if len(tags) > MAX_TAGS:
            tags.popleft()  # its bytes now count as the next chunk's

    def _emit(self, messages: list[Framed], count: int, errors: list[str]) -> None:
        end = self._consumed + count
        tag = next(tag for chunk_end, tag in self._tags if chunk_end >= end)
        messages.append(Framed(bytes(self._buffer[:count]), errors, tag))
        self._consume(count)
        self._state = _SEEK

    def _skip(self, count: int) -> None:
        if not self._skipping:
            self._skipping = True
            self._skipped_stretches += 1
        self._skipped_bytes += count
        self._consume(count)

    def _consume(self, count: int) -> None:
        del self._buffer[:count]
        self._consumed += count
        tags = self._tags
        while tags and tags[0][0] <= self._consumed:
            tags.popleft()
