/* demo_service.c: a small request-handling "service" with the four kinds of heap behaviour a
 * heap profiler must tell apart. It serves ROUNDS rounds of 1000 requests and, after each,
 * asks heapwatch for a snapshot (a no-op without the shim). With "wait" as second argument it
 * instead runs until SIGTERM, so snapshots can come from `kill -USR2`.
 *
 *   session_open   leaks one 96-byte session every 10 requests        -> grows steadily (leak)
 *   index_add      appends every request's key to an index, never trimmed -> grows steadily
 *   cache_put      LRU cache of at most 2000 entries of 256 bytes        -> grows, then plateaus
 *   batch_fill     a batch of 0, 300 or 600 blocks of 512 bytes, by round  -> sawtooth (churn)
 *   parse_request  temporary buffers freed before the request ends      -> alloc only, inuse 0
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "heapwatch.h"

struct session {
    char user[64];
    long id;
    struct session *next_unused[3];
};

struct cache_entry {
    long key;
    char value[248];
};

#define CACHE_MAX 2000
static struct cache_entry *cache[CACHE_MAX];
static long cache_next;

static char **index_keys;
static size_t index_nr, index_alloc;

static void *batch[600];
static volatile sig_atomic_t stop;

__attribute__((noinline)) static struct session *session_open(long id)
{
    struct session *s = calloc(1, sizeof *s);
    snprintf(s->user, sizeof s->user, "user-%ld", id);
    s->id = id;
    return s;  /* the caller forgets it: a leak */
}

__attribute__((noinline)) static void index_add(long id)
{
    if (index_nr == index_alloc) {
        index_alloc = index_alloc ? index_alloc * 2 : 1024;
        index_keys = realloc(index_keys, index_alloc * sizeof *index_keys);
    }
    char key[32];
    snprintf(key, sizeof key, "k%011ld", id);  /* 12 chars + NUL = 13 bytes */
    index_keys[index_nr++] = strdup(key);
}

__attribute__((noinline)) static void cache_put(long key)
{
    long slot = cache_next++ % CACHE_MAX;
    free(cache[slot]);  /* evict the oldest */
    cache[slot] = malloc(sizeof(struct cache_entry));
    cache[slot]->key = key;
    memset(cache[slot]->value, 'v', sizeof cache[slot]->value);
}

__attribute__((noinline)) static void batch_fill(int round)
{
    for (int i = 0; i < 600; i++) {
        free(batch[i]);
        batch[i] = NULL;
    }
    for (int i = 0; i < 300 * (round % 3); i++)
        batch[i] = malloc(512);
}

__attribute__((noinline)) static long parse_request(long id)
{
    char *line = malloc(200), *copy;
    snprintf(line, 200, "GET /item/%ld HTTP/1.1", id);
    copy = strdup(line);
    long sum = (long)strlen(copy);
    free(copy);
    free(line);
    return sum;
}

static long handle(long id)
{
    long n = parse_request(id);
    index_add(id);
    cache_put(id);
    if (id % 10 == 0)
        session_open(id);
    return n;
}

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 8;
    int wait_mode = argc > 2 && !strcmp(argv[2], "wait");
    long served = 0, checksum = 0;
    signal(SIGTERM, on_term);
    for (int round = 1; wait_mode ? !stop : round <= rounds; round++) {
        for (int i = 0; i < 1000; i++)
            checksum += handle(served++);
        batch_fill(round);
        if (wait_mode) {
            usleep(100 * 1000);
        } else {
            char label[32];
            snprintf(label, sizeof label, "round %d", round);
            HEAPWATCH_SNAPSHOT(label);
        }
    }
    printf("served %ld requests, checksum %ld\n", served, checksum);
    return 0;
}
