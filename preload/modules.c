/* This file implements the module registry of modules.h.
 *
 * A refresh walks the link map with dl_iterate_phdr and, inside its callback (where the
 * loader lock is held for the whole walk, which orders walks against each other and against
 * dlopen and dlclose), finds or adds each module under the registry's spin lock. The walk
 * takes its number in its first callback, so numbers follow the order of the walks, and
 * stamps each module it sees with it (a stamp only grows). After the walk, loaded entries
 * with an older stamp are marked unloaded: a later walk that overlaps this sweep has stamped
 * what it saw, and what it added, with a bigger number, so the sweep never unloads a module
 * that is there.
 * Memory: the entries and their paths live in the shim's own mappings, never malloc.
 * The registry's ELF reading (program headers, build-id notes) is all here, and nothing of
 * SQLite is: sink.c writes the entries to the database.
 * Context: guarded (refresh), SIGSAFE (readers). */
#define _GNU_SOURCE
#include "modules.h"
#include "roots.h"

#include <dlfcn.h>
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "spin.h"
#include "real.h"
#include "sys.h"
#include "unwind.h"

#define MAX_MODULES 8192       /* loads in a process's life: ~4 MiB of address space reserved */
#define PATHS_SIZE (2u << 20)

static struct hw_module *mods;
static _Atomic uint32_t nr_mods;
static char *paths;
static size_t paths_used;
static _Atomic int lock;
static uint64_t refreshes;  /* under lock */

bool hw_modules_init(void)
{
    mods = hw_map(MAX_MODULES * sizeof *mods);
    paths = hw_map(PATHS_SIZE);
    return mods && paths;
}

uint32_t hw_modules_count(void)
{
    return atomic_load_explicit(&nr_mods, memory_order_acquire);
}

const struct hw_module *hw_modules_at(uint32_t i)
{
    return i < hw_modules_count() ? &mods[i] : NULL;
}

const struct hw_module *hw_modules_loaded(uintptr_t bias)
{
    for (uint32_t i = hw_modules_count(); i-- > 0;)
        if (mods[i].bias == bias && atomic_load_explicit(&mods[i].loaded, memory_order_relaxed))
            return &mods[i];
    return NULL;
}

void hw_modules_lock(void) { hw_spin_lock(&lock); }
void hw_modules_unlock(void) { hw_spin_unlock(&lock); }

/* A copy of s in the path area, or NULL when it is full. Lock held. */
static const char *keep_path(const char *s)
{
    size_t len = strlen(s) + 1;
    if (len > PATHS_SIZE - paths_used)
        return NULL;
    char *p = paths + paths_used;
    memcpy(p, s, len);
    paths_used += len;
    return p;
}

static void build_id_hex(const struct dl_phdr_info *info, char *out, size_t size)
{
    out[0] = '\0';
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *nh;
            const unsigned char *desc = (const unsigned char *)name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
                size_t n = 0;
                for (unsigned k = 0; k < nh->n_descsz && n + 3 <= size; k++)
                    n += hw_fmt(out + n, size - n, "%x%x", desc[k] >> 4, desc[k] & 15);
                return;
            }
            p = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
}

/* The executable's path, read once: a binary replaced while it runs would read back as
 * "... (deleted)" and look like another module. */
static char exe_path[PATH_MAX];

/* The module's path as the database names it. */
static void module_path(const struct dl_phdr_info *info, char *path, size_t size)
{
    const char *name = info->dlpi_name;
    if (!name || !*name) {
        if (!exe_path[0])
            hw_self_exe(exe_path, sizeof exe_path);
        hw_fmt(path, size, "%s", exe_path);
    }
    else if (strstr(name, "linux-vdso") || strstr(name, "linux-gate"))
        hw_fmt(path, size, "[vdso]");
    else if (name[0] != '/') {
        /* dlopen("lib/x.so"): the loader keeps the name as given; the analyzer, run from
         * elsewhere, needs it whole. The directory is the one now, as the loader's was. */
        char cwd[PATH_MAX];
        if (syscall(SYS_getcwd, cwd, sizeof cwd) > 0)
            hw_fmt(path, size, "%s/%s", cwd, name[0] == '.' && name[1] == '/' ? name + 2 : name);
        else
            hw_fmt(path, size, "%s", name);
    } else
        hw_fmt(path, size, "%s", name);
}

/* Fill a new entry from info. Lock held. */
static void fill(struct hw_module *m, const struct dl_phdr_info *info, const char *path)
{
    m->bias = info->dlpi_addr;
    m->path = path;
    m->text_lo = UINTPTR_MAX;
    m->text_hi = 0;
    m->nr_segments = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + p->p_vaddr, hi = lo + p->p_memsz;
        if (p->p_flags & PF_X) {
            m->text_lo = lo < m->text_lo ? lo : m->text_lo;
            m->text_hi = hi > m->text_hi ? hi : m->text_hi;
        }
        if (m->nr_segments < HW_MODULE_SEGMENTS) {
            m->segment[m->nr_segments].lo = lo;
            m->segment[m->nr_segments].hi = hi;
            m->segment[m->nr_segments].flags = (uint8_t)(((p->p_flags & PF_R) ? 4 : 0) | ((p->p_flags & PF_W) ? 2 : 0) |
                                                         ((p->p_flags & PF_X) ? 1 : 0));
            m->nr_segments++;
        }
    }
    if (!m->text_hi)
        m->text_lo = 0;
    m->tls_modid = info->dlpi_tls_modid;
    m->tls_size = 0;
    m->tls_offset = 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS)
            m->tls_size = info->dlpi_phdr[i].p_memsz;
    /* dlpi_tls_data is the calling thread's block (NULL if it has none yet). Below the
     * thread pointer within the static TLS area, it is static TLS (x86-64: variant II),
     * at the same distance in every thread; anywhere else it was malloc'd for a dlopen. */
    uintptr_t tp = (uintptr_t)__builtin_thread_pointer(), data = (uintptr_t)info->dlpi_tls_data;
    if (m->tls_modid && data && data < tp && tp - data <= hw_roots_static_tls_size())
        m->tls_offset = tp - data;
    build_id_hex(info, m->build_id, sizeof m->build_id);
}

static int refresh_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uint64_t *stamp_of_walk = arg;
    char path[PATH_MAX];
    module_path(info, path, sizeof path);
    hw_record_enter();  /* a stop must not catch an entry half-written */
    hw_spin_lock(&lock);
    if (!*stamp_of_walk)
        *stamp_of_walk = ++refreshes;
    uint64_t stamp = *stamp_of_walk;
    uint32_t n = hw_modules_count(), i;
    for (i = n; i-- > 0;)
        if (mods[i].bias == info->dlpi_addr && atomic_load(&mods[i].loaded) && !strcmp(mods[i].path, path))
            break;
    if (i != UINT32_MAX) {
        if (atomic_load(&mods[i].seen) < stamp)
            atomic_store(&mods[i].seen, stamp);
    } else if (n < MAX_MODULES) {
        const char *kept = keep_path(path);
        if (kept) {
            struct hw_module *m = &mods[n];
            fill(m, info, kept);
            m->seq = n + 1;
            atomic_store(&m->seen, stamp);
            atomic_store(&m->loaded, true);
            atomic_store_explicit(&nr_mods, n + 1, memory_order_release);
        }
    }
    hw_spin_unlock(&lock);
    hw_record_leave();
    return 0;
}

unsigned hw_modules_refresh(void)
{
    if (!mods)
        return 0;
    uint64_t stamp = 0;
    dl_iterate_phdr(refresh_cb, &stamp);
    if (!stamp)
        return 0;
    unsigned unloaded = 0;
    hw_record_enter();
    hw_spin_lock(&lock);
    for (uint32_t i = 0; i < hw_modules_count(); i++) {
        if (atomic_load(&mods[i].loaded) && atomic_load(&mods[i].seen) < stamp) {
            atomic_store(&mods[i].loaded, false);
            unloaded++;
        }
    }
    hw_spin_unlock(&lock);
    hw_record_leave();
    if (unloaded)
        hw_unwind_forget();  /* another module may be mapped where the unloaded one was */
    return unloaded;
}

/* ---- dlclose ---------------------------------------------------------------------------- */

/* The registry learns of what a dlclose unloads before it goes: a refresh before the real
 * dlclose records every module loaded since the last one (dlopen is not interposed: glibc
 * searches the RUNPATH of dlopen's caller, which would then be the shim), and one after it
 * marks what went. The unwinder's cached rules may describe code that is gone. */
HW_EXPORT int dlclose(void *handle)
{
    static int (*real)(void *);
    if (!real && !(real = (int (*)(void *))hw_real_next("dlclose")))
        return -1;
    bool active = atomic_load(&hw_state) == HW_ACTIVE;
    if (active) {
        hw_guard_enter();
        hw_modules_refresh();
        hw_guard_leave();
    }
    int rc = real(handle);
    if (active) {
        hw_guard_enter();
        hw_modules_refresh();
        hw_guard_leave();
    }
    return rc;
}
