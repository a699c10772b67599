/* A library with a fork handler of its own: its prepare handler takes lib_mutex, which its
 * users hold while they allocate. Its constructor runs before the shim's and registers the
 * handler first (t7000 links progs/forklock/main.c against it). */
#include <pthread.h>

pthread_mutex_t lib_mutex = PTHREAD_MUTEX_INITIALIZER;
static void lock(void) { pthread_mutex_lock(&lib_mutex); }
static void unlock(void) { pthread_mutex_unlock(&lib_mutex); }
__attribute__((constructor)) static void init(void) { pthread_atfork(lock, unlock, unlock); }
