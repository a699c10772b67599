/* This file implements the event log's writer (eventwriter.h). */
#define _GNU_SOURCE
#include "eventwriter.h"

#include <zlib.h>
#include "events.h"
#include "output.h"
#include "sink.h"
#include "sys.h"

static bool failure_reported;

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

void hw_events_write(bool final)
{
    if (!hw_events_on)
        return;
    hw_guard_enter();
    struct hw_ev_drain d;
    hw_events_drain(&d);
    if (!d.events && final && hw_output_ready()) {
        struct hw_ev_chunk c = { .end_ns = d.end_ns };
        hw_sink_write_events(hw_output_path(), &c, true);
    } else if (d.events && hw_output_ready()) {
        bool compress = (double)d.raw.nr <= COMPRESS_MAX_BYTES_PER_S * ((double)d.span_ns / 1e9);
        size_t cap = compress ? compressBound((uLong)d.raw.nr) : 0;
        void *z = compress ? hw_map(cap) : NULL;
        size_t len = z ? deflate_records(d.raw.data, d.raw.nr, z, cap) : 0;   /* 0: stored as they are */
        {
            struct hw_ev_chunk c = {
                .start_ticks = d.start_ticks, .start_ns = d.start_ns, .end_ticks = d.end_ticks, .end_ns = d.end_ns,
                .events = d.events, .raw_bytes = d.raw.nr, .codec = len ? 1 : 0,
                .data = len ? z : (const void *)d.raw.data, .len = len ? len : d.raw.nr,
            };
            if (hw_sink_write_events(hw_output_path(), &c, final) < 0 && !failure_reported) {
                failure_reported = true;
                hw_log("cannot write the event log to '%s' (%s); events are being lost", hw_output_path(),
                       hw_sink_last_message());
            }
        }
        if (z)
            hw_unmap(z, cap);
    }
    hw_vec_release(&d.raw);
    hw_guard_leave();
}
