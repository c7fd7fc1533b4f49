"""Value rules of the redaction, byte by byte: pseudonyms of every character
class, values replaced wherever they are spelled, the options that keep or add
values (addresses, strings, patterns, MAC vendor prefixes)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re

import pytest
from locations import FIXTURES
from sipdiag.capture.pcapfile import CaptureReader
from sipdiag.redaction.addressmap import AddressMap, mac_replacement
from sipdiag.redaction.redactor import CaptureRedactor, redact_command
from sipdiag.redaction.text import Pseudonyms, RedactionOptions, TextRedactor

LEAK_NAMES = FIXTURES / "leaks" / "leak_names.pcap"


def redactor(key: str = "k", **options) -> TextRedactor:
    return TextRedactor(AddressMap(key, options.get("keep_addresses", ())), Pseudonyms(key.encode()),
                        RedactionOptions(**options))


def sip_message(head: str, body: str = "") -> bytes:
    body_bytes = body.encode()
    return (head + f"Content-Length: {len(body_bytes)}\r\n\r\n").encode() + body_bytes


def header(message: bytes, name: bytes) -> bytes:
    return message.split(b"\r\n" + name + b": ")[1].split(b"\r\n")[0]


def body_of(message: bytes) -> bytes:
    head, _, body = message.partition(b"\r\n\r\n")
    assert int(header(head + b"\r\n", b"Content-Length")) == len(body)  # in bytes, after names changed length
    return body


# -- pseudonyms ---------------------------------------------------------------


@pytest.mark.parametrize("name, shape", [
    ("Jöhn Dœ", r"[A-Z][a-z]{3} [A-Z][a-z]"),
    ("Иван Петров", r"[A-Z][a-z]{3} [A-Z][a-z]{5}"),
    ("Zoë-Ann O'Brien", r"[A-Z][a-z]{2}-[A-Z][a-z]{2} [A-Z]'[A-Z][a-z]{4}"),
    ("王小明", r"[a-z]{3}"),  # caseless letters become lower-case ASCII
    ("Bob 🎸", r"[A-Z][a-z]{2} [a-z]"),  # a symbol tells too much (a flag, a team)
    ("٣٤٥ Ahmed", r"[0-9]{3} [A-Z][a-z]{4}"),
])
def test_every_letter_of_any_script_becomes_an_ascii_letter_of_the_same_case(name, shape):
    pseudonym = Pseudonyms(b"k").value("display_names", name)
    assert re.fullmatch(shape, pseudonym), pseudonym
    assert pseudonym.isascii() and pseudonym != name
    assert Pseudonyms(b"k").value("display_names", name) == pseudonym  # keyed: same key, same pseudonym
    assert Pseudonyms(b"other").value("display_names", name) != pseudonym


def test_digits_become_keyed_digits_and_plus_and_separators_stay():
    text = redactor()
    phone = text._user("+4930123456")
    assert re.fullmatch(r"\+[0-9]{10}", phone) and phone != "+4930123456"
    dressed = text._user("+1-212-555-0100")
    assert re.fullmatch(r"\+[0-9]-[0-9]{3}-[0-9]{3}-[0-9]{4}", dressed) and dressed[1:] != "1-212-555-0100"
    # The number is one value: spelled without "+" in an XML body it gets the same digits.
    assert text.text(b"<number>4930123456</number>") == f"<number>{phone[1:]}</number>".encode()


def test_each_element_of_a_user_list_is_replaced_like_the_user_alone():
    text = redactor()
    out = text.sip(sip_message("OPTIONS sip:alice,smith@example.com SIP/2.0\r\n"
                               "To: <sip:smith@example.com>\r\nFrom: <sip:alice;isub=1234@example.com>\r\n"))
    alice, _, smith = out.split(b" ")[1][len(b"sip:"):].split(b"@")[0].partition(b",")
    assert re.fullmatch(rb"[a-z]{5}", alice) and re.fullmatch(rb"[a-z]{5}", smith) and alice != b"alice"
    assert re.fullmatch(rb"<sip:" + smith + rb"@[a-z]+\.com>", header(out, b"To"))
    assert re.fullmatch(rb"<sip:" + alice + rb";isub=[0-9]{4}@[a-z]+\.com>", header(out, b"From"))
    assert b"1234" not in out and b"smith" not in out and b"alice" not in out


def test_undecodable_bytes_of_a_latin1_phone_are_replaced_too():
    text = redactor()
    out = text.sip(b'INVITE sip:bob@example.com SIP/2.0\r\nFrom: "J\xf6rg M\xfcller" <sip:j@example.com>\r\n'
                   b"Content-Length: 0\r\n\r\n")
    name = header(out, b"From").split(b'"')[1]
    assert re.fullmatch(rb"[A-Z][a-z]{3} [A-Z][a-z]{5}", name)


def test_same_bytes_pseudonyms_keep_the_utf8_length():
    pseudonym = Pseudonyms(b"k").value("strings", "Müller", same_bytes=True)
    assert len(pseudonym.encode()) == len("Müller".encode()) and pseudonym.isascii() and pseudonym[0].isupper()


# -- every value everywhere -------------------------------------------------------

SDP_FREESWITCH = ("v=0\r\no=FreeSWITCH 1234 5678 IN IP4 192.0.2.10\r\ns=FreeSWITCH\r\nc=IN IP4 192.0.2.10\r\n"
                  "t=0 0\r\nm=audio 16384 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")


def test_sdp_origin_username_and_session_name_get_one_pseudonym():
    text = redactor()
    out = text.sip(sip_message("INVITE sip:bob@example.com SIP/2.0\r\nUser-Agent: FreeSWITCH-mod_sofia/1.10\r\n",
                               SDP_FREESWITCH))
    body = body_of(out)
    origin = re.search(rb"o=(\S+) ", body).group(1)
    assert re.search(rb"^s=" + origin + rb"\r$", body, re.MULTILINE) and b"freeswitch" not in out.lower()
    assert b"a=rtpmap:8 PCMA/8000" in body and b"m=audio 16384 RTP/AVP 8" in body  # SDP grammar untouched


def test_user_agent_spelled_as_session_name_is_replaced():
    text = redactor()
    out = text.sip(sip_message("SIP/2.0 200 OK\r\nServer: Asterisk PBX 20.5.0\r\n", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"
                               "s=Asterisk PBX 20.5.0\r\nt=0 0\r\n"))
    assert re.search(rb"^s=" + re.escape(header(out, b"Server")) + rb"\r$", body_of(out), re.MULTILINE)
    assert b"Asterisk" not in out


def test_utf8_names_are_one_value_in_sip_and_in_any_other_payload():
    text = redactor()
    out = text.sip(sip_message('INVITE sip:bob@example.com SIP/2.0\r\nFrom: "Иван Петров" <sip:ivan@example.com>\r\n'
                               'To: Jöhn Dœ <sip:john@example.com>\r\n', 's=Иван Петров\r\n'))
    ivan = header(out, b"From").split(b'"')[1]
    john = header(out, b"To").split(b" <")[0]
    assert re.search(rb"^s=" + ivan + rb"\r$", body_of(out), re.MULTILINE)
    # The same UTF-8 bytes in a non-SIP payload (a log line over UDP) get the same replacement.
    # ("\xff" alone is no UTF-8: it survives the round trip untouched.)
    payload = "note: Иван Петров called Jöhn Dœ ÿ".encode() + b"\xff"
    assert text.text(payload) == b"note: " + ivan + b" called " + john + " ÿ".encode() + b"\xff"
    assert "Иван".encode() not in out and "Jöhn".encode() not in out


def test_users_and_names_are_found_in_free_text_but_protocol_words_are_not_sought():
    text = redactor()
    out = text.sip(sip_message('MESSAGE sip:info@example.com SIP/2.0\r\nFrom: "PCMU/8000" <sip:alice@example.com>\r\n'
                               "Allow: INVITE, INFO\r\nSubject: for Alice, from info desk\r\n",
                               "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"))
    assert b"Allow: INVITE, INFO\r\n" in out and b"a=rtpmap:0 PCMU/8000" in out  # "info" and "PCMU/8000" not sought
    subject = header(out, b"Subject")
    assert re.fullmatch(rb"for [a-z]{5}, from info desk", subject) and b"alice" not in subject.lower()


def test_header_and_sdp_attribute_names_are_grammar_not_values():
    text = redactor()
    out = text.sip(sip_message("NOTIFY sip:tool@example.com SIP/2.0\r\nFrom: <sip:floorctrl@pbx01>\r\n"
                               "Floorctrl: tool\r\nX-Tool-Version: 2\r\n", "a=tool:floorctrl\r\na=floorctrl:tool\r\n"))
    assert b"\r\nFloorctrl: " in out and b"\r\nX-Tool-Version: 2\r\n" in out  # names kept
    assert b"a=tool:" in out and b"a=floorctrl:" in out
    assert b"Floorctrl: tool\r\n" not in out and b"a=tool:floorctrl" not in out  # values replaced
    # Any other payload has no grammar: a log line "Tool: ..." is text.
    assert b"tool" not in text.text(b"Tool: hello").lower()


# -- keep_addresses ------------------------------------------------------------


def test_kept_subnets_stay_and_nothing_else_is_mapped_into_them():
    keep = ["198.51.100.0/24", "2001:db8::/32", "192.168.1.0/24"]
    addresses = AddressMap("k", keep=keep)
    for kept in ("198.51.100.7", "2001:db8:aa::20", "192.168.1.2", "::ffff:198.51.100.9"):
        assert addresses.replace_text(kept) == str(ipaddress.ip_address(kept))
    others = [f"192.168.{n}.5" for n in range(2, 250)] + [f"203.0.113.{n}" for n in range(1, 250)] + ["2400:cb00::1"]
    replaced = [ipaddress.ip_address(addresses.replace_text(a)) for a in others]
    assert all(r != ipaddress.ip_address(a) for r, a in zip(replaced, others))
    assert not any(r in ipaddress.ip_network(net) for r in replaced for net in keep)
    assert set(addresses.mapping) == set(others)  # kept addresses are not listed


def test_keep_addresses_reach_the_redactor_through_the_options():
    data = LEAK_NAMES.read_bytes()
    redactor_ = CaptureRedactor("x", key="k", options={"keep_addresses": ["192.168.1.2"]})
    out = redactor_.feed(data) + redactor_.finish()
    assert b"UDP 192.168.1.2:5060" in out and bytes.fromhex("c0a80102") in out and b"192.168.1.3" not in out
    assert "192.168.1.2" not in redactor_.addresses.mapping and "192.168.1.3" in redactor_.addresses.mapping


def test_keep_must_come_before_the_first_replacement():
    addresses = AddressMap("k")
    addresses.replace_text("10.1.2.3")
    addresses.keep([])  # nothing new: fine
    with pytest.raises(ValueError, match="before the first replacement"):
        addresses.keep(["10.0.0.0/8"])


# -- redact_strings / redact_regexes -------------------------------------------


def test_redact_strings_any_case_same_length_everywhere():
    text = redactor(redact_strings=["ACME Corp", "Zürich"])
    out = text.sip(sip_message("OPTIONS sip:bob@example.com SIP/2.0\r\nX-Site: acme corp, Zürich\r\n",
                               "s=ACME CORP in ZÜRICH\r\n"))
    site = header(out, b"X-Site")
    assert len(site) == len("acme corp, Zürich".encode()) and b"acme" not in out.lower()
    assert "Zürich".encode() not in out and "ZÜRICH".encode() not in out
    assert text.text(b"ticket for ACME Corp") == b"ticket for " + text.pseudonyms.by_category["strings"]["ACME Corp"].encode()
    assert {"ACME Corp", "Zürich"} <= text.originals["strings"]  # the verification looks for them


def test_redact_regexes_replace_each_match_with_a_same_length_pseudonym():
    text = redactor(redact_regexes=[r"ACCT-[0-9]+", r"(?i)ticket #\w+"])
    out = text.text(b"ACCT-0042 and ACCT-77, Ticket #A12 \xff")
    assert re.fullmatch(rb"[A-Z]{4}-[0-9]{4} and [A-Z]{4}-[0-9]{2}, [A-Z][a-z]{5} #[A-Z][0-9]{2} \xff", out)
    assert b"0042" not in out and b"A12" not in out
    assert text.text(b"ACCT-0042") == out[:9]  # keyed: the same match, the same replacement


# -- options from JSON -----------------------------------------------------------


def test_new_options_come_from_json_with_their_defaults():
    options = RedactionOptions.from_dict(json.loads(
        '{"keep_addresses": ["198.51.100.0/24", "2001:db8::/32"], "redact_strings": ["ACME"],'
        ' "redact_regexes": ["ACCT-[0-9]+"], "keep_oui": true, "users": false}'))
    assert options.keep_addresses == ["198.51.100.0/24", "2001:db8::/32"] and options.keep_oui and not options.users
    defaults = RedactionOptions()
    assert (defaults.keep_addresses, defaults.redact_strings, defaults.redact_regexes, defaults.keep_oui) == ([], [], [], False)
    assert all(getattr(defaults, name) for name in ("users", "display_names", "domains", "call_ids", "user_agents",
                                                     "mac_addresses", "rtp_payload", "pcapng_metadata"))
    # The verifier switches every option off by name.
    everything_off = RedactionOptions(**{name: False for name in vars(RedactionOptions())})
    assert everything_off.keep_addresses == [] and not everything_off.users


@pytest.mark.parametrize("values, message", [
    ({"keep_addresses": ["10.0.0.0/33"]}, "keep address '10.0.0.0/33': not an address or subnet"),
    ({"keep_addresses": ["x"]}, "keep address 'x': not an address or subnet"),
    ({"keep_addresses": [5]}, "option keep_addresses: 5 is not a string"),
    ({"keep_addresses": "10.0.0.0/8"}, "option keep_addresses: expected a list of strings, got '10.0.0.0/8'"),
    ({"redact_regexes": ["ACCT-(["]}, "redact regex 'ACCT-([': unterminated character set at position 6"),
    ({"redact_strings": [""]}, "redact string '': an empty string would match everywhere"),
    ({"redact_strings": ["a", 7]}, "option redact_strings: 7 is not a string"),
    ({"users": "false"}, "option users: 'false' is not true or false"),
    ({"keep_oui": 1}, "option keep_oui: 1 is not true or false"),
    ({"keep_addres": []}, "unknown redaction options: keep_addres"),
    (["users"], "redaction options must be an object of names, got ['users']"),
])
def test_bad_option_values_are_refused_in_one_line(values, message):
    with pytest.raises(ValueError) as refused:
        RedactionOptions.from_dict(values)
    assert str(refused.value) == message and "\n" not in message


# -- keep_oui --------------------------------------------------------------------


def test_mac_replacement_keeps_the_vendor_prefix_only_when_asked():
    key = hashlib.sha256(b"sipdiag-mac\0k").digest()
    mac = bytes.fromhex("001b21aa0102")
    plain, vendor = mac_replacement(key, mac), mac_replacement(key, mac, keep_oui=True)
    assert vendor[:3] == mac[:3] and vendor != mac and vendor == mac_replacement(key, mac, True)
    assert plain[:3] != mac[:3] and plain[0] & 3 == mac[0] & 3 and plain != mac
    assert vendor[3:] != plain[3:]  # two exports with one key must not link a hidden vendor to a kept one
    for group in ("ffffffffffff", "01005e000001", "333300000002", "000000000000"):
        assert mac_replacement(key, bytes.fromhex(group), keep_oui=True) == bytes.fromhex(group)


# -- the leak fixture, end to end -------------------------------------------------------


def test_no_planted_name_survives_in_leak_names(tmp_path):
    out = tmp_path / "out.pcap"
    code, summary = redact_command(str(LEAK_NAMES), str(out), key="k")
    assert code == 0, summary["leak_locations"]
    written = out.read_bytes()
    planted = json.loads((FIXTURES / "leaks" / "identifiers.json").read_text())["leak_names.pcap"]["identifiers"]
    for identifier in planted:
        assert identifier["value"].encode() not in written, identifier
        for form in identifier["forms"]:
            spelled = form["text"].encode() if "text" in form else bytes.fromhex(form["hex"])
            assert spelled not in written, (identifier["value"], form["form"])
    for word in ("FreeSWITCH", "Asterisk", "mod_sofia", "smith", "Иван", "Петров", "Jöhn", "Dœ",
                 "4930123456", "4930987654"):
        assert word.encode().lower() not in written.lower(), word
    assert len(CaptureReader().feed(written)) == 2


def test_the_verifier_sees_a_surviving_non_ascii_name():
    data = LEAK_NAMES.read_bytes()
    redactor_ = CaptureRedactor("x", key="k")
    redactor_.feed(data)
    redactor_.finish()
    summary = redactor_.verify([data], evidence=False)  # the original itself, as if nothing had been replaced
    assert {"frame": 1, "what": "display name 'Иван Петров'"} in summary["leak_locations"]


def test_host_names_in_fixed_length_fields_keep_their_bytes_and_are_found_in_text():
    text = redactor()
    raw = "jöhns-laptop".encode()
    replaced = text.host_name_bytes(raw)
    assert len(replaced) == len(raw) and replaced.isascii() and replaced != raw
    assert text.text(b"dhcp lease for " + raw) == b"dhcp lease for " + replaced
    assert text.host_name("PBX-1") == text.host_name("PBX-1") and len(text.host_name("PBX-1")) == 5
