/* modules.h: every module the process has had loaded, in the order it was first seen: path,
 * build id, load bias, executable range and PT_LOAD segments, and whether it is loaded now.
 * Kept current at start, around every dlclose (interposed; dlopen is not, as glibc searches
 * the RUNPATH of dlopen's caller) and at each snapshot, so that the database can name the frames of a library unloaded long before a
 * snapshot (heaptrack records module loads as events for the same reason). Entries are never
 * removed: a library loaded again is a new entry.
 * Entries are read without a lock by a stopped world or its fork child (every update is a
 * record section, stw.h) and by the sink. Context of the readers: SIGSAFE. */
#ifndef HW_MODULES_H
#define HW_MODULES_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"

#define HW_MODULE_SEGMENTS 16

struct hw_module {
    uint32_t seq;                 /* 1, 2, ...: this load, unique in the process's life */
    _Atomic bool loaded;          /* still in the link map at the last refresh */
    uintptr_t bias;               /* dlpi_addr */
    uintptr_t text_lo, text_hi;   /* its executable PT_LOADs; text_hi = 0: no code */
    const char *path;             /* absolute path; "[vdso]"; the executable's real path */
    char build_id[65];            /* hex NT_GNU_BUILD_ID, "" if none */
    unsigned nr_segments;
    struct { uintptr_t lo, hi; uint8_t flags; } segment[HW_MODULE_SEGMENTS];  /* PF_R 4|PF_W 2|PF_X 1 */
    /* Its TLS, for naming __thread variables: dlpi_tls_modid (0: none), PT_TLS's p_memsz,
     * and for a module in static TLS the distance from the thread pointer down to its block
     * (the same in every thread; 0 when its blocks are dynamic: dlopen'd, malloc'd per thread
     * and found through the DTV). */
    size_t tls_modid, tls_size;
    uintptr_t tls_offset;
    _Atomic uint64_t seen;        /* the refresh that last saw it loaded */
};

/* Map the registry; once, guarded, at initialisation. False if it cannot be mapped. */
bool hw_modules_init(void);
/* Bring the registry up to date with the link map: new modules are added, ones no longer
 * there are marked unloaded; returns how many were unloaded. It runs in the application's
 * thread (dlopen/dlclose wrappers) or the snapshotting one, guarded; its only lock is taken
 * inside dl_iterate_phdr's callback, where the loader lock already orders refreshes, so it
 * adds no lock a thread holding the loader lock could wait for. */
unsigned hw_modules_refresh(void);
/* The number of entries, and entry i (0-based). Context: SIGSAFE. */
uint32_t hw_modules_count(void) HW_SIGSAFE;
const struct hw_module *hw_modules_at(uint32_t i) HW_SIGSAFE;
/* The loaded entry with this load bias (unique among loaded modules), or NULL. */
const struct hw_module *hw_modules_loaded(uintptr_t bias) HW_SIGSAFE;
/* Hold the registry still across fork (prepare; parent and child release it). */
void hw_modules_lock(void);
void hw_modules_unlock(void);

#endif
