"""Host side of the scan kernel (`capture/kernel/scan.c`, compiled to kernel/scan.wasm).

The kernel walks the capture's records in its own memory, decodes the common
path and keeps the RTP/RTCP accounting; every other record comes back here in
capture order, is handled by the Python reader and decoder, and the walk
resumes. The same .wasm runs under PyPI `wasmtime` (CLI, tests) and in the
page, where the worker instantiates it and hands its exports to Pyodide
(`js.sipdiagKernel()`), so both give the same report.

`Kernel` is one instance: its memory, its `io` block and calls. `KernelReader`
is the walk: the buffer the host fills (`reserve`/`commit`, or `feed` for
bytes), the hand-over of records to Python, and the reader's warnings.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from .pcapfile import CaptureReader, Interface

KERNEL_WASM = Path(__file__).with_name("kernel") / "scan.wasm"
WASM_PAGE = 65536

# scan.c `enum status`, `enum format`, `enum full`.
NEED_MORE, PACKET, BLOCK, DAMAGED, RAISED, WATCHED, OUTPUT_FULL, LEAK_FULL = 1, 2, 3, 4, 5, 6, 7, 8
FORMAT_PCAP, FORMAT_PCAPNG = 1, 2
FULL_TABLES = {1: "RTP streams", 2: "RFC 4733 events", 4: "RTCP flows", 8: "SDP media addresses"}
MAX_INTERFACES = 4096  # scan.c MAX_INTERFACES: packets of later interfaces come back to Python
# Bytes given as `bytes` are placed in the kernel at most this much at a time (the worker's slice size).
MAX_FEED = 4 * 1024 * 1024
# What the CLI reads into the kernel at a time.
READ_CHUNK = 1024 * 1024

# scan.c `struct io`: every field 8 bytes, in this order ("d" a double, "q" an integer).
IO_FIELDS = (
    ("format", "q"), ("big_endian", "q"), ("pcap_linktype", "q"), ("pcap_scale", "d"), ("n_interfaces", "q"),
    ("status", "q"), ("pos", "q"), ("length", "q"), ("frame", "q"), ("linktype", "q"), ("data", "q"),
    ("caplen", "q"), ("time", "d"), ("yielded", "q"), ("first_time", "d"), ("last_time", "d"),
    ("cut_packets", "q"), ("cut_example", "q"), ("out_of_range", "q"), ("range_frame", "q"),
    ("range_time", "d"), ("range_scale", "d"), ("range_offset", "d"), ("raised", "q"), ("raised_entry", "q"),
    ("full", "q"), ("n_streams", "q"), ("n_events", "q"), ("n_rtcp", "q"),
    ("watched", "q"), ("watched_stream", "q"), ("rtp_address", "q"), ("rtp_length", "q"),
)
IO_INDEX = {name: index for index, (name, _) in enumerate(IO_FIELDS)}
IO_STRUCT = struct.Struct("<" + "".join(kind for _, kind in IO_FIELDS))
# The part a returned record needs: pos .. time.
IO_RESULT = struct.Struct("<6qd")
IO_RESULT_OFFSET = 8 * IO_INDEX["pos"]
# The part a watched stream's packet needs: watched .. rtp_length.
IO_WATCHED = struct.Struct("<4q")
IO_WATCHED_OFFSET = 8 * IO_INDEX["watched"]
INTERFACE_STRUCT = struct.Struct("<qdd")

FUNCTIONS = (
    "io_address", "interfaces_address", "streams_address", "events_address", "rtcp_address",
    "static_rates_address", "link_types_address", "scratch_address", "buffer_address", "record_sizes",
    "move_bytes", "expect", "set_rtpmap", "forget_payload_types", "account_scratch", "watch", "scan",
    "redaction_address", "redacted_address", "redaction_size", "redaction_add",
    "leak_address", "leak_keys_address", "leak_key_bytes_address", "leak_hits_address", "leak_records_address",
    "leak_index", "collect_ports_address", "collect_macs_address", "collect_v4_address", "collect_text_address",
    "collect_clear", "collect_scratch",
)

# The redaction's verification (scan.c's last section, redaction/identifiers.py LeakSearch and
# IdentifierCollector): its status, modes, the text searches whose candidate records come back,
# why a record came back, and its tables.
LEAK_KEYS, LEAK_ALL, LEAK_COLLECT = 1, 2, 3
LEAK_V4, LEAK_V6, LEAK_MAC, LEAK_HEX = 1, 2, 4, 8
LEAK_TEXT = 1  # else the record is searched whole
COLLECT_DECODE, COLLECT_DRAIN = 1, 3
LEAK_MAX_KEYS = 32768
LEAK_KEY_BYTES = 1024 * 1024
# struct leak: mode, text, n_keys, n_hits, n_records, reason, reason_frame, n_macs, n_v4, n_text
LEAK_STATE = struct.Struct("<10q")
LEAK_COUNTS_OFFSET = 24  # n_hits, n_records
LEAK_KEY = struct.Struct("<4iI")  # struct leak_key: offset, length, folded, next, probe
LEAK_HIT = struct.Struct("<4i")  # frame, key, byte before, byte after (-1: the record's edge)
LEAK_RECORD = struct.Struct("<4i")  # frame, data, length, reason


def leak_state(mode: int, text: int, n_keys: int = 0) -> bytes:
    """A fresh struct leak: its mode, the text searches whose candidates come back, the keys indexed."""
    return LEAK_STATE.pack(mode, text, n_keys, *[0] * (LEAK_STATE.size // 8 - 3))


class _WasmtimeInstance:
    """The kernel under PyPI wasmtime; the module is compiled once per process."""

    _compiled: tuple | None = None

    def __init__(self) -> None:
        import wasmtime

        if _WasmtimeInstance._compiled is None:
            engine = wasmtime.Engine()
            _WasmtimeInstance._compiled = (engine, wasmtime.Module(engine, KERNEL_WASM.read_bytes()))
        engine, module = _WasmtimeInstance._compiled
        self._store = wasmtime.Store(engine)
        exports = wasmtime.Instance(self._store, module, []).exports(self._store)
        self.memory = exports["memory"]
        self.functions = {name: _unchecked(exports[name], self._store) for name in FUNCTIONS}
        self._locate()

    def _locate(self) -> None:
        """Where linear memory starts and how long it is: it moves, if ever, only when it grows (`grow`),
        as the kernel allocates nothing."""
        import ctypes

        self._string_at = ctypes.string_at
        self._base = ctypes.addressof(self.memory.data_ptr(self._store).contents)
        self._size = self.memory.data_len(self._store)

    def read(self, address: int, size: int) -> bytes:
        # Memory.read costs ~4 µs a call in checks and conversions; a few reads follow each
        # packet a watched stream hands back (rtp_stream.py), so this copies straight out.
        if address < 0 or size < 0 or address + size > self._size:
            raise IndexError(f"kernel memory has no bytes {address}..{address + size}")
        return self._string_at(self._base + address, size)

    def write(self, address: int, data: bytes) -> None:
        self.memory.write(self._store, data, address)

    def view(self, address: int, size: int) -> memoryview:
        """Linear memory itself, for `readinto`: the file's bytes land in the kernel without a copy."""
        return memoryview(self.memory.get_buffer_ptr(self._store, size, address)).cast("B")

    def size(self) -> int:
        return self.memory.data_len(self._store)

    def grow(self, pages: int) -> None:
        self.memory.grow(self._store, pages)
        self._locate()


def _unchecked(function, store):
    """A Python callable for one export, through wasmtime's unchecked call: `Func.__call__`
    checks and converts every value on every call (40-150 µs); this costs a few µs,
    which matters at one call per packet handed back. The kernel's signatures are
    fixed (i32 and f64 values), read once from the export's type."""
    import ctypes

    from wasmtime import _bindings as ffi

    kind = function.type(store)
    params = ["f64" if str(param) == "f64" else "i32" for param in kind.params]
    has_result = bool(kind.results)
    slots = (ffi.wasmtime_val_raw_t * max(len(params), 1))()
    cells = [slots[index] for index in range(len(slots))]
    context, func, call = store._context(), ctypes.byref(function._func), ffi.wasmtime_func_call_unchecked
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    trap_out = ctypes.byref(trap)

    def invoke(*args):
        for cell, param, value in zip(cells, params, args):
            setattr(cell, param, value)
        if call(context, func, slots, len(slots), trap_out) or trap:
            raise RuntimeError("the scan kernel trapped")  # a bug in scan.c: the fuzz test hunts these
        return cells[0].i32 if has_result else None

    return invoke


class _BrowserInstance:
    """The kernel in the page: the worker compiled scan.wasm and gives each caller a fresh instance."""

    def __init__(self) -> None:
        import js  # Pyodide's bridge to the worker's globals

        self._js = js
        exports = js.sipdiagKernel()
        self.memory = exports.memory
        self.functions = {name: getattr(exports, name) for name in FUNCTIONS}
        self._locate()

    def _locate(self) -> None:
        # One view of all of memory, made again when it grows (its old buffer is then detached):
        # each read is one subarray and one copy, where a new view cost several calls into JS.
        self._heap = self._js.Uint8Array.new(self.memory.buffer)
        self._subarray = self._heap.subarray

    def read(self, address: int, size: int) -> bytes:
        return self._subarray(address, address + size).to_bytes()

    def write(self, address: int, data: bytes) -> None:
        self._subarray(address, address + len(data)).assign(data)

    def size(self) -> int:
        return self._heap.length

    def grow(self, pages: int) -> None:
        self.memory.grow(pages)
        self._locate()


class Kernel:
    """One kernel instance (its state is one capture's)."""

    def __init__(self) -> None:
        self.instance = _BrowserInstance() if sys.platform == "emscripten" else _WasmtimeInstance()
        call = self.instance.functions
        self.call = call
        sizes = call["record_sizes"]()
        if sizes & 0x3FF != IO_STRUCT.size:
            raise RuntimeError(f"scan.wasm's io block is {sizes & 0x3FF} bytes, the host expects {IO_STRUCT.size}")
        self.io = call["io_address"]()
        self.buffer = call["buffer_address"]()
        self.scratch = call["scratch_address"]()
        self.scan = call["scan"]

    def get(self, name: str):
        index = IO_INDEX[name]
        kind = IO_FIELDS[index][1]
        return struct.unpack("<" + kind, self.instance.read(self.io + 8 * index, 8))[0]

    def set(self, name: str, value) -> None:
        index = IO_INDEX[name]
        self.instance.write(self.io + 8 * index, struct.pack("<" + IO_FIELDS[index][1], value))

    def state(self) -> dict:
        values = IO_STRUCT.unpack(self.instance.read(self.io, IO_STRUCT.size))
        return {name: value for (name, _), value in zip(IO_FIELDS, values)}

    def result(self) -> tuple:
        """(pos, length, frame, linktype, data, caplen, time) of the record the walk stopped at."""
        return IO_RESULT.unpack(self.instance.read(self.io + IO_RESULT_OFFSET, IO_RESULT.size))

    def watched(self) -> tuple:
        """(watch number, stream index, RTP address, RTP length) of the packet just accounted:
        the number is 0 unless the packet was a watched stream's (scan.c `watch`)."""
        return IO_WATCHED.unpack(self.instance.read(self.io + IO_WATCHED_OFFSET, IO_WATCHED.size))

    def ensure(self, end: int) -> None:
        """Memory for the buffer up to `end` (buffer-relative)."""
        missing = self.buffer + end - self.instance.size()
        if missing > 0:
            self.instance.grow(-(-missing // WASM_PAGE))

    def keep_unwalked(self, start: int, end: int, more: int) -> int:
        """Room for `more` bytes after the unwalked ones, buffer[start:end], which move to the
        buffer's front (a walk stops inside a record at a chunk's end): returns how many were kept."""
        kept = end - start
        if start:
            self.call["move_bytes"](start, 0, kept)
        self.ensure(kept + more)
        return kept

    def tables_full(self) -> list[str]:
        full = self.get("full")
        return [name for bit, name in FULL_TABLES.items() if full & bit]


class KernelFed:
    """Input through a KernelReader (`self._reader`), for the analysis and the
    RTP stream measurement alike: the worker reserves kernel memory, writes a
    File slice there and commits it; the CLI reads a file straight in; tests
    and the redaction's verification feed bytes."""

    _reader: KernelReader

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)

    def reserve(self, size: int) -> int:
        """The address in kernel memory where the next `size` bytes of the file go (then `commit`)."""
        return self._reader.reserve(size)

    def commit(self, size: int) -> None:
        self._reader.commit(size)

    def readinto(self, file, size: int = READ_CHUNK) -> int:
        """Up to `size` bytes of an open file, read straight into the kernel; 0 at its end."""
        return self._reader.readinto(file, size)

    @property
    def kernel_memory(self):
        """The kernel's linear memory as its host knows it (in the page, the WebAssembly.Memory
        the worker writes file slices into, at the address `reserve` gave)."""
        return self._reader.kernel.instance.memory


class KernelReader:
    """A capture's bytes in, records walked by the kernel; what it hands back goes to Python.

    `packets(records)` receives the (frame, time, linktype, data) records the
    kernel does not account itself, in capture order; `undecodable(frame,
    error)` a packet whose accounting raised (what RtpTracker.account used to
    raise, `raised()` builds the exception); `watched(frame, time)` a packet the
    kernel accounted for a stream the host watches (RtpTracker.watch: only
    rtp_stream's re-read watches any). The Python CaptureReader keeps
    every judgement about the file: headers, pcapng blocks other than
    packets, damage, and the warnings' wording.
    """

    def __init__(self, kernel: Kernel, packets, undecodable, raised, watched=None, offsets: bool = False,
                 blocks: bool = False, stopped=None) -> None:
        self.kernel = kernel
        # blocks: the Python reader gives `packets` Block objects (redaction), headers included.
        self.reader = CaptureReader(offsets=offsets, blocks=blocks)
        # offsets: for the records of each `packets` call, where each one's bytes start in the file.
        self.record_offsets: list[int] | None = [] if offsets else None
        self._packets = packets
        self._undecodable = undecodable
        self._raised = raised
        self._watched = watched
        # stopped(): each time the walk stops, before the record it stopped at is handled
        # (the redaction takes the records the kernel rewrote so far, to keep their place).
        self._on_stop = stopped
        # The file's bytes as they come (gzip-compressed or not), for whoever also reads them raw.
        self.raw = None
        self._start = 0  # the unwalked bytes are buffer[_start:_end]
        self._end = 0
        self._plain = False  # known not gzip: bytes are walked where the host put them
        self._interfaces = 0  # interfaces written to the kernel's table

    # -- filling the buffer ---------------------------------------------------

    def reserve(self, size: int) -> int:
        """Address in kernel memory where the next `size` bytes of the file go."""
        self._end = self.kernel.keep_unwalked(self._start, self._end, size)
        self._start = 0
        return self.kernel.buffer + self._end

    def commit(self, size: int) -> None:
        """`size` bytes were written at the address `reserve` gave."""
        reader = self.reader
        if self.raw is not None:
            self.raw(self.kernel.instance.read(self.kernel.buffer + self._end, size))
        if self._plain:
            reader.bytes_read += size
            if not reader._stopped:
                self._end += size
                self._walk()
            return
        written = self.kernel.instance.read(self.kernel.buffer + self._end, size)
        data = reader.unpacked(written)
        if reader.compressed is False and reader._start is None:
            self._plain = True
        if reader._stopped or not data:
            return
        self.kernel.ensure(self._end + len(data))
        self.kernel.instance.write(self.kernel.buffer + self._end, data)
        self._end += len(data)
        self._walk()

    def feed(self, data: bytes) -> None:
        for start in range(0, len(data), MAX_FEED):
            piece = data[start : start + MAX_FEED]
            self.kernel.instance.write(self.reserve(len(piece)), piece)
            self.commit(len(piece))

    def readinto(self, file, size: int) -> int:
        """Read up to `size` bytes of `file` straight into kernel memory (CPython); 0 at its end."""
        address = self.reserve(size)
        count = file.readinto(self.kernel.instance.view(address, size))
        if count:
            self.commit(count)
        return count or 0

    # -- the walk --------------------------------------------------------------

    def _walk(self) -> None:
        reader, kernel = self.reader, self.kernel
        if not self._configured():
            return
        scan, result = kernel.scan, kernel.result
        while self._start < self._end:
            status = scan(self._start, self._end)
            pos, length, frame, linktype, data, caplen, time = result()
            if self._on_stop is not None:
                self._on_stop()
            if status == NEED_MORE:
                self._start = pos
                return
            if status == OUTPUT_FULL:  # the redaction's output area was emptied (stopped): on from this record
                self._start = pos
            elif status == PACKET:
                self._start = pos
                if self.record_offsets is not None:
                    self.record_offsets = [self._file_offset(data)]
                self._packets([(frame, time, linktype, kernel.instance.read(kernel.buffer + data, caplen))])
            elif status == RAISED:
                self._start = pos
                self._undecodable(frame, self._raised())
            elif status == WATCHED:
                self._start = pos
                self._watched(frame, time)
            else:  # BLOCK, DAMAGED: the Python reader's to read and to word
                self._python_reads(pos, length if status == BLOCK else 16)
                if reader._stopped:
                    self._start = self._end
                    return
                self._start = pos + length

    def _configured(self) -> bool:
        """Format and (pcap) file header read by the Python reader; False while too few bytes came."""
        reader, kernel = self.reader, self.kernel
        if reader.format is None:
            if self._end - self._start < 4:
                return False
            reader._detect(kernel.instance.read(kernel.buffer + self._start, 4))  # raises CaptureError
            kernel.set("format", FORMAT_PCAP if reader.format == "pcap" else FORMAT_PCAPNG)
        if reader.format == "pcap" and not reader._header_read:
            if self._end - self._start < 24:
                return False
            header, _used = reader._read_pcap(kernel.instance.read(kernel.buffer + self._start, 24))
            self._start += 24
            if header:  # a Block, for the redaction's copy
                self._packets(header)
            kernel.set("big_endian", reader._endian == ">")
            kernel.set("pcap_linktype", reader._pcap_linktype)
            kernel.set("pcap_scale", reader._pcap_scale)
        return True

    def _python_reads(self, pos: int, length: int) -> None:
        """The Python reader reads buffer[pos:pos+length] (one pcapng block, or a pcap
        record header), numbering packets on from the kernel's count, its warnings
        naming the byte offsets it always named."""
        reader, kernel = self.reader, self.kernel
        piece = kernel.instance.read(kernel.buffer + pos, length)
        reader.packets = kernel.get("frame")
        # The offset the reader's messages give: bytes fed so far less what is still in the buffer.
        real_bytes_read = reader.bytes_read
        reader.bytes_read = real_bytes_read - self._end + pos + length
        if reader.record_offsets is not None:
            reader.record_offsets = []
        records, _used = reader._read_pcap(piece) if reader.format == "pcap" else reader._read_pcapng(piece)
        reader.bytes_read = real_bytes_read
        if reader.record_offsets is not None:  # the reader counts from the piece's start
            self.record_offsets = [self._file_offset(pos) + offset for offset in reader.record_offsets]
        kernel.set("frame", reader.packets)
        kernel.set("big_endian", reader._endian == ">")
        self._sync_interfaces()
        if records and not reader.blocks:  # the analysis's times (Blocks are the redaction's, which needs none)
            if not kernel.get("yielded"):
                kernel.set("first_time", records[0][1])
            kernel.set("yielded", kernel.get("yielded") + len(records))
            kernel.set("last_time", records[-1][1])
        if records:
            self._packets(records)

    def _file_offset(self, position: int) -> int:
        """Where a byte at this buffer position is in the (plain) file: bytes fed less those after it."""
        return self.reader.bytes_read - self._end + position

    def _sync_interfaces(self) -> None:
        interfaces = self.reader._interfaces
        if len(interfaces) < self._interfaces:  # a new section starts its own numbering
            self._interfaces = 0
        table = self.kernel.call["interfaces_address"]()
        for index in range(self._interfaces, min(len(interfaces), MAX_INTERFACES)):
            interface = interfaces[index]
            self.kernel.instance.write(table + index * INTERFACE_STRUCT.size,
                                       INTERFACE_STRUCT.pack(interface.linktype, interface.scale, interface.offset))
        self._interfaces = min(len(interfaces), MAX_INTERFACES)
        self.kernel.set("n_interfaces", self._interfaces)

    # -- the end ------------------------------------------------------------------

    def close(self) -> dict:
        """End of input: the reader's closing warnings over the kernel's counts (raises
        CaptureError for an empty file or a non-capture). Returns the kernel's state."""
        reader, kernel = self.reader, self.kernel
        state = kernel.state()
        if not reader._stopped and self._end > self._start:
            reader._pending = kernel.instance.read(kernel.buffer + self._start, self._end - self._start)
        reader.packets = state["frame"]
        if state["cut_packets"]:
            example = state["cut_example"]
            reader._cut_example = min(reader._cut_example, example) if reader._cut_example else example
            reader._cut_packets += state["cut_packets"]
        if state["out_of_range"]:
            example = (state["range_frame"], state["range_time"],
                       Interface(0, state["range_scale"], state["range_offset"]))
            if reader._out_of_range_example is None or example[0] < reader._out_of_range_example[0]:
                reader._out_of_range_example = example
            reader._out_of_range += state["out_of_range"]
        seen = kernel.instance.read(kernel.call["link_types_address"](), 8192)
        reader.link_types.update(index * 8 + bit for index, byte in enumerate(seen) if byte
                                 for bit in range(8) if byte >> bit & 1)
        reader.close()
        return state

