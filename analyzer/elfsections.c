/* This file implements elfsections.h with libelf: per file, its SHF_ALLOC sections'
 * address ranges and names, sorted by address. */
#define _GNU_SOURCE
#include "elfsections.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "usage.h"

struct section {
    uint64_t start, end;
    char *name;
};

struct file_sections {
    char *path;
    struct section *v;
    size_t nr;
};

struct elfsections {
    struct file_sections *files;
    size_t nr, alloc;
};

struct elfsections *elfsections_new(void)
{
    return xcalloc(1, sizeof(struct elfsections));
}

void elfsections_free(struct elfsections *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nr; i++) {
        for (size_t j = 0; j < e->files[i].nr; j++)
            free(e->files[i].v[j].name);
        free(e->files[i].v);
        free(e->files[i].path);
    }
    free(e->files);
    free(e);
}

static int by_start(const void *a, const void *b)
{
    const struct section *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

static void read_sections(struct file_sections *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    size_t shstrndx, alloc = 0;
    if (elf && elf_kind(elf) == ELF_K_ELF && !elf_getshdrstrndx(elf, &shstrndx)) {
        for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn; scn = elf_nextscn(elf, scn)) {
            GElf_Shdr sh;
            const char *name;
            if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC) || !sh.sh_size ||
                !(name = elf_strptr(elf, shstrndx, sh.sh_name)))
                continue;
            ALLOC_GROW(f->v, f->nr + 1, alloc);
            f->v[f->nr++] = (struct section){ sh.sh_addr, sh.sh_addr + sh.sh_size, xstrdup(name) };
        }
    }
    if (elf)
        elf_end(elf);
    close(fd);
    qsort(f->v, f->nr, sizeof *f->v, by_start);
}

const char *elfsections_at(struct elfsections *e, const char *path, uint64_t a, uint64_t *off)
{
    struct file_sections *f = NULL;
    for (size_t i = 0; i < e->nr && !f; i++)
        if (!strcmp(e->files[i].path, path))
            f = &e->files[i];
    if (!f) {
        ALLOC_GROW(e->files, e->nr + 1, e->alloc);
        f = &e->files[e->nr++];
        *f = (struct file_sections){ xstrdup(path), NULL, 0 };
        read_sections(f);
    }
    for (size_t j = 0; j < f->nr; j++)   /* few sections: a scan is enough */
        if (a >= f->v[j].start && a < f->v[j].end) {
            *off = a - f->v[j].start;
            return f->v[j].name;
        }
    return NULL;
}
