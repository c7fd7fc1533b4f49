"""Redacting a capture for sharing, and proving nothing sensitive survived.

`CaptureRedactor` is sans-I/O like the analysis: the page feeds `File` slices,
the CLI feeds 1 MiB reads. Packets are rewritten by `packets`, text by
`text`; this module handles the capture's blocks (pcapng metadata,
output order while packets wait for the rest of a datagram or message) and
the fail-closed verification of the written output.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from collections import deque
from typing import Iterable

from ..capture.pcapfile import (
    ENHANCED_PACKET,
    INTERFACE_DESCRIPTION,
    OPT_COMMENT,
    PACKET_BLOCK_TYPES,
    SECTION_HEADER,
)
from .addressmap import AddressMap
from .identifiers import IdentifierCollector, LeakSearch
from .kernel_input import LEARN, WRITE, RedactionInput
from .packets import FrameHandling, PackedAddressCache, PacketRewriter
from .text import Pseudonyms, RedactionOptions, TextRedactor

__all__ = ["POLICIES", "CaptureRedactor", "RedactionOptions", "redact_command"]

# What happens to a frame the redactor cannot prove clean (it holds bytes no
# layer decodes, or the verification still finds an original in it):
POLICIES = {
    "scrub": "keep it, with everything past the headers the redactor understands zeroed",
    "drop": "leave it out of the copy",
    "signalling": "keep only SIP, SDP, RTP/RTCP, DNS and ICMP packets (the rest is left out), and scrub",
    "refuse": "write nothing and list the frames",
}
DEFAULT_POLICY = "scrub"
# Write-and-verify rounds: a leak found in a frame scrubs it, then blanks it whole.
MAX_ROUNDS = 3

# pcapng options that describe the capturing machine or carry free text.
SHB_PRIVATE = frozenset((OPT_COMMENT, 2, 3, 4))  # comment, hardware, OS, user application
IDB_NAME, IDB_DESCRIPTION, IDB_IPV4, IDB_IPV6, IDB_MAC = 2, 3, 4, 5, 6
IDB_PRIVATE = frozenset((OPT_COMMENT, IDB_DESCRIPTION, 7, 11, 12, 15))  # + EUI, capture filter, OS, hardware
# Custom options (RFC pcapng 3.5.1) carry anything at all.
CUSTOM_OPTIONS = frozenset((2988, 2989, 19372, 19373))
# Blocks that only carry metadata, some of it sensitive (name resolution maps
# addresses to names; decryption secrets would unlock TLS we cannot redact).
DROPPED_BLOCKS = frozenset((4, 9, 10, 0x00000BAD, 0x40000BAD))
# Blocks copied (their options cleaned): the pcap header (None), section,
# interface and statistics blocks. Anything else is metadata nobody here reads.
KNOWN_BLOCKS = frozenset((None, SECTION_HEADER, INTERFACE_DESCRIPTION, 5))
# Packets waiting behind an incomplete datagram or message before it is let go.
MAX_QUEUED_BLOCKS = 20_000
MAX_LOCATIONS = 100  # leak locations listed; the count covers them all
# What damage no layer expected raises while a packet is rewritten.
UNDECODABLE = (IndexError, ValueError, struct.error)


class CaptureRedactor:
    def __init__(self, file_name: str, key: str | None = None, options: RedactionOptions | dict | None = None,
                 policy: str = DEFAULT_POLICY) -> None:
        if not isinstance(options, RedactionOptions):
            options = RedactionOptions.from_dict(options)
        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r}: choose one of {', '.join(POLICIES)}")
        self.file_name = file_name
        self.options = options
        self.policy = policy
        # Without a passphrase a random key: two exports cannot be correlated.
        secret = key if key is not None else os.urandom(16).hex()
        self.addresses = AddressMap(secret)
        self.pseudonyms = Pseudonyms(secret.encode("utf-8"))
        self.text = TextRedactor(self.addresses, self.pseudonyms, options)
        self._secret = secret.encode("utf-8")
        self._packed = PackedAddressCache(self.addresses)
        self._learner: tuple[RedactionInput, PacketRewriter] | None = None
        # Frames a verification found leaking: scrubbed in the next round, blanked whole in the one after.
        self.scrub_frames: set[int] = set()
        self.blank_frames: set[int] = set()
        self.rounds = 0
        # The verification's own knowledge of the original, learnt while the
        # first round reads it: never from what the rewriter learnt.
        self._collector = IdentifierCollector(keep=self.addresses.is_kept)
        self._identifiers = None
        self._collector_fed = False  # by the learning pass, when there is one; else by the first round
        self.start_writing()

    def start_writing(self) -> None:
        """A fresh write pass over the whole file (the maps and values learnt so far stay)."""
        self.rounds += 1
        self.handling = FrameHandling(scrub=self.policy in ("scrub", "signalling"), scrub_frames=frozenset(self.scrub_frames))
        self.packets = PacketRewriter(self._packed, self.pseudonyms, self.text, self.options, self._secret,
                                      handling=self.handling)
        # The file read again; the kernel rewrites the common RTP packets, the rest comes to _block.
        self.writing_input = RedactionInput(
            WRITE, self._blocks, self._packed.known, self.packets.macs.known if self.options.mac_addresses else None,
            sorted(self.scrub_frames), self._rewritten, kernel_rewrites=self.options.rtp_payload)
        if self.rounds == 1 and not self._collector_fed:
            self.writing_input.set_raw(self._collector.feed)
        self.reader = self.writing_input.reader
        # [encoded bytes or None, records in it] in file order; _queued counts the records.
        self._queue: deque[list] = deque()
        self._queued = 0
        self.packets_in = 0
        self.packets_written = 0
        self.dropped: dict[int, str] = {}  # frame -> why it was left out
        self.metadata_removed = 0
        self._named_interfaces = 0

    # -- optional first pass ------------------------------------------------

    @property
    def learning_input(self) -> RedactionInput:
        """The optional first pass (`learn`), fed through the scan kernel."""
        if self._learner is None:
            rewriter = PacketRewriter(self._packed, self.pseudonyms, self.text, self.options, self._secret,
                                      learning=True)

            def learn_from(records: list) -> None:
                for _, _, linktype, packet in records:
                    try:
                        rewriter.rewrite(linktype, packet, _discard)
                    except UNDECODABLE:
                        pass  # the writing pass copies it unchanged and says so

            learning = RedactionInput(LEARN, learn_from, self._packed.known,
                                      rewriter.macs.known if self.options.mac_addresses else None)
            learning.set_raw(self._collector.feed)
            self._collector_fed = True
            self.writing_input.set_raw(None)
            self._learner = (learning, rewriter)
        return self._learner[0]

    def learn(self, data: bytes) -> None:
        """First pass over the whole file: learn every name, number and Call-ID.

        Without it a value mentioned before the SIP message that reveals it
        (an HTTP Host header before the SIP over WebSocket, a phone number in
        a binary protocol) is only caught by the verification, which then
        refuses the export. Nothing is written in this pass.
        """
        self.learning_input.feed(data)

    def finish_learning(self) -> None:
        if self._learner is not None:
            self._learner[0].close()
            self._learner[1].flush()

    # -- rewriting ------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Bytes of the file in; the copy's bytes that are ready out (`writing_input` takes them in place)."""
        self.writing_input.feed(data)
        return self.drain()

    def finish(self) -> bytes:
        self.writing_input.close()
        self.packets.flush()
        return self.drain()

    def drain(self) -> bytes:
        """The copy's bytes ready since last asked (every record before them written)."""
        if self._queued > MAX_QUEUED_BLOCKS:
            # A datagram or SIP message that never completes (capture cut,
            # lost fragment) would hold the rest of the file in memory.
            self.packets.flush()
        out = []
        while self._queue and self._queue[0][0] is not None:
            data, records = self._queue.popleft()
            out.append(data)
            self._queued -= records
        return b"".join(out)

    def _rewritten(self, data: bytes, count: int) -> None:
        """Packet records the kernel rewrote, as PacketRewriter would have: RTP (signalling,
        so no policy leaves them out), in no frame to scrub, none unread."""
        self._queue.append([data, count])
        self._queued += count
        self.packets_in += count
        self.packets_written += count

    def _blocks(self, blocks: list) -> None:
        for block in blocks:
            self._block(block)

    def _block(self, block) -> None:
        slot = [None, 1]
        if block.kind == "packet":
            self._queue.append(slot)
            self._queued += 1
            self.packets_in += 1
            options = self._packet_options(block)
            frame = block.frame

            def done(new: bytes) -> None:
                why = self._leave_out(frame)
                if why:
                    self.dropped[frame] = why
                    slot[0] = b""
                    return
                if frame in self.blank_frames:
                    new = bytes(len(new))
                if new != block.data or options is not None:
                    block.replace(data=new if new != block.data else None, options=options)
                slot[0] = block.encode()
                self.packets_written += 1

            self.packets.frame = frame
            try:
                self.packets.rewrite(block.linktype, block.data, done)
            except UNDECODABLE as error:
                # Damage no layer expected: nothing of it was read.
                self.handling.unread.setdefault(frame, f"damaged ({type(error).__name__}: {error})")
                done(bytes(len(block.data)) if self.handling.scrub else block.data)
            return
        if block.block_type in PACKET_BLOCK_TYPES:
            # A packet block too damaged to read: nothing of it can be vouched for.
            self.packets_in += 1
            self.dropped[block.frame] = "a damaged packet block"
            return
        if block.block_type in DROPPED_BLOCKS or block.block_type not in KNOWN_BLOCKS:
            # Metadata blocks, and blocks of kinds nobody here can read.
            self.metadata_removed += 1
            return
        self._queue.append(slot)
        self._queued += 1
        if block.block_type == SECTION_HEADER:
            self._strip(block, SHB_PRIVATE | CUSTOM_OPTIONS)
        elif block.block_type == INTERFACE_DESCRIPTION:
            self._interface(block)
        elif block.options:
            self._strip(block, frozenset((OPT_COMMENT,)) | CUSTOM_OPTIONS)
        slot[0] = block.encode()

    def _leave_out(self, frame: int) -> str | None:
        """Why the policy leaves this frame out of the copy, if it does."""
        if self.policy == "drop":
            if frame in self.scrub_frames:
                return "the verification found an original value in it"
            return self.handling.unread.get(frame)
        if self.policy == "signalling" and frame not in self.handling.signalling:
            return "not SIP, SDP, RTP/RTCP, DNS or ICMP"
        return None

    def _packet_options(self, block) -> list | None:
        if block.block_type != ENHANCED_PACKET or not block.options or not self.options.pcapng_metadata:
            return None
        kept = [(code, value) for code, value in block.options if code not in SHB_PRIVATE | CUSTOM_OPTIONS]
        if len(kept) == len(block.options):
            return None
        self.metadata_removed += len(block.options) - len(kept)
        return kept

    def _strip(self, block, codes: frozenset) -> None:
        if not self.options.pcapng_metadata or not block.options:
            return
        kept = [(code, value) for code, value in block.options if code not in codes]
        if len(kept) != len(block.options):
            self.metadata_removed += len(block.options) - len(kept)
            block.replace(options=kept)

    def _interface(self, block) -> None:
        if not block.options:
            return
        options = []
        for code, value in block.options:
            if (code in IDB_PRIVATE or code in CUSTOM_OPTIONS) and self.options.pcapng_metadata:
                self.metadata_removed += 1
                continue
            if code == IDB_NAME and self.options.pcapng_metadata:
                self.text.remember("interface_names", value.decode("utf-8", "replace"))
                value = f"if{self._named_interfaces}".encode()
                self._named_interfaces += 1
            elif code == IDB_IPV4 and len(value) == 8:
                value = self.addresses.replace_packed(value[:4]) + value[4:]
            elif code == IDB_IPV6 and len(value) == 17:
                value = self.addresses.replace_packed(value[:16]) + value[16:]
            elif code == IDB_MAC and len(value) == 6 and self.options.mac_addresses:
                value = self.packets.macs.replace(value)
            options.append((code, value))
        block.replace(options=options)

    def identifiers(self):
        """Every identifier of the original, by the verification's own decoding,
        less the categories the user chose to keep."""
        if self._identifiers is None:
            known = self._collector.finish()
            kept = {"users": self.options.users, "display_names": self.options.display_names,
                    "host_names": self.options.domains, "netbios_names": self.options.domains,
                    "call_ids": self.options.call_ids, "user_agents": self.options.user_agents}
            known.names = {category: values for category, values in known.names.items() if kept.get(category, True)}
            if not self.options.mac_addresses:
                known.macs = set()
            known.add_strings(self.options.redact_strings)
            self._identifiers = known
        return self._identifiers

    def patterns(self) -> list[re.Pattern]:
        """The user's regular expressions, as the verification searches bytes."""
        return [re.compile(pattern.encode("utf-8"), re.IGNORECASE) for pattern in self.options.redact_regexes]

    def mend(self, frames: set[int]) -> None:
        """After a verification found originals in these frames: the next round
        scrubs them (drops them under "drop"), and blanks whole any that a scrub
        did not clean. Call start_writing() and write the file again."""
        self.blank_frames |= frames & self.scrub_frames
        self.scrub_frames |= frames

    # -- verification ---------------------------------------------------------

    def summary(self) -> dict:
        values = {category: dict(table) for category, table in self.pseudonyms.by_category.items()
                  if category not in ("domain-label",)}
        scrubbed = {frame: why for frame, why in self.handling.unread.items()
                    if frame not in self.dropped and self.handling.scrub}
        scrubbed.update((frame, "the verification found an original value in it") for frame in self.scrub_frames
                        if frame not in self.dropped)
        scrubbed.update((frame, "still leaking once scrubbed: blanked whole") for frame in self.blank_frames
                        if frame not in self.dropped)
        return {
            "file": self.file_name,
            "policy": self.policy,
            "packets_in": self.packets_in,
            "handled": {
                "rewritten": self.packets_in - len(self.dropped) - len(scrubbed),
                "scrubbed": len(scrubbed),
                "dropped": len(self.dropped),
            },
            "frames_scrubbed": [{"frame": frame, "why": why} for frame, why in sorted(scrubbed.items())],
            "frames_dropped": [{"frame": frame, "why": why} for frame, why in sorted(self.dropped.items())],
            "rounds": self.rounds,
            "addresses_replaced": len(self.addresses.mapping),
            "mapping": dict(self.addresses.mapping),
            "replaced": {category: len(found) for category, found in sorted(self.text.originals.items())},
            "values": values,
            "metadata_removed": self.metadata_removed,
            "options": vars(self.options).copy(),
            "warnings": list(self.reader.warnings),
        }

    def verify(self, output_chunks: Iterable[bytes], evidence: bool = True) -> dict:
        """Scan the written output for anything that should have been replaced (fail closed).

        With `evidence` the same pass analyses the redacted output, and the
        summary carries its report, the HTML evidence report and the ticket
        text: the page's evidence pack, built from what is actually shared.
        """
        verification = self.start_verification(evidence)
        for chunk in output_chunks:
            verification.feed(chunk)
        return verification.finish()

    def start_verification(self, evidence: bool = True) -> Verification:
        """`verify` fed chunk by chunk: the page reads its output back from a Blob."""
        return Verification(self, evidence)


class Verification:
    """One read of the written copy: the leak scan and, for the evidence pack,
    the analysis of exactly what will be shared."""

    def __init__(self, redactor: CaptureRedactor, evidence: bool) -> None:
        self._redactor = redactor
        self._search = LeakSearch(redactor.identifiers(), redactor.patterns())
        self._analysis = None
        if evidence:
            from ..engine import CaptureAnalysis

            self._analysis = CaptureAnalysis(f"redacted-{redactor.file_name}")

    def feed(self, chunk: bytes) -> None:
        if self._analysis is not None:
            self._analysis.feed(chunk)
        self._search.feed(chunk)

    def finish(self) -> dict:
        locations = [{"frame": leak.frame, "what": leak.what} for leak in self._search.finish()]
        redactor = self._redactor
        summary = redactor.summary()
        summary.update(packets_out=self._search.packets, leaks=len(locations), leak_locations=locations[:MAX_LOCATIONS])
        if summary["packets_out"] != redactor.packets_written:
            summary["leaks"] += 1
            summary["leak_locations"].append({"frame": None, "what": "packet count changed"})
        summary["refused"] = []
        if redactor.policy == "refuse":
            summary["refused"] = [{"frame": frame, "why": why} for frame, why in sorted(redactor.handling.unread.items())]
        # Another round can mend leaks that sit in packets; anything else is refused.
        leaking = {location["frame"] for location in locations}
        summary["again"] = (redactor.policy != "refuse" and bool(leaking) and None not in leaking
                            and redactor.rounds < MAX_ROUNDS and summary["packets_out"] == redactor.packets_written)
        if summary["again"]:
            redactor.mend(leaking)
        if self._analysis is not None:
            from .evidence import evidence_html, summary_text

            report = self._analysis.finish()
            summary.update(report=report, evidence_html=evidence_html(report), summary_text=summary_text(report, summary))
        return summary


def _discard(_: bytes) -> None:
    pass


def redact_command(path: str, out_path: str, key: str | None = None, options: dict | None = None,
                   policy: str = DEFAULT_POLICY) -> tuple[int, dict]:
    """Write OUT only when the verification finds nothing: temp file beside it, verify, rename."""
    redactor = CaptureRedactor(os.path.basename(path), key, options, policy)
    directory = os.path.dirname(os.path.abspath(out_path))
    handle, temporary = tempfile.mkstemp(prefix=".redacting-", dir=directory)
    os.close(handle)
    try:
        # The file is read straight into the scan kernel's memory, 1 MiB at a time, in each pass.
        with open(path, "rb") as capture:
            while redactor.learning_input.readinto(capture):
                pass
        redactor.finish_learning()
        while True:
            with open(temporary, "wb") as output, open(path, "rb") as capture:
                while redactor.writing_input.readinto(capture):
                    output.write(redactor.drain())
                output.write(redactor.finish())
            with open(temporary, "rb") as written:
                summary = redactor.verify(iter(lambda: written.read(1 << 20), b""), evidence=False)
            if not summary["again"]:
                break
            redactor.start_writing()
        if summary["leaks"] or summary["refused"]:
            os.unlink(temporary)
            summary["output"] = None
            return 1, summary
        os.replace(temporary, out_path)
        summary["output"] = out_path
        return 0, summary
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
