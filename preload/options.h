/* options.h: the shim's settings, parsed once from HEAPWATCH_* variables at initialisation. */
#ifndef HW_OPTIONS_H
#define HW_OPTIONS_H

#include <stdint.h>
#include "hw.h"

#define HW_OPT_SIZE uint64_t
#define HW_OPT_UINT uint64_t
#define HW_OPT_BOOL uint64_t
#define HW_OPT_SIGNAL uint64_t
#define HW_OPT_STRING const char *

struct hw_options {
#define HW_OPT(kind, field, name, def, help) HW_OPT_##kind field;
#include "../schema/settings.def"
#undef HW_OPT
};
extern HW_INTERNAL struct hw_options hw_opt;

/* Parse HEAPWATCH_* from envp (NULL-terminated); each bad value or unknown name is reported
 * once on stderr and the default kept. Strings are copied. Never allocates. */
void hw_options_parse(char **envp) HW_HOOKSAFE;
/* Render the effective settings as "NAME=value\n" lines into buf. */
void hw_options_render(char *buf, size_t size) HW_HOOKSAFE;

#endif
