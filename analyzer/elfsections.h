/* elfsections.h: the ELF section (".bss", ".data", ".got"...) holding a link-time address of
 * a module, to describe memory no variable names ("bss of libfoo.so+0x1234"). Each file's
 * section table is read once (libelf) and kept until elfsections_free. Context: analyzer
 * only, single-threaded. */
#ifndef HW_ELFSECTIONS_H
#define HW_ELFSECTIONS_H

#include <stdint.h>

struct elfsections;

struct elfsections *elfsections_new(void);
void elfsections_free(struct elfsections *e);
/* The name of the allocated section of the file at path that holds link address a, with a's
 * offset in it in *off; NULL when none does or the file cannot be read. */
const char *elfsections_at(struct elfsections *e, const char *path, uint64_t a, uint64_t *off);

#endif
