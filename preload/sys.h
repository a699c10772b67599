/* sys.h: allocation-free formatting, logging and memory mapping for the shim.
 * Everything here is HW_SIGSAFE unless said otherwise. */
#ifndef HW_SYS_H
#define HW_SYS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "hw.h"

/* Format into buf (always NUL-terminated, truncating). Supports %s %d %u %ld %lu %lld %llu
 * %zu %zd %x %lx %llx %p %c %%; no widths. Returns the length written. */
size_t hw_fmt(char *buf, size_t size, const char *fmt, ...) HW_SIGSAFE
    __attribute__((format(printf, 3, 4)));
size_t hw_vfmt(char *buf, size_t size, const char *fmt, va_list ap) HW_SIGSAFE;
/* write(2) until done or a real error; keeps errno. */
void hw_write_all(int fd, const void *buf, size_t len) HW_SIGSAFE;
/* "heapwatch: <message>\n" on stderr, no allocation. */
void hw_log(const char *fmt, ...) HW_SIGSAFE __attribute__((format(printf, 1, 2)));

/* Read the file at path into buf (at most size - 1 bytes, NUL-terminated); the length read,
 * 0 if it cannot be opened. For /proc files, which report no size. */
size_t hw_read_file(const char *path, char *buf, size_t size) HW_SIGSAFE;
/* Read the word at addr into *out; false (errno kept) if it is not mapped readable, instead
 * of a fault: process_vm_readv(2) of the calling process itself. */
bool hw_read_word_checked(uintptr_t addr, uintptr_t *out) HW_SIGSAFE;
/* fd moved up to a number programs do not use (the top of the descriptor table, below its
 * soft limit), and fd closed; fd itself when it cannot move or is already there. The shim's
 * descriptors live there: a program that closes a descriptor twice (bash does, harmless in a
 * single thread) would otherwise close one the shim's helper thread opened meanwhile under
 * the same number, and the shim would then close the program's next file of that number. */
int hw_fd_high(int fd) HW_SIGSAFE;
/* pipe2(fds, flags) with both ends moved up (hw_fd_high); false with errno, EBADF when an end
 * was closed by the program before it moved (a double close of its own: pipe2 itself never
 * says EBADF), and then nothing of the pipe is left open. */
bool hw_pipe_high(int fds[2], int flags) HW_SIGSAFE;

/* The executable's path (readlink /proc/self/exe), NUL-terminated; "" if unknown. */
void hw_self_exe(char *buf, size_t size) HW_SIGSAFE;

/* Anonymous private mapping (NORESERVE); NULL on failure. */
void *hw_map(size_t len) HW_SIGSAFE;
void hw_unmap(void *p, size_t len) HW_SIGSAFE;
/* The same, with its pages allocated now (MAP_POPULATE): a snapshot's walk fills tens of
 * megabytes at once, and the kernel allocates them faster in one go than a fault at a time.
 * (Transparent huge pages were faster still on a good run, but stalled for compaction by
 * 100 ms and more on others.) */
void *hw_map_populated(size_t len) HW_SIGSAFE;

/* A growable vector of fixed-size elements in its own mapping (never the real malloc). */
struct hw_vec {
    char *data;
    size_t elem, nr, alloc;
};
/* Append one element; returns its address or NULL when the mapping cannot grow. */
void *hw_vec_grow_push(struct hw_vec *v) HW_SIGSAFE;
static inline void *hw_vec_push(struct hw_vec *v)
{
    if (v->nr < v->alloc)
        return v->data + v->elem * v->nr++;
    return hw_vec_grow_push(v);
}
void hw_vec_clear(struct hw_vec *v) HW_SIGSAFE;
void hw_vec_release(struct hw_vec *v) HW_SIGSAFE;
/* Heapsort n elements of elem bytes (at most 64) by their first word, ascending: in place,
 * no recursion, no allocation (a stopped world, a snapshot's fork child). */
void hw_sort_by_first_word(void *base, size_t n, size_t elem) HW_SIGSAFE;

uint64_t hw_now_ns(int clock) HW_SIGSAFE;
/* CLOCK_REALTIME ms milliseconds from now: the deadline pthread_mutex_timedlock takes. */
struct timespec hw_deadline_in_ms(int ms) HW_SIGSAFE;
int hw_gettid(void) HW_SIGSAFE;

#endif
