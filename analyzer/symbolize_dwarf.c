/* symbolize_dwarf.c: libdwarf access shared by every part of the symbolizer that reads a
 * module's DWARF (symbolize_lines.c; later a reader of variables and types).
 *
 * This file implements opening the DWARF of one file, refusing files without .debug_info and
 * files libdwarf would crash on, and the small readers the DWARF parts share: attributes as
 * strings, unsigned numbers and DIE references, the loop over compilation units, and the
 * code ranges of a DIE.
 *
 * Design notes:
 *  1. libdwarf's default error handler aborts (LD libdwarf.h dwarf_init_path): every call
 *     passes &err with a NULL handler, and an error only means "no data here" (dw_drop_err).
 *     The readers bound their recursion depth and reference chains, so corrupt DWARF cannot
 *     loop or overflow the stack.
 *  2. One libdwarf 20210528 bug is dodged by checking headers first (elf_lists_sane).
 *
 * Context: analyzer only, single-threaded.
 */
#define _GNU_SOURCE
#include "symbolize_internal.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

void dw_drop_err(Dwarf_Debug dbg, Dwarf_Error *err)
{
    if (*err) {
        dwarf_dealloc(dbg, *err, DW_DLA_ERROR);
        *err = NULL;
    }
}

/* ---- open ---- */

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;

    while (n-- > 0)
        v = v << 8 | p[n];
    return v;
}

/* Whether every .debug_rnglists/.debug_loclists header is one libdwarf accepts (see
 * elf_lists_sane). Stricter than libdwarf: a unit must also end inside the section, and so
 * must its offset table. */
static bool lists_headers_ok(const unsigned char *d, size_t size)
{
    size_t off = 0;

    while (off < size) {
        uint64_t len, count;
        size_t lensize = 4, osize;

        if (size - off < 4)
            return false;
        len = get_le(d + off, 4);
        if (len == 0xffffffff) {
            if (size - off < 12)
                return false;
            len = get_le(d + off + 4, 8);
            lensize = 12;
        } else if (len >= 0xfffffff0) {
            return false;
        }
        if (len > size - off - lensize || len < 8)
            return false;
        /* version 5, address size 2/4/8, segment selector size, offset count */
        if (get_le(d + off + lensize, 2) != 5)
            return false;
        if (d[off + lensize + 2] != 2 && d[off + lensize + 2] != 4 && d[off + lensize + 2] != 8)
            return false;
        /* The offset table (DW_FORM_loclistx / rnglistx index it: clang) must fit in the
         * unit and point into it, or libdwarf reads past it (a crash in
         * dwarf_get_loclist_c). */
        osize = lensize == 4 ? 4 : 8;
        count = get_le(d + off + lensize + 4, 4);
        if (count > (len - 8) / osize)
            return false;
        for (uint64_t i = 0; i < count; i++)
            if (get_le(d + off + lensize + 8 + i * osize, (int)osize) >= len - 8)
                return false;
        off += lensize + len;
    }
    return true;
}

/* libdwarf 20210528 frees and then keeps using its list of contexts when a .debug_rnglists
 * or .debug_loclists header is bad (internal_load_rnglists_contexts lacks a return after
 * its error path: double free, abort), and it reads both headers when it first loads
 * .debug_info. So check them first and leave such a file's DWARF alone. */
static bool elf_lists_sane(const char *file)
{
    Elf_Scn *scn = NULL;
    size_t shstrndx;
    bool ok = false;
    Elf *elf;
    int fd;

    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    elf = elf_begin(fd, ELF_C_READ, NULL);
    if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getshdrstrndx(elf, &shstrndx))
        goto out_end;
    while ((scn = elf_nextscn(elf, scn))) {
        const char *name;
        Elf_Data *data;
        GElf_Shdr sh;

        if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(elf, shstrndx, sh.sh_name)))
            goto out_end;
        if (strcmp(name, ".debug_rnglists") && strcmp(name, ".debug_loclists") &&
            strcmp(name, ".zdebug_rnglists") && strcmp(name, ".zdebug_loclists"))
            continue;
        if (sh.sh_type == SHT_NOBITS)
            continue;
        if (name[1] == 'z' ? elf_compress_gnu(scn, 0, 0) < 0
                           : (sh.sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
            goto out_end;
        data = elf_getdata(scn, NULL);
        if (data && data->d_size && (!data->d_buf || !lists_headers_ok(data->d_buf, data->d_size)))
            goto out_end;
    }
    ok = true;
out_end:
    elf_end(elf);
    close(fd);
    return ok;
}

Dwarf_Debug dw_open(const char *path, char *true_path, unsigned true_path_len)
{
    static const char *const names[] = { ".debug_info", ".zdebug_info" };
    Dwarf_Debug dbg = NULL;
    Dwarf_Error err = NULL;
    bool sane;
    int res;

    if (true_path && true_path_len)
        true_path[0] = '\0';
    res = dwarf_init_path(path, true_path, true_path_len, DW_DLC_READ, DW_GROUPNUMBER_ANY, NULL,
                          NULL, &dbg, NULL, 0, NULL, &err);
    dw_drop_err(NULL, &err);
    if (res != DW_DLV_OK)
        return NULL;
    /* libdwarf also accepts a file whose only DWARF is .eh_frame, which every stripped binary
     * has: keep dbg only with a .debug_info. */
    sane = elf_lists_sane(true_path && true_path[0] ? true_path : path); /* once, not per name */
    for (int i = 0; i < 2 && sane; i++) {
        Dwarf_Addr addr = 0;
        Dwarf_Unsigned size = 0;

        res = dwarf_get_section_info_by_name(dbg, names[i], &addr, &size, &err);
        dw_drop_err(dbg, &err);
        if (res == DW_DLV_OK && size)
            return dbg;
    }
    dw_close(dbg);
    return NULL;
}

void dw_close(Dwarf_Debug dbg)
{
    Dwarf_Error err = NULL;

    if (dbg && dwarf_finish(dbg, &err) != DW_DLV_OK)
        dw_drop_err(NULL, &err);
}

/* ---- read ---- */

void dw_for_each_cu(Dwarf_Debug dbg, void (*fn)(Dwarf_Die cu, Dwarf_Half version, void *arg),
                    void *arg)
{
    Dwarf_Error err = NULL;

    for (;;) {
        Dwarf_Unsigned len, type_off, next;
        Dwarf_Half version, addr_size, off_size, ext_size, unit_type;
        Dwarf_Off abbrev;
        Dwarf_Sig8 sig;
        Dwarf_Die cu = NULL;
        int res;

        res = dwarf_next_cu_header_d(dbg, 1, &len, &version, &abbrev, &addr_size, &off_size,
                                     &ext_size, &sig, &type_off, &next, &unit_type, &err);
        if (res != DW_DLV_OK)
            break;
        res = dwarf_siblingof_b(dbg, NULL, 1, &cu, &err);
        if (res == DW_DLV_OK) {
            fn(cu, version, arg);
            dwarf_dealloc(dbg, cu, DW_DLA_DIE);
        }
        dw_drop_err(dbg, &err);
    }
    dw_drop_err(dbg, &err);
}

bool dw_ref_off(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at, Dwarf_Off *off)
{
    Dwarf_Attribute attr;
    Dwarf_Error err = NULL;
    Dwarf_Half form = 0;
    int res;

    if (dwarf_attr(die, at, &attr, &err) != DW_DLV_OK) {
        dw_drop_err(dbg, &err);
        return false;
    }
    res = dwarf_whatform(attr, &form, &err);
    if (res == DW_DLV_OK && form != DW_FORM_GNU_ref_alt && form != DW_FORM_ref_sup4 &&
        form != DW_FORM_ref_sup8 && form != DW_FORM_ref_sig8)
        res = dwarf_global_formref(attr, off, &err);
    else
        res = DW_DLV_NO_ENTRY;
    dw_drop_err(dbg, &err);
    dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
    return res == DW_DLV_OK;
}

Dwarf_Die dw_offdie(Dwarf_Debug dbg, Dwarf_Off off)
{
    Dwarf_Error err = NULL;
    Dwarf_Die die = NULL;

    if (dwarf_offdie_b(dbg, off, 1, &die, &err) != DW_DLV_OK)
        die = NULL;
    dw_drop_err(dbg, &err);
    return die;
}

Dwarf_Die dw_ref(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at)
{
    Dwarf_Off off = 0;

    return dw_ref_off(dbg, die, at, &off) ? dw_offdie(dbg, off) : NULL;
}

Dwarf_Half dw_tag(Dwarf_Debug dbg, Dwarf_Die die)
{
    Dwarf_Error err = NULL;
    Dwarf_Half tag = 0;

    if (dwarf_tag(die, &tag, &err) != DW_DLV_OK)
        tag = 0;
    dw_drop_err(dbg, &err);
    return tag;
}

Dwarf_Off dw_off(Dwarf_Debug dbg, Dwarf_Die die)
{
    Dwarf_Error err = NULL;
    Dwarf_Off off = 0;

    if (dwarf_dieoffset(die, &off, &err) != DW_DLV_OK)
        off = 0;
    dw_drop_err(dbg, &err);
    return off;
}

bool dw_has(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at)
{
    Dwarf_Bool has = 0;
    Dwarf_Error err = NULL;

    if (dwarf_hasattr(die, at, &has, &err) != DW_DLV_OK)
        has = 0;
    dw_drop_err(dbg, &err);
    return has;
}

Dwarf_Die dw_child(Dwarf_Debug dbg, Dwarf_Die die)
{
    Dwarf_Error err = NULL;
    Dwarf_Die child = NULL;

    if (dwarf_child(die, &child, &err) != DW_DLV_OK)
        child = NULL;
    dw_drop_err(dbg, &err);
    return child;
}

Dwarf_Die dw_next(Dwarf_Debug dbg, Dwarf_Die die)
{
    Dwarf_Error err = NULL;
    Dwarf_Die next = NULL;

    if (dwarf_siblingof_b(dbg, die, 1, &next, &err) != DW_DLV_OK)
        next = NULL;
    dw_drop_err(dbg, &err);
    dwarf_dealloc(dbg, die, DW_DLA_DIE);
    return next;
}

bool dw_expr(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at, unsigned char *buf, size_t *len)
{
    Dwarf_Attribute attr;
    Dwarf_Error err = NULL;
    Dwarf_Half form = 0;
    Dwarf_Unsigned n = 0;
    Dwarf_Ptr p = NULL;
    Dwarf_Block *blk = NULL;
    bool ok = false;

    if (dwarf_attr(die, at, &attr, &err) != DW_DLV_OK) {
        dw_drop_err(dbg, &err);
        return false;
    }
    if (dwarf_whatform(attr, &form, &err) != DW_DLV_OK) {
        form = 0;
    } else if (form == DW_FORM_exprloc) {
        if (dwarf_formexprloc(attr, &n, &p, &err) == DW_DLV_OK && n <= *len && (p || !n)) {
            memcpy(buf, p, n);
            *len = n;
            ok = true;
        }
    } else if (form == DW_FORM_block1 || form == DW_FORM_block2 || form == DW_FORM_block4 ||
               form == DW_FORM_block) {
        /* DWARF 2-3 expressions */
        if (dwarf_formblock(attr, &blk, &err) == DW_DLV_OK) {
            if (blk->bl_len <= *len && (blk->bl_data || !blk->bl_len)) {
                memcpy(buf, blk->bl_data, blk->bl_len);
                *len = blk->bl_len;
                ok = true;
            }
            dwarf_dealloc(dbg, blk, DW_DLA_BLOCK);
        }
    }
    dw_drop_err(dbg, &err);
    dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
    return ok;
}

bool dw_addrx(Dwarf_Debug dbg, Dwarf_Die die, uint64_t idx, uint64_t *addr)
{
    Dwarf_Error err = NULL;
    Dwarf_Addr a = 0;
    int res;

    res = dwarf_debug_addr_index_to_addr(die, idx, &a, &err);
    dw_drop_err(dbg, &err);
    if (res != DW_DLV_OK)
        return false;
    *addr = a;
    return true;
}

const char *dw_string(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at)
{
    Dwarf_Attribute attr;
    Dwarf_Error err = NULL;
    char *s = NULL;

    if (dwarf_attr(die, at, &attr, &err) != DW_DLV_OK) {
        dw_drop_err(dbg, &err);
        return NULL;
    }
    if (dwarf_formstring(attr, &s, &err) != DW_DLV_OK)
        s = NULL;
    dw_drop_err(dbg, &err);
    dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
    return s;
}

bool dw_udata(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at, Dwarf_Unsigned *val)
{
    Dwarf_Attribute attr;
    Dwarf_Error err = NULL;
    int res;

    if (dwarf_attr(die, at, &attr, &err) != DW_DLV_OK) {
        dw_drop_err(dbg, &err);
        return false;
    }
    res = dwarf_formudata(attr, val, &err);
    dw_drop_err(dbg, &err);
    if (res != DW_DLV_OK) {
        /* This libdwarf reads DW_FORM_implicit_const (gcc 12 uses it for call_file and
         * call_line) only as signed. */
        Dwarf_Signed sval = 0;

        res = dwarf_formsdata(attr, &sval, &err);
        dw_drop_err(dbg, &err);
        if (res == DW_DLV_OK && sval < 0)
            res = DW_DLV_NO_ENTRY;
        *val = (Dwarf_Unsigned)sval;
    }
    dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
    return res == DW_DLV_OK;
}

/* ---- code ranges ---- */

struct rng_ctx {
    Dwarf_Debug dbg;
    void (*fn)(void *arg, uint64_t lo, uint64_t hi);
    void *arg;
    int nr;
};

/* DWARF 5 DW_AT_ranges: an offset or index into .debug_rnglists; entries come cooked. */
static void ranges_read_rnglists(struct rng_ctx *c, Dwarf_Attribute attr, Dwarf_Half form)
{
    Dwarf_Rnglists_Head head = NULL;
    Dwarf_Unsigned val = 0, count = 0, off = 0;
    Dwarf_Error err = NULL;
    int res;

    res = form == DW_FORM_rnglistx ? dwarf_formudata(attr, &val, &err)
                                   : dwarf_global_formref(attr, &val, &err);
    if (res == DW_DLV_OK)
        res = dwarf_rnglists_get_rle_head(attr, form, val, &head, &count, &off, &err);
    dw_drop_err(c->dbg, &err);
    if (res != DW_DLV_OK)
        return;
    for (Dwarf_Unsigned i = 0; i < count; i++) {
        unsigned len = 0, code = 0;
        Dwarf_Unsigned raw1, raw2, lo, hi;
        Dwarf_Bool unavailable = 0;

        res = dwarf_get_rnglists_entry_fields_a(head, i, &len, &code, &raw1, &raw2, &unavailable,
                                                &lo, &hi, &err);
        dw_drop_err(c->dbg, &err);
        if (res != DW_DLV_OK)
            break;
        if (code == DW_RLE_end_of_list)
            break;
        if (code != DW_RLE_base_address && code != DW_RLE_base_addressx && !unavailable) {
            c->fn(c->arg, lo, hi);
            c->nr++;
        }
    }
    dwarf_dealloc_rnglists_head(head);
}

/* DWARF 2-4 DW_AT_ranges: entries are relative to the CU base unless a base selection entry
 * changes it; libdwarf hands them out raw. */
static void ranges_read_debug_ranges(struct rng_ctx *c, Dwarf_Die die, Dwarf_Attribute attr,
                                     Dwarf_Addr base)
{
    Dwarf_Ranges *r = NULL;
    Dwarf_Signed n = 0;
    Dwarf_Unsigned bytes = 0;
    Dwarf_Off off = 0;
    Dwarf_Error err = NULL;
    int res;

    res = dwarf_global_formref(attr, &off, &err);
    if (res == DW_DLV_ERROR) {
        Dwarf_Unsigned u = 0;

        dw_drop_err(c->dbg, &err);
        res = dwarf_formudata(attr, &u, &err);
        off = u;
    }
    if (res == DW_DLV_OK)
        res = dwarf_get_ranges_a(c->dbg, off, die, &r, &n, &bytes, &err);
    dw_drop_err(c->dbg, &err);
    if (res != DW_DLV_OK)
        return;
    for (Dwarf_Signed i = 0; i < n; i++) {
        if (r[i].dwr_type == DW_RANGES_END)
            break;
        if (r[i].dwr_type == DW_RANGES_ADDRESS_SELECTION) {
            base = r[i].dwr_addr2;
        } else {
            c->fn(c->arg, base + r[i].dwr_addr1, base + r[i].dwr_addr2);
            c->nr++;
        }
    }
    dwarf_ranges_dealloc(c->dbg, r, n);
}

int dw_ranges(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half version, Dwarf_Addr cu_base,
              void (*fn)(void *arg, uint64_t lo, uint64_t hi), void *arg)
{
    struct rng_ctx c = { dbg, fn, arg, 0 };
    Dwarf_Error err = NULL;
    Dwarf_Attribute attr;
    Dwarf_Addr lo, hi;
    Dwarf_Half form;
    enum Dwarf_Form_Class cls;

    if (dwarf_lowpc(die, &lo, &err) == DW_DLV_OK &&
        dwarf_highpc_b(die, &hi, &form, &cls, &err) == DW_DLV_OK) {
        fn(arg, lo, cls == DW_FORM_CLASS_ADDRESS ? hi : lo + hi);
        return 1;
    }
    /* Else DW_AT_ranges (a DW_AT_low_pc next to it is only a base address). */
    dw_drop_err(dbg, &err);
    if (dwarf_attr(die, DW_AT_ranges, &attr, &err) != DW_DLV_OK) {
        dw_drop_err(dbg, &err);
        return 0;
    }
    if (dwarf_whatform(attr, &form, &err) == DW_DLV_OK) {
        if (form == DW_FORM_rnglistx || version >= 5)
            ranges_read_rnglists(&c, attr, form);
        else
            ranges_read_debug_ranges(&c, die, attr, cu_base);
    }
    dw_drop_err(dbg, &err);
    dwarf_dealloc(dbg, attr, DW_DLA_ATTR);
    return c.nr;
}
