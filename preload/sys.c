/* This file implements the shim's allocation-free utilities: a small printf-like formatter,
 * a write loop, stderr logging, anonymous mappings and mmap-backed vectors.
 * Context: SIGSAFE -- no allocation, no stdio, no locks. */
#define _GNU_SOURCE
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

struct out {
    char *buf;
    size_t size, len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void put_str(struct out *o, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        put(o, *s++);
}

static void put_uint(struct out *o, unsigned long long v, unsigned base)
{
    char tmp[32];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        put(o, tmp[--n]);
}

size_t hw_vfmt(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(&o, *f);
            continue;
        }
        f++;
        int longs = 0, sz = 0;
        while (*f == 'l') { longs++; f++; }
        if (*f == 'z') { sz = 1; f++; }
        switch (*f) {
        case 's': put_str(&o, va_arg(ap, const char *)); break;
        case 'c': put(&o, (char)va_arg(ap, int)); break;
        case '%': put(&o, '%'); break;
        case 'p': put_str(&o, "0x"); put_uint(&o, (uintptr_t)va_arg(ap, void *), 16); break;
        case 'd': {
            long long v = sz ? (long long)va_arg(ap, ssize_t) : longs >= 2 ? va_arg(ap, long long)
                        : longs ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0) { put(&o, '-'); put_uint(&o, -(unsigned long long)v, 10); }
            else put_uint(&o, (unsigned long long)v, 10);
            break;
        }
        case 'u': case 'x': {
            unsigned long long v = sz ? va_arg(ap, size_t) : longs >= 2 ? va_arg(ap, unsigned long long)
                                 : longs ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            put_uint(&o, v, *f == 'x' ? 16 : 10);
            break;
        }
        case '\0': f--; break;
        default: put(&o, '%'); put(&o, *f); break;
        }
    }
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len < size ? o.len : (size ? size - 1 : 0);
}

size_t hw_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = hw_vfmt(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void hw_write_all(int fd, const void *buf, size_t len)
{
    int saved = errno;
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        p += n;
        len -= (size_t)n;
    }
    errno = saved;
}

void hw_log(const char *fmt, ...)
{
    char buf[1024];
    size_t n = hw_fmt(buf, sizeof buf, "heapwatch: ");
    va_list ap;
    va_start(ap, fmt);
    n += hw_vfmt(buf + n, sizeof buf - n - 1, fmt, ap);
    va_end(ap);
    buf[n++] = '\n';
    hw_write_all(2, buf, n);
}

/* The lowest number the shim's descriptors take: 32 below the soft limit when it is at least
 * 256, below 1024 whatever the limit (a table of a million descriptors would cost the kernel
 * memory); 0 (no move) under a smaller limit, where every number may be the program's. Read
 * once: a program that lowers its limit later leaves ours where they are. */
static int fd_floor(void)
{
    static int floor = -1;
    if (floor < 0) {
        struct rlimit rl;
        long soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 1024;
        if (soft > 1024)
            soft = 1024;
        floor = soft >= 256 ? (int)soft - 32 : 0;
    }
    return floor;
}

int hw_fd_high(int fd)
{
    int floor = fd_floor();
    if (fd < 0 || !floor || fd >= floor)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (high < 0)   /* EBADF: a double close of the program's took it already; else the top is full */
        return errno == EBADF ? -1 : fd;
    close(fd);
    return high;
}

bool hw_pipe_high(int fds[2], int flags)
{
    if (pipe2(fds, flags) < 0) {
        fds[0] = fds[1] = -1;
        return false;
    }
    fds[0] = hw_fd_high(fds[0]);
    fds[1] = hw_fd_high(fds[1]);
    if (fds[0] >= 0 && fds[1] >= 0)
        return true;
    for (int k = 0; k < 2; k++) {
        if (fds[k] >= 0)
            close(fds[k]);
        fds[k] = -1;
    }
    errno = EBADF;
    return false;
}

bool hw_read_word_checked(uintptr_t addr, uintptr_t *out)
{
    int saved = errno;
    struct iovec local = { out, sizeof *out }, remote = { (void *)addr, sizeof *out };
    long n = syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote, 1L, 0L);
    errno = saved;
    return n == (long)sizeof *out;
}

size_t hw_read_file(const char *path, char *buf, size_t size)
{
    /* Moved up at once, though it is closed before this returns: while it sat at a low
     * number, a program's close of a stale number of its own could land on it, the program
     * make a new descriptor there, and our close take that one from it (bash lost its pipe to
     * cat so, under a storm of snapshot signals). Moved, the window is one fcntl long. */
    int fd = hw_fd_high(open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0) {
        buf[0] = '\0';
        return 0;
    }
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    return n;
}

void hw_self_exe(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    buf[n > 0 ? n : 0] = '\0';
}

static void *map_anonymous(size_t len, int extra_flags)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | extra_flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *hw_map(size_t len) { return map_anonymous(len, 0); }
void *hw_map_populated(size_t len) { return map_anonymous(len, MAP_POPULATE); }

void hw_unmap(void *p, size_t len)
{
    if (p)
        munmap(p, len);
}

void *hw_vec_grow_push(struct hw_vec *v)
{
    size_t alloc = v->alloc ? v->alloc * 2 : (1u << 16) / v->elem + 1;
    void *p = v->data ? mremap(v->data, v->alloc * v->elem, alloc * v->elem, MREMAP_MAYMOVE) : hw_map(alloc * v->elem);
    if (!p || p == MAP_FAILED)
        return NULL;
    v->data = p;
    v->alloc = alloc;
    return v->data + v->elem * v->nr++;
}

static void sift_by_first_word(char *base, size_t elem, size_t root, size_t n, char *tmp)
{
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= n)
            return;
        uintptr_t kc, kc1, kr;
        memcpy(&kc, base + c * elem, sizeof kc);
        if (c + 1 < n) {
            memcpy(&kc1, base + (c + 1) * elem, sizeof kc1);
            if (kc1 > kc)
                c++, kc = kc1;
        }
        memcpy(&kr, base + root * elem, sizeof kr);
        if (kr >= kc)
            return;
        memcpy(tmp, base + root * elem, elem);
        memcpy(base + root * elem, base + c * elem, elem);
        memcpy(base + c * elem, tmp, elem);
        root = c;
    }
}

void hw_sort_by_first_word(void *base, size_t n, size_t elem)
{
    char tmp[64], *b = base;
    if (elem > sizeof tmp)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_by_first_word(b, elem, i, n, tmp);
    for (size_t end = n; end-- > 1;) {
        memcpy(tmp, b, elem);
        memcpy(b, b + end * elem, elem);
        memcpy(b + end * elem, tmp, elem);
        sift_by_first_word(b, elem, 0, end, tmp);
    }
}

void hw_vec_clear(struct hw_vec *v) { v->nr = 0; }

void hw_vec_release(struct hw_vec *v)
{
    if (v->data)
        munmap(v->data, v->alloc * v->elem);
    v->data = NULL;
    v->nr = v->alloc = 0;
}

uint64_t hw_now_ns(int clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct timespec hw_deadline_in_ms(int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

int hw_gettid(void) { return (int)syscall(SYS_gettid); }
