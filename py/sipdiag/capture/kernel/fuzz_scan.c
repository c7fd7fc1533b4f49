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

/* One walk of the input, in two chunks split where `mode` says, in the analysis or a redaction mode. */
static void run(const u8 *data, unsigned long size, u8 mode, i64 redaction_mode) {
    reset();
    redaction.mode = redaction_mode;
    redaction.keep_macs = mode >> 7;
    copy(input, data, (i64)size);
    BUFFER = input;
    i64 start = 0;
    u32 magic = be32(data);
    if (magic == 0xD4C3B2A1 || magic == 0xA1B2C3D4 || magic == 0x4D3CB2A1 || magic == 0xA1B23C4D) {
        if (size < 24) return;
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
    i64 tail = walk(start, split);
    if (tail < 0) return;
    walk(tail, (i64)size);
}

int LLVMFuzzerTestOneInput(const u8 *data, unsigned long size) {
    if (size < 5 || size > sizeof input) return 0;
    u8 mode = data[0];
    run(data + 1, size - 1, mode, REDACT_OFF);
    run(data + 1, size - 1, mode, mode & 1 ? REDACT_LEARN : REDACT_WRITE);
    return 0;
}
