/* forklock/main.c: forks while other threads allocate holding a lock that fork takes after the
 * shim's prepare handler has closed its gate (forkgate.h), found by a review:
 *   lib    a worker allocates and frees holding lib_mutex, which the library's own prepare
 *          handler (registered before the shim's, so run after it) takes;
 *   stdio  a reader in getline (a stream's lock held, malloc inside) and a thread flushing
 *          every stream (stdio's list lock held, waiting for the stream's), which glibc's
 *          fork takes after every handler.
 * `main lib|stdio FORKS FILE`: forks FORKS times (each child _exits at once), prints "done". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern pthread_mutex_t lib_mutex;
static FILE *input;

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lib_mutex);
        for (int i = 0; i < 50; i++) {
            void *volatile p = malloc(64);
            free(p);
        }
        pthread_mutex_unlock(&lib_mutex);
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    for (;;) {
        char *line = NULL;
        size_t n = 0;
        if (getline(&line, &n, input) < 0)
            rewind(input);
        free(line);
    }
    return NULL;
}

static void *flusher(void *arg)
{
    (void)arg;
    for (;;)
        fflush(NULL);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    pthread_t t, u;
    if (!strcmp(argv[1], "lib")) {
        pthread_create(&t, NULL, worker, NULL);
    } else {
        input = fopen(argv[3], "r");
        if (!input)
            return 2;
        pthread_create(&t, NULL, reader, NULL);
        pthread_create(&u, NULL, flusher, NULL);
    }
    int forks = atoi(argv[2]);
    for (int i = 0; i < forks; i++) {
        pid_t c = fork();
        if (c == 0)
            _exit(0);
        waitpid(c, NULL, 0);
    }
    puts("done");
    fflush(stdout);
    _exit(0);
}
