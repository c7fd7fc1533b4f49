import ipaddress
import itertools

import pytest
from sipdiag.redaction.addressmap import AddressMap

ip = ipaddress.ip_address


def test_same_key_same_replacement_and_different_key_different():
    assert AddressMap("k").replace_text("203.0.113.7") == AddressMap("k").replace_text("203.0.113.7")
    assert AddressMap("k").replace_text("203.0.113.7") != AddressMap("other").replace_text("203.0.113.7")
    assert AddressMap().replace_text("203.0.113.7") != AddressMap().replace_text("203.0.113.7")


@pytest.mark.parametrize(
    "address, network",
    [
        ("10.1.2.3", "10.0.0.0/8"),
        ("172.20.1.1", "172.16.0.0/12"),
        ("192.168.1.20", "192.168.0.0/16"),
        ("100.64.3.4", "100.64.0.0/10"),
        ("127.0.0.53", "127.0.0.0/8"),
        ("169.254.10.1", "169.254.0.0/16"),
        ("239.1.2.3", "224.0.0.0/4"),
        ("fe80::1:2", "fe80::/10"),
        ("fd00::abcd", "fc00::/7"),
        ("ff02::1:ff00:1", "ff02::/16"),
        ("2001:db8::5", "2000::/3"),
    ],
)
def test_class_is_kept_and_address_changes(address, network):
    replaced = AddressMap("k").replace(ip(address))
    assert replaced in ipaddress.ip_network(network) and replaced != ip(address)


def test_public_stays_public():
    amap = AddressMap("k")
    for n in range(300):
        original = ip(f"{(n % 200) + 1}.{n % 256}.{(7 * n) % 256}.{(13 * n) % 256}")
        if original.is_global:
            assert amap.replace(original).is_global, original


def test_prefixes_are_preserved_and_mapping_is_injective():
    amap = AddressMap("k")
    originals = [ip(f"192.168.{a}.{b}") for a, b in itertools.product((1, 2, 200), (1, 2, 3, 130))]
    replaced = {o: amap.replace(o) for o in originals}
    assert len(set(replaced.values())) == len(originals)
    for a, b in itertools.combinations(originals, 2):
        common = 32 - (int(a) ^ int(b)).bit_length()
        assert 32 - (int(replaced[a]) ^ int(replaced[b])).bit_length() == common


def test_non_identifying_addresses_are_kept_and_mapped_v4_follows_v4():
    amap = AddressMap("k")
    for text in ("0.0.0.0", "255.255.255.255", "127.0.0.1", "::", "::1"):
        assert amap.replace_text(text) == text
    v4 = amap.replace_text("198.51.100.9")
    assert amap.replace(ip("::ffff:198.51.100.9")).ipv4_mapped == ip(v4)
    assert amap.mapping["198.51.100.9"] == v4
