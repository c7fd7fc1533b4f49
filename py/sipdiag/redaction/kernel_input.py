"""One pass of the redactor over a capture, through the scan kernel.

The kernel's redaction mode (scan.c, "Redaction's rewriting walk") rewrites
the common RTP packet records itself, as packets.PacketRewriter would, and
hands every other record to the Python reader and rewriter in capture order.
It decides no replacement: it looks MACs and addresses up in tables copied
from the rewriter's own (`PackedAddressCache.known`, `MacMap.known`); a packet
with one the tables lack goes to Python, which allocates it in the order it
always did, and the new entries are copied in before the walk goes on.

Learning, the kernel only skips those records (the learning rewriter returns
early for RTP). Writing, the records it rewrote since the walk last stopped
come out as one piece, before the record Python handles next, so the copy
keeps the capture's order.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from itertools import islice

from ..capture.scan import Kernel, KernelFed, KernelReader

# scan.c `enum redaction_mode`, `enum table_kind`.
LEARN, WRITE = 1, 2
TABLE_IPV4, TABLE_IPV6, TABLE_MAC = 0, 1, 2
# scan.c `struct redaction`: every field 8 bytes, in this order.
REDACTION_FIELDS = ("mode", "keep_macs", "stop_frame", "out_used", "out_records", "refused")
REDACTION_STRUCT = struct.Struct("<" + "q" * len(REDACTION_FIELDS))
OUTPUT = struct.Struct("<2q")  # out_used, out_records
OUTPUT_OFFSET = 8 * REDACTION_FIELDS.index("out_used")
STOP_FRAME_OFFSET = 8 * REDACTION_FIELDS.index("stop_frame")
SCRATCH_PAIRS = 4096  # table entries copied in one call (scan.c takes up to SCRATCH_SIZE bytes)
# Tests set this False: every record then goes to Python by the same walk (the tables stay
# empty, so no packet passes the kernel's lookups), which is the rewriting the kernel must equal.
KERNEL_REWRITES = True


class RedactionInput(KernelFed):
    """The capture fed to one redaction pass (the page's kernel_reserve/commit, the CLI's readinto).

    `records(list)` gets what Python must handle: Blocks when writing, (frame,
    time, linktype, data) tuples when learning; `rewritten(data, count)` the
    kernel's output records, `count` of them. `addresses` and `macs` are the
    rewriter's tables (`macs` None when MACs are kept); `stop_frames` the
    frames Python must see whatever they hold (sorted). Without `kernel_rewrites` every
    record goes to Python (the RTP payloads a writing pass keeps go through the text rules).
    """

    def __init__(self, mode: int, records, addresses: dict, macs: dict | None, stop_frames: list[int] = (),
                 rewritten=None, kernel_rewrites: bool = True) -> None:
        self.kernel = kernel = Kernel()
        if kernel.call["redaction_size"]() != REDACTION_STRUCT.size:
            raise RuntimeError("scan.wasm's redaction block is not the one this host knows")
        self._records = records
        self._rewritten = rewritten
        self._tables = [(addresses, {4: TABLE_IPV4, 16: TABLE_IPV6}), (macs if macs is not None else {}, {6: TABLE_MAC})]
        self._copied = [0, 0]  # entries of each table copied so far
        self._kernel_rewrites = kernel_rewrites and KERNEL_REWRITES  # else the tables stay empty
        self._stop_frames = list(stop_frames)
        self._state = kernel.call["redaction_address"]()
        self._output = kernel.call["redacted_address"]()
        kernel.instance.write(self._state, REDACTION_STRUCT.pack(mode, macs is None, 0, 0, 0, 0))
        self._stop_frame = 0
        self._reader = KernelReader(kernel, self._handle, None, None, blocks=mode == WRITE,
                                    stopped=self._take_output if mode == WRITE else None)
        self.reader = self._reader.reader  # the CaptureReader: its warnings, its link types
        self._update(0)

    def set_raw(self, raw) -> None:
        """`raw(bytes)` also gets the file's bytes as they come (the verification's collector)."""
        self._reader.raw = raw

    def close(self) -> None:
        """End of input: the reader's closing warnings (raises CaptureError for a non-capture)."""
        self._reader.close()

    def _handle(self, records: list) -> None:
        self._records(records)
        self._update(self.reader.packets)

    def _update(self, frame: int) -> None:
        """After Python handled records up to `frame`: the entries it learnt, and the next frame it must see."""
        if self._kernel_rewrites:
            for index, (table, kinds) in enumerate(self._tables):
                if len(table) > self._copied[index]:
                    self._copy(islice(table.items(), self._copied[index], None), kinds)
                    self._copied[index] = len(table)
        at = bisect_right(self._stop_frames, frame)
        stop = self._stop_frames[at] if at < len(self._stop_frames) else 0
        if stop != self._stop_frame:
            self._stop_frame = stop
            self.kernel.instance.write(self._state + STOP_FRAME_OFFSET, struct.pack("<q", stop))

    def _copy(self, entries, kinds: dict) -> None:
        pending: dict[int, list[bytes]] = {kind: [] for kind in kinds.values()}
        for original, new in entries:
            kind = kinds.get(len(original))
            if kind is not None and len(new) == len(original):
                pending[kind].append(original + new)
        add, write, scratch = self.kernel.call["redaction_add"], self.kernel.instance.write, self.kernel.scratch
        for kind, pairs in pending.items():
            for start in range(0, len(pairs), SCRATCH_PAIRS):
                batch = pairs[start : start + SCRATCH_PAIRS]
                write(scratch, b"".join(batch))
                add(kind, len(batch))

    def _take_output(self) -> None:
        instance = self.kernel.instance
        used, count = OUTPUT.unpack(instance.read(self._state + OUTPUT_OFFSET, OUTPUT.size))
        if used:
            self._rewritten(instance.read(self._output, used), count)
            instance.write(self._state + OUTPUT_OFFSET, OUTPUT.pack(0, 0))
