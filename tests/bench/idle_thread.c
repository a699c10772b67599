/* idle_thread.c: a preloaded library that starts one thread, which sleeps for good: the bench's
 * "thread" configuration, the native program with nothing but a second thread. glibc's malloc
 * and free skip their locks and atomic operations while a process has a single thread
 * (SINGLE_THREAD_P), and a process never gets that back once a second thread has started; the
 * event log's writer is such a thread, so this measures the part of "record with events" that
 * glibc's locking takes on a single-threaded workload. */
#include <pthread.h>
#include <unistd.h>

static void *sleep_for_good(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

__attribute__((constructor)) static void start_idle_thread(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, sleep_for_good, NULL) == 0)
        pthread_detach(t);
}
