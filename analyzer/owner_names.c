/* This file implements owner_names.h: one function per root kind turns (root, offset) into an
 * owner, with the module's DWARF variables (dwarfvars.h) for globals, TLS, locals and
 * registers, and descriptions of the range when DWARF says nothing.
 *
 * Design notes:
 *  1. A stack slot belongs to frame d when it lies in [bottom_d, cfa_d): bottom_0 is the
 *     thread's stack pointer, bottom_d the CFA of frame d - 1 (the callee's CFA is the
 *     caller's stack pointer at the call). DWARF locates a local from the CFA
 *     (DW_OP_fbreg with GCC's DW_OP_call_frame_cfa frame base), from rsp (bottom_d), or from
 *     rbp, taken as cfa - 16: the frame-pointer prologue; an address computed outside the
 *     frame is not trusted.
 *  2. A register: the signal frame's gregs hold frame 0's registers. A callee-saved register
 *     (rbx, rbp, r12-r15) may also hold a local of an outer frame: the innermost frame whose
 *     DWARF places a local in that register at its pc claims it. A frame in between that
 *     saved the register and reused it for something DWARF does not describe would make this
 *     wrong; the CFI that would tell is not read.
 *  3. A function's name for a frame: the innermost (inlined) function at its pc, like `top`.
 */
#define _GNU_SOURCE
#include "owner_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dwarfvars.h"
#include "elfsections.h"
#include "symbolize.h"
#include "typewalk.h"
#include "usage.h"

#define MAX_LOCALS 256

struct owner_namer {
    const struct heap_graph *g;
    struct symbolizer *sym;
    struct strpool *pool;
    bool *opened, *usable;   /* by module: dv_open tried, and it worked */
    uint32_t libc;           /* libc's module (HG_NONE: none), whose DWARF has struct pthread */
    dv_type_id pthread;      /* 0 until looked up, or when libc has no DWARF for it */
    bool pthread_tried;
    struct elfsections *sections;   /* for data no variable names: ".bss of x.so+0x40" */
    struct dv_local locals[MAX_LOCALS];
};

struct owner_namer *owner_namer_new(const struct heap_graph *g, struct symbolizer *sym, struct strpool *pool)
{
    struct owner_namer *n = xcalloc(1, sizeof *n);
    n->g = g;
    n->sym = sym;
    n->pool = pool;
    n->opened = xcalloc(g->nr_modules + 1, sizeof *n->opened);
    n->usable = xcalloc(g->nr_modules + 1, sizeof *n->usable);
    n->sections = elfsections_new();
    return n;
}

void owner_namer_free(struct owner_namer *n)
{
    if (!n)
        return;
    free(n->opened);
    free(n->usable);
    elfsections_free(n->sections);
    free(n);
}

static const char *intern(struct owner_namer *n, const char *s) { return strpool_intern(n->pool, s); }

__attribute__((format(printf, 2, 3))) static const char *internf(struct owner_namer *n, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return intern(n, buf);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The module's variables, opened once; false when it has none to offer. */
static bool module_vars(struct owner_namer *n, uint32_t m)
{
    if (m == HG_NONE || m >= n->g->nr_modules)
        return false;
    if (!n->opened[m]) {
        n->opened[m] = true;
        const struct hg_module *mod = &n->g->modules[m];
        /* "[vdso]" has no file; a relative path (a dlopen("lib/x.so")) is taken from here */
        n->usable[m] = mod->path[0] != '[' && dv_open(n->sym, mod->path, mod->build_id);
    }
    return n->usable[m];
}

static const char *type_name(struct owner_namer *n, uint32_t m, dv_type_id t)
{
    if (!t)
        return NULL;
    const struct dv_type *ty = dv_type(n->sym, n->g->modules[m].path, t);
    return ty && ty->name ? intern(n, ty->name) : NULL;
}

/* The owner of a variable of module m whose runtime address is `runtime`. */
static void from_var(struct owner_namer *n, uint32_t m, const struct dv_var *v, uint64_t runtime, struct owner *o)
{
    switch (v->kind) {
    case DV_V_STATIC_LOCAL: o->kind = OWNER_STATIC_LOCAL; break;
    case DV_V_TLS: o->kind = OWNER_TLS; break;
    case DV_V_LOCAL:
    case DV_V_PARAM: o->kind = OWNER_LOCAL; break;
    default: o->kind = OWNER_GLOBAL; break;
    }
    o->name = intern(n, v->name ? v->name : "?");
    o->function = v->function ? intern(n, v->function) : NULL;
    o->module = intern(n, n->g->modules[m].path);
    o->type = type_name(n, m, v->type);
    o->type_module = m;
    o->type_id = v->type;
    o->address = runtime;
}

/* The pc to describe frame d of t by: a return address is the instruction after the call, so
 * the call's own is one byte before; only a thread stopped by the signal has frame 0's exact
 * pc (the thread that asked for the snapshot stopped in a call, like its outer frames). */
static uint64_t frame_pc(const struct hg_thread *t, int d)
{
    bool exact = d == 0 && !strcmp(t->state, "stopped");
    return t->frames[d].pc - (exact ? 0 : 1);
}

/* The innermost function at frame d's pc ("??" when unknown). */
static const char *frame_function(struct owner_namer *n, const struct hg_thread *t, int d)
{
    uint32_t m = hg_module_of_pc(n->g, t->frames[d].pc);
    if (m == HG_NONE || n->g->modules[m].path[0] == '[')
        return intern(n, "??");
    struct sym_frame out[1];
    uint64_t pc = frame_pc(t, d);
    if (sym_lookup(n->sym, n->g->modules[m].path, n->g->modules[m].build_id, pc - n->g->modules[m].bias, out, 1) < 1)
        return intern(n, "??");
    return intern(n, out[0].function);
}

/* ---- globals ---- */

static void name_global(struct owner_namer *n, const struct hg_root *r, uint64_t a, struct owner *o)
{
    uint32_t m = r->module;
    if (m == HG_NONE) {
        o->kind = OWNER_DATA;
        o->name = internf(n, "writable data at 0x%llx", (unsigned long long)a);
        o->address = a;
        return;
    }
    const struct hg_module *mod = &n->g->modules[m];
    uint64_t link = a - mod->bias;
    if (module_vars(n, m)) {
        const struct dv_var *v = dv_var_at(n->sym, mod->path, link);
        if (v) {
            from_var(n, m, v, v->addr + mod->bias, o);
            return;
        }
    }
    o->kind = OWNER_DATA;
    o->module = intern(n, mod->path);
    uint64_t in_section;
    const char *section = mod->path[0] == '[' ? NULL : elfsections_at(n->sections, mod->path, link, &in_section);
    o->name = internf(n, "%s of %s+0x%llx", section ? section : "data", base_name(mod->path), (unsigned long long)link);
    o->address = a;
}

/* ---- thread-local storage ---- */

/* libc's struct pthread (the thread descriptor at the thread pointer), 0 without its DWARF. */
static dv_type_id pthread_type(struct owner_namer *n, uint32_t *m)
{
    if (!n->pthread_tried) {
        n->pthread_tried = true;
        n->libc = HG_NONE;
        for (uint32_t i = 0; i < n->g->nr_modules && n->libc == HG_NONE; i++)
            if (!strncmp(base_name(n->g->modules[i].path), "libc.so", 7))
                n->libc = i;
        if (n->libc != HG_NONE && module_vars(n, n->libc))
            n->pthread = dv_type_by_name(n->sym, n->g->modules[n->libc].path, "pthread");
    }
    *m = n->libc;
    return n->pthread;
}

/* A word of thread t's descriptor (struct pthread at the thread pointer), named by its field
 * when libc's DWARF has the type: a pthread_setspecific value says its key. */
static bool name_descriptor_word(struct owner_namer *n, const struct hg_thread *t, uint64_t a, struct owner *o)
{
    uint32_t m;
    dv_type_id pt = pthread_type(n, &m);
    const struct dv_type *ty = pt ? dv_type(n->sym, n->g->modules[m].path, pt) : NULL;
    char field[256];
    if (!ty || a - t->tp >= ty->size || !tw_pointer_at(n->sym, n->g->modules[m].path, pt, a - t->tp, NULL, field, sizeof field))
        return false;
    unsigned key;
    int used = 0;
    if (sscanf(field, ".specific_1stblock[%u].data%n", &key, &used) == 1 && used && !field[used])
        o->name = internf(n, "pthread_setspecific value (key %u) of thread %d", key, t->tid);
    else
        o->name = internf(n, "thread descriptor%s of thread %d", field, t->tid);
    o->module = intern(n, n->g->modules[m].path);
    return true;
}

/* The module whose static TLS block of thread t holds a, and a's offset in it. */
static uint32_t static_tls_module(const struct heap_graph *g, const struct hg_thread *t, uint64_t a, uint64_t *off)
{
    if (!t || !t->tp)
        return HG_NONE;
    for (uint32_t m = 0; m < g->nr_modules; m++) {
        const struct hg_module *mod = &g->modules[m];
        if (!mod->tls_offset || mod->tls_offset > t->tp)
            continue;
        uint64_t block = t->tp - mod->tls_offset;
        if (a >= block && a - block < mod->tls_size) {
            *off = a - block;
            return m;
        }
    }
    return HG_NONE;
}

static void name_tls(struct owner_namer *n, const struct hg_root *r, uint64_t a, struct owner *o)
{
    const struct hg_thread *t = hg_thread(n->g, r->tid);
    uint64_t off = 0;
    uint32_t m = static_tls_module(n->g, t, a, &off);
    o->tid = r->tid;
    if (m != HG_NONE && module_vars(n, m)) {
        const struct dv_var *v = dv_tls_var_at(n->sym, n->g->modules[m].path, off);
        if (v) {
            from_var(n, m, v, a - (off - v->addr), o);
            o->kind = OWNER_TLS;
            return;
        }
    }
    o->kind = OWNER_THREAD;
    if (m != HG_NONE) {
        o->module = intern(n, n->g->modules[m].path);
        o->name = internf(n, "TLS of %s+0x%llx", base_name(n->g->modules[m].path), (unsigned long long)off);
    } else if (t && t->tp && a == t->tp + 8) {
        o->name = internf(n, "DTV of thread %d", r->tid);   /* tcbhead_t.dtv */
    } else if (t && t->tp && a >= t->tp && name_descriptor_word(n, t, a, o)) {
        /* named by its field */
    } else if (t && t->tp && a >= t->tp) {
        o->name = internf(n, "thread descriptor+0x%llx", (unsigned long long)(a - t->tp));
    } else {
        o->name = intern(n, "static TLS");
    }
    o->address = a;
}

uint32_t owner_dtv_module(struct owner_namer *n, uint32_t root, uint64_t offset)
{
    const struct hg_root *r = &n->g->roots[root];
    if (r->kind != HG_ROOT_DTV || offset < 16 || offset % 16)
        return HG_NONE;
    /* The root starts at dtv[-1]; slot i's pointer is at 16 * (i + 1). */
    uint64_t modid = offset / 16 - 1;
    for (uint32_t m = n->g->nr_modules; m-- > 0;)
        if (n->g->modules[m].tls_modid == modid && !n->g->modules[m].tls_offset && modid)
            return m;
    return HG_NONE;
}

uint64_t owner_name_tls_block_word(struct owner_namer *n, uint32_t m, int tid, uint64_t offset, struct owner *o)
{
    memset(o, 0, sizeof *o);
    o->frame = -1;
    o->tid = tid;
    const struct hg_module *mod = &n->g->modules[m];
    if (module_vars(n, m)) {
        const struct dv_var *v = dv_tls_var_at(n->sym, mod->path, offset);
        if (v) {
            from_var(n, m, v, v->addr, o);
            o->kind = OWNER_TLS;
            return offset - v->addr;
        }
    }
    o->kind = OWNER_THREAD;
    o->module = intern(n, mod->path);
    o->name = internf(n, "TLS of %s+0x%llx", base_name(mod->path), (unsigned long long)offset);
    o->address = offset;
    return 0;
}

/* ---- stacks ---- */

/* The frame of thread t whose slots hold a; -1 when none (above the last unwound frame). */
static int frame_of(const struct hg_thread *t, uint64_t a)
{
    uint64_t bottom = t->sp;
    for (uint32_t d = 0; d < t->nr_frames; d++) {
        uint64_t cfa = t->frames[d].cfa;
        if (!cfa)   /* the outermost frame, whose CFA the unwinder did not find */
            return a >= bottom ? (int)d : -1;
        if (cfa <= bottom)
            return -1;
        if (a >= bottom && a < cfa)
            return (int)d;
        bottom = cfa;
    }
    return -1;
}

/* The locals of frame d of t that DWARF places somewhere at its pc; 0 if none or no DWARF. */
static int frame_locals(struct owner_namer *n, const struct hg_thread *t, int d, uint32_t *module)
{
    const struct hg_frame *f = &t->frames[d];
    uint32_t m = hg_module_of_pc(n->g, f->pc);
    *module = m;
    if (!module_vars(n, m))
        return 0;
    uint64_t pc = frame_pc(t, d) - n->g->modules[m].bias;
    return dv_locals_at(n->sym, n->g->modules[m].path, pc, n->locals, MAX_LOCALS);
}

/* Where a local of frame d lives in memory; false when it is not in memory (a register) or
 * its address is not known. */
static bool local_address(const struct hg_thread *t, int d, const struct dv_loc *loc, uint64_t *a)
{
    uint64_t cfa = t->frames[d].cfa, bottom = d ? t->frames[d - 1].cfa : t->sp;
    if (!cfa)
        return false;
    switch (loc->kind) {
    case DV_L_CFA: *a = cfa + (uint64_t)loc->offset; break;
    case DV_L_BREG:
        if (loc->reg == 7)
            *a = bottom + (uint64_t)loc->offset;
        else if (loc->reg == 6)
            *a = cfa - 16 + (uint64_t)loc->offset;
        else
            return false;
        break;
    default: return false;
    }
    return *a >= bottom && *a < cfa;
}

static void name_stack(struct owner_namer *n, const struct hg_root *r, uint64_t a, struct owner *o)
{
    const struct hg_thread *t = hg_thread(n->g, r->tid);
    o->tid = r->tid;
    int d = t ? frame_of(t, a) : -1;
    if (d < 0) {
        o->kind = OWNER_STACK;
        o->name = internf(n, "stack of thread %d", r->tid);
        return;
    }
    uint32_t m;
    int nr = frame_locals(n, t, d, &m);
    for (int i = 0; i < nr; i++) {
        const struct dv_var *v = n->locals[i].var;
        uint64_t at;
        if (!local_address(t, d, &n->locals[i].loc, &at) || a < at || a - at >= (v->size ? v->size : 8))
            continue;
        from_var(n, m, v, at, o);
        o->kind = OWNER_LOCAL;
        o->frame = d;
        if (!o->function)
            o->function = frame_function(n, t, d);
        return;
    }
    o->kind = OWNER_STACK;
    o->frame = d;
    o->function = frame_function(n, t, d);
    o->name = internf(n, "stack of thread %d in %s (frame %d)", r->tid, o->function, d);
    o->address = a;
}

/* ---- registers ---- */

struct reg_layout {
    size_t words;
    const signed char *dwarf;   /* by word: the DWARF register number, -1 for none */
    const char *const *names;
};

/* glibc's ucontext gregs (REG_R8 ... REG_CR2) and the shim's saved callee-saved registers
 * (stw.h hw_saved_regs: rbx rbp r12 r13 r14 r15). */
static const signed char gregs_dwarf[23] = { 8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 3, 1, 0, 2, 7, 16,
                                             -1, -1, -1, -1, -1, -1 };
static const char *const gregs_names[23] = { "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi",
                                             "rbp", "rbx", "rdx", "rax", "rcx", "rsp", "rip", "eflags", "csgsfs",
                                             "err", "trapno", "oldmask", "cr2" };
static const signed char saved_dwarf[6] = { 3, 6, 12, 13, 14, 15 };
static const char *const saved_names[6] = { "rbx", "rbp", "r12", "r13", "r14", "r15" };

static bool callee_saved(int reg) { return reg == 3 || reg == 6 || (reg >= 12 && reg <= 15); }

static void name_register(struct owner_namer *n, const struct hg_root *r, uint64_t offset, struct owner *o)
{
    const struct hg_thread *t = hg_thread(n->g, r->tid);
    size_t words = (r->end - r->start) / 8, w = offset / 8;
    int reg = -1;
    const char *name = NULL;
    if (words == 23) {
        reg = gregs_dwarf[w];
        name = gregs_names[w];
    } else if (words == 6) {
        reg = saved_dwarf[w];
        name = saved_names[w];
    }
    o->tid = r->tid;
    if (!name) {
        o->kind = OWNER_REGISTER;
        o->name = internf(n, "vector registers of thread %d", r->tid);
        return;
    }
    o->reg = intern(n, name);
    for (uint32_t d = 0; t && reg >= 0 && d < t->nr_frames && (d == 0 || callee_saved(reg)); d++) {
        uint32_t m;
        int nr = frame_locals(n, t, (int)d, &m);
        for (int i = 0; i < nr; i++) {
            if (n->locals[i].loc.kind != DV_L_REG || n->locals[i].loc.reg != reg)
                continue;
            from_var(n, m, n->locals[i].var, 0, o);
            o->kind = OWNER_LOCAL;
            o->frame = (int)d;
            if (!o->function)
                o->function = frame_function(n, t, (int)d);
            return;
        }
    }
    o->kind = OWNER_REGISTER;
    if (t && t->nr_frames) {
        o->function = frame_function(n, t, 0);
        o->name = internf(n, "register %s of thread %d in %s", name, r->tid, o->function);
    } else {
        o->name = internf(n, "register %s of thread %d", name, r->tid);
    }
}

uint64_t owner_name_root_word(struct owner_namer *n, uint32_t root, uint64_t offset, struct owner *o)
{
    const struct hg_root *r = &n->g->roots[root];
    uint64_t a = r->start + offset;
    memset(o, 0, sizeof *o);
    o->frame = -1;
    switch (r->kind) {
    case HG_ROOT_GLOBAL: name_global(n, r, a, o); break;
    case HG_ROOT_TLS: name_tls(n, r, a, o); break;
    case HG_ROOT_STACK: name_stack(n, r, a, o); break;
    case HG_ROOT_REGISTERS: name_register(n, r, offset, o); break;
    case HG_ROOT_DTV:
        o->kind = OWNER_THREAD;
        o->tid = r->tid;
        o->name = internf(n, "DTV of thread %d", r->tid);
        break;
    case HG_ROOT_REGION:
        o->kind = OWNER_REGION;
        o->name = internf(n, "registered region 0x%llx-0x%llx", (unsigned long long)r->start,
                          (unsigned long long)r->end);
        o->address = r->start;
        break;
    case HG_ROOT_EXITED_THREAD:
        o->kind = OWNER_OTHER;
        o->tid = r->tid;
        o->name = internf(n, "descriptor of exited thread %d (its return value)", r->tid);
        break;
    case HG_ROOT_THREAD_START:
        o->kind = OWNER_OTHER;
        o->name = intern(n, "start routine and argument of a thread being created");
        break;
    case HG_ROOT_ALTSTACK:
        o->kind = OWNER_OTHER;
        o->tid = r->tid;
        o->name = internf(n, "signal stack of thread %d", r->tid);
        break;
    default:
        o->kind = OWNER_OTHER;
        o->name = internf(n, "root range 0x%llx-0x%llx", (unsigned long long)r->start, (unsigned long long)r->end);
        break;
    }
    if (o->reg && o->kind == OWNER_LOCAL)   /* a local in a register: the whole variable */
        return 0;
    return o->address && a >= o->address ? a - o->address : OWNER_NO_OFFSET;
}
