/* This file implements the event log's writer (eventwriter.h). */
#define _GNU_SOURCE
#include "eventwriter.h"

#include <pthread.h>
#include <zlib.h>
#include "events.h"
#include "output.h"
#include "sink.h"
#include "sys.h"

/* The helper and the exiting thread may both write: one drain at a time, in order. */
static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER;
static bool failure_reported;

void hw_events_write(bool final)
{
    if (!hw_events_on)
        return;
    hw_guard_enter();
    pthread_mutex_lock(&writer_lock);
    struct hw_ev_drain d;
    hw_events_drain(&d);
    if (!d.events && final && hw_output_ready()) {
        struct hw_ev_chunk c = { .end_ns = d.end_ns };
        hw_sink_write_events(hw_output_path(), &c, true);
    } else if (d.events && hw_output_ready()) {
        uLongf len = compressBound((uLong)d.raw.nr);
        void *z = hw_map(len);
        /* Level 1: three quarters of level 6's ratio on these records at a fifth of the CPU. */
        if (z && compress2(z, &len, (const Bytef *)d.raw.data, (uLong)d.raw.nr, 1) == Z_OK) {
            struct hw_ev_chunk c = {
                .start_ticks = d.start_ticks, .start_ns = d.start_ns, .end_ticks = d.end_ticks, .end_ns = d.end_ns,
                .events = d.events, .raw_bytes = d.raw.nr, .data = z, .len = len,
            };
            if (hw_sink_write_events(hw_output_path(), &c, final) < 0 && !failure_reported) {
                failure_reported = true;
                hw_log("cannot write the event log to '%s' (%s); events are being lost", hw_output_path(),
                       hw_sink_last_message());
            }
        }
        if (z)
            hw_unmap(z, compressBound((uLong)d.raw.nr));
    }
    hw_vec_release(&d.raw);
    pthread_mutex_unlock(&writer_lock);
    hw_guard_leave();
}

void hw_events_writer_atfork_child(void)
{
    pthread_mutex_init(&writer_lock, NULL);
}
