/* suppress.h: LeakSanitizer-style leak suppressions for `heapwatch leaks`.
 *
 * File syntax (LSan's, llvm compiler-rt sanitizer_suppressions.cpp): one `leak:PATTERN` a line;
 * leading and trailing blanks are ignored, as are blank lines and lines starting with '#'.
 * Any other type than `leak` is an error (LSan dies on it too). A PATTERN matches a string
 * as LSan's TemplateMatch does: a substring match where '*' stands for any run of characters,
 * '^' at the start anchors it to the start and '$' at the end to the end.
 *
 * A leak row is suppressed when any frame of its allocation stack (allocator wrappers
 * included) has a function name, source file or module path that a pattern matches, as LSan
 * checks the module and then the symbolized frames of each address in turn. The first matching
 * frame, leaf first, decides which suppression is charged, in the order the suppressions were
 * added. */
#ifndef HW_SUPPRESS_H
#define HW_SUPPRESS_H

#include <stdbool.h>
#include <stdint.h>
#include "profile.h"

struct suppression {
    char *pattern;          /* as written, for reports */
    char *glob;             /* compiled: '*' the only special character, anchors made explicit */
    char *origin;           /* "FILE:LINE" or "default" */
    bool linker_leaf;       /* the built-in rule: the leaf frame is in the dynamic linker */
    int64_t objects, bytes; /* what it suppressed */
};

struct suppressions {
    struct suppression *v;
    size_t nr, alloc;
};

/* Whether template matches str (NULL or "" never matches, as in LSan). */
bool suppress_match(const char *templ, const char *str);

/* Add the suppressions of text (the contents of a file called origin). Returns 0, or -1
 * after error("ORIGIN:LINE: ...") on a line that is not `leak:PATTERN`. */
int suppressions_parse(struct suppressions *s, const char *text, const char *origin);
/* Read and parse a file; -1 after error() when it cannot be read or parsed. */
int suppressions_read(struct suppressions *s, const char *path);
/* Add heapwatch's built-in suppressions for allocations that glibc itself keeps (see
 * suppress.c for each one's reason). */
void suppressions_add_defaults(struct suppressions *s);

/* The suppression that matches a stack of depth locations (leaf first, allocator wrappers
 * still in), or NULL. */
struct suppression *suppressions_match_stack(struct suppressions *s, struct location *const *locs, int depth);

void suppressions_release(struct suppressions *s);

#endif
