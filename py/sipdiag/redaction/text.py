"""Rewriting the text that identifies people and places: SIP, SDP, any payload.

Replacements are keyed pseudonyms: the same value always gets the same
replacement (per key), so Call-IDs still group dialogs, an AOR stays one AOR
and the diagnosis of the redacted capture equals the original's. Pseudonyms
replace every letter and digit, ASCII or not, one character for one character
(see `Pseudonyms`); punctuation and spaces stay, so most rewrites leave the
framing alone; addresses and non-ASCII names may change the byte length and
the caller fixes lengths below (SIP Content-Length here).

Text is read as UTF-8 with surrogateescape everywhere in this module
(`decode`/`encode`): a UTF-8 name is one value whichever message spells it,
and bytes that are not UTF-8 (binary payloads, a Latin-1 phone) come back
unchanged unless a rule rewrote them.

Every original value is remembered per category so `redact.verify` can prove
none of them survived, and every value given a pseudonym is replaced wherever
else rewritten text spells it (`replace_known_values`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field, fields

from ..protocols.sip import COMPACT_FORMS
from .addressmap import AddressMap, parse_keep

DIGITS = "0123456789"
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()

# One codec for every byte this module reads or writes (see the docstring).
CODEC, CODEC_ERRORS = "utf-8", "surrogateescape"

# Candidates only (cheap to find in megabytes); ipaddress decides what is an address.
# Leading digits may be glued to an address (`branch=z9hG4bK-fc8192.168.1.2`,
# `%40101.231.48.19` in an escaped URI): the match takes them, `_ipv4` splits.
IPV4_TEXT = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]{1,3}){3}(?![0-9]|\.[0-9])")
# Up to nine groups: some phones write an address and its port unbracketed
# (`sip:4321@fec0:0:0:0:216:d3ff:fe0d:22c:5060`); `_ipv6` splits the port off.
IPV6_CANDIDATE = re.compile(r"(?:(?<![0-9A-Za-z:.])|(?<=sip:)|(?<=sips:))[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,8}(?:\.[0-9]{1,3}){0,3}(?![0-9A-Za-z:])")
UNBRACKETED_IPV6 = r"[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,8}(?![A-Za-z0-9._-])"
MAC_TEXT = re.compile(r"(?<![0-9A-Fa-f:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:-])")
# Cisco's dotted form and the bare 12 digits (a +sip.instance UUID ends in its phone's MAC).
MAC_OTHER_TEXT = re.compile(r"(?<![0-9A-Fa-f.])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![0-9A-Fa-f.])"
                            r"|(?<![0-9A-Fa-f])[0-9A-Fa-f]{12}(?![0-9A-Fa-f])")

# RFC 3261 allows "," and ";" in a user part (`sip:alice,smith@host`): the user
# runs to the "@", but never over a bracket or into the next URI of a list.
SIP_URI = re.compile(r"(?i)\b(sips?:)(?:((?:[^@\s<>\",]|,(?!\s*(?:sips?|tel):))+)@)?(\[[0-9A-Fa-f:.]+\]|"
                     + UNBRACKETED_IPV6 + r"|[A-Za-z0-9._-]+)")
TEL_URI = re.compile(r"(?i)\btel:(\+?[0-9A-Fa-f().*#-]+)")
USER_LIST = re.compile(r"([,;])")
# Not the first group of an unbracketed IPv6 address (`SIP/2.0/UDP fe80:0:0:0:...`): the address pass has it.
VIA_HOST = re.compile(r"(?i)(SIP/2\.0/[A-Z]+[ \t]+)([A-Za-z0-9._-]+)(?![A-Za-z0-9._-]|:[0-9A-Fa-f]{0,4}:)")
DIGEST_PARAM = re.compile(r'(?i)\b(response|nonce|cnonce|username|realm)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')
# Unquoted names may still hold stray quotes (`\"arik\" <sip:...>` is on the wire).
DISPLAY_NAME = re.compile(r'(^|,)(\s*)("(?:[^"\\]|\\.)*"|[^,<]*?)(\s*<)(?=(?:sips?|tel):)', re.I)
# A phone number is a run of digits however it is dressed (+, tel:, XML body).
PHONE_DIGITS = re.compile(r"(?<![0-9])[0-9]{6,}(?![0-9])")
SDP_ORIGIN = re.compile(r"(?m)^(o=)(\S+)")
SDP_EMAIL = re.compile(r"(?m)^(e=[^\r\n@]*?)([^\s@<>()\"]+)@([A-Za-z0-9._-]+)")
SDP_PHONE = re.compile(r"(?m)^p=.*$")
DOMAIN_TOKEN = re.compile(r"(?<![A-Za-z0-9_.-])[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+(?![A-Za-z0-9_-])")
TOKEN = re.compile(r"[^\s;,<>\"'=:]+")
# Letters and digits of any script: the words known values are found by.
WORD = re.compile(r"[^\W_]+")
# Where SIP and SDP spell grammar, not values: header names, SDP attribute names.
GRAMMAR_KEYS = re.compile(r"(?m)^(?:[A-Za-z0-9!%*_+`'~.-]+[ \t]*:|a=[A-Za-z0-9_.-]+)")
# Real devices end lines with bare LF too; the header block ends at the first empty line.
HEADER_END = re.compile(rb"\r?\n\r?\n")
CONTENT_LENGTH = re.compile(r"(?im)^((?:content-length|l)[ \t]*:[ \t]*)([0-9]+)")

AGENT_HEADERS = frozenset(("user-agent", "server"))
AUTH_HEADERS = frozenset(("authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate"))
# DNS labels that name protocols, not anybody.
KEPT_LABELS = frozenset(("in-addr", "ip6", "arpa", "localhost", "local", "invalid"))
# Words SIP and SDP need verbatim. A user or display name made only of these
# (and of short words and numbers) is replaced where it stands but not sought
# everywhere else: a phone calling itself "PCMU/8000" or a user "info" must
# not rewrite the SDP or the Allow header.
PROTOCOL_WORDS = frozenset("""
    sip sips tel pres urn uuid mailto http https anonymous unknown invalid localhost
    invite ack bye cancel register options info update refer notify subscribe message prack publish
    via from contact call-id call cseq route record max forwards expires allow supported require
    content length type encoding disposition accept user agent server authorization authenticate
    proxy www warning reason subject date timestamp identity asserted preferred privacy diversion
    event state session refresher replaces timer path outbound gruu norefersub precondition 100rel
    transport udp tcp tls sctp ws wss user phone dialog maddr ttl method branch received rport tag lr
    digest md5 sha algorithm qop auth int opaque stale nonce cnonce response realm username uri
    rtp avp savp avpf savpf udptl in ip4 ip6 audio video image application text data control
    sendrecv sendonly recvonly inactive rtpmap fmtp ptime maxptime rtcp mux ice ufrag pwd candidate host
    srflx prflx relay typ raddr generation fingerprint setup actpass active passive mid ssrc cname msid
    label crypto inline group bundle silencesupp pcmu pcma g722 g729 g726 g723 gsm opus speex ilbc amr
    telephone event red ulpfec t38 h264 vp8 vp9 sdp xml pidf json plain multipart mixed related dtmf relay
    trying ringing progress forwarded queued unauthorized forbidden found busy here terminated
    unavailable timeout internal error service decline
""".split())


def decode(data: bytes) -> str:
    return data.decode(CODEC, CODEC_ERRORS)


def encode(text: str) -> bytes:
    return text.encode(CODEC, CODEC_ERRORS)


BOOL_OPTIONS = ("users", "display_names", "domains", "call_ids", "user_agents", "mac_addresses",
                "rtp_payload", "pcapng_metadata", "keep_oui")
LIST_OPTIONS = ("keep_addresses", "redact_strings", "redact_regexes")


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
    keep_oui: bool = False  # MAC replacements keep the vendor prefix (first 3 bytes)
    keep_addresses: list[str] = field(default_factory=list)  # addresses and subnets left as they are
    redact_strings: list[str] = field(default_factory=list)  # also replaced wherever found, any case
    redact_regexes: list[str] = field(default_factory=list)  # every match replaced (Python `re` syntax)

    def __post_init__(self) -> None:
        for name in LIST_OPTIONS:
            value = getattr(self, name)
            if not value:
                value = []  # the verifier switches everything off with False
            elif isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise ValueError(f"option {name}: expected a list of strings, got {value!r}")
            for item in value:
                if not isinstance(item, str):
                    raise ValueError(f"option {name}: {item!r} is not a string")
            setattr(self, name, list(value))
        parse_keep(self.keep_addresses)
        for text in self.redact_strings:
            if not text:
                raise ValueError("redact string '': an empty string would match everywhere")
        for pattern in self.redact_regexes:
            compile_pattern(pattern)

    @classmethod
    def from_dict(cls, values: dict | None) -> "RedactionOptions":
        """From the page's JSON; unknown names are refused so a typo cannot silently disable nothing."""
        if values is None:
            return cls()
        if not isinstance(values, dict):
            raise ValueError(f"redaction options must be an object of names, got {values!r}")
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown redaction options: {', '.join(sorted(map(str, unknown)))}")
        for name, value in values.items():
            # JSON has real booleans and lists: "false" or a bare string is a mistake, not a value.
            if name in BOOL_OPTIONS and not isinstance(value, bool):
                raise ValueError(f"option {name}: {value!r} is not true or false")
            if name in LIST_OPTIONS and value is not None and not isinstance(value, list):
                raise ValueError(f"option {name}: expected a list of strings, got {value!r}")
        return cls(**{name: ([] if value is None else value) for name, value in values.items()})


def compile_pattern(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"redact regex {pattern!r}: {error}") from None


def _char_class(char: str) -> str:
    """What a pseudonym puts in a character's place: "digit", "upper", "lower", or "" (the character stays)."""
    if char.isascii():
        return "digit" if char in DIGITS else "lower" if char in LOWER else "upper" if char in UPPER else ""
    kind = unicodedata.category(char)[0]
    if kind in "PZ":
        return ""  # punctuation and spaces of any script carry structure, not identity
    if kind == "N":
        return "digit"
    # Letters, marks, symbols (an emoji, a flag) and undecodable bytes (a
    # Latin-1 name read as UTF-8): all become ASCII letters.
    return "upper" if char.isupper() else "lower"


class Pseudonyms:
    """Keyed, consistent replacements of values, one ASCII letter or digit for each letter or digit.

    Every letter becomes a keyed ASCII letter of the same case (a letter of
    any script too: "Иван" becomes four ASCII letters, so the output tells
    neither the script nor the UTF-8 byte length), every digit a keyed ASCII
    digit, and punctuation, spaces and "+" stay. The length in characters is
    kept; a non-ASCII name gets shorter in bytes, which SIP can take (its
    Content-Length is recomputed). Where bytes cannot move (a DHCP option, a
    string inside a binary payload) `same_bytes` gives each character as many
    ASCII letters as its UTF-8 bytes.
    """

    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"sipdiag-pseudonyms\0" + secret).digest()
        self.by_category: dict[str, dict[str, str]] = {}  # category -> original -> replacement
        self._taken: dict[str, set[str]] = {}  # category -> replacements given out

    def value(self, category: str, text: str, letters_only: bool = False, same_bytes: bool = False) -> str:
        table = self.by_category.setdefault(category, {})
        found = table.get(text)
        if found is None:
            found = self._compute(category, text, letters_only, same_bytes)
            table[text] = found
            self._taken.setdefault(category, set()).add(found)
        return found

    def _compute(self, category: str, text: str, letters_only: bool, same_bytes: bool) -> str:
        taken = self._taken.get(category, set())
        classes = [_char_class(char) for char in text]
        widths = [len(encode(char)) if same_bytes and kind else 1 for char, kind in zip(text, classes)]
        for tweak in range(64):
            stream = b""
            counter = 0
            while len(stream) < sum(widths):
                stream += hmac.new(self._key, encode(f"{category}\0{tweak}\0{counter}\0{text}"), hashlib.sha256).digest()
                counter += 1
            out = []
            position = 0
            for char, kind, width in zip(text, classes, widths):
                for byte in stream[position : position + width]:
                    if not kind:
                        out.append(char)  # separators carry structure (@ . - + space)
                    elif kind == "digit":
                        out.append(LOWER[byte % 26] if letters_only else DIGITS[byte % 10])
                    else:
                        out.append((LOWER if kind == "lower" else UPPER)[byte % 26])
                position += width
            replacement = "".join(out)
            if not any(classes):
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
            is_tld = index == len(labels) - 1 and len(labels) > 1 and lower.isascii() and lower.isalpha()
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


def worth_seeking(value: str) -> bool:
    """A name specific enough to be replaced wherever it is spelled (see PROTOCOL_WORDS)."""
    return any(len(word) >= 3 and not word.isdigit() and word.casefold() not in PROTOCOL_WORDS
               for word in WORD.findall(value))


class TextRedactor:
    """Rewrites SIP messages and free text; remembers what it replaced."""

    def __init__(self, addresses: AddressMap, pseudonyms: Pseudonyms, options: RedactionOptions) -> None:
        self.addresses = addresses
        self.pseudonyms = pseudonyms
        self.options = options
        self.mac_text: dict[str, str] = {}  # "aa:bb:cc:dd:ee:ff" -> replacement, filled by the link layer
        self.originals: dict[str, set[str]] = {}  # category -> original values, for verification
        # Names, users, host names and secrets sought wherever text is rewritten:
        # first word (casefolded) -> [(length, whole value casefolded, replacement)], longest first.
        self._known_words: dict[str, list[tuple[int, str, str]]] = {}
        self._known_folded: set[str] = set()
        # The map is shared with the packet layer, which reads it after this.
        addresses.keep(options.keep_addresses)
        strings = sorted(set(options.redact_strings), key=len, reverse=True)
        self._strings = re.compile("|".join(map(re.escape, strings)), re.I) if strings else None
        self._regexes = [compile_pattern(pattern) for pattern in options.redact_regexes]
        for text in strings:
            self._remember_requested("strings", text)

    def host_name(self, name: str, same_bytes: bool = False) -> str:
        """A machine's own name (DHCP, TLS SNI), replaced wherever it is spelled later."""
        self.remember("host_names", name)
        replacement = self.pseudonyms.value("host_names", name, same_bytes=same_bytes)
        self._seek(name, replacement)
        return replacement

    def host_name_bytes(self, name: bytes) -> bytes:
        """`host_name` for a name written into a fixed-length field: the same number of bytes."""
        replacement = encode(self.host_name(decode(name), same_bytes=True))
        # Only a name first met through `host_name` in another spelling can differ.
        return replacement[: len(name)].ljust(len(name), b"x")

    def remember(self, category: str, value: str) -> None:
        if value:
            self.originals.setdefault(category, set()).add(value)

    def _remember_requested(self, category: str, value: str) -> None:
        # The scan looks for these anywhere in the output: shorter ones would be
        # found by chance in any binary field.
        if len(value) >= 4:
            self.remember(category, value)

    def _seek(self, original: str, replacement: str, guarded: bool = False) -> None:
        """From now on `original` is replaced wherever rewritten text spells it as whole words."""
        words = [m.span() for m in WORD.finditer(original)]
        if not words:
            return
        start, end = words[0][0], words[-1][1]
        core = original[start:end]
        if len(replacement) == len(original):
            replacement = replacement[start:end]  # character for character: the same span
        elif (start, end) != (0, len(original)):
            return
        folded = core.casefold()
        if folded in self._known_folded or (guarded and not worth_seeking(core)):
            return
        self._known_folded.add(folded)
        entries = self._known_words.setdefault(original[words[0][0] : words[0][1]].casefold(), [])
        entries.append((len(core), folded, replacement))
        entries.sort(key=lambda entry: -entry[0])

    def _known_word_values(self, text: str, sip: bool) -> str:
        # Most payloads hold none of the words: one set intersection says so.
        hits = self._known_words.keys() & set(WORD.findall(text.casefold()))
        if not hits:
            return text
        # A user called "event" must not rename the Event header or a=event.
        keys = [m.span() for m in GRAMMAR_KEYS.finditer(text)] if sip else []
        key = 0
        out, done = [], 0
        for match in WORD.finditer(text):
            start = match.start()
            word = match.group(0).casefold()
            while key < len(keys) and keys[key][1] <= start:
                key += 1
            if word not in hits or start < done or (key < len(keys) and keys[key][0] <= start):
                continue
            for length, folded, replacement in self._known_words[word]:
                end = start + length
                if text[start:end].casefold() == folded and not WORD.match(text, end):
                    out += (text[done:start], replacement)
                    done = end
                    break
        return "".join(out) + text[done:] if out else text

    # -- addresses ----------------------------------------------------------

    def _ipv4(self, match: re.Match) -> str:
        text = match.group(0)
        try:
            return self.addresses.replace_text(text)
        except ValueError:
            pass  # 999.1.2.3, a leading zero, or digits glued in front of an address
        # Glued: only an address already met (in a header, say) is split off,
        # so a version number such as 4192.1.2.3 does not become one.
        for cut in range(1, text.index(".")):
            if text[cut:] in self.addresses.mapping:
                return text[:cut] + self.addresses.mapping[text[cut:]]
        return text

    def _ipv6(self, match: re.Match) -> str:
        text, port = match.group(0), ""
        head, _, digits = text.rpartition(":")
        # A port glued on: nine groups, or an address already met followed by ":5060".
        if digits.isdigit() and (text.count(":") == 8 and "::" not in text or self._known_address(head)):
            text, port = head, ":" + digits
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            return match.group(0)
        replaced = self.addresses.replace(address)
        if replaced == address:
            return match.group(0)
        if "." in text and replaced.ipv4_mapped is not None:
            out = f"::ffff:{replaced.ipv4_mapped}"
        elif text.count(":") == 7 and "::" not in text:
            out = replaced.exploded
        else:
            out = replaced.compressed
        return (out.upper() if text.isupper() else out) + port

    def _known_address(self, text: str) -> bool:
        try:
            return str(ipaddress.IPv6Address(text)) in self.addresses.mapping
        except ValueError:
            return False

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
        replacement = self.pseudonyms.domain(host)
        if "." not in host:
            self._seek(host, replacement, guarded=True)  # "pbx01": no dot for DOMAIN_TOKEN to find
        return replacement

    def _user(self, user: str) -> str:
        """A user part, or each element of a user list (`alice,smith`, `+49301234;isub=12`)."""
        if not self.options.users or not user:
            return user
        self.remember("users", user)
        pieces = USER_LIST.split(user)
        if len(pieces) == 1:
            return self._user_element(user)
        out = []
        for index, piece in enumerate(pieces):
            if index % 2:
                out.append(piece)  # the separator
            elif pieces[index - 1 : index] == [";"] and "=" in piece:
                name, _, value = piece.partition("=")  # a user parameter: phone-context=, isub=
                domain = "." in value and looks_like_domain(value)
                out.append(name + "=" + (self._domain(value) if domain else self._user_element(value)))
            else:
                self.remember("users", piece)
                out.append(self._user_element(piece))
        replacement = "".join(out)
        self.pseudonyms.by_category.setdefault("users", {})[user] = replacement
        return replacement

    def _user_element(self, element: str) -> str:
        if not element:
            return element
        if PHONE_DIGITS.search(element) and not any(c.isalpha() for c in element):
            return PHONE_DIGITS.sub(self._phone, element)
        replacement = self.pseudonyms.value("users", element)
        self._seek(element, replacement, guarded=True)
        return replacement

    def _phone(self, match: re.Match) -> str:
        self.remember("users", match.group(0))
        return self.pseudonyms.value("phones", match.group(0))

    def _secret(self, value: str) -> str:
        self.remember("digest", value)
        replacement = self.pseudonyms.value("digest", value)
        if len(value) >= 8:
            self._seek(value, replacement)  # a nonce is repeated in the next request's Authorization
        return replacement

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
            out += self._user(user)
            if colon:
                out += colon + self._secret(password)
            out += "@"
        if ":" in host and not host.startswith("["):
            return out + host  # an unbracketed address: the address pass replaces it
        return out + self._domain(host)

    def _tel(self, match: re.Match) -> str:
        return "tel:" + self._user(match.group(1))

    def _digest(self, match: re.Match) -> str:
        name, value = match.groups()
        quoted = value.startswith('"')
        inner = value[1:-1] if quoted and len(value) >= 2 else value
        kind = name.lower()
        if kind in ("response", "nonce", "cnonce"):
            inner = self._secret(inner)
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
            replacement = self.pseudonyms.value("display_names", inner)
            self._seek(inner, replacement, guarded=True)
            inner = replacement
        return lead + space + (f'"{inner}"' if quoted else inner) + close

    def _sdp_email(self, match: re.Match) -> str:
        lead, user, host = match.groups()
        return lead + self._user(user) + "@" + self._domain(host)

    def _sdp_phone(self, match: re.Match) -> str:
        return PHONE_DIGITS.sub(self._phone, match.group(0)) if self.options.users else match.group(0)

    def _known_domain(self, match: re.Match) -> str:
        text = match.group(0)
        found = self.pseudonyms.by_category.get("domains", {}).get(text.lower())
        return found if found is not None else text

    def _known_call_id(self, match: re.Match) -> str:
        text = match.group(0)
        found = self.pseudonyms.by_category.get("call_ids", {}).get(text)
        return found if found is not None else text

    def _known_mac(self, match: re.Match) -> str:
        """A MAC the link layer met, in any notation: its replacement in the same one."""
        text = match.group(0)
        digits = "".join(c for c in text if c not in ":-.").lower()
        found = self.mac_text.get(":".join(digits[i : i + 2] for i in range(0, 12, 2)))
        if found is None:
            return text
        new = iter(found.replace(":", ""))
        out = "".join(c if c in ":-." else next(new) for c in text)
        return out.upper() if text.isupper() else out

    def _requested(self, category: str, match: re.Match) -> str:
        text = match.group(0)
        if not text:
            return text  # a pattern that can match nothing
        self._remember_requested(category, text)
        # Same bytes: a string asked for may sit in a binary payload.
        return self.pseudonyms.value(category, text, same_bytes=True)

    def replace_known_values(self, text: str, sip: bool = False) -> str:
        """Every value given a pseudonym so far, wherever else it appears; then the strings and patterns asked for.

        Longest first: a User-Agent before the domain or product name inside
        it, names and users before the strings, so each path (SIP, any other
        payload) spells a value the same way. In `sip` text, header and SDP
        attribute names are grammar and keep their spelling."""
        if self.options.user_agents:
            # Few and long (SDP s= lines, Warning headers repeat them): plain search.
            for agent, replacement in self.pseudonyms.by_category.get("user_agents", {}).items():
                text = text.replace(agent, replacement)
        if self.options.domains and self.pseudonyms.by_category.get("domains"):
            text = DOMAIN_TOKEN.sub(self._known_domain, text)
        if self.options.users and self.pseudonyms.by_category.get("phones"):
            text = PHONE_DIGITS.sub(self._known_phone, text)
        if self.options.call_ids and self.pseudonyms.by_category.get("call_ids"):
            text = TOKEN.sub(self._known_call_id, text)
        if self.mac_text:
            text = MAC_OTHER_TEXT.sub(self._known_mac, MAC_TEXT.sub(self._known_mac, text))
        if self._known_words:
            text = self._known_word_values(text, sip)
        if self._strings is not None:
            text = self._strings.sub(lambda m: self._requested("strings", m), text)
        for pattern in self._regexes:
            text = pattern.sub(lambda m: self._requested("patterns", m), text)
        return text

    def replace_known_bytes(self, data: bytes) -> bytes:
        """`replace_known_values` on bytes, in this module's codec."""
        text = decode(data)
        new = self.replace_known_values(text)
        return data if new == text else encode(new)

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
            # The SDP origin's username, e-mail and phone lines name people too;
            # learnt here, they are then replaced in s=, i= and anywhere else.
            text = SDP_ORIGIN.sub(lambda m: m.group(1) + (m.group(2) if m.group(2) == "-" else self._user(m.group(2))), text)
            text = SDP_EMAIL.sub(self._sdp_email, text)
            text = SDP_PHONE.sub(self._sdp_phone, text)
        text = SIP_URI.sub(self._uri, text)
        text = TEL_URI.sub(self._tel, text) if self.options.users else text
        text = self.replace_known_values(text, sip=True)
        return self.replace_addresses(text)

    def sip(self, data: bytes) -> bytes:
        """One or more complete or partial SIP messages; Content-Length follows the new body (in bytes)."""
        out = []
        pos = 0
        while pos < len(data):
            end = HEADER_END.search(data, pos)
            if end is None and pos:
                out.append(self.text(data[pos:]))
                break
            # Some devices send a message without the empty line: all head.
            head_end = end.end() if end else len(data)
            head = decode(data[pos:head_end])
            match = CONTENT_LENGTH.search(head)
            declared = int(match.group(2)) if match else 0
            body = data[head_end : head_end + declared]
            # The head first: values learnt there (Server, Call-ID) are then found in the body.
            new_head = self._rewrite_values(head, is_head=True)
            new_body = encode(self._rewrite_values(decode(body), is_head=False)) if body else b""
            if match:
                length = declared + len(new_body) - len(body)
                new_head = CONTENT_LENGTH.sub(lambda m: m.group(1) + str(length), new_head, count=1)
            out.append(encode(new_head) + new_body)
            pos = head_end + declared
        return b"".join(out)

    def text(self, data: bytes) -> bytes:
        """Any other payload: known values and addresses spelled in text."""
        text = decode(data)
        new = self.replace_addresses(self.replace_known_values(text))
        return data if new == text else encode(new)
