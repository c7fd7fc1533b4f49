"""Keyed, consistent replacement of IP addresses for redaction.

Replacements keep what a diagnosis needs and nothing else:
- the same address always gets the same replacement (for one key);
- the address class survives: private stays private (in the same RFC 1918
  block), CGNAT stays CGNAT, loopback, link-local, multicast and unique-local
  keep their prefix, public stays public;
- subnets survive: two addresses sharing an n-bit prefix still share one;
- addresses the user asked to keep (`keep`: their own public subnet, say)
  stay as they are, and no other address is replaced into them.

Within a class the remaining bits go through a prefix-preserving keyed
permutation in the spirit of Crypto-PAn: output bit i is input bit i XOR a
pseudo-random function (HMAC-SHA256) of the i input bits before it. A
replacement that lands in a kept subnet is drawn again with a tweak (like a
public address landing in a special block), so that one address loses its
shared prefixes: rare unless a kept subnet fills much of its class.

The keyed MAC replacement (`mac_replacement`) lives here too.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable

from .encapsulations import interface_id_of_mac, is_eui64_address, mac_of_interface_id

# (network, prefix bits kept). Checked in order; the first match wins.
IPV4_CLASSES = [
    (ipaddress.ip_network("10.0.0.0/8"), 8),
    (ipaddress.ip_network("172.16.0.0/12"), 12),
    (ipaddress.ip_network("192.168.0.0/16"), 16),
    (ipaddress.ip_network("100.64.0.0/10"), 10),  # carrier-grade NAT
    (ipaddress.ip_network("127.0.0.0/8"), 8),
    (ipaddress.ip_network("169.254.0.0/16"), 16),
    (ipaddress.ip_network("224.0.0.0/4"), 4),
    (ipaddress.ip_network("240.0.0.0/4"), 4),
    (ipaddress.ip_network("0.0.0.0/8"), 8),
]
IPV6_CLASSES = [
    (ipaddress.ip_network("fe80::/10"), 10),
    (ipaddress.ip_network("fc00::/7"), 7),
    (ipaddress.ip_network("ff00::/8"), 16),  # keep flags and scope of multicast
    (ipaddress.ip_network("2000::/3"), 3),
]
# Addresses that identify nobody and that protocols need verbatim.
UNCHANGED = {
    ipaddress.ip_address("0.0.0.0"),
    ipaddress.ip_address("255.255.255.255"),
    ipaddress.ip_address("127.0.0.1"),
    ipaddress.ip_address("::"),
    ipaddress.ip_address("::1"),
}


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_identifying(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address not in UNCHANGED


def parse_keep(addresses: Iterable[str | Network]) -> list[Network]:
    """Addresses ("198.51.100.7") and subnets ("198.51.100.0/24", "2001:db8::/32") to keep."""
    networks = []
    for item in addresses:
        if isinstance(item, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            networks.append(item)
            continue
        try:
            if not isinstance(item, str):
                raise TypeError
            # Host bits may be set ("198.51.100.7/24" keeps that /24).
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except (TypeError, ValueError):
            raise ValueError(f"keep address {item!r}: not an address or subnet") from None
    return networks


def mac_replacement(key: bytes, mac: bytes, keep_oui: bool = False) -> bytes:
    """The keyed replacement of a 6-byte MAC (`key` is the caller's derived key).

    Group addresses (broadcast, multicast) and the null MAC name no machine and
    stay. Otherwise the unicast and locally-administered bits are kept, or with
    `keep_oui` the whole vendor prefix (first 3 bytes), so "which phone
    vendor" stays readable while the device is not."""
    if mac[0] & 1 or mac == bytes(6):
        return mac
    if keep_oui:
        # Its own digest: the device part must not match the one an export
        # without keep_oui gives the same MAC (that would tell its vendor).
        digest = hmac.new(key, b"oui\0" + mac, hashlib.sha256).digest()
        found = mac[:3] + digest[:3]
        return found if found != mac else mac[:3] + bytes(b ^ 0xFF for b in found[3:])
    digest = hmac.new(key, mac, hashlib.sha256).digest()
    return bytes([(digest[0] & 0xFC) | (mac[0] & 0x03)]) + digest[1:6]


class AddressMap:
    def __init__(self, key: str | None = None, keep: Iterable[str | Network] = ()) -> None:
        # Without a passphrase every run gets a fresh random key, so two
        # exports cannot be correlated with each other.
        secret = key.encode("utf-8") if key is not None else os.urandom(32)
        self._key = hashlib.sha256(b"sipdiag-redaction\0" + secret).digest()
        self.mapping: dict[str, str] = {}  # original text -> replacement text (kept addresses are not listed)
        self._cache: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
        self._kept: list[Network] = []
        self.keep(keep)
        # Set by the packet rewriter, which owns the MAC map: an IPv6 address
        # SLAAC made from a MAC (EUI-64) takes the interface id of that MAC's
        # replacement, in headers and in text alike, so the MAC cannot be read
        # back from it and the address still names the same machine.
        self.interface_mac: Callable[[bytes], bytes] | None = None
        self._packed: list[tuple[bytes, bytes]] = []  # replaced_packed(), rebuilt when the map grows

    def keep(self, addresses: Iterable[str | Network]) -> None:
        """Leave these addresses and subnets unchanged; before the first replacement
        (an earlier replacement could already sit in a newly kept subnet)."""
        new = [network for network in parse_keep(addresses) if network not in self._kept]
        if new and self._cache:
            raise ValueError("addresses to keep must be given before the first replacement")
        self._kept += new

    def is_kept(self, address) -> bool:
        return any(address in network for network in self._kept)

    def replace(self, address):
        """The replacement of an ipaddress object (same version)."""
        found = self._cache.get(address)
        if found is None:
            found = self._compute(address)
            if self.interface_mac is not None and found != address and is_eui64_address(address.packed):
                mac = self.interface_mac(mac_of_interface_id(address.packed[8:]))
                found = ipaddress.IPv6Address(found.packed[:8] + interface_id_of_mac(mac))
            self._cache[address] = found
            if found != address:
                self.mapping[str(address)] = str(found)
        return found

    def replaced_packed(self) -> list[tuple[bytes, bytes]]:
        """(original, replacement) bytes of every address replaced so far, IPv6 first
        (an IPv4-mapped address holds its IPv4 one)."""
        if len(self._packed) != len(self.mapping):
            pairs = [(ipaddress.ip_address(a).packed, ipaddress.ip_address(b).packed) for a, b in self.mapping.items()]
            self._packed = sorted(pairs, key=lambda pair: -len(pair[0]))
        return self._packed

    def replace_packed(self, packed: bytes) -> bytes:
        return self.replace(ipaddress.ip_address(packed)).packed

    def replace_text(self, text: str) -> str:
        return str(self.replace(ipaddress.ip_address(text)))

    def _compute(self, address):
        if not is_identifying(address) or self.is_kept(address):
            return address
        if address.version == 6 and address.ipv4_mapped is not None:
            return ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + self.replace(address.ipv4_mapped).packed)
        bits = 32 if address.version == 4 else 128
        classes = IPV4_CLASSES if address.version == 4 else IPV6_CLASSES
        prefix = next((keep for network, keep in classes if address in network), None)
        value = int(address)
        if prefix is None:  # public IPv4 (or IPv6 outside the known blocks)
            return self._public(address, value, bits)
        for tweak in range(64):
            candidate = type(address)(self._permute(value, bits, prefix, tweak))
            if not self.is_kept(candidate):
                break
        return candidate

    def _public(self, address, value: int, bits: int):
        # A public address must stay public: permute all bits, and in the rare
        # case the result lands in a special block (or a kept subnet), permute
        # again with a tweak.
        for tweak in range(64):
            candidate = type(address)(self._permute(value, bits, 0, tweak))
            if address.version == 6 or not any(candidate in net for net, _ in IPV4_CLASSES):
                if candidate not in UNCHANGED and not candidate.is_private and not self.is_kept(candidate):
                    return candidate
        return candidate

    def _permute(self, value: int, bits: int, kept: int, tweak: int = 0) -> int:
        result = value
        prefix = value >> (bits - kept) if kept else 0
        for i in range(kept, bits):
            digest = hmac.new(self._key, f"{bits}:{tweak}:{i}:{prefix}".encode(), hashlib.sha256).digest()
            bit = (value >> (bits - 1 - i)) & 1
            result ^= (digest[0] & 1) << (bits - 1 - i)
            prefix = (prefix << 1) | bit
        return result
