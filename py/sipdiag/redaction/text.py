"""Rewriting the text that identifies people and places: SIP, SDP, any payload.

Replacements are keyed pseudonyms: the same value always gets the same
replacement (per key), so Call-IDs still group dialogs, an AOR stays one AOR
and the diagnosis of the redacted capture equals the original's. Pseudonyms
keep each character's class (digit, lower, upper) and the length, so most
rewrites leave the framing alone; addresses may change length and the caller
fixes lengths below.

Every original value is remembered per category so `redact.verify` can prove
none of them survived.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass, fields

from ..protocols.sip import COMPACT_FORMS
from .addressmap import AddressMap

DIGITS = "0123456789"
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()

# Candidates only (cheap to find in megabytes); ipaddress decides what is an address.
IPV4_TEXT = re.compile(r"(?<![0-9.])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9]|\.[0-9])")
IPV6_CANDIDATE = re.compile(r"(?<![0-9A-Za-z:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}(?![0-9A-Za-z:])")
MAC_TEXT = re.compile(r"(?<![0-9A-Fa-f:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:-])")

SIP_URI = re.compile(r"(?i)\b(sips?:)(?:([^@\s<>\",]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)")
TEL_URI = re.compile(r"(?i)\btel:(\+?[0-9A-Fa-f().*#-]+)")
VIA_HOST = re.compile(r"(?i)(SIP/2\.0/[A-Z]+[ \t]+)([A-Za-z0-9._-]+)")
DIGEST_PARAM = re.compile(r'(?i)\b(response|nonce|cnonce|username|realm)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')
# Unquoted names may still hold stray quotes (`\"arik\" <sip:...>` is on the wire).
DISPLAY_NAME = re.compile(r'(^|,)(\s*)("(?:[^"\\]|\\.)*"|[^,<]*?)(\s*<)(?=(?:sips?|tel):)', re.I)
# A phone number is a run of digits however it is dressed (+, tel:, XML body).
PHONE_DIGITS = re.compile(r"(?<![0-9])[0-9]{6,}(?![0-9])")
SDP_ORIGIN = re.compile(r"(?m)^(o=)(\S+)")
DOMAIN_TOKEN = re.compile(r"(?<![A-Za-z0-9_.-])[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+(?![A-Za-z0-9_-])")
TOKEN = re.compile(r"[^\s;,<>\"'=:]+")
# Real devices end lines with bare LF too; the header block ends at the first empty line.
HEADER_END = re.compile(rb"\r?\n\r?\n")
CONTENT_LENGTH = re.compile(r"(?im)^((?:content-length|l)[ \t]*:[ \t]*)(\d+)")

AGENT_HEADERS = frozenset(("user-agent", "server"))
AUTH_HEADERS = frozenset(("authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate"))
# DNS labels that name protocols, not anybody.
KEPT_LABELS = frozenset(("in-addr", "ip6", "arpa", "localhost", "local", "invalid"))


@dataclass
class RedactionOptions:
    """What to replace besides addresses (always) and digest secrets (always)."""

    users: bool = True  # user parts and phone numbers
    display_names: bool = True
    domains: bool = True  # SIP domains and DNS names
    call_ids: bool = True
    user_agents: bool = True  # User-Agent and Server
    mac_addresses: bool = True
    rtp_payload: bool = True  # zero the voice, keep RTP headers
    pcapng_metadata: bool = True  # comments, interface names/descriptions, OS/hardware/application

    @classmethod
    def from_dict(cls, values: dict | None) -> "RedactionOptions":
        """From the page's JSON; unknown names are refused so a typo cannot silently disable nothing."""
        names = {f.name for f in fields(cls)}
        unknown = set(values or {}) - names
        if unknown:
            raise ValueError(f"unknown redaction options: {', '.join(sorted(unknown))}")
        return cls(**{name: bool(value) for name, value in (values or {}).items()})


class Pseudonyms:
    """Keyed, consistent, class- and length-preserving replacements of values."""

    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"sipdiag-pseudonyms\0" + secret).digest()
        self.by_category: dict[str, dict[str, str]] = {}  # category -> original -> replacement
        self._taken: dict[str, set[str]] = {}  # category -> replacements given out

    def value(self, category: str, text: str, letters_only: bool = False) -> str:
        table = self.by_category.setdefault(category, {})
        found = table.get(text)
        if found is None:
            found = self._compute(category, text, letters_only)
            table[text] = found
            self._taken.setdefault(category, set()).add(found)
        return found

    def _compute(self, category: str, text: str, letters_only: bool) -> str:
        taken = self._taken.get(category, set())
        for tweak in range(64):
            stream = b""
            counter = 0
            while len(stream) < len(text):
                stream += hmac.new(self._key, f"{category}\0{tweak}\0{counter}\0{text}".encode(), hashlib.sha256).digest()
                counter += 1
            out = []
            for char, byte in zip(text, stream):
                if char in DIGITS:
                    out.append(LOWER[byte % 26] if letters_only else DIGITS[byte % 10])
                elif char in LOWER:
                    out.append(LOWER[byte % 26])
                elif char in UPPER:
                    out.append(UPPER[byte % 26])
                else:
                    out.append(char)  # separators carry structure (@ . - + space)
            replacement = "".join(out)
            if not any(c.isalnum() for c in text):
                return replacement
            # A pseudonym must differ from its original (a one-digit user could
            # map to itself) and from every other value's pseudonym: extensions
            # 100 and 200 merged into one would merge their registrations.
            if replacement != text and replacement not in taken:
                return replacement
        return replacement

    def domain(self, name: str) -> str:
        """Label by label, so sub-domains stay sub-domains of the same replacement."""
        labels = name.split(".")
        out = []
        for index, label in enumerate(labels):
            lower = label.lower()
            is_tld = index == len(labels) - 1 and len(labels) > 1 and lower.isalpha()
            if not label or label.startswith("_") or lower in KEPT_LABELS or is_tld:
                out.append(label)
            else:
                out.append(self.value("domain-label", lower))
        replacement = ".".join(out)
        # Register every parent domain too, so "example.com" alone is found
        # wherever "sip.example.com" was learnt first.
        known = self.by_category.setdefault("domains", {})
        for start in range(len(labels) - 1):
            known[".".join(labels[start:]).lower()] = ".".join(out[start:]).lower()
        return replacement


def is_ip_text(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return False


def looks_like_domain(host: str) -> bool:
    return any(c.isalpha() for c in host) and not is_ip_text(host) and host.lower() not in KEPT_LABELS


class TextRedactor:
    """Rewrites SIP messages and free text; remembers what it replaced."""

    def __init__(self, addresses: AddressMap, pseudonyms: Pseudonyms, options: RedactionOptions) -> None:
        self.addresses = addresses
        self.pseudonyms = pseudonyms
        self.options = options
        self.mac_text: dict[str, str] = {}  # "aa:bb:cc:dd:ee:ff" -> replacement, filled by the link layer
        self.originals: dict[str, set[str]] = {}  # category -> original values, for verification

    def host_name(self, name: str) -> str:
        """A machine's own name (DHCP), replaced wherever it is spelled later."""
        self.remember("host_names", name)
        return self.pseudonyms.value("host_names", name)

    def remember(self, category: str, value: str) -> None:
        if value:
            self.originals.setdefault(category, set()).add(value)

    # -- addresses ----------------------------------------------------------

    def _ipv4(self, match: re.Match) -> str:
        try:
            return self.addresses.replace_text(match.group(0))
        except ValueError:
            return match.group(0)  # 999.1.2.3 or a leading zero: not an address

    def _ipv6(self, match: re.Match) -> str:
        text = match.group(0)
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            return text
        replaced = self.addresses.replace(address)
        if replaced == address:
            return text
        if "." in text and replaced.ipv4_mapped is not None:
            out = f"::ffff:{replaced.ipv4_mapped}"
        elif text.count(":") == 7 and "::" not in text:
            out = replaced.exploded
        else:
            out = replaced.compressed
        return out.upper() if text.isupper() else out

    def replace_addresses(self, text: str) -> str:
        text = IPV4_TEXT.sub(self._ipv4, text)
        if text.count(":") >= 2:
            text = IPV6_CANDIDATE.sub(self._ipv6, text)
        return text

    # -- values ---------------------------------------------------------------

    def _domain(self, host: str) -> str:
        if not self.options.domains or not looks_like_domain(host):
            return host
        self.remember("domains", host.lower())
        return self.pseudonyms.domain(host)

    def _user(self, user: str) -> str:
        if not self.options.users or not user:
            return user
        self.remember("users", user)
        if PHONE_DIGITS.search(user):
            return PHONE_DIGITS.sub(self._phone, user)
        return self.pseudonyms.value("users", user)

    def _phone(self, match: re.Match) -> str:
        self.remember("users", match.group(0))
        return self.pseudonyms.value("phones", match.group(0))

    def _known_phone(self, match: re.Match) -> str:
        phones = self.pseudonyms.by_category["phones"]
        run = match.group(0)
        if run in phones:
            return phones[run]
        # Binary formats glue length digits to the number ("452" + "5514540002").
        for phone, replacement in phones.items():
            if phone in run:
                run = run.replace(phone, replacement)
        return run

    def _uri(self, match: re.Match) -> str:
        scheme, userinfo, host = match.groups()
        out = scheme
        if userinfo is not None:
            user, colon, password = userinfo.partition(":")
            name, semicolon, params = user.partition(";")
            out += self._user(name) + semicolon + params
            if colon:
                self.remember("digest", password)
                out += colon + self.pseudonyms.value("digest", password)
            out += "@"
        return out + self._domain(host)

    def _tel(self, match: re.Match) -> str:
        return "tel:" + self._user(match.group(1))

    def _digest(self, match: re.Match) -> str:
        name, value = match.groups()
        quoted = value.startswith('"')
        inner = value[1:-1] if quoted and len(value) >= 2 else value
        kind = name.lower()
        if kind in ("response", "nonce", "cnonce"):
            self.remember("digest", inner)
            inner = self.pseudonyms.value("digest", inner)
        elif kind == "username":
            inner = self._user(inner)
        elif kind == "realm":
            inner = self._domain(inner) if "." in inner else inner
        name_and_equals = match.group(0)[: match.start(2) - match.start(0)]
        return name_and_equals + (f'"{inner}"' if quoted else inner)

    def _display_name(self, match: re.Match) -> str:
        lead, space, name, close = match.groups()
        quoted = name.startswith('"') and len(name) >= 2
        inner = name[1:-1] if quoted else name
        if inner.strip():
            self.remember("display_names", inner)
            inner = self.pseudonyms.value("display_names", inner)
        return lead + space + (f'"{inner}"' if quoted else inner) + close

    def _known_domain(self, match: re.Match) -> str:
        text = match.group(0)
        found = self.pseudonyms.by_category.get("domains", {}).get(text.lower())
        return found if found is not None else text

    def _known_call_id(self, match: re.Match) -> str:
        text = match.group(0)
        found = self.pseudonyms.by_category.get("call_ids", {}).get(text)
        return found if found is not None else text

    def _known_mac(self, match: re.Match) -> str:
        text = match.group(0)
        found = self.mac_text.get(text.lower().replace("-", ":"))
        if found is None:
            return text
        found = found.replace(":", match.group(1))
        return found.upper() if text.isupper() else found

    def replace_known_values(self, text: str) -> str:
        """Values already learnt (domains, Call-IDs, MACs) wherever else they appear."""
        if self.options.domains and self.pseudonyms.by_category.get("domains"):
            text = DOMAIN_TOKEN.sub(self._known_domain, text)
        if self.options.users and self.pseudonyms.by_category.get("phones"):
            text = PHONE_DIGITS.sub(self._known_phone, text)
        if self.options.call_ids and self.pseudonyms.by_category.get("call_ids"):
            text = TOKEN.sub(self._known_call_id, text)
        if self.mac_text:
            text = MAC_TEXT.sub(self._known_mac, text)
        for name, replacement in self.pseudonyms.by_category.get("host_names", {}).items():
            text = re.sub(rf"(?i)\b{re.escape(name)}\b", replacement, text)
        if self.options.user_agents:
            # Few and long (SDP s= lines, Warning headers repeat them): plain search.
            for agent, replacement in self.pseudonyms.by_category.get("user_agents", {}).items():
                text = text.replace(agent, replacement)
        return text

    # -- SIP ----------------------------------------------------------------

    def _header_line(self, line: str) -> str:
        name, colon, value = line.partition(":")
        if not colon or not name or name[0] in " \t":
            return line
        key = name.strip().lower()
        key = COMPACT_FORMS.get(key, key)
        if key == "call-id" and self.options.call_ids and value.strip():
            call_id = value.strip()
            self.remember("call_ids", call_id)
            return line.replace(call_id, self.pseudonyms.value("call_ids", call_id, letters_only=True))
        if key in AGENT_HEADERS and self.options.user_agents and value.strip():
            agent = value.strip()
            self.remember("user_agents", agent)
            return line.replace(agent, self.pseudonyms.value("user_agents", agent))
        if key in AUTH_HEADERS:
            value = DIGEST_PARAM.sub(self._digest, value)
        if self.options.display_names and "<" in value:
            value = DISPLAY_NAME.sub(self._display_name, value)
        return name + colon + value

    def _rewrite_values(self, text: str, is_head: bool) -> str:
        if is_head:
            text = "\n".join(self._header_line(line) for line in text.split("\n"))
            text = VIA_HOST.sub(lambda m: m.group(1) + self._domain(m.group(2)), text)
        else:
            text = SDP_ORIGIN.sub(lambda m: m.group(1) + (m.group(2) if m.group(2) == "-" else self._user(m.group(2))), text)
        text = SIP_URI.sub(self._uri, text)
        text = TEL_URI.sub(self._tel, text) if self.options.users else text
        text = self.replace_known_values(text)
        return self.replace_addresses(text)

    def sip(self, data: bytes) -> bytes:
        """One or more complete or partial SIP messages; Content-Length follows the new body."""
        out = []
        pos = 0
        while pos < len(data):
            end = HEADER_END.search(data, pos)
            if end is None and pos:
                out.append(self.text(data[pos:]))
                break
            # Some devices send a message without the empty line: all head.
            head_end = end.end() if end else len(data)
            head = data[pos:head_end].decode("latin-1")
            match = CONTENT_LENGTH.search(head)
            declared = int(match.group(2)) if match else 0
            body = data[head_end : head_end + declared]
            # The head first: values learnt there (Server, Call-ID) are then found in the body.
            new_head = self._rewrite_values(head, is_head=True)
            new_body = self._rewrite_values(body.decode("latin-1"), is_head=False) if body else ""
            if match:
                length = declared + len(new_body) - len(body)
                new_head = CONTENT_LENGTH.sub(lambda m: m.group(1) + str(length), new_head, count=1)
            out.append((new_head + new_body).encode("latin-1"))
            pos = head_end + declared
        return b"".join(out)

    def text(self, data: bytes) -> bytes:
        """Any other payload: known values and addresses spelled in text."""
        text = data.decode("latin-1")
        new = self.replace_addresses(self.replace_known_values(text))
        return data if new == text else new.encode("latin-1")
