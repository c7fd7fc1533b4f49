"""SDP (RFC 4566) parsing: the parts a call diagnosis needs, tolerant of junk lines."""

from __future__ import annotations

from ..model import SdpMedia, SessionDescription

DIRECTIONS = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})

# Static RTP payload types (RFC 3551 table 4/5): name and clock rate, used when
# an offer lists a static type without an a=rtpmap line.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    5: ("DVI4", 8000),
    6: ("DVI4", 16000),
    7: ("LPC", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    10: ("L16", 44100),
    11: ("L16", 44100),
    12: ("QCELP", 8000),
    13: ("CN", 8000),
    14: ("MPA", 90000),
    15: ("G728", 8000),
    16: ("DVI4", 11025),
    17: ("DVI4", 22050),
    18: ("G729", 8000),
    25: ("CelB", 90000),
    26: ("JPEG", 90000),
    28: ("nv", 90000),
    31: ("H261", 90000),
    32: ("MPV", 90000),
    33: ("MP2T", 90000),
    34: ("H263", 90000),
}


def decimal_number(text: str | bytes) -> int | None:
    """ASCII digits -> int, else None.

    Stricter than int(): str.isdigit() also accepts '²' (which int() rejects),
    and a multi-thousand-digit field would hit int()'s length limit; no SIP or
    SDP number needs more than 10 digits.
    """
    text = text.strip()
    if 0 < len(text) <= 10 and text.isascii() and text.isdigit():
        return int(text)
    return None


def _connection_address(value: str) -> str | None:
    """'IN IP4 192.0.2.1/127' -> '192.0.2.1'."""
    parts = value.split()
    return parts[2].split("/", 1)[0] if len(parts) >= 3 else None


def _media_line(value: str) -> SdpMedia | None:
    """'audio 49170 RTP/AVP 0 8 101' (the port may carry '/count')."""
    parts = value.split()
    if len(parts) < 3:
        return None
    port = decimal_number(parts[1].split("/", 1)[0])
    if port is None:
        return None
    formats = map(decimal_number, parts[3:])
    return SdpMedia(
        media=parts[0],
        port=port,
        protocol=parts[2],
        payload_types=[number for number in formats if number is not None and number < 128],
    )


def _payload_attribute(value: str) -> tuple[int, str] | None:
    """'101 telephone-event/8000' -> (101, 'telephone-event/8000')."""
    number, _, rest = value.strip().partition(" ")
    payload_type = decimal_number(number)
    return None if payload_type is None else (payload_type, rest.strip())


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body; unreadable lines are noted in `errors` and skipped."""
    session = SessionDescription()
    media: SdpMedia | None = None
    skipping_media = False  # inside an m= section we could not read
    for raw_line in bytes(body).decode("utf-8", "replace").splitlines():
        line = raw_line.strip()
        if not line:
            continue
        kind, equals, value = line.partition("=")
        if not equals or len(kind) != 1:
            session.errors.append(f"not an SDP line: {line[:60]!r}")
            continue
        if kind == "m":
            media = _media_line(value)
            skipping_media = media is None
            if media is None:
                session.errors.append(f"bad m= line: {line[:60]!r}")
            else:
                session.media.append(media)
        elif skipping_media:
            continue
        elif kind == "o":
            parts = value.split()
            if len(parts) >= 6:
                session.origin_address = parts[5]
            else:
                session.errors.append(f"bad o= line: {line[:60]!r}")
        elif kind == "c":
            address = _connection_address(value)
            if media is None:
                session.connection = address
            else:
                media.connection = address
        elif kind == "a":
            _attribute(value, session, media)
    return session


def _attribute(value: str, session: SessionDescription, media: SdpMedia | None) -> None:
    name, _, argument = value.partition(":")
    name = name.strip().lower()
    if name in DIRECTIONS:
        if media is None:
            session.direction = name
        else:
            media.direction = name
    elif media is None:
        return  # the other attributes we read are media-level
    elif name == "rtpmap" or name == "fmtp":
        parsed = _payload_attribute(argument)
        if parsed is not None:
            getattr(media, name)[parsed[0]] = parsed[1]
    elif name == "rtcp":
        media.rtcp = argument.strip()


def codec_names(media: SdpMedia) -> list[str]:
    """Encoding names in offer order: rtpmap names, else RFC 3551 static names."""
    names = []
    for payload_type in media.payload_types:
        mapped = media.rtpmap.get(payload_type)
        if mapped:
            names.append(mapped.split("/", 1)[0])
        elif payload_type in STATIC_PAYLOAD_TYPES:
            names.append(STATIC_PAYLOAD_TYPES[payload_type][0])
        else:
            names.append(str(payload_type))
    return names


def clock_rates(media: SdpMedia) -> dict[int, int]:
    """Payload type -> RTP clock rate (from rtpmap, else the static table)."""
    rates: dict[int, int] = {}
    for payload_type in media.payload_types:
        encoding = media.rtpmap.get(payload_type, "").split("/")
        rate = decimal_number(encoding[1]) if len(encoding) > 1 else None
        if rate is not None:
            rates[payload_type] = rate
        elif payload_type in STATIC_PAYLOAD_TYPES:
            rates[payload_type] = STATIC_PAYLOAD_TYPES[payload_type][1]
    return rates
