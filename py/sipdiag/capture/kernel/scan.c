/* The scan kernel: the per-packet loop of the analysis, compiled once to
 * WebAssembly (scan.wasm) and run by both hosts (wasmtime in the CLI, the
 * page's worker in the browser). See docs/DESIGN.md, "The scan kernel".
 *
 * It walks pcap records and pcapng blocks in a buffer the host fills, decodes
 * the common path (Ethernet, VLAN/QinQ, SLL/SLL2, null/loopback, raw IP,
 * option-free or option-carrying IPv4 without fragments, IPv6 without
 * extension headers, UDP) and keeps RTP/RTCP accounting per stream exactly as
 * protocols/rtp.py describes it. Every other record goes back to the host in
 * capture order: it returns, the host handles it, and calls `scan` again.
 *
 * Freestanding: no libc, no allocation; every table below is fixed and lives
 * in the module's own memory. Every read is checked against the end of its
 * record, and every length is taken as hostile (64-bit arithmetic where a
 * 32-bit sum could wrap). Built with -ffp-contract=off so the double
 * arithmetic is the one Python does, in the same order.
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(#name)))
#else
#define EXPORT(name)
#endif

/* Mirrors capture/pcapfile.py MAX_RECORD: a longer record is damage. */
#define MAX_RECORD (64LL * 1024 * 1024)
#define MAX_DATE_SECONDS 8.64e12

/* Table sizes: the most the kernel keeps (the host reports a full table). */
#define MAX_STREAMS 8192
#define STREAM_SLOTS 16384 /* power of two, twice MAX_STREAMS */
#define MAX_EVENTS 65536
#define MAX_ENDPOINTS 4096
#define ENDPOINT_SLOTS 8192
#define MAX_RTCP 16384
#define RTCP_SLOTS 32768
#define MAX_INTERFACES 4096
#define MAX_WATCHED 256
#define SCRATCH_SIZE (1024 * 1024)

/* protocols/rtp.py's constants (RFC 3550 A.1, RFC 4733). */
#define MAX_DROPOUT 3000
#define MAX_MISORDER 100
#define SEQ_MOD 65536
#define FIRST_DYNAMIC_PT 96
#define RECENT_EVENTS 4
#define MAX_EVENTS_PER_STREAM 1000
#define DEFAULT_EVENT_RATE 8000.0
#define FIRST_UNCONFIRMED_LIMIT 4096

enum status { NEED_MORE = 1, PACKET = 2, BLOCK = 3, DAMAGED = 4, RAISED = 5, WATCHED = 6, OUTPUT_FULL = 7, LEAK_FULL = 8 };
enum format { FORMAT_PCAP = 1, FORMAT_PCAPNG = 2 };
/* What Python would have raised in RtpTracker.account (the host re-raises it). */
enum rate_kind { RATE_NONE = 0, RATE_VALUE = 1, RATE_BAD_TEXT = 2, RATE_TOO_LARGE = 3 };
enum raised { RAISED_BAD_TEXT = 1, RAISED_TOO_LARGE = 2, RAISED_ZERO_RATE = 3 };
enum full { FULL_STREAMS = 1, FULL_EVENTS = 2, FULL_RTCP = 4, FULL_ENDPOINTS = 8 };

/* The host reads and writes this block; every field is 8 bytes (its layout is
 * capture/scan.py's IO_FIELDS, in this order). */
struct io {
    i64 format, big_endian, pcap_linktype;
    double pcap_scale;
    i64 n_interfaces;
    i64 status, pos, length, frame, linktype, data, caplen;
    double time;
    i64 yielded;
    double first_time, last_time;
    i64 cut_packets, cut_example, out_of_range, range_frame;
    double range_time, range_scale, range_offset;
    i64 raised, raised_entry, full, n_streams, n_events, n_rtcp;
    /* The packet of a watched stream just accounted: the watch's number (1-based, 0: none),
     * the stream's index, where its RTP header starts in memory and how long it is. */
    i64 watched, watched_stream, rtp_address, rtp_length;
};

struct interface {
    i64 linktype;
    double scale, offset;
};

/* One (flow, SSRC): protocols/rtp.py _StreamState (layout: rtp.py STREAM_FIELDS). */
struct stream {
    i64 first_frame, last_frame, packets, marker_packets, ssrc, base_seq, max_seq, cycles, expected_before,
        bad_seq, last_seq, last_ts, last_pt, confirmed, has_rate, events, rate_kind, n_events, dtmf_events,
        jitter_samples, sport, dport, alen, n_pts, watched;
    double first_time, last_time, max_gap_ms, jitter, jitter_sum, max_jitter, last_rate;
    u8 src[16], dst[16];
    int recent[RECENT_EVENTS]; /* pool indices of the stream's latest events, oldest first */
    u32 pt_counts[128];
    u8 pt_order[128]; /* payload types in order of first appearance */
};

/* One RFC 4733 event (layout: rtp.py EVENT_RECORD). */
struct event {
    i64 stream, code, volume, duration, timestamp, first_frame, ended;
    double clock_rate, first_time;
};

struct rtpmap_entry {
    i64 owner, present, kind, events; /* owner: the endpoint's index */
    double rate;
};

/* An (address, port) an SDP announced, with its dynamic payload types. */
struct endpoint {
    i64 alen, port;
    u8 addr[16];
    struct rtpmap_entry map[128 - FIRST_DYNAMIC_PT];
};

struct rtcp {
    i64 alen, sport, dport, count;
    u8 src[16], dst[16];
};

static struct io io;
static struct interface interfaces[MAX_INTERFACES];
static struct stream streams[MAX_STREAMS];
static int stream_slots[STREAM_SLOTS]; /* index + 1; 0 is empty */
static struct event events[MAX_EVENTS];
static struct endpoint endpoints[MAX_ENDPOINTS];
static int endpoint_slots[ENDPOINT_SLOTS];
static i64 n_endpoints;
static struct rtcp rtcps[MAX_RTCP];
static int rtcp_slots[RTCP_SLOTS];
/* Streams the host asked to see packet by packet (rtp_stream.py): (flow, SSRC) keys. */
static struct stream watches[MAX_WATCHED];
static i64 n_watched;
static double static_rates[FIRST_DYNAMIC_PT]; /* 0: no static rate; the host fills it from sdp.py */
static i64 unconfirmed_limit = FIRST_UNCONFIRMED_LIMIT;
static u8 link_types_seen[65536 / 8];
static u8 scratch[SCRATCH_SIZE + 32];

/* The redaction verification's state (its section is at the end of this file); mode 0: the analysis walk. */
struct leak {
    i64 mode, text, n_keys, n_hits, n_records, reason, reason_frame, n_macs, n_v4, n_text;
};
static struct leak leak;

#ifdef __wasm__
/* The host's input buffer starts past every table (wasm-ld's __heap_base); the host grows memory under it. */
extern u8 __heap_base;
#define BUFFER ((u8 *)(((unsigned long)&__heap_base + 15) & ~15ul))
#else
/* The native build (fuzz_scan.c, libFuzzer + ASan + UBSan) points this at the input. */
static u8 *native_buffer;
#define BUFFER native_buffer
#endif

/* -- small helpers (no libc) -------------------------------------------- */

static u32 rd16(const u8 *p, int big) { return big ? (u32)p[0] << 8 | p[1] : (u32)p[1] << 8 | p[0]; }
static u32 rd32(const u8 *p, int big) {
    return big ? (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3]
               : (u32)p[3] << 24 | (u32)p[2] << 16 | (u32)p[1] << 8 | p[0];
}
static u32 be16(const u8 *p) { return (u32)p[0] << 8 | p[1]; }
static u32 be32(const u8 *p) { return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3]; }

/* Addresses are 4 or 16 bytes: compared and hashed a 32-bit word at a time. */
static u32 word(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }
static int same(const u8 *a, const u8 *b, i64 n) {
    for (i64 i = 0; i < n; i += 4)
        if (word(a + i) != word(b + i)) return 0;
    return 1;
}
static void copy(u8 *to, const u8 *from, i64 n) {
    for (i64 i = 0; i < n; i++) to[i] = from[i];
}
static void clear(void *to, i64 n) {
    u8 *p = to;
    for (i64 i = 0; i < n; i++) p[i] = 0;
}
static u32 mix_word(u32 hash, u32 value) { /* one murmur3 round */
    value *= 0xCC9E2D51u;
    value = value << 15 | value >> 17;
    hash ^= value * 0x1B873593u;
    hash = hash << 13 | hash >> 19;
    return hash * 5 + 0xE6546B64u;
}
static u32 mix(u32 hash, const u8 *p, i64 n) {
    for (i64 i = 0; i < n; i += 4) hash = mix_word(hash, word(p + i));
    return hash;
}
static u32 mix_int(u32 hash, i64 value) { return mix_word(mix_word(hash, (u32)value), (u32)(value >> 32)); }
static u32 finish_hash(u32 hash) { /* murmur3's finaliser: every bit reaches the slot bits */
    hash ^= hash >> 16;
    hash *= 0x85EBCA6Bu;
    hash ^= hash >> 13;
    hash *= 0xC2B2AE35u;
    return hash ^ hash >> 16;
}

/* -- exported addresses ---------------------------------------------------- */

EXPORT(io_address) struct io *io_address(void) { return &io; }
EXPORT(interfaces_address) struct interface *interfaces_address(void) { return interfaces; }
EXPORT(streams_address) struct stream *streams_address(void) { return streams; }
EXPORT(events_address) struct event *events_address(void) { return events; }
EXPORT(rtcp_address) struct rtcp *rtcp_address(void) { return rtcps; }
EXPORT(static_rates_address) double *static_rates_address(void) { return static_rates; }
EXPORT(link_types_address) u8 *link_types_address(void) { return link_types_seen; }
EXPORT(scratch_address) u8 *scratch_address(void) { return scratch; }
EXPORT(buffer_address) u8 *buffer_address(void) { return BUFFER; }
EXPORT(record_sizes) int record_sizes(void) {
    return (int)(sizeof(struct io) | sizeof(struct stream) << 10 | sizeof(struct event) << 21);
}

/* The host keeps a record that straddles two chunks by moving its start to the buffer's front. */
EXPORT(move_bytes) void move_bytes(int from, int to, int size) {
    u8 *b = buffer_address();
    if (from < 0 || to < 0 || size < 0) return;
    if (to < from)
        for (int i = 0; i < size; i++) b[to + i] = b[from + i];
    else
        for (int i = size - 1; i >= 0; i--) b[to + i] = b[from + i];
}

/* -- expected endpoints (SDP) ---------------------------------------------- */

static u32 endpoint_hash(i64 alen, const u8 *addr, i64 port) {
    return finish_hash(mix_int(mix(mix_int(0, alen), addr, alen), port));
}

static struct endpoint *find_endpoint(i64 alen, const u8 *addr, i64 port) {
    for (u32 slot = endpoint_hash(alen, addr, port) & (ENDPOINT_SLOTS - 1);; slot = (slot + 1) & (ENDPOINT_SLOTS - 1)) {
        int index = endpoint_slots[slot];
        if (!index) return 0;
        struct endpoint *e = &endpoints[index - 1];
        if (e->alen == alen && e->port == port && same(e->addr, addr, alen)) return e;
    }
}

/* An SDP announced media at the address in scratch[0:alen], `port`; returns its
 * index for set_rtpmap, or -1 when the table is full. */
EXPORT(expect) int expect(int alen, int port) {
    if (alen != 4 && alen != 16) return -1;
    struct endpoint *found = find_endpoint(alen, scratch, port);
    if (found) return (int)(found - endpoints);
    if (n_endpoints >= MAX_ENDPOINTS) {
        io.full |= FULL_ENDPOINTS;
        return -1;
    }
    struct endpoint *e = &endpoints[n_endpoints++];
    e->alen = alen;
    e->port = port;
    copy(e->addr, scratch, alen);
    u32 slot = endpoint_hash(alen, scratch, port) & (ENDPOINT_SLOTS - 1);
    while (endpoint_slots[slot]) slot = (slot + 1) & (ENDPOINT_SLOTS - 1);
    endpoint_slots[slot] = (int)n_endpoints;
    return (int)(e - endpoints);
}

/* What the endpoint's rtpmap says of dynamic payload type `pt` (rtp.py works out kind and rate). */
EXPORT(set_rtpmap) void set_rtpmap(int index, int pt, int kind, int is_events, double rate) {
    if (index < 0 || index >= n_endpoints || pt < FIRST_DYNAMIC_PT || pt > 127) return;
    struct rtpmap_entry *entry = &endpoints[index].map[pt - FIRST_DYNAMIC_PT];
    entry->owner = index;
    entry->present = 1;
    entry->kind = kind;
    entry->events = is_events;
    entry->rate = rate;
}

/* A payload number may mean something else now: every stream looks its rate up again. */
EXPORT(forget_payload_types) void forget_payload_types(void) {
    for (i64 i = 0; i < io.n_streams; i++) streams[i].last_pt = -1;
}

/* -- RTCP counts ---------------------------------------------------------- */

static u32 flow_hash(i64 alen, const u8 *src, const u8 *dst, i64 sport, i64 dport) {
    return mix_word(mix(mix(mix_word(0, (u32)alen), src, alen), dst, alen), (u32)(sport << 16 | dport));
}

static void count_rtcp(i64 alen, const u8 *src, const u8 *dst, i64 sport, i64 dport) {
    u32 slot = finish_hash(flow_hash(alen, src, dst, sport, dport)) & (RTCP_SLOTS - 1);
    for (;; slot = (slot + 1) & (RTCP_SLOTS - 1)) {
        int index = rtcp_slots[slot];
        if (!index) break;
        struct rtcp *r = &rtcps[index - 1];
        if (r->alen == alen && r->sport == sport && r->dport == dport && same(r->src, src, alen) &&
            same(r->dst, dst, alen)) {
            r->count++;
            return;
        }
    }
    if (io.n_rtcp >= MAX_RTCP) {
        io.full |= FULL_RTCP;
        return;
    }
    struct rtcp *r = &rtcps[io.n_rtcp++];
    r->alen = alen;
    r->sport = sport;
    r->dport = dport;
    r->count = 1;
    copy(r->src, src, alen);
    copy(r->dst, dst, alen);
    rtcp_slots[slot] = (int)io.n_rtcp;
}

/* -- RTP streams ------------------------------------------------------------- */

static u32 stream_hash(const struct stream *s) {
    return finish_hash(mix_word(flow_hash(s->alen, s->src, s->dst, s->sport, s->dport), (u32)s->ssrc));
}

static void index_streams(void) {
    clear(stream_slots, sizeof stream_slots);
    for (i64 i = 0; i < io.n_streams; i++) {
        u32 slot = stream_hash(&streams[i]) & (STREAM_SLOTS - 1);
        while (stream_slots[slot]) slot = (slot + 1) & (STREAM_SLOTS - 1);
        stream_slots[slot] = (int)(i + 1);
    }
}

static int is_expected(const struct stream *s) {
    return find_endpoint(s->alen, s->dst, s->dport) || find_endpoint(s->alen, s->src, s->sport);
}

/* rtp.py _forget_noise: random UDP that starts like RTP would grow the table
 * without end. The kept streams keep their order, and their events theirs. */
static void forget_noise(void) {
    static int moved_to[MAX_STREAMS];
    i64 kept = 0;
    for (i64 i = 0; i < io.n_streams; i++) {
        struct stream *s = &streams[i];
        if (s->confirmed || is_expected(s) || s->packets > 1) {
            moved_to[i] = (int)kept;
            if (kept != i) copy((u8 *)&streams[kept], (u8 *)s, sizeof *s);
            kept++;
        } else {
            moved_to[i] = -1;
        }
    }
    i64 kept_events = 0;
    for (i64 i = 0; i < io.n_events; i++) {
        int owner = moved_to[events[i].stream];
        if (owner < 0) continue;
        if (kept_events != i) copy((u8 *)&events[kept_events], (u8 *)&events[i], sizeof events[i]);
        events[kept_events].stream = owner;
        kept_events++;
    }
    io.n_events = kept_events;
    io.n_streams = kept;
    /* The latest events of each stream, found again in the compacted pool. */
    for (i64 i = 0; i < kept; i++)
        for (int r = 0; r < RECENT_EVENTS; r++) streams[i].recent[r] = -1;
    for (i64 i = 0; i < kept_events; i++) {
        struct stream *s = &streams[events[i].stream];
        for (int r = 0; r < RECENT_EVENTS - 1; r++) s->recent[r] = s->recent[r + 1];
        s->recent[RECENT_EVENTS - 1] = (int)i;
    }
    index_streams();
    unconfirmed_limit = 2 * kept > FIRST_UNCONFIRMED_LIMIT ? 2 * kept : FIRST_UNCONFIRMED_LIMIT;
}

static struct stream *find_stream(i64 alen, const u8 *src, const u8 *dst, i64 sport, i64 dport, i64 ssrc) {
    u32 slot = finish_hash(mix_word(flow_hash(alen, src, dst, sport, dport), (u32)ssrc)) & (STREAM_SLOTS - 1);
    for (;; slot = (slot + 1) & (STREAM_SLOTS - 1)) {
        int index = stream_slots[slot];
        if (!index) break;
        struct stream *s = &streams[index - 1];
        if (s->ssrc == ssrc && s->sport == sport && s->dport == dport && s->alen == alen &&
            same(s->src, src, alen) && same(s->dst, dst, alen))
            return s;
    }
    return 0;
}

/* The watch (1-based) that names this stream's key, or 0. */
static i64 watch_of(const struct stream *s) {
    for (i64 i = 0; i < n_watched; i++) {
        const struct stream *w = &watches[i];
        if (w->ssrc == s->ssrc && w->sport == s->sport && w->dport == s->dport && w->alen == s->alen &&
            same(w->src, s->src, s->alen) && same(w->dst, s->dst, s->alen))
            return i + 1;
    }
    return 0;
}

/* The host wants the packets of the stream from scratch[0:alen]:sport to
 * scratch[16:16+alen]:dport with this SSRC handed back as they are accounted
 * (status WATCHED). Returns the watch's number (1-based; the same for the same
 * key), or 0 when the table is full. Streams already seen are watched from now. */
EXPORT(watch) int watch(int alen, int sport, int dport, double ssrc) {
    if ((alen != 4 && alen != 16) || ssrc < 0 || ssrc > 4294967295.0) return 0;
    struct stream key;
    clear(&key, sizeof key);
    key.alen = alen;
    key.sport = sport;
    key.dport = dport;
    key.ssrc = (i64)ssrc;
    copy(key.src, scratch, alen);
    copy(key.dst, scratch + 16, alen);
    i64 number = watch_of(&key);
    if (number) return (int)number;
    if (n_watched >= MAX_WATCHED) return 0;
    copy((u8 *)&watches[n_watched++], (u8 *)&key, sizeof key);
    struct stream *s = find_stream(alen, key.src, key.dst, sport, dport, key.ssrc);
    if (s) s->watched = n_watched;
    return (int)n_watched;
}

static struct stream *new_stream(i64 frame, double time, i64 alen, const u8 *src, const u8 *dst, i64 sport,
                                 i64 dport, i64 ssrc, i64 seq) {
    if (io.n_streams >= unconfirmed_limit) forget_noise();
    if (io.n_streams >= MAX_STREAMS) {
        io.full |= FULL_STREAMS;
        return 0;
    }
    struct stream *s = &streams[io.n_streams++];
    clear(s, sizeof *s);
    s->alen = alen;
    copy(s->src, src, alen);
    copy(s->dst, dst, alen);
    s->sport = sport;
    s->dport = dport;
    s->ssrc = ssrc;
    s->first_frame = frame;
    s->first_time = time;
    s->base_seq = s->max_seq = s->last_seq = seq;
    s->bad_seq = -1;
    s->last_pt = -1;
    s->watched = watch_of(s);
    for (int r = 0; r < RECENT_EVENTS; r++) s->recent[r] = -1;
    u32 slot = stream_hash(s) & (STREAM_SLOTS - 1);
    while (stream_slots[slot]) slot = (slot + 1) & (STREAM_SLOTS - 1);
    stream_slots[slot] = (int)io.n_streams;
    return s;
}

static i64 modulo(i64 value, i64 by) { return ((value % by) + by) % by; }

/* rtp.py _update_sequence: RFC 3550 A.1 without probation. */
static void update_sequence(struct stream *s, i64 seq) {
    if (seq == modulo(s->last_seq + 1, SEQ_MOD)) s->confirmed = 1;
    s->last_seq = seq;
    i64 delta = modulo(seq - s->max_seq, SEQ_MOD);
    if (delta < MAX_DROPOUT) {
        if (seq < s->max_seq) s->cycles += SEQ_MOD;
        s->max_seq = seq;
    } else if (delta <= SEQ_MOD - MAX_MISORDER) {
        if (seq == s->bad_seq) {
            s->expected_before += s->cycles + s->max_seq - s->base_seq + 1;
            s->base_seq = seq - 1;
            s->max_seq = seq;
            s->cycles = 0;
            s->bad_seq = -1;
        } else {
            s->bad_seq = modulo(seq + 1, SEQ_MOD);
        }
    }
}

static void telephone_event(struct stream *s, i64 frame, double time, const u8 *d, i64 start, i64 end, i64 ts) {
    i64 first = d[start];
    i64 offset = start + 12 + 4 * (first & 0x0F);
    if ((first & 0x10) && offset + 4 <= end) offset += 4 + 4 * (i64)be16(d + offset + 2);
    if (offset + 4 > end) return;
    i64 code = d[offset], flags = d[offset + 1], duration = be16(d + offset + 2);
    struct event *e = 0;
    for (int r = RECENT_EVENTS - 1; r >= 0 && !e; r--)
        if (s->recent[r] >= 0 && events[s->recent[r]].timestamp == ts) e = &events[s->recent[r]];
    if (!e) {
        if (s->n_events >= MAX_EVENTS_PER_STREAM) return;
        if (io.n_events >= MAX_EVENTS) {
            io.full |= FULL_EVENTS;
            return;
        }
        e = &events[io.n_events];
        e->stream = s - streams;
        e->code = code;
        e->volume = flags & 0x3F;
        e->duration = duration;
        e->clock_rate = s->has_rate && s->last_rate != 0.0 ? s->last_rate : DEFAULT_EVENT_RATE;
        e->timestamp = ts;
        e->first_frame = frame;
        e->first_time = time;
        e->ended = 0;
        for (int r = 0; r < RECENT_EVENTS - 1; r++) s->recent[r] = s->recent[r + 1];
        s->recent[RECENT_EVENTS - 1] = (int)io.n_events;
        io.n_events++;
        s->n_events++;
    } else {
        if (duration > e->duration) e->duration = duration;
        e->volume = flags & 0x3F;
    }
    if ((flags & 0x80) && !e->ended) {
        e->ended = 1;
        s->dtmf_events++;
    }
}

static const struct rtpmap_entry *rtpmap(i64 pt, const struct stream *s) {
    /* The receiver's SDP defines the numbers; with symmetric RTP the sender's says the same. */
    const struct endpoint *e = find_endpoint(s->alen, s->dst, s->dport);
    if (e && e->map[pt - FIRST_DYNAMIC_PT].present) return &e->map[pt - FIRST_DYNAMIC_PT];
    e = find_endpoint(s->alen, s->src, s->sport);
    if (e && e->map[pt - FIRST_DYNAMIC_PT].present) return &e->map[pt - FIRST_DYNAMIC_PT];
    return 0;
}

/* rtp.py RtpTracker.account for the UDP payload d[start:end] (end may lie
 * before start: the Ethernet fast path of the old decoder allowed it).
 * Returns 0, or RAISED when Python would have raised (io.raised says what). */
static int account(i64 frame, double time, i64 alen, const u8 *src, const u8 *dst, i64 sport, i64 dport,
                   const u8 *d, i64 start, i64 end) {
    if (end - start < 12) {
        if (end - start >= 8 && d[start + 1] >= 200 && d[start + 1] < 205) count_rtcp(alen, src, dst, sport, dport);
        return 0;
    }
    i64 second = d[start + 1], seq = be16(d + start + 2), ts = be32(d + start + 4), ssrc = be32(d + start + 8);
    if (second >= 200 && second < 205) {
        count_rtcp(alen, src, dst, sport, dport);
        return 0;
    }
    struct stream *s = find_stream(alen, src, dst, sport, dport, ssrc);
    if (s) {
        update_sequence(s, seq);
    } else {
        s = new_stream(frame, time, alen, src, dst, sport, dport, ssrc, seq);
        if (!s) return 0;
    }
    s->packets++;
    s->last_frame = frame;
    i64 pt = second & 0x7F;
    if (!s->pt_counts[pt]++) s->pt_order[s->n_pts++] = (u8)pt;
    if (second & 0x80) {
        s->marker_packets++;
    } else if (s->packets > 1) {
        double gap_ms = (time - s->last_time) * 1000.0;
        if (gap_ms > s->max_gap_ms) s->max_gap_ms = gap_ms;
    }
    int has_rate = (int)s->has_rate;
    double rate = s->last_rate;
    if (pt != s->last_pt) {
        int had_rate = has_rate;
        double previous_rate = rate;
        const struct rtpmap_entry *entry = pt >= FIRST_DYNAMIC_PT ? rtpmap(pt, s) : 0;
        if (entry && entry->kind == RATE_BAD_TEXT) {
            io.raised = RAISED_BAD_TEXT;
            io.raised_entry = entry->owner * 128 + pt;
            return RAISED;
        }
        if (entry) {
            has_rate = entry->kind != RATE_NONE;
            rate = entry->rate;
            s->rate_kind = entry->kind;
            s->events = entry->events;
        } else {
            has_rate = pt < FIRST_DYNAMIC_PT && static_rates[pt] != 0.0;
            rate = has_rate ? static_rates[pt] : 0.0;
            s->rate_kind = has_rate ? RATE_VALUE : RATE_NONE;
            s->events = 0;
        }
        s->has_rate = has_rate;
        s->last_rate = rate;
        s->last_pt = pt;
        if (has_rate != had_rate || (has_rate && rate != previous_rate)) has_rate = 0;
    }
    if (has_rate) {
        if (s->rate_kind == RATE_TOO_LARGE) {
            io.raised = RAISED_TOO_LARGE;
            return RAISED;
        }
        i64 ts_delta = (ts - s->last_ts) & 0xFFFFFFFFLL;
        if (ts_delta >= 0x80000000LL) ts_delta -= 0x100000000LL;
        double difference = (time - s->last_time) * rate - (double)ts_delta;
        double jitter = s->jitter;
        jitter += ((difference >= 0 ? difference : -difference) - jitter) / 16.0;
        s->jitter = jitter;
        if (rate == 0.0) {
            io.raised = RAISED_ZERO_RATE;
            return RAISED;
        }
        double jitter_ms = jitter * 1000.0 / rate;
        s->jitter_sum += jitter_ms;
        s->jitter_samples++;
        if (jitter_ms > s->max_jitter) s->max_jitter = jitter_ms;
    }
    s->last_time = time;
    s->last_ts = ts;
    if (s->events) telephone_event(s, frame, time, d, start, end, ts);
    if (s->watched) {
        io.watched = s->watched;
        io.watched_stream = s - streams;
        io.rtp_address = (i64)(unsigned long)(d + start);
        io.rtp_length = end - start;
    }
    return 0;
}

/* A UDP payload the host decoded itself (tunnels, fragments, ...): the
 * addresses at scratch[0:16] and scratch[16:32], the payload from scratch[32]. */
EXPORT(account_scratch) int account_scratch(double frame, double time, int alen, int sport, int dport, int length) {
    io.watched = 0;
    if ((alen != 4 && alen != 16) || length < 0 || length > SCRATCH_SIZE) return 0;
    return account((i64)frame, time, alen, scratch, scratch + 16, sport, dport, scratch + 32, 0, length);
}

/* -- the common decode path ------------------------------------------------ */

static int dns_port(i64 port) { return port == 53 || port == 5353; }

/* Each returns 1 when the packet was accounted here (or RAISED), 0 when the
 * host must decode it: the kernel takes only packets whose whole effect in
 * capture/decoder.py would be one RtpTracker.account call. */

static int udp(i64 frame, double time, const u8 *d, i64 start, i64 end, i64 alen, const u8 *src, const u8 *dst) {
    if (start + 8 > end) return 0;
    i64 sport = be16(d + start), dport = be16(d + start + 2), length = be16(d + start + 4);
    i64 payload = start + 8;
    if (8 < length && start + length < end) end = start + length;
    if (payload >= end || dns_port(sport) || dns_port(dport) || d[payload] < 0x80 || d[payload] >= 0xC0) return 0;
    return account(frame, time, alen, src, dst, sport, dport, d, payload, end) == RAISED ? RAISED : 1;
}

static int ipv4(i64 frame, double time, const u8 *d, i64 len, i64 offset) {
    if (len < offset + 20) return 0;
    i64 header = (d[offset] & 0x0F) * 4;
    if (d[offset] >> 4 != 4 || header < 20 || len < offset + header) return 0;
    i64 total = be16(d + offset + 2), fragment = be16(d + offset + 6), protocol = d[offset + 9];
    i64 end = header <= total && offset + total <= len ? offset + total : len;
    if (fragment & 0x3FFF || protocol != 17) return 0;
    return udp(frame, time, d, offset + header, end, 4, d + offset + 12, d + offset + 16);
}

static int ipv6(i64 frame, double time, const u8 *d, i64 len, i64 offset) {
    if (len < offset + 40 || d[offset] >> 4 != 6) return 0;
    i64 payload = be16(d + offset + 4), next = d[offset + 6], start = offset + 40;
    i64 end = payload && start + payload <= len ? start + payload : len;
    if (next != 17) return 0;
    return udp(frame, time, d, start, end, 16, d + offset + 8, d + offset + 24);
}

static int raw_ip(i64 frame, double time, const u8 *d, i64 len, i64 offset) {
    if (len <= offset) return 0;
    if (d[offset] >> 4 == 4) return ipv4(frame, time, d, len, offset);
    if (d[offset] >> 4 == 6) return ipv6(frame, time, d, len, offset);
    return 0;
}

static int ethertype(i64 frame, double time, const u8 *d, i64 len, i64 type, i64 offset) {
    while ((type == 0x8100 || type == 0x88A8 || type == 0x9100) && len >= offset + 4) {
        type = be16(d + offset + 2);
        offset += 4;
    }
    if (type == 0x0800) return ipv4(frame, time, d, len, offset);
    if (type == 0x86DD) return ipv6(frame, time, d, len, offset);
    return 0;
}

static int decode(i64 frame, double time, i64 linktype, const u8 *d, i64 len) {
    switch (linktype) {
    case 1:
        /* The old decoder's inlined fast path, with its own idea of the payload's end. */
        if (len > 42 && d[12] == 8 && d[13] == 0 && d[14] == 0x45 && d[23] == 17 && !((d[20] & 0x3F) || d[21]) &&
            d[42] >= 0x80 && d[42] < 0xC0) {
            i64 sport = be16(d + 34), dport = be16(d + 36);
            if (!dns_port(sport) && !dns_port(dport)) {
                i64 end = 34 + (i64)be16(d + 38);
                if (end > len) end = len;
                return account(frame, time, 4, d + 26, d + 30, sport, dport, d, 42, end) == RAISED ? RAISED : 1;
            }
        }
        return len >= 14 ? ethertype(frame, time, d, len, be16(d + 12), 14) : 0;
    case 113:
        return len >= 16 ? ethertype(frame, time, d, len, be16(d + 14), 16) : 0;
    case 276:
        return len >= 20 ? ethertype(frame, time, d, len, be16(d), 20) : 0;
    case 0:
    case 108:
        return len > 4 ? raw_ip(frame, time, d, len, 4) : 0;
    case 12:
    case 14:
    case 101:
    case 228:
    case 229:
        return raw_ip(frame, time, d, len, 0);
    default:
        return 0;
    }
}

/* == Redaction's rewriting walk (host: redaction/kernel_input.py) ============
 *
 * With redaction.mode set, the walk rewrites each packet record of the common
 * path exactly as redaction/packets.py PacketRewriter does (ethernet(),
 * ipv4()/ipv6(), udp(), rtp()) and appends the output record to `redacted`;
 * learning, it only skips it. Any other record stops the walk as a BLOCK for
 * the Python reader and rewriter, in capture order. The common path: a pcap
 * record or a pcapng EPB without options; Ethernet (+VLAN/QinQ), SLL, SLL2,
 * null/loopback or raw IP; a complete IPv4 (options allowed, no fragment) or IPv6 datagram
 * without extension headers; UDP whose length is the segment's; RTP by
 * udp_payload()'s rule, on no port that rule looks at first; not RTCP (PT 64-95).
 * Every MAC and address must be in the host's tables: one that is not goes to
 * Python, which allocates its replacement (AddressMap's first-seen order) and
 * pushes it here, so the kernel never decides a replacement itself.
 */

#define REDACT_OUTPUT_SIZE (2 * 1024 * 1024)
/* A longer record goes to Python: no UDP datagram the kernel rewrites needs more. */
#define REDACT_MAX_RECORD (70 * 1024)
#define V4_SLOTS 65536 /* powers of two; a table takes entries up to half its slots */
#define V6_SLOTS 16384
#define MAC_SLOTS 16384

enum redaction_mode { REDACT_OFF = 0, REDACT_LEARN = 1, REDACT_WRITE = 2 };
enum table_kind { TABLE_IPV4 = 0, TABLE_IPV6 = 1, TABLE_MAC = 2 };

/* The host reads and writes this block (redaction/kernel_input.py REDACTION_FIELDS, in order). */
struct redaction {
    /* keep_macs: MACs stay as they are (RedactionOptions.mac_addresses off).
     * stop_frame: the next frame Python must see (the verification's scrub frames), 0: none.
     * out_used, out_records: what `redacted` holds. refused: entries a full table turned away. */
    i64 mode, keep_macs, stop_frame, out_used, out_records, refused;
};

/* original -> replacement, open addressing; keys are 4, 16 or 8 bytes (a MAC and two zeros). */
struct table {
    u8 *keys, *values, *used;
    i64 width, slots, count;
};

static struct redaction redaction;
static u8 redacted[REDACT_OUTPUT_SIZE];
static u8 v4_keys[V4_SLOTS * 4], v4_values[V4_SLOTS * 4], v4_used[V4_SLOTS];
static u8 v6_keys[V6_SLOTS * 16], v6_values[V6_SLOTS * 16], v6_used[V6_SLOTS];
static u8 mac_keys[MAC_SLOTS * 8], mac_values[MAC_SLOTS * 8], mac_used[MAC_SLOTS];
static struct table tables[3] = {
    {v4_keys, v4_values, v4_used, 4, V4_SLOTS, 0},
    {v6_keys, v6_values, v6_used, 16, V6_SLOTS, 0},
    {mac_keys, mac_values, mac_used, 8, MAC_SLOTS, 0},
};

EXPORT(redaction_address) struct redaction *redaction_address(void) { return &redaction; }
EXPORT(redacted_address) u8 *redacted_address(void) { return redacted; }
EXPORT(redaction_size) int redaction_size(void) { return (int)sizeof(struct redaction); }

static i64 find_slot(const struct table *t, const u8 *key) {
    for (u32 slot = finish_hash(mix(0, key, t->width)) & (u32)(t->slots - 1);; slot = (slot + 1) & (u32)(t->slots - 1))
        if (!t->used[slot] || same(t->keys + slot * t->width, key, t->width)) return slot;
}

static const u8 *replacement(const struct table *t, const u8 *key) {
    i64 slot = find_slot(t, key);
    return t->used[slot] ? t->values + slot * t->width : 0;
}

static const u8 *mac_replacement(const u8 *mac) {
    u8 key[8] = {mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0};
    return replacement(&tables[TABLE_MAC], key);
}

/* `count` pairs (original, replacement) at scratch: 4+4 bytes (IPv4), 16+16 (IPv6) or 6+6 (MAC). */
EXPORT(redaction_add) int redaction_add(int kind, int count) {
    if (kind < TABLE_IPV4 || kind > TABLE_MAC || count < 0) return 0;
    struct table *t = &tables[kind];
    i64 size = kind == TABLE_MAC ? 6 : t->width;
    if (count > SCRATCH_SIZE / (2 * size)) return 0;
    int added = 0;
    for (i64 i = 0; i < count; i++) {
        const u8 *pair = scratch + i * 2 * size;
        u8 key[16] = {0};
        copy(key, pair, size);
        i64 slot = find_slot(t, key);
        if (!t->used[slot]) {
            if (2 * (t->count + 1) > t->slots) {
                redaction.refused++;
                continue;
            }
            t->used[slot] = 1;
            t->count++;
            copy(t->keys + slot * t->width, key, t->width);
        }
        copy(t->values + slot * t->width, pair + size, size);
        added++;
    }
    return added;
}

/* udp() and udp_payload() read these ports before the RTP test (DNS, DHCP, DHCPv6, NetBIOS,
 * VXLAN, GTP-U); some only when both ports are, taken here when either is. */
static int special_port(i64 port) {
    return port == 53 || port == 5353 || port == 5355 || port == 67 || port == 68 || port == 546 || port == 547 ||
           port == 137 || port == 138 || port == 4789 || port == 2152;
}

static u32 sum16(const u8 *p, i64 n, u32 sum) {
    for (i64 i = 0; i + 1 < n; i += 2) sum += be16(p + i);
    if (n & 1) sum += (u32)p[n - 1] << 8;
    return sum;
}

static u32 folded(u32 sum) {
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return ~sum & 0xFFFF;
}

/* Where the packet's IP header starts, by link type; -1: not the common path. */
static i64 ip_offset(i64 linktype, const u8 *d, i64 len) {
    if (linktype == 1) {
        if (len < 14) return -1;
        i64 pos = 12, type = be16(d + 12);
        while ((type == 0x8100 || type == 0x88A8 || type == 0x9100) && len >= pos + 6) {
            pos += 4;
            type = be16(d + pos);
        }
        return type == 0x0800 || type == 0x86DD ? pos + 2 : -1;
    }
    if (linktype == 113) return len >= 16 && (be16(d + 14) == 0x0800 || be16(d + 14) == 0x86DD) ? 16 : -1;
    if (linktype == 276) return len >= 20 && (be16(d) == 0x0800 || be16(d) == 0x86DD) ? 20 : -1;
    if (linktype == 0 || linktype == 108) return len >= 4 ? 4 : -1;
    if (linktype == 101 || linktype == 12 || linktype == 14 || linktype == 228 || linktype == 229) return 0;
    return -1;
}

/* The record at b[start:next] (packet bytes at `data`, `caplen` long; pcapng `type` 6 or pcap 0):
 * 0 when the kernel took it, BLOCK when Python must, OUTPUT_FULL when `redacted` must be emptied first. */
static int redact_record(const u8 *b, i64 start, i64 next, i64 data, i64 caplen, i64 linktype, i64 type) {
    i64 size = next - start;
    if (io.frame + 1 == redaction.stop_frame || size > REDACT_MAX_RECORD) return BLOCK;
    if (type) {
        /* Block.encode() writes a changed EPB with zero padding, no options and its length twice. */
        if (type != 6 || size != 32 + ((caplen + 3) & ~3LL) || rd32(b + next - 4, (int)io.big_endian) != size)
            return BLOCK;
        for (i64 i = data + caplen; i < next - 4; i++)
            if (b[i]) return BLOCK;
    }
    const u8 *d = b + data;
    i64 len = caplen, ip = ip_offset(linktype, d, len);
    if (ip < 0 || len - ip < 20) return BLOCK;
    /* The MACs the rewriter replaces: Ethernet's two, SLL's and SLL2's one when 6 bytes long (_mac_field). */
    i64 mac_at[2] = {-1, -1};
    const u8 *new_mac[2] = {0, 0};
    if (!redaction.keep_macs) {
        if (linktype == 1) {
            /* _group_mac: a multicast group's MAC follows its IP group's replacement. */
            if ((d[0] == 0x01 && d[1] == 0x00 && d[2] == 0x5E) || (d[0] == 0x33 && d[1] == 0x33)) return BLOCK;
            mac_at[0] = 0;
            mac_at[1] = 6;
        } else if (linktype == 113 && be16(d + 4) == 6) {
            mac_at[0] = 6;
        } else if (linktype == 276 && d[11] == 6) {
            mac_at[0] = 12;
        }
    }
    for (int m = 0; m < 2; m++)
        if (mac_at[m] >= 0 && !(new_mac[m] = mac_replacement(d + mac_at[m]))) return BLOCK;
    i64 version = d[ip] >> 4, alen, segment, length;
    const u8 *new_src, *new_dst;
    if (version == 4) {
        i64 header = (d[ip] & 0x0F) * 4, total = be16(d + ip + 2);
        /* complete (the UDP checksum is recomputed), not a fragment, UDP */
        if (header < 20 || total < header || total > len - ip || be16(d + ip + 6) & 0x3FFF || d[ip + 9] != 17)
            return BLOCK;
        alen = 4;
        segment = ip + header;
        length = total - header;
        new_src = replacement(&tables[TABLE_IPV4], d + ip + 12);
        new_dst = replacement(&tables[TABLE_IPV4], d + ip + 16);
    } else if (version == 6) {
        if (len - ip < 40) return BLOCK;
        i64 payload = be16(d + ip + 4);
        if (!payload || payload > len - ip - 40 || d[ip + 6] != 17) return BLOCK;
        alen = 16;
        segment = ip + 40;
        length = payload;
        new_src = replacement(&tables[TABLE_IPV6], d + ip + 8);
        new_dst = replacement(&tables[TABLE_IPV6], d + ip + 24);
    } else {
        return BLOCK;
    }
    if (!new_src || !new_dst || length < 8 + 12 || be16(d + segment + 4) != length) return BLOCK;
    const u8 *rtp = d + segment + 8;
    if (rtp[0] >> 6 != 2 || special_port(be16(d + segment)) || special_port(be16(d + segment + 2))) return BLOCK;
    if ((rtp[1] & 0x7F) >= 64 && (rtp[1] & 0x7F) <= 95) return BLOCK; /* RTCP: the text rules' */
    if (redaction.mode == REDACT_LEARN) return 0;
    if (redaction.out_used + size > REDACT_OUTPUT_SIZE) return OUTPUT_FULL;

    u8 *out = redacted + redaction.out_used, *o = out + data - start;
    copy(out, b + start, size);
    for (int m = 0; m < 2; m++)
        if (new_mac[m]) copy(o + mac_at[m], new_mac[m], 6);
    i64 addresses = version == 4 ? ip + 12 : ip + 8;
    copy(o + addresses, new_src, alen);
    copy(o + addresses + alen, new_dst, alen);
    if (version == 4) {
        i64 header = (d[ip] & 0x0F) * 4;
        o[ip + 10] = o[ip + 11] = 0;
        u32 checksum = folded(sum16(o + ip, header, 0));
        o[ip + 10] = (u8)(checksum >> 8);
        o[ip + 11] = (u8)checksum;
    }
    /* rtp(): the voice between the header (CSRCs, extension) and the padding is zeroed. */
    u8 *voice = o + segment + 8;
    i64 rtp_length = length - 8, from = 12 + 4 * (voice[0] & 0x0F);
    if (voice[0] & 0x10 && rtp_length >= from + 4) from += 4 + 4 * (i64)be16(voice + from + 2);
    i64 to = rtp_length - (voice[0] & 0x20 ? voice[rtp_length - 1] : 0);
    for (i64 i = from; i < to; i++) voice[i] = 0;
    /* checksums.transport_checksum(udp=True) over the pseudo header and the new segment:
     * recomputed, not adjusted (RFC 1624), so a wrong checksum in the original is made
     * right exactly as the Python rewriter makes it; ~200 bytes a packet cost little. */
    o[segment + 6] = o[segment + 7] = 0;
    u32 sum = sum16(o + addresses, 2 * alen, 0) + 17 + (u32)length;
    u32 checksum = folded(sum16(o + segment, length, sum));
    if (!checksum) checksum = 0xFFFF;
    o[segment + 6] = (u8)(checksum >> 8);
    o[segment + 7] = (u8)checksum;
    redaction.out_used += size;
    redaction.out_records++;
    return 0;
}

/* -- the record walk --------------------------------------------------------- */

static int stop(int status, i64 pos, i64 length) {
    io.status = status;
    io.pos = pos;
    io.length = length;
    return status;
}

static int leak_record(i64 next, i64 linktype, double time, i64 data, i64 caplen, const u8 *buffer);

/* A packet record read: numbered, timed, counted; accounted here or handed over. */
static int packet(i64 next, i64 linktype, double time, i64 data, i64 caplen, i64 orig, u8 *buffer) {
    i64 frame = ++io.frame;
    if (caplen < orig) {
        if (!io.cut_packets) io.cut_example = frame;
        io.cut_packets++;
    }
    link_types_seen[(linktype & 0xFFFF) >> 3] |= (u8)(1 << (linktype & 7));
    if (!io.yielded) io.first_time = time;
    io.yielded++;
    io.last_time = time;
    io.watched = 0;
    if (leak.mode) return leak_record(next, linktype, time, data, caplen, buffer);
    int done = redaction.mode ? 1 : decode(frame, time, linktype, buffer + data, caplen); /* redacted: redact_record */
    if (done == 1 && !io.watched) return 0;
    io.linktype = linktype;
    io.data = data;
    io.caplen = caplen;
    io.time = time;
    /* A watched stream's packet was accounted: the host records it (io.watched ...), then resumes. */
    return stop(done == RAISED ? RAISED : done == 1 ? WATCHED : PACKET, next, 0);
}

static int scan_pcap(u8 *b, i64 pos, i64 end) {
    int big = (int)io.big_endian;
    for (;;) {
        if (pos + 16 > end) return stop(NEED_MORE, pos, 0);
        i64 caplen = rd32(b + pos + 8, big), orig = rd32(b + pos + 12, big);
        if (caplen > MAX_RECORD) return stop(DAMAGED, pos, 16);
        i64 next = pos + 16 + caplen;
        if (next > end) return stop(NEED_MORE, pos, 16 + caplen);
        int redacted = redaction.mode ? redact_record(b, pos, next, pos + 16, caplen, io.pcap_linktype, 0) : 0;
        if (redacted) return stop(redacted, pos, next - pos);
        double time = (double)rd32(b + pos, big) + (double)rd32(b + pos + 4, big) * io.pcap_scale;
        if (packet(next, io.pcap_linktype, time, pos + 16, caplen, orig, b)) return (int)io.status;
        pos = next;
    }
}

static int scan_pcapng(u8 *b, i64 pos, i64 end) {
    for (;;) {
        if (pos + 12 > end) return stop(NEED_MORE, pos, 0);
        const u8 *p = b + pos;
        int big = (int)io.big_endian;
        if (p[0] == 0x0A && p[1] == 0x0D && p[2] == 0x0D && p[3] == 0x0A) {
            /* A section header: its own byte-order mark says how to read its length. */
            if (be32(p + 8) == 0x1A2B3C4D) big = 1;
            else if (be32(p + 8) == 0x4D3C2B1A) big = 0;
            else return stop(BLOCK, pos, 12);
        }
        i64 type = rd32(p, big), length = rd32(p + 4, big);
        if (length < 12 || length % 4 || length > MAX_RECORD) return stop(BLOCK, pos, 12);
        if (pos + length > end) return stop(NEED_MORE, pos, length);
        i64 body = pos + 8, size = length - 12, next = pos + length;
        i64 interface, high, low, caplen, orig, start;
        if (type == 6 || type == 2) {
            if (size < 20) return stop(BLOCK, pos, length);
            if (type == 6) {
                interface = rd32(b + body, big);
                high = rd32(b + body + 4, big);
                low = rd32(b + body + 8, big);
            } else {
                interface = rd16(b + body, big);
                high = rd32(b + body + 4, big);
                low = rd32(b + body + 8, big);
            }
            caplen = rd32(b + body + 12, big);
            orig = rd32(b + body + 16, big);
            start = 20;
        } else if (type == 3) {
            if (size < 4) return stop(BLOCK, pos, length);
            interface = high = low = 0;
            orig = rd32(b + body, big);
            caplen = orig < size - 4 ? orig : size - 4;
            start = 4;
        } else {
            return stop(BLOCK, pos, length);
        }
        /* Damaged packet blocks and unknown interfaces are the host's to tell. */
        if (start + caplen > size || interface >= io.n_interfaces) return stop(BLOCK, pos, length);
        const struct interface *in = &interfaces[interface];
        int redacted = redaction.mode ? redact_record(b, pos, next, body + start, caplen, in->linktype, type) : 0;
        if (redacted) return stop(redacted, pos, length);
        double time = (double)((u64)high << 32 | (u64)low) * in->scale + in->offset;
        if (!(-MAX_DATE_SECONDS <= time && time <= MAX_DATE_SECONDS)) {
            if (!io.out_of_range) {
                io.range_frame = io.frame + 1;
                io.range_time = time;
                io.range_scale = in->scale;
                io.range_offset = in->offset;
            }
            io.out_of_range++;
        }
        if (packet(next, in->linktype, time, body + start, caplen, orig, b)) return (int)io.status;
        pos = next;
    }
}

/* Walk the records in buffer[pos:end] until one needs the host or more bytes are needed.
 * io.pos says where to resume (after a PACKET, RAISED or WATCHED record) or where the record
 * concerned starts (BLOCK, DAMAGED, NEED_MORE), io.length how long it is, if known. */
EXPORT(scan) int scan(int pos, int end) {
    u8 *b = buffer_address();
    io.raised = 0;
    if (pos < 0 || end < pos) return stop(NEED_MORE, pos < 0 ? 0 : pos, 0);
    return io.format == FORMAT_PCAP ? scan_pcap(b, pos, end) : scan_pcapng(b, pos, end);
}

/* == The redaction's verification (redaction/identifiers.py): the leak search and the collector ==
 *
 * With leak.mode set the record walk above walks the WRITTEN copy and, instead
 * of decoding, searches each packet record for the literal keys the host
 * loaded (every original identifier's binary form, and the names' forms in
 * ASCII-lower-cased data) and reports each hit: (frame, key, the lower-cased
 * byte before and after it, -1 at the record's edge) for the host to credit by
 * its boundary rules. A record that could hold a text candidate by the host's
 * exact run rules goes back to the host (a record entry) for its text search;
 * so does every record in LEAK_ALL mode (the host searches everything itself:
 * user regexes, STUN over IPv6, too many keys) and a record with more hits than
 * the hit table holds. Blocks other than packets come back as BLOCK, as in the
 * analysis walk. Records are searched as the host walks them: a pcap record's
 * captured bytes, a pcapng packet block's body after its fixed fields up to the
 * trailing length (options included). */

/* Mirrored by capture/scan.py LEAK_MAX_KEYS and LEAK_KEY_BYTES: more keys and the host searches itself. */
#define LEAK_MAX_KEYS 32768
#define LEAK_KEY_BYTES (1024 * 1024)
#define LEAK_SLOTS 65536 /* power of two */
#define LEAK_MAX_HITS 16384
#define LEAK_MAX_RECORDS 4096

enum leak_mode { LEAK_OFF = 0, LEAK_KEYS = 1, LEAK_ALL = 2, LEAK_COLLECT = 3 };
/* Which text searches the host runs (identifiers.py _search_text, _scan_text): their candidate runs. */
enum leak_text { LEAK_V4 = 1, LEAK_V6 = 2, LEAK_MAC = 4, LEAK_HEX = 8 };
enum leak_reason { LEAK_TEXT = 1, LEAK_WHOLE = 2 };
/* Character classes of the text runs (identifiers.py _V4_MARKS, _V6_MARKS, _SEP_MARKS, _DOT_MARKS, _HEX_MARKS). */
enum leak_class { C_V4 = 1, C_SEP = 2, C_DOT = 4, C_HEX = 8, C_V6 = 16 };

/* One key: the host writes offset (into leak_key_bytes), length and folded (1: a name, searched in
 * lower-cased data); leak_index fills probe (its first word, or its bytes tagged with a short
 * length) and next (the slot chain, index + 1). */
struct leak_key {
    int offset, length, folded, next;
    u32 probe;
};

static struct leak_key leak_keys[LEAK_MAX_KEYS];
static u8 leak_key_bytes[LEAK_KEY_BYTES];
static int leak_slots[LEAK_SLOTS]; /* key index + 1; 0 is empty */
/* Which first two bytes, lower-cased, start a key of either dictionary (0: binary, 1: folded
 * names); keys of one byte mark every second byte. A superset test: the slot chains decide. */
static u8 leak_pairs[65536 / 8];
static int leak_short[2]; /* bit L: the dictionary has keys of L < 4 bytes */
static int leak_has[2];   /* the dictionary has keys */
static u8 leak_first[256]; /* the byte can start a key: as written (binary), or lower-cased to a name's first byte */
static int leak_hits[LEAK_MAX_HITS][4];       /* frame, key, byte before, byte after */
static int leak_records[LEAK_MAX_RECORDS][4]; /* frame, data, length, reason */
#define LEAK_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define LEAK_HEXDIGIT(c) (LEAK_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define LEAK_CLASS(c)                                                                                         \
    ((LEAK_DIGIT(c) || (c) == '.' ? C_V4 : 0) | (LEAK_HEXDIGIT(c) ? C_SEP | C_DOT | C_HEX | C_V6 : 0) |      \
     ((c) == ':' || (c) == '-' ? C_SEP : 0) | ((c) == '.' ? C_DOT | C_V6 : 0) | ((c) == ':' ? C_V6 : 0))
#define LEAK_CLASS4(c) LEAK_CLASS(c), LEAK_CLASS((c) + 1), LEAK_CLASS((c) + 2), LEAK_CLASS((c) + 3)
#define LEAK_CLASS16(c) LEAK_CLASS4(c), LEAK_CLASS4((c) + 4), LEAK_CLASS4((c) + 8), LEAK_CLASS4((c) + 12)
#define LEAK_CLASS64(c) LEAK_CLASS16(c), LEAK_CLASS16((c) + 16), LEAK_CLASS16((c) + 32), LEAK_CLASS16((c) + 48)
static const u8 leak_classes[256] = {LEAK_CLASS64(0), LEAK_CLASS64(64), LEAK_CLASS64(128), LEAK_CLASS64(192)};

EXPORT(leak_address) struct leak *leak_address(void) { return &leak; }
EXPORT(leak_keys_address) struct leak_key *leak_keys_address(void) { return leak_keys; }
EXPORT(leak_key_bytes_address) u8 *leak_key_bytes_address(void) { return leak_key_bytes; }
EXPORT(leak_hits_address) int *leak_hits_address(void) { return &leak_hits[0][0]; }
EXPORT(leak_records_address) int *leak_records_address(void) { return &leak_records[0][0]; }

static u32 fold(u32 c) { return c - 'A' < 26 ? c + 32 : c; } /* bytes.lower(): ASCII only */

static u32 leak_probe(const u8 *p, i64 length, int folded) {
    if (length >= 4) {
        if (!folded) return word(p);
        return fold(p[0]) | fold(p[1]) << 8 | fold(p[2]) << 16 | fold(p[3]) << 24;
    }
    u32 value = (u32)length << 24;
    for (i64 i = 0; i < length; i++) value |= (folded ? fold(p[i]) : p[i]) << (8 * i);
    return value;
}

static u32 leak_slot(u32 probe, int folded) { return finish_hash(mix_word((u32)folded, probe)) & (LEAK_SLOTS - 1); }

/* Index the n keys the host wrote. Returns 0, or -1 when one is out of bounds (the host then
 * searches everything itself). */
EXPORT(leak_index) int leak_index(int n) {
    clear(leak_slots, sizeof leak_slots);
    clear(leak_pairs, sizeof leak_pairs);
    leak_short[0] = leak_short[1] = 0;
    leak_has[0] = leak_has[1] = 0;
    clear(leak_first, sizeof leak_first);
    leak.n_keys = 0;
    if (n < 0 || n > LEAK_MAX_KEYS) return -1;
    for (int i = 0; i < n; i++) {
        struct leak_key *k = &leak_keys[i];
        if (k->length < 1 || k->offset < 0 || k->offset > LEAK_KEY_BYTES - k->length || (k->folded & ~1)) return -1;
    }
    for (int i = 0; i < n; i++) {
        struct leak_key *k = &leak_keys[i];
        const u8 *p = leak_key_bytes + k->offset;
        /* Keys are matched against data (folded or not), byte for byte: the probe is of the key as written. */
        k->probe = leak_probe(p, k->length, 0);
        u32 slot = leak_slot(k->probe, k->folded);
        k->next = leak_slots[slot];
        leak_slots[slot] = i + 1;
        u32 first = fold(p[0]);
        if (k->length == 1) {
            for (u32 second = 0; second < 256; second++) leak_pairs[(first << 8 | second) >> 3] |= (u8)(1 << (second & 7));
        } else {
            u32 second = fold(p[1]);
            leak_pairs[(first << 8 | second) >> 3] |= (u8)(1 << (second & 7));
        }
        leak_has[k->folded] = 1;
        for (u32 c = 0; c < 256; c++)
            if (c == p[0] || (k->folded && fold(c) == p[0])) leak_first[c] = 1;
        if (k->length < 4) leak_short[k->folded] |= 1 << k->length;
    }
    leak.n_keys = n;
    return 0;
}

static int leak_add_record(i64 frame, i64 data, i64 length, int reason) {
    int *r = leak_records[leak.n_records++];
    r[0] = (int)frame;
    r[1] = (int)data;
    r[2] = (int)length;
    r[3] = reason;
    return leak.n_records >= LEAK_MAX_RECORDS;
}

/* The keys of one dictionary at d[p], with `length` bytes probed (4, or a short key's own).
 * Returns 0, or 1 when the hit table is full. */
static int leak_chain(i64 frame, const u8 *d, i64 start, i64 end, i64 p, i64 length, int folded) {
    u32 probe = leak_probe(d + p, length, folded);
    for (int index = leak_slots[leak_slot(probe, folded)]; index; index = leak_keys[index - 1].next) {
        const struct leak_key *k = &leak_keys[index - 1];
        if (k->probe != probe || k->folded != folded || (length < 4 ? k->length != length : k->length < 4) ||
            k->length > end - p)
            continue;
        const u8 *key = leak_key_bytes + k->offset;
        i64 i = length;
        if (folded)
            while (i < k->length && fold(d[p + i]) == key[i]) i++;
        else
            while (i < k->length && d[p + i] == key[i]) i++;
        if (i < k->length) continue;
        if (leak.n_hits >= LEAK_MAX_HITS) return 1;
        int *h = leak_hits[leak.n_hits++];
        h[0] = (int)frame;
        h[1] = index - 1;
        h[2] = p > start ? (int)fold(d[p - 1]) : -1;
        h[3] = p + k->length < end ? (int)fold(d[p + k->length]) : -1;
    }
    return 0;
}

/* Every key at every position of d[start:end]. Returns 1 when the hit table filled. */
static int leak_keys_in(i64 frame, const u8 *d, i64 start, i64 end) {
    int zeros_start_nothing = !leak_first[0];
    for (i64 p = start; p < end; p++) {
        /* Scrubbed payloads are mostly zero bytes: skipped a word at a time when no key starts with one. */
        if (zeros_start_nothing)
            while (p + 4 <= end && !word(d + p)) p += 4;
        if (p >= end) break;
        if (!leak_first[d[p]]) continue;
        u32 first = fold(d[p]), second = p + 1 < end ? fold(d[p + 1]) : 0;
        if (!(leak_pairs[(first << 8 | second) >> 3] >> (second & 7) & 1)) continue;
        for (int folded = 0; folded < 2; folded++) {
            if (!leak_has[folded]) continue;
            if (p + 4 <= end && leak_chain(frame, d, start, end, p, 4, folded)) return 1;
            for (i64 length = 1; length < 4; length++)
                if (leak_short[folded] >> length & 1 && p + length <= end &&
                    leak_chain(frame, d, start, end, p, length, folded))
                    return 1;
        }
    }
    return 0;
}

/* Whether d[start:end] holds a run the host's text search looks at (identifiers.py _runs and
 * _v6_runs: 7 of _V4_MARKS; a run of _V6_MARKS with two colons, which holds _COLON's match; 17
 * of _SEP_MARKS or 14 of _DOT_MARKS; 12 of _HEX_MARKS), for the searches leak.text names. */
static int leak_text_in(const u8 *d, i64 start, i64 end) {
    i64 v4 = 0, sep = 0, dot = 0, hex = 0, colons = 0;
    int text = (int)leak.text;
    for (i64 p = start; p < end; p++) {
        if (p + 4 <= end && !word(d + p)) { /* a zero byte is in no run */
            while (p + 4 <= end && !word(d + p)) p += 4;
            v4 = sep = dot = hex = colons = 0;
            if (p >= end) break;
        }
        u32 c = leak_classes[d[p]];
        if (!c) {
            v4 = sep = dot = hex = colons = 0;
            continue;
        }
        v4 = c & C_V4 ? v4 + 1 : 0;
        sep = c & C_SEP ? sep + 1 : 0;
        dot = c & C_DOT ? dot + 1 : 0;
        hex = c & C_HEX ? hex + 1 : 0;
        colons = c & C_V6 ? colons + (d[p] == ':') : 0;
        if ((text & LEAK_V4) && v4 >= 7) return 1;
        if ((text & LEAK_V6) && colons >= 2) return 1;
        if ((text & LEAK_MAC) && (sep >= 17 || dot >= 14)) return 1;
        if ((text & LEAK_HEX) && hex >= 12) return 1;
    }
    return 0;
}

static int collect_record(i64 next, i64 linktype, double time, i64 data, i64 caplen, const u8 *buffer);

/* One packet record of the copy, its bytes at buffer[data:data+caplen] (pcap) or up to the block's
 * trailing length (pcapng). Returns 0 to walk on, or LEAK_FULL when the host must drain the tables
 * (the walk resumes at `next`). */
static int leak_record(i64 next, i64 linktype, double time, i64 data, i64 caplen, const u8 *buffer) {
    if (leak.mode == LEAK_COLLECT) return collect_record(next, linktype, time, data, caplen, buffer);
    i64 frame = io.frame;
    i64 end = io.format == FORMAT_PCAPNG ? next - 4 : data + caplen;
    int full;
    if (leak.mode != LEAK_KEYS) {
        full = leak_add_record(frame, data, end - data, LEAK_WHOLE);
    } else {
        i64 hits = leak.n_hits;
        if (leak_keys_in(frame, buffer, data, end)) {
            leak.n_hits = hits; /* more than the table holds: the host searches this record whole */
            full = leak_add_record(frame, data, end - data, LEAK_WHOLE);
        } else {
            full = leak.text && leak_text_in(buffer, data, end) && leak_add_record(frame, data, end - data, LEAK_TEXT);
        }
        full = full || leak.n_hits >= LEAK_MAX_HITS / 2;
    }
    return full ? stop(LEAK_FULL, next, 0) : 0;
}

/* -- the collector's fast path (identifiers.py IdentifierCollector.feed) --------
 *
 * The ORIGINAL's records walked with leak.mode LEAK_COLLECT. The bulk of a VoIP
 * capture is RTP in UDP in option-less, unfragmented IPv4 in Ethernet on a port
 * no payload decoder of the collector reads (the host sets collect_ports): its
 * two MACs and two addresses are all it holds, kept here in fixed tables the
 * host drains. Every other record goes back to the host as a PACKET for its
 * walk (leak.reason COLLECT_DECODE, leak.reason_frame its frame: records the
 * host's reader reads itself have no reason). A fast-path record that could
 * hold a text candidate by _scan_text's rules is copied to collect_text, each
 * followed by a NUL as the host joins records, for the host's text scan; one
 * that does not fit there, or after which a table is nearly full, goes back as
 * COLLECT_DRAIN (the host drains the tables and the text, and scans the
 * record's text itself). */

#define COLLECT_MAX_MACS 4096
#define COLLECT_MAC_SLOTS 8192 /* power of two, twice COLLECT_MAX_MACS */
#define COLLECT_MAX_V4 8192
#define COLLECT_V4_SLOTS 16384
#define COLLECT_TEXT_BYTES (1024 * 1024)

/* Why a record came back (leak.reason, collect_scratch): the host walks it; or its values were
 * taken (collect_scratch only); or they were and the host must drain the tables. */
enum collect_reason { COLLECT_DECODE = 1, COLLECT_TAKEN = 2, COLLECT_DRAIN = 3 };

static u8 collect_ports[65536 / 8]; /* UDP ports whose payload the host's decoders read */
static u8 collect_macs[COLLECT_MAX_MACS][8];
static u32 collect_v4[COLLECT_MAX_V4];
static int collect_mac_slots[COLLECT_MAC_SLOTS]; /* index + 1; 0 is empty */
static int collect_v4_slots[COLLECT_V4_SLOTS];
static u8 collect_text[COLLECT_TEXT_BYTES];

EXPORT(collect_ports_address) u8 *collect_ports_address(void) { return collect_ports; }
EXPORT(collect_macs_address) u8 *collect_macs_address(void) { return &collect_macs[0][0]; }
EXPORT(collect_v4_address) u32 *collect_v4_address(void) { return collect_v4; }
EXPORT(collect_text_address) u8 *collect_text_address(void) { return collect_text; }

/* The host took the tables' values and the text: they start empty again. */
EXPORT(collect_clear) void collect_clear(void) {
    if (leak.n_macs || leak.n_v4) {
        clear(collect_mac_slots, sizeof collect_mac_slots);
        clear(collect_v4_slots, sizeof collect_v4_slots);
    }
    leak.n_macs = leak.n_v4 = leak.n_text = 0;
}

static void collect_mac(const u8 *mac) {
    u32 low = word(mac), high = (u32)mac[4] | (u32)mac[5] << 8;
    for (u32 slot = finish_hash(mix_word(low, high)) & (COLLECT_MAC_SLOTS - 1);; slot = (slot + 1) & (COLLECT_MAC_SLOTS - 1)) {
        int index = collect_mac_slots[slot];
        if (!index) {
            u8 *to = collect_macs[leak.n_macs++];
            copy(to, mac, 6);
            collect_mac_slots[slot] = (int)leak.n_macs;
            return;
        }
        const u8 *m = collect_macs[index - 1];
        if (word(m) == low && ((u32)m[4] | (u32)m[5] << 8) == high) return;
    }
}

static void collect_address(const u8 *address) {
    u32 value = word(address);
    for (u32 slot = finish_hash(value) & (COLLECT_V4_SLOTS - 1);; slot = (slot + 1) & (COLLECT_V4_SLOTS - 1)) {
        int index = collect_v4_slots[slot];
        if (!index) {
            collect_v4[leak.n_v4++] = value;
            collect_v4_slots[slot] = (int)leak.n_v4;
            return;
        }
        if (collect_v4[index - 1] == value) return;
    }
}

static int collect_decoded(u32 port) { return collect_ports[port >> 3] >> (port & 7) & 1; }

/* The fast path's test on the record's first 43 bytes (`length` is the whole record's); its values
 * go to the tables. Returns 0 when the host must walk the record, else COLLECT_DRAIN when a table
 * is nearly full, else COLLECT_TAKEN. The tables stay under their limits: each record adds two
 * values at most. */
static int collect_fast(i64 linktype, const u8 *p, i64 length) {
    if (linktype != 1 || length <= 42 || p[12] != 8 || p[13] != 0 || p[14] != 0x45 || p[23] != 17 ||
        (p[20] & 0x3F) || p[21] || p[42] < 0x80 || p[42] >= 0xC0 || collect_decoded(be16(p + 34)) ||
        collect_decoded(be16(p + 36)))
        return 0;
    collect_mac(p);
    collect_mac(p + 6);
    collect_address(p + 26);
    collect_address(p + 30);
    return leak.n_macs > COLLECT_MAX_MACS - 2 || leak.n_v4 > COLLECT_MAX_V4 - 2 ? COLLECT_DRAIN : COLLECT_TAKEN;
}

/* A record the host read itself (a pcapng block the walk hands over), its first bytes at
 * scratch[0:min(length, 64)]: the fast path's test and values. Returns COLLECT_DECODE when the
 * host must walk it, else as collect_fast (the host scans every record it reads for text). */
EXPORT(collect_scratch) int collect_scratch(int linktype, int length) {
    int fast = collect_fast(linktype, scratch, length < 64 ? length : 64);
    return fast ? fast : COLLECT_DECODE;
}

static int collect_record(i64 next, i64 linktype, double time, i64 data, i64 caplen, const u8 *buffer) {
    int fast = collect_fast(linktype, buffer + data, caplen);
    if (fast == COLLECT_TAKEN && leak_text_in(buffer, data, data + caplen)) {
        if (caplen < COLLECT_TEXT_BYTES - leak.n_text) {
            copy(collect_text + leak.n_text, buffer + data, caplen);
            collect_text[leak.n_text + caplen] = 0;
            leak.n_text += caplen + 1;
        } else {
            fast = COLLECT_DRAIN;
        }
    }
    if (fast == COLLECT_TAKEN) return 0;
    leak.reason = fast ? COLLECT_DRAIN : COLLECT_DECODE;
    leak.reason_frame = io.frame;
    io.linktype = linktype;
    io.data = data;
    io.caplen = caplen;
    io.time = time;
    return stop(PACKET, next, 0);
}
