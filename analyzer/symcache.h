/* symcache.h: symbolization state for one database (symcache.c): its modules, the locations
 * resolved so far, and the on-disk cache (table cache_frame_v2, written when the database is
 * writable) so the next report starts warm. struct location is in profile.h. */
#ifndef HW_SYMCACHE_H
#define HW_SYMCACHE_H

#include <stdbool.h>
#include <stdint.h>

struct hwdb;
struct location;
struct symcache;

struct symcache *symcache_open(struct hwdb *db);
void symcache_close(struct symcache *sc);   /* stores new cache rows, then frees */
struct location *symcache_location(struct symcache *sc, uint64_t pc);
/* Whether any module of the stacks had no debug info (for a warning). Only locations resolved
 * through sc count, not those its database's cache held. */
bool symcache_missing_debug(struct symcache *sc, const char **example);
/* Start symcache_missing_debug over: it names the first such module among the locations asked
 * for from now on, as a new symcache of the same database would (for a second snapshot that
 * shares sc). */
void symcache_forget_missing_debug(struct symcache *sc);

#endif
