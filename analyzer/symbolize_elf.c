/* symbolize_elf.c: what the symbolizer reads from a module's ELF file, and where it finds the
 * module's DWARF.
 *
 * This file implements reading a module's ELF symbols, executable sections, build id note and
 * .gnu_debuglink name into its struct sym_module, and the search for the file that holds its
 * DWARF (the file itself or a separate debug file), which it opens for every DWARF reader.
 *
 * Design notes:
 *  1. Sources, best first: DWARF of the file itself; else the separate debug file libdwarf
 *     finds (build-id, .gnu_debuglink); else /usr/lib/debug/.build-id/xx/yyyy.debug for the
 *     caller's or the file's build id; else the debuglink names in the usual directories. ELF
 *     symbols come from .symtab (of the file, else of the debug file), else .dynsym, and name the
 *     function whenever DWARF does not cover the address.
 *  2. ELF symbols go into the span index m->symspans, ranked so that the best of several
 *     symbols at one address names it (sym_rank).
 *
 * Context: analyzer only, single-threaded.
 */
#define _GNU_SOURCE
#include "symbolize_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "usage.h"

/* ---- symbols, executable sections, build id, debuglink ---- */

/* Lower is better among symbols at one address: global before weak before local, then fewer
 * leading underscores (malloc over __libc_malloc). */
static uint32_t sym_rank(const GElf_Sym *sym, const char *name)
{
    uint32_t bind = GELF_ST_BIND(sym->st_info), r, u = 0;

    r = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : bind == STB_LOCAL ? 2 : 3;
    while (name[u] == '_' && u < 3)
        u++;
    return r * 4 + u;
}

static void elf_read_syms(struct sym_module *m, Elf *elf, Elf_Scn *scn, bool dynsym)
{
    GElf_Shdr sh;
    Elf_Data *data;
    size_t n;

    if (!gelf_getshdr(scn, &sh) || !sh.sh_entsize || !(data = elf_getdata(scn, NULL)))
        return;
    m->syms_nr = 0;
    m->symspans.nr = 0;
    m->syms_from_dynsym = dynsym;
    n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n; i++) {
        GElf_Sym sym;
        const char *name;
        int type;

        if (!gelf_getsym(data, (int)i, &sym))
            break;
        type = GELF_ST_TYPE(sym.st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
            !sym.st_value)
            continue;
        name = elf_strptr(elf, sh.sh_link, sym.st_name);
        if (!name || !*name || *name == '@')
            continue;
        ALLOC_GROW(m->syms, m->syms_nr + 1, m->syms_alloc);
        /* .symtab spells versioned symbols "regexec@@GLIBC_2.3.4": keep the name only. */
        m->syms[m->syms_nr] = (struct sym_elfsym){
            strpool_intern_n(&m->strings, name, strcspn(name, "@")), NULL
        };
        span_add(&m->symspans, sym.st_value, sym.st_value + sym.st_size, (uint32_t)m->syms_nr,
                 sym_rank(&sym, name));
        m->syms_nr++;
    }
}

static void elf_read_build_id(struct sym_module *m, Elf_Scn *scn)
{
    Elf_Data *data = elf_getdata(scn, NULL);
    size_t off = 0, name_off, desc_off;
    GElf_Nhdr nh;

    while (data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
        const char *d = (const char *)data->d_buf;
        char hex[2 * 64 + 1];

        if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 || memcmp(d + name_off, "GNU", 4) ||
            !nh.n_descsz || nh.n_descsz > 64)
            continue;
        for (size_t i = 0; i < nh.n_descsz; i++)
            sprintf(hex + 2 * i, "%02x", (unsigned char)d[desc_off + i]);
        m->build_id = strpool_intern(&m->strings, hex);
        return;
    }
}

static void elf_read_debuglink(struct sym_module *m, Elf_Scn *scn)
{
    Elf_Data *data = elf_getdata(scn, NULL);

    if (data && data->d_buf && data->d_size > 1 && memchr(data->d_buf, 0, data->d_size))
        m->debuglink = strpool_intern(&m->strings, data->d_buf);
}

int symelf_scan(struct sym_module *m, const char *path, bool primary, char *err, size_t errlen)
{
    Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
    size_t shstrndx;
    Elf *elf;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getshdrstrndx(elf, &shstrndx)) {
        snprintf(err, errlen, "cannot read '%s': not an ELF file", path);
        elf_end(elf);
        close(fd);
        return -1;
    }
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        const char *name;

        if (!gelf_getshdr(scn, &sh))
            continue;
        if (sh.sh_type == SHT_SYMTAB)
            symtab = scn;
        else if (sh.sh_type == SHT_DYNSYM)
            dynsym = scn;
        if (!primary)
            continue;
        name = elf_strptr(elf, shstrndx, sh.sh_name);
        if (sh.sh_type == SHT_NOTE && !m->build_id)
            elf_read_build_id(m, scn);
        else if (name && !strcmp(name, ".gnu_debuglink"))
            elf_read_debuglink(m, scn);
        if ((sh.sh_flags & (SHF_ALLOC | SHF_EXECINSTR)) == (SHF_ALLOC | SHF_EXECINSTR) &&
            sh.sh_type != SHT_NOBITS) {
            ALLOC_GROW(m->xsecs, m->xsecs_nr + 1, m->xsecs_alloc);
            m->xsecs[m->xsecs_nr++] = (struct sym_range){ sh.sh_addr, sh.sh_addr + sh.sh_size };
        }
    }
    if (symtab)
        elf_read_syms(m, elf, symtab, false);
    else if (primary && dynsym)
        elf_read_syms(m, elf, dynsym, true);
    elf_end(elf);
    close(fd);
    return 0;
}

/* ---- the file with the DWARF ---- */

/* Keep dbg, the DWARF of file (NULL: none), as m's. */
static bool debug_keep(struct sym_module *m, Dwarf_Debug dbg, const char *file)
{
    if (!dbg)
        return false;
    m->dbg = dbg;
    m->debug_file = strpool_intern(&m->strings, file);
    return true;
}

/* Open path (following no links) and keep it if it has DWARF. */
static bool debug_try(struct sym_module *m, const char *path)
{
    return !access(path, R_OK) && debug_keep(m, dw_open(path, NULL, 0), path);
}

/* The places of design note 1, in order. */
void symelf_find_dwarf(struct sym_module *m, const char *build_id_hex)
{
    char buf[PATH_MAX + 64], dir[PATH_MAX];
    const char *bid = build_id_hex && *build_id_hex ? build_id_hex : m->build_id;
    const char *slash;
    Dwarf_Debug dbg;

    /* With a buffer for the true path, libdwarf itself follows build-id and debuglink. */
    dbg = dw_open(m->path, buf, sizeof(buf));
    if (debug_keep(m, dbg, buf[0] ? buf : m->path))
        return;
    if (bid && strlen(bid) > 2) {
        snprintf(buf, sizeof(buf), "/usr/lib/debug/.build-id/%.2s/%s.debug", bid, bid + 2);
        if (debug_try(m, buf))
            return;
    }
    if (!m->debuglink || strchr(m->debuglink, '/'))
        return;
    slash = strrchr(m->path, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - m->path) : 1, slash ? m->path : ".");
    for (int i = 0; i < 3; i++) {
        static const char *const fmt[] = { "%s/%s", "%s/.debug/%s", "/usr/lib/debug%s/%s" };

        snprintf(buf, sizeof(buf), fmt[i], dir, m->debuglink);
        if (strcmp(buf, m->path) && debug_try(m, buf))
            return;
    }
}
