/* This file implements the call-frame rules of cfi.h: find the frame description entry (FDE)
 * that covers a pc and run its call-frame instructions up to the pc.
 *
 * 1. The module comes from _dl_find_object, which reads glibc's lock-free copy of the loaded
 *    objects: never the loader lock, which a thread in a dl_iterate_phdr callback holds while
 *    it mallocs (the deadlock libunwind's dl_iterate_phdr under its own mutex caused).
 * 2. Its .eh_frame_hdr holds a table of (initial location, FDE) sorted by location, which
 *    every linker writes as pairs of 4-byte offsets from the table (DW_EH_PE_datarel |
 *    DW_EH_PE_sdata4); other encodings are not searched.
 * 3. Only what finding the caller needs is followed: the CFA (a register plus an offset, or
 *    the dereferenced form gcc uses when it realigns main's stack), the return address and
 *    rbp. A rule outside that set cuts the stack at that frame rather than guess.
 * Every read stays inside the FDE's or CIE's own length. Context: SIGSAFE. */
#define _GNU_SOURCE
#include "cfi.h"

#include <dlfcn.h>
#include <string.h>

#define DW_EH_PE_omit 0xff
#define DW_EH_PE_pcrel 0x10
#define DW_EH_PE_datarel 0x30
#define DW_EH_PE_indirect 0x80
#define TABLE_ENC 0x3b  /* datarel | sdata4 */

#define REG_RA 16
#define MAX_STATES 8    /* DW_CFA_remember_state nesting */

static hw_find_object_fn find_object;

bool hw_cfi_init(hw_find_object_fn fn)
{
    find_object = fn;
    return find_object != NULL;
}

/* ---- reading --------------------------------------------------------------------------- */

struct reader {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t take(struct reader *r, unsigned n)
{
    if (r->bad || r->p > r->end || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, n);
    r->p += n;
    return v;
}

static uint64_t uleb(struct reader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b = (uint8_t)take(r, 1);
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

static int64_t sleb(struct reader *r)
{
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        b = (uint8_t)take(r, 1);
        v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
    } while ((b & 0x80) && shift < 64 && !r->bad);
    if (shift < 64 && (b & 0x40))
        v |= -((int64_t)1 << shift);
    return v;
}

/* A pointer in encoding enc; datarel counts from `data`. */
static uintptr_t encoded(struct reader *r, uint8_t enc, uintptr_t data)
{
    const uint8_t *at = r->p;
    uintptr_t v;
    switch (enc & 0x0f) {
    case 0x00: v = (uintptr_t)take(r, 8); break;
    case 0x01: v = (uintptr_t)uleb(r); break;
    case 0x02: v = (uintptr_t)take(r, 2); break;
    case 0x03: v = (uintptr_t)take(r, 4); break;
    case 0x04: v = (uintptr_t)take(r, 8); break;
    case 0x09: v = (uintptr_t)sleb(r); break;
    case 0x0a: v = (uintptr_t)(int64_t)(int16_t)take(r, 2); break;
    case 0x0b: v = (uintptr_t)(int64_t)(int32_t)take(r, 4); break;
    case 0x0c: v = (uintptr_t)take(r, 8); break;
    default: r->bad = true; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case DW_EH_PE_pcrel: v += (uintptr_t)at; break;
    case DW_EH_PE_datarel: v += data; break;
    default: r->bad = true; return 0;
    }
    if ((enc & DW_EH_PE_indirect) && !r->bad && v)
        v = *(const uintptr_t *)v;
    return v;
}

/* The body [*body, *end) of the length-prefixed record at p (a CIE or an FDE). */
static bool record(const uint8_t *p, const uint8_t **body, const uint8_t **end)
{
    uint32_t len32;
    memcpy(&len32, p, 4);
    if (len32 == 0 || len32 == 0xffffffffu)  /* a terminator, or 64-bit DWARF (never in .eh_frame) */
        return false;
    *body = p + 4;
    *end = *body + len32;
    return true;
}

/* ---- the CIE --------------------------------------------------------------------------- */

struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_enc;
    bool augmented;  /* 'z': FDEs carry an augmentation length */
    bool signal;     /* 'S' */
    const uint8_t *insns, *insns_end;
};

static bool parse_cie(const uint8_t *at, struct cie *c)
{
    struct reader r;
    if (!record(at, &r.p, &r.end))
        return false;
    r.bad = false;
    if (take(&r, 4) != 0)
        return false;  /* not a CIE */
    uint8_t version = (uint8_t)take(&r, 1);
    if (r.bad || r.p >= r.end)
        return false;
    const char *aug = (const char *)r.p;
    size_t room = (size_t)(r.end - r.p), aug_len = strnlen(aug, room);
    if (aug_len == room)
        return false;  /* no NUL inside the CIE */
    r.p += aug_len + 1;
    if (version == 4)
        take(&r, 2);  /* address and segment selector sizes */
    c->code_align = uleb(&r);
    c->data_align = sleb(&r);
    uint64_t ra = version == 1 ? take(&r, 1) : uleb(&r);
    if (ra != REG_RA)
        return false;
    c->fde_enc = 0;
    c->augmented = aug[0] == 'z';
    c->signal = false;
    if (c->augmented) {
        uint64_t len = uleb(&r);
        struct reader a = { r.p, r.p + len, r.bad || len > (uint64_t)(r.end - r.p) };
        for (const char *s = aug + 1; *s && !a.bad; s++) {
            switch (*s) {
            case 'L': take(&a, 1); break;
            case 'P': { uint8_t enc = (uint8_t)take(&a, 1); encoded(&a, enc & 0x7f, 0); break; }
            case 'R': c->fde_enc = (uint8_t)take(&a, 1); break;
            case 'S': c->signal = true; break;
            case 'B': case 'G': break;
            default: return false;
            }
        }
        if (a.bad)
            return false;
        r.p += len;
    } else if (aug[0]) {
        return false;  /* "eh" and other pre-'z' augmentations */
    }
    c->insns = r.p;
    c->insns_end = r.end;
    return !r.bad && r.p <= r.end;
}

/* ---- running the instructions ---------------------------------------------------------- */

enum how { SAME, UNDEF, OFFSET, OTHER };

struct reg_rule {
    uint8_t how;
    int64_t off;
};

struct row {
    uint64_t cfa_reg;
    int64_t cfa_off;
    const uint8_t *cfa_expr;  /* DW_CFA_def_cfa_expression, else NULL */
    uint64_t cfa_expr_len;
    struct reg_rule rbp, ra;
};

static struct reg_rule *reg_of(struct row *s, uint64_t reg)
{
    return reg == HW_DW_RBP ? &s->rbp : reg == REG_RA ? &s->ra : NULL;
}

static void set_reg(struct row *s, uint64_t reg, uint8_t how, int64_t off)
{
    struct reg_rule *g = reg_of(s, reg);
    if (g) {
        g->how = how;
        g->off = off;
    }
}

/* Run [p, end) from location loc while the location stays <= target; initial is the row
 * after the CIE's instructions (for DW_CFA_restore), NULL while running those. */
static bool run(struct row *s, const uint8_t *p, const uint8_t *end, uintptr_t loc, uintptr_t target,
                const struct cie *c, const struct row *initial)
{
    struct row saved[MAX_STATES];
    unsigned depth = 0;
    struct reader r = { p, end, false };
    while (r.p < r.end && !r.bad) {
        uint8_t op = (uint8_t)take(&r, 1), low = op & 0x3f;
        uint64_t reg, delta = 0;
        switch (op & 0xc0) {
        case 0x40:
            delta = low;
            goto advance;
        case 0x80:
            set_reg(s, low, OFFSET, (int64_t)uleb(&r) * c->data_align);
            continue;
        case 0xc0:
            if (!initial)
                return false;
            if (reg_of(s, low))
                *reg_of(s, low) = *reg_of((struct row *)initial, low);
            continue;
        }
        switch (op) {
        case 0x00: break;                                             /* nop */
        case 0x01:                                                    /* set_loc */
            loc = encoded(&r, c->fde_enc, 0);
            if (loc > target)
                return !r.bad;
            break;
        case 0x02: delta = take(&r, 1); goto advance;
        case 0x03: delta = take(&r, 2); goto advance;
        case 0x04: delta = take(&r, 4); goto advance;
        case 0x05: reg = uleb(&r); set_reg(s, reg, OFFSET, (int64_t)uleb(&r) * c->data_align); break;
        case 0x06:                                                    /* restore_extended */
            reg = uleb(&r);
            if (!initial)
                return false;
            if (reg_of(s, reg))
                *reg_of(s, reg) = *reg_of((struct row *)initial, reg);
            break;
        case 0x07: set_reg(s, uleb(&r), UNDEF, 0); break;
        case 0x08: set_reg(s, uleb(&r), SAME, 0); break;
        case 0x09: reg = uleb(&r); uleb(&r); set_reg(s, reg, OTHER, 0); break;
        case 0x0a:
            if (depth == MAX_STATES)
                return false;
            saved[depth++] = *s;
            break;
        case 0x0b:
            if (!depth)
                return false;
            *s = saved[--depth];  /* the CFA rule too, as gcc's epilogues expect */
            break;
        case 0x0c: s->cfa_reg = uleb(&r); s->cfa_off = (int64_t)uleb(&r); s->cfa_expr = NULL; break;
        case 0x0d: s->cfa_reg = uleb(&r); s->cfa_expr = NULL; break;
        case 0x0e: s->cfa_off = (int64_t)uleb(&r); break;
        case 0x0f:
            s->cfa_expr_len = uleb(&r);
            s->cfa_expr = r.p;
            if (s->cfa_expr_len > (uint64_t)(r.end - r.p))
                return false;
            r.p += s->cfa_expr_len;
            break;
        case 0x10: case 0x16: {                                       /* (val_)expression */
            reg = uleb(&r);
            uint64_t len = uleb(&r);
            if (len > (uint64_t)(r.end - r.p))
                return false;
            r.p += len;
            set_reg(s, reg, OTHER, 0);
            break;
        }
        case 0x11: reg = uleb(&r); set_reg(s, reg, OFFSET, sleb(&r) * c->data_align); break;
        case 0x12: s->cfa_reg = uleb(&r); s->cfa_off = sleb(&r) * c->data_align; s->cfa_expr = NULL; break;
        case 0x13: s->cfa_off = sleb(&r) * c->data_align; break;
        case 0x14: reg = uleb(&r); uleb(&r); set_reg(s, reg, OTHER, 0); break;
        case 0x15: reg = uleb(&r); sleb(&r); set_reg(s, reg, OTHER, 0); break;
        case 0x2e: uleb(&r); break;                                   /* GNU_args_size */
        case 0x2f: reg = uleb(&r); set_reg(s, reg, OFFSET, -(int64_t)uleb(&r) * c->data_align); break;
        default: return false;
        }
        continue;
    advance:
        if (loc + delta * c->code_align > target)
            return !r.bad;
        loc += delta * c->code_align;
    }
    return !r.bad;
}

/* ---- finding the FDE ------------------------------------------------------------------- */

struct hdr_entry {
    int32_t loc, fde;
};

/* The FDE covering target in the module whose .eh_frame_hdr is at hdr; its body, end, the
 * CIE and the FDE's first location. */
static bool find_fde(const uint8_t *hdr, uintptr_t target, struct cie *c, struct reader *insns, uintptr_t *start)
{
    if (hdr[0] != 1 || hdr[3] != TABLE_ENC || hdr[2] == DW_EH_PE_omit)
        return false;
    struct reader r = { hdr + 4, hdr + 4 + 16, false };
    encoded(&r, hdr[1], (uintptr_t)hdr);  /* eh_frame_ptr */
    uintptr_t count = encoded(&r, hdr[2], (uintptr_t)hdr);
    if (r.bad || !count)
        return false;
    const struct hdr_entry *table = (const struct hdr_entry *)r.p;
    size_t lo = 0, hi = count;  /* the last entry whose location is <= target */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)hdr + (intptr_t)table[mid].loc <= target)
            lo = mid;
        else
            hi = mid;
    }
    if ((uintptr_t)hdr + (intptr_t)table[lo].loc > target)
        return false;
    const uint8_t *fde = hdr + table[lo].fde, *body, *end;
    if (!record(fde, &body, &end) || end - body < 4)
        return false;
    uint32_t cie_off;
    memcpy(&cie_off, body, 4);
    if (!cie_off || !parse_cie(body - cie_off, c))
        return false;
    struct reader f = { body + 4, end, false };
    uintptr_t pc_begin = encoded(&f, c->fde_enc, 0);
    uintptr_t range = encoded(&f, c->fde_enc & 0x0f, 0);
    if (f.bad || target < pc_begin || target - pc_begin >= range)
        return false;
    if (c->augmented) {
        uint64_t len = uleb(&f);
        if (len > (uint64_t)(f.end - f.p))
            return false;
        f.p += len;
    }
    *insns = f;
    *start = pc_begin;
    return !f.bad;
}

/* The CFA expression gcc writes for a realigned stack: DW_OP_breg<rbp|rsp> off; DW_OP_deref. */
static bool deref_expr(const struct row *s, struct hw_cfi_rule *rule)
{
    struct reader e = { s->cfa_expr, s->cfa_expr + s->cfa_expr_len, false };
    uint8_t op = (uint8_t)take(&e, 1);
    if (op != 0x70 + HW_DW_RBP && op != 0x70 + HW_DW_RSP)
        return false;
    int64_t off = sleb(&e);
    if (take(&e, 1) != 0x06 || e.p != e.end || e.bad)
        return false;
    rule->cfa_reg = (uint8_t)(op - 0x70);
    rule->cfa_off = (int32_t)off;
    rule->cfa_deref = true;
    return off == (int32_t)off;
}

bool hw_cfi_find(uintptr_t pc, bool exact, struct hw_cfi_rule *rule)
{
    struct dl_find_object obj;
    uintptr_t target = exact ? pc : pc - 1;
    if (!find_object || find_object((void *)target, &obj) != 0 || !obj.dlfo_eh_frame)
        return false;
    struct cie c;
    struct reader insns;
    uintptr_t start;
    if (!find_fde(obj.dlfo_eh_frame, target, &c, &insns, &start))
        return false;
    struct row initial = { .cfa_reg = HW_DW_RSP }, s;
    if (!run(&initial, c.insns, c.insns_end, start, UINTPTR_MAX, &c, NULL))
        return false;
    s = initial;
    if (!run(&s, insns.p, insns.end, start, target, &c, &initial))
        return false;
    memset(rule, 0, sizeof *rule);
    rule->signal = c.signal;
    if (c.signal)
        return true;  /* the caller reads the ucontext: no rule needed */
    if (s.ra.how == UNDEF) {
        rule->end = true;
        return true;
    }
    if (s.ra.how != OFFSET || s.ra.off != (int32_t)s.ra.off)
        return false;
    rule->ra_off = (int32_t)s.ra.off;
    if (s.cfa_expr) {
        if (!deref_expr(&s, rule))
            return false;
    } else {
        if ((s.cfa_reg != HW_DW_RSP && s.cfa_reg != HW_DW_RBP) || s.cfa_off != (int32_t)s.cfa_off)
            return false;
        rule->cfa_reg = (uint8_t)s.cfa_reg;
        rule->cfa_off = (int32_t)s.cfa_off;
    }
    if (s.rbp.how == OFFSET && s.rbp.off == (int32_t)s.rbp.off) {
        rule->rbp_saved = true;
        rule->rbp_off = (int32_t)s.rbp.off;
    } else if (s.rbp.how != SAME) {
        rule->rbp_lost = true;
    }
    return true;
}
