/* libFuzzer harness for scan.c, built natively with AddressSanitizer and
 * UndefinedBehaviorSanitizer (tests/test_kernel.py builds and runs it):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all fuzz_scan.c
 *
 * It plays the host's part the way capture/kernel.py does: it splits the input
 * into two chunks at a point the input chooses, keeps the unwalked tail of
 * the first, reads section headers and interface blocks for the kernel, hands
 * returned packets back through account_scratch, announces endpoints and
 * rtpmaps taken from them and watches streams they name (their packets then
 * come back as WATCHED), so every table and path of the kernel is reached.
 * Each input is then walked again in the redaction mode (learning or writing,
 * as the input chooses), the host filling the replacement tables from the
 * records handed to it, as redaction/kernel_input.py does from what Python learnt.
 * Then it walks the same input once more as the leak search (leak.mode), with
 * keys of 1 to 8 bytes cut from the input itself, raw and folded, and checks
 * every hit and record the kernel hands back lies inside the input; or, as
 * the mode byte says, as the identifier collector (LEAK_COLLECT), taking the
 * records it hands back through collect_scratch as the host does.
 * A walk that does not move forward is a hang: it traps.
 */

#include "scan.c"

static u8 input[2 * SCRATCH_SIZE];

static void reset(void) {
    clear(&io, sizeof io);
    clear(stream_slots, sizeof stream_slots);
    clear(endpoint_slots, sizeof endpoint_slots);
    clear(rtcp_slots, sizeof rtcp_slots);
    clear(link_types_seen, sizeof link_types_seen);
    clear(&leak, sizeof leak);
    n_endpoints = 0;
    n_watched = 0;
    unconfirmed_limit = FIRST_UNCONFIRMED_LIMIT;
    for (int pt = 0; pt < FIRST_DYNAMIC_PT; pt++) static_rates[pt] = pt == 10 || pt == 11 ? 44100.0 : 8000.0;
    clear(&redaction, sizeof redaction);
    for (int kind = TABLE_IPV4; kind <= TABLE_MAC; kind++) {
        if (tables[kind].count) clear(tables[kind].used, tables[kind].slots);
        tables[kind].count = 0;
    }
}

/* What Python learns from a record it rewrote, in brief: the MACs and the addresses where a
 * plain or VLAN-tagged Ethernet frame has them, each replaced by itself XOR a byte of the input. */
static void learn_record(const u8 *b, i64 pos, i64 length, u8 mask) {
    i64 header = io.format == FORMAT_PCAP ? 16 : 28;
    if (length < header) return;
    const u8 *d = b + pos + header;
    i64 n = length - header;
    static const int at[][3] = {{TABLE_MAC, 0, 6}, {TABLE_MAC, 6, 6}, {TABLE_IPV4, 26, 4}, {TABLE_IPV4, 30, 4},
                                {TABLE_IPV4, 34, 4}, {TABLE_IPV6, 22, 16}, {TABLE_IPV6, 38, 16}, {TABLE_IPV6, 42, 16}};
    for (unsigned i = 0; i < sizeof at / sizeof at[0]; i++) {
        int kind = at[i][0], offset = at[i][1], width = at[i][2];
        if (offset + width > n) continue;
        for (int j = 0; j < width; j++) {
            scratch[j] = d[offset + j];
            scratch[width + j] = d[offset + j] ^ mask;
        }
        redaction_add(kind, 1);
    }
}

/* What the Python reader does with a block the kernel hands over, in brief. */
static int host_block(const u8 *b, i64 pos, i64 length) {
    if (length < 12) return 0;
    const u8 *p = b + pos;
    if (p[0] == 0x0A && p[1] == 0x0D && p[2] == 0x0D && p[3] == 0x0A) {
        io.big_endian = be32(p + 8) == 0x1A2B3C4D;
        io.n_interfaces = 0;
    } else if (rd32(p, (int)io.big_endian) == 1 && length >= 20 && io.n_interfaces < MAX_INTERFACES) {
        struct interface *in = &interfaces[io.n_interfaces++];
        in->linktype = rd16(p + 8, (int)io.big_endian);
        in->scale = (p[9] & 1) ? 1e-9 : 1e-6;
        in->offset = (p[10] & 1) ? -9e12 : 0.0;
    }
    return 1;
}

static void host_packet(void) {
    const u8 *d = BUFFER + io.data;
    i64 n = io.caplen < 64 ? io.caplen : 64;
    if (n < 40) return;
    copy(scratch, d + 26, 16);
    copy(scratch + 16, d + 10, 16);
    copy(scratch + 32, d + n - 24, 24);
    int index = expect(d[8] & 1 ? 16 : 4, (int)be16(d + 36));
    set_rtpmap(index, 96 + (d[38] & 31), d[39] & 3, d[39] >> 7, (double)d[37] * 1000.0);
    forget_payload_types();
    watch(d[8] & 1 ? 16 : 4, (int)be16(d + 34), (int)be16(d + 36), (double)be32(d + 40));
    account_scratch((double)io.frame, io.time, d[8] & 1 ? 16 : 4, (int)be16(d + 34), (int)be16(d + 36), 24);
}

/* Walk buffer[start:end]; returns where the unwalked tail starts, or -1 when the walk ended. */
static i64 walk(i64 start, i64 end) {
    while (start < end) {
        int status = scan((int)start, (int)end);
        if (status == NEED_MORE) return io.pos;
        if (status == DAMAGED) return -1;
        if (redaction.out_used < 0 || redaction.out_used > REDACT_OUTPUT_SIZE) __builtin_trap();
        if (status == OUTPUT_FULL) {
            if (!redaction.mode || !redaction.out_used || io.pos < start) __builtin_trap();
            redaction.out_used = redaction.out_records = 0;
            start = io.pos;
            continue;
        }
        if (status == BLOCK) {
            if (io.format == FORMAT_PCAPNG && !host_block(BUFFER, io.pos, io.length)) return -1;
            if (io.length < 12 || io.pos + io.length <= start) __builtin_trap();
            if (redaction.mode) {
                u32 type = io.format == FORMAT_PCAP ? 6 : rd32(BUFFER + io.pos, (int)io.big_endian);
                if (type == 6 || type == 2 || type == 3) {
                    io.frame++; /* the Python reader counts what it reads */
                    learn_record(BUFFER, io.pos, io.length, (u8)(io.frame * 37));
                    redaction.stop_frame = io.frame % 3 ? io.frame + 2 : 0;
                }
            }
            start = io.pos + io.length;
            continue;
        }
        if (redaction.mode && status != NEED_MORE) __builtin_trap(); /* redacting, the kernel hands over blocks only */
        if (io.pos <= start) __builtin_trap(); /* PACKET, RAISED and WATCHED move on */
        if (status == WATCHED && (io.watched < 1 || io.watched > n_watched || io.rtp_length < 12 ||
                                  io.watched_stream >= io.n_streams))
            __builtin_trap();
        if (status == PACKET) host_packet();
        start = io.pos;
    }
    return start;
}

/* The host's part of the leak search: hits and records checked and emptied. */
static void leak_drain(i64 size) {
    if (leak.n_hits > LEAK_MAX_HITS || leak.n_records > LEAK_MAX_RECORDS) __builtin_trap();
    for (i64 i = 0; i < leak.n_hits; i++) {
        const int *h = leak_hits[i];
        if (h[0] < 1 || h[0] > io.frame || h[1] < 0 || h[1] >= leak.n_keys || h[2] < -1 || h[2] > 255 ||
            h[3] < -1 || h[3] > 255)
            __builtin_trap();
    }
    for (i64 i = 0; i < leak.n_records; i++) {
        const int *r = leak_records[i];
        if (r[1] < 0 || r[2] < 0 || r[1] + (i64)r[2] > size || (r[3] != LEAK_TEXT && r[3] != LEAK_WHOLE))
            __builtin_trap();
    }
    leak.n_hits = leak.n_records = 0;
}

/* The leak search over buffer[start:size] in two chunks; blocks are skipped as the host would read them. */
static void leak_walk(i64 start, i64 split, i64 size) {
    for (i64 end = split; end <= size; end = end == size ? size + 1 : size) {
        while (start < end) {
            int status = scan((int)start, (int)end);
            leak_drain(size);
            if (status == NEED_MORE) {
                if (io.pos < start) __builtin_trap();
                start = io.pos;
                break;
            }
            if (status == LEAK_FULL) {
                if (io.pos <= start) __builtin_trap();
                start = io.pos;
            } else if (status == BLOCK && io.length >= 12 && io.pos + io.length <= end) {
                const u8 *p = BUFFER + io.pos;
                if (p[0] == 0x0A && p[1] == 0x0D && p[2] == 0x0D && p[3] == 0x0A) io.big_endian = be32(p + 8) == 0x1A2B3C4D;
                start = io.pos + io.length;
            } else if (status == PACKET && leak.mode == LEAK_COLLECT) {
                if (io.pos <= start || (leak.reason != COLLECT_DECODE && leak.reason != COLLECT_DRAIN) ||
                    leak.n_macs > COLLECT_MAX_MACS || leak.n_v4 > COLLECT_MAX_V4 || leak.n_text > COLLECT_TEXT_BYTES ||
                    io.data + io.caplen > size)
                    __builtin_trap();
                if (leak.reason_frame != io.frame) __builtin_trap();
                if (leak.reason == COLLECT_DRAIN) collect_clear();
                leak.reason = 0;
                copy(scratch, BUFFER + io.data, io.caplen < 64 ? io.caplen : 64);
                if (collect_scratch((int)io.linktype, (int)io.caplen) == COLLECT_DRAIN) collect_clear();
                start = io.pos;
            } else if (status == BLOCK || status == DAMAGED) {
                return; /* the host searches the rest as raw bytes */
            } else {
                __builtin_trap(); /* the leak walk hands nothing else back */
            }
        }
    }
}

static void leak_search(const u8 *data, i64 size, i64 start, i64 split, u8 mode) {
    i64 format = io.format, big = io.big_endian;
    reset();
    io.format = format;
    io.big_endian = big;
    io.n_interfaces = MAX_INTERFACES;
    /* Keys from the input's first bytes: lengths 1..8, every other one folded. */
    int n = 0, offset = 0;
    for (i64 at = 0; n < 64 && at + 9 <= size; at += 3, n++) {
        int length = 1 + (int)(data[at] & 7);
        copy(leak_key_bytes + offset, data + at + 1, length);
        leak_keys[n].offset = offset;
        leak_keys[n].length = length;
        leak_keys[n].folded = n & 1;
        offset += length;
    }
    if (leak_index(n)) __builtin_trap();
    leak.mode = mode & 2 ? LEAK_COLLECT : mode & 1 ? LEAK_ALL : LEAK_KEYS;
    leak.text = LEAK_V4 | LEAK_V6 | LEAK_MAC | (mode & 2 ? 0 : LEAK_HEX);
    if (leak.mode == LEAK_COLLECT) {
        collect_clear();
        for (int port = 0; port < 65536 / 8; port++) collect_ports[port] = (u8)(port * 37);
    }
    leak_walk(start, split, size);
}

/* One walk of the input, in two chunks split where `mode` says, in the analysis or a redaction mode.
 * Returns where its records start (-1: a pcap shorter than its header) and sets *split_at. */
static i64 run(const u8 *data, unsigned long size, u8 mode, i64 redaction_mode, i64 *split_at) {
    reset();
    redaction.mode = redaction_mode;
    redaction.keep_macs = mode >> 7;
    copy(input, data, (i64)size);
    BUFFER = input;
    i64 start = 0;
    u32 magic = be32(data);
    if (magic == 0xD4C3B2A1 || magic == 0xA1B2C3D4 || magic == 0x4D3CB2A1 || magic == 0xA1B23C4D) {
        if (size < 24) return -1;
        io.format = FORMAT_PCAP;
        io.big_endian = magic == 0xA1B2C3D4 || magic == 0xA1B23C4D;
        io.pcap_scale = magic == 0x4D3CB2A1 || magic == 0xA1B23C4D ? 1e-9 : 1e-6;
        io.pcap_linktype = rd32(data + 20, (int)io.big_endian) & 0xFFFF;
        start = 24;
    } else {
        io.format = FORMAT_PCAPNG;
    }
    /* Two chunks, as a host reading the file in pieces gives them. */
    i64 split = start + (i64)(mode * (u64)(size - start) / 255);
    *split_at = split;
    i64 tail = walk(start, split);
    if (tail >= 0) walk(tail, (i64)size);
    return start;
}

int LLVMFuzzerTestOneInput(const u8 *data, unsigned long size) {
    if (size < 5 || size > sizeof input) return 0;
    u8 mode = data[0];
    i64 split;
    i64 start = run(data + 1, size - 1, mode, REDACT_OFF, &split);
    if (start < 0) return 0;
    run(data + 1, size - 1, mode, mode & 1 ? REDACT_LEARN : REDACT_WRITE, &split);
    leak_search(data + 1, (i64)size - 1, start, split, mode);
    return 0;
}
