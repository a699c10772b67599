/* This file implements the event log's writer (eventwriter.h). */
#define _GNU_SOURCE
#include "eventwriter.h"

#include <sys/mman.h>
#include <zlib.h>
#include "events.h"
#include "output.h"
#include "sink.h"
#include "sys.h"

/* A chunk could not be written (a full disk, a closed descriptor) or a drain ran out of
 * memory: the log ends there. Records are deltas from the one before in their thread's
 * stream, so chunks written after a lost one would read back as wrong addresses, times and
 * stacks; the reader sees a log that did not end with the process (no event_log_end). What
 * threads still queue is drained and dropped. */
static bool log_ended;

static void end_log(const char *why, const char *message)
{
    log_ended = true;
    hw_events_on = false;   /* the threads stop recording: a plain flag, read by the hooks */
    hw_log("cannot write the event log to '%s' (%s%s%s); it ends here: events after a lost chunk could not be"
           " read back", hw_output_path(), why, message[0] ? ": " : "", message);
}

/* Events arriving faster than this many bytes of records a second are stored as they are:
 * compressing them would take the writer more than about a fifth of a CPU (Huffman coding
 * runs near 90 MB/s), and a writer that falls behind makes the program wait for it at exit
 * (the bench's full-mode churn produced 80 MB/s: with every chunk compressed, its run took
 * 1.7 times as long). Records take about 5 bytes an event as they are, 4 compressed. */
#define COMPRESS_MAX_BYTES_PER_S (16u << 20)

/* zlib (RFC 1950) of n bytes of records into out (cap bytes); its length, 0 on failure.
 * Huffman coding alone: the records are already delta-coded varints, where string matching
 * finds little. On the bench's full-mode log it gives 5.0 bytes an event at 88 MB/s, where
 * level 1 gives 4.7 at 39 MB/s and level 6 4.6 at 10 MB/s: the writer's CPU is what events
 * cost a program on a machine with few cores. */
static size_t deflate_records(const void *in, size_t n, void *out, size_t cap)
{
    z_stream zs = { 0 };
    if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15, 8, Z_HUFFMAN_ONLY) != Z_OK)
        return 0;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    size_t len = rc == Z_STREAM_END ? zs.total_out : 0;
    deflateEnd(&zs);
    return len;
}

/* A drain goes out in chunks of about this many bytes of records, each its own transaction:
 * a lagging writer took everything waiting in one (a full-mode log of three busy threads gave
 * drains of 240 MB), held the sink lock (an _exit waits for it) that long, and needed as much
 * memory again to copy it. A snapshot still waits for the whole drain (write_lock). */
#define PIECE_BYTES (4u << 20)

/* 0, or why the chunk could not be written (hw_sink_failure's code). */
static int64_t write_piece(const struct hw_ev_drain *d, const struct hw_ev_piece *p, bool compress, void *z,
                        size_t cap, bool final)
{
    size_t len = compress ? deflate_records(p->raw.data, p->raw.nr, z, cap) : 0;   /* 0: stored as they are */
    struct hw_ev_chunk c = {
        .start_ticks = p->start_ticks, .start_ns = p->start_ns, .end_ticks = p->end_ticks, .end_ns = p->end_ns,
        .events = p->events, .raw_bytes = p->raw.nr, .codec = len ? 1 : 0,
        .data = len ? z : (const void *)p->raw.data, .len = len ? len : p->raw.nr,
    };
    if (!p->events)
        c = (struct hw_ev_chunk){ .end_ns = d->end_ns };   /* only to end the log */
    return hw_sink_write_events(hw_output_path(), &c, final);
}

/* The piece and its compressed copy, kept from one drain to the next while no bigger than
 * this: mapping them afresh for every drain faulted in every page of 4 MiB twice a drain,
 * a tenth of the writer's time on the bench's full-mode churn. A fork child forgets them: a
 * fork may come while the writer grows the piece (mremap moves it before piece_raw says so),
 * and they are not even copied into it (MADV_DONTFORK, once mapped). */
#define KEEP_BYTES (2 * PIECE_BYTES + (1u << 20))
static struct hw_vec piece_raw = { .elem = 1 };
static void *zbuf;
static size_t zcap;

void hw_events_writer_atfork_child(void)
{
    piece_raw = (struct hw_vec){ .elem = 1 };
    zbuf = NULL;
    zcap = 0;
}

static void keep_from_forks(void *p, size_t len)
{
    if (p)
        madvise(p, len, MADV_DONTFORK);
}

void hw_events_write(bool final, bool quick)
{
    if (!hw_events_on && !log_ended)
        return;
    hw_guard_enter();
    struct hw_ev_drain d;
    hw_events_drain_begin(&d);
    if (!log_ended && (d.events || final) && (hw_output_ready() || (d.events && hw_output_ensure()))) {
        bool compress = !quick && (double)d.bytes <= COMPRESS_MAX_BYTES_PER_S * ((double)d.span_ns / 1e9);
        struct hw_ev_piece p = { .raw = piece_raw };
        while (hw_events_drain_piece(&d, &p, PIECE_BYTES)) {
            if (!p.events && !(final && p.last))
                continue;
            if (compress && compressBound((uLong)p.raw.nr) > zcap) {   /* grown to the largest piece's bound */
                if (zbuf)
                    hw_unmap(zbuf, zcap);
                zcap = compressBound((uLong)p.raw.nr);
                zbuf = hw_map(zcap);
                if (!zbuf)
                    zcap = 0;
                keep_from_forks(zbuf, zcap);
            }
            int64_t rc = write_piece(&d, &p, compress && zbuf, zbuf, zcap, final && p.last);
            if (rc < 0) {
                end_log(hw_sink_failure(rc), hw_sink_last_message());
                break;
            }
        }
        if (d.failed && !log_ended)
            end_log("out of memory", "");
        if (zbuf && (zcap > KEEP_BYTES || final)) {
            hw_unmap(zbuf, zcap);
            zbuf = NULL;
            zcap = 0;
        }
        if (p.raw.alloc > KEEP_BYTES || final)
            hw_vec_release(&p.raw);
        else if (p.raw.data != piece_raw.data)   /* mapped or moved by this drain */
            keep_from_forks(p.raw.data, p.raw.alloc);
        piece_raw = p.raw;
    }
    hw_events_drain_end(&d);
    hw_guard_leave();
}
