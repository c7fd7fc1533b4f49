"""Keyed, consistent replacement of IP addresses for redaction.

Replacements keep what a diagnosis needs and nothing else:
- the same address always gets the same replacement (for one key);
- the address class survives: private stays private (in the same RFC 1918
  block), CGNAT stays CGNAT, loopback, link-local, multicast and unique-local
  keep their prefix, public stays public;
- subnets survive: two addresses sharing an n-bit prefix still share one.

Within a class the remaining bits go through a prefix-preserving keyed
permutation in the spirit of Crypto-PAn: output bit i is input bit i XOR a
pseudo-random function (HMAC-SHA256) of the i input bits before it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os

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


def is_identifying(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address not in UNCHANGED


class AddressMap:
    def __init__(self, key: str | None = None) -> None:
        # Without a passphrase every run gets a fresh random key, so two
        # exports cannot be correlated with each other.
        secret = key.encode("utf-8") if key is not None else os.urandom(32)
        self._key = hashlib.sha256(b"sipdiag-redaction\0" + secret).digest()
        self.mapping: dict[str, str] = {}  # original text -> replacement text
        self._cache: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}

    def replace(self, address):
        """The replacement of an ipaddress object (same version)."""
        found = self._cache.get(address)
        if found is None:
            found = self._compute(address)
            self._cache[address] = found
            if found != address:
                self.mapping[str(address)] = str(found)
        return found

    def replace_packed(self, packed: bytes) -> bytes:
        return self.replace(ipaddress.ip_address(packed)).packed

    def replace_text(self, text: str) -> str:
        return str(self.replace(ipaddress.ip_address(text)))

    def _compute(self, address):
        if not is_identifying(address):
            return address
        if address.version == 6 and address.ipv4_mapped is not None:
            return ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + self.replace(address.ipv4_mapped).packed)
        bits = 32 if address.version == 4 else 128
        classes = IPV4_CLASSES if address.version == 4 else IPV6_CLASSES
        kept = next((keep for network, keep in classes if address in network), None)
        value = int(address)
        if kept is None:  # public IPv4 (or IPv6 outside the known blocks)
            return self._public(address, value, bits)
        return type(address)(self._permute(value, bits, kept))

    def _public(self, address, value: int, bits: int):
        # A public address must stay public: permute all bits, and in the rare
        # case the result lands in a special block, permute again with a tweak.
        for tweak in range(64):
            candidate = type(address)(self._permute(value, bits, 0, tweak))
            if address.version == 6 or not any(candidate in net for net, _ in IPV4_CLASSES):
                if candidate not in UNCHANGED and not candidate.is_private:
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
