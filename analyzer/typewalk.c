/* This file implements typewalk.h: walking a DWARF type (dwarfvars.h) down to the pointer at
 * a byte offset, through struct and union members and array elements. */
#define _GNU_SOURCE
#include "typewalk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_TYPE_DEPTH 32   /* nesting of members and arrays followed */

static const struct dv_type *type_of(struct symbolizer *s, const char *path, dv_type_id id)
{
    return id ? dv_type(s, path, id) : NULL;
}

static dv_type_id strip(struct symbolizer *s, const char *path, dv_type_id id)
{
    return id ? dv_type_strip(s, path, id) : 0;
}

/* ---- a bounded string builder for field paths ---- */

struct sbuf {
    char *buf;
    size_t size, len;
};

__attribute__((format(printf, 2, 3))) static void sb_add(struct sbuf *sb, const char *fmt, ...)
{
    if (!sb)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->buf + sb->len, sb->size - sb->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb->len = sb->len + (size_t)n < sb->size ? sb->len + (size_t)n : sb->size - 1;
}

static void sb_cut(struct sbuf *sb, size_t len)
{
    if (sb) {
        sb->len = len;
        sb->buf[len] = 0;
    }
}

/* ---- walking a type down to a pointer ---- */

/* Whether a member is a C++ base class (dwarfvars.h names it after its type). */
static bool is_base(struct symbolizer *s, const char *path, const struct dv_member *mem)
{
    const struct dv_type *t = type_of(s, path, strip(s, path, mem->type));
    return t && t->name && (t->kind == DV_T_CLASS || t->kind == DV_T_STRUCT) && !strcmp(t->name, mem->name);
}

static uint64_t member_size(struct symbolizer *s, const char *path, const struct dv_member *mem, bool last)
{
    const struct dv_type *t = type_of(s, path, strip(s, path, mem->type));
    if (!t)
        return 0;
    if (last && t->kind == DV_T_ARRAY && t->count == 0)
        return UINT64_MAX - mem->offset;   /* a flexible array member runs to the block's end */
    return t->size;
}

/* Whether a pointer lies at byte offset off of an object of type id (module m): its declared
 * target in *pointee (0 for void *), the members and indexes passed appended to sb (".a.b[3]"). */
static bool pointer_at(struct symbolizer *s, const char *path, dv_type_id id, uint64_t off, dv_type_id *pointee,
                       struct sbuf *sb, int depth)
{
    const struct dv_type *t = type_of(s, path, strip(s, path, id));
    if (!t || depth > MAX_TYPE_DEPTH)
        return false;
    switch (t->kind) {
    case DV_T_POINTER:
        if (off)
            return false;
        *pointee = t->target;
        return true;
    case DV_T_ARRAY: {
        const struct dv_type *e = type_of(s, path, strip(s, path, t->target));
        if (!e || !e->size)
            return false;
        uint64_t i = off / e->size;
        if (t->count && i >= t->count)
            return false;
        size_t mark = sb ? sb->len : 0;
        sb_add(sb, "[%llu]", (unsigned long long)i);
        if (pointer_at(s, path, t->target, off - i * e->size, pointee, sb, depth + 1))
            return true;
        sb_cut(sb, mark);
        return false;
    }
    case DV_T_STRUCT:
    case DV_T_CLASS:
    case DV_T_UNION:
        for (uint32_t j = 0; j < t->nr_members; j++) {
            const struct dv_member *mem = &t->members[j];
            if (off < mem->offset || off - mem->offset >= member_size(s, path, mem, j + 1 == t->nr_members))
                continue;
            size_t mark = sb ? sb->len : 0;
            if (mem->name && *mem->name && !is_base(s, path, mem))
                sb_add(sb, ".%s", mem->name);   /* a base class's members are the object's own */
            if (pointer_at(s, path, mem->type, off - mem->offset, pointee, sb, depth + 1))
                return true;
            sb_cut(sb, mark);   /* a union's next member may hold the pointer */
        }
        return false;
    default:
        return false;
    }
}

/* Whether type id (module m) holds a member of the type named `name` at offset 0, at any
 * depth: a derived class's base, or C's embedded header struct. */
bool tw_embeds(struct symbolizer *s, const char *path, dv_type_id id, const char *name)
{
    for (int depth = 0; depth < MAX_TYPE_DEPTH; depth++) {
        const struct dv_type *t = type_of(s, path, strip(s, path, id));
        if (!t || (t->kind != DV_T_STRUCT && t->kind != DV_T_CLASS) || !t->nr_members || t->members[0].offset)
            return false;
        id = t->members[0].type;
        const struct dv_type *first = type_of(s, path, strip(s, path, id));
        if (first && first->name && !strcmp(first->name, name))
            return true;
    }
    return false;
}


bool tw_flexible(struct symbolizer *s, const char *path, const struct dv_type *t)
{
    if ((t->kind != DV_T_STRUCT && t->kind != DV_T_CLASS) || !t->nr_members)
        return false;
    const struct dv_type *last = type_of(s, path, strip(s, path, t->members[t->nr_members - 1].type));
    return last && last->kind == DV_T_ARRAY && last->count == 0;
}

/* Whether t is a C++ polymorphic class: its vtable pointer (GCC's and clang's artificial
 * `_vptr.Base` member) at offset 0, its own or a first base's. */
bool tw_polymorphic(struct symbolizer *s, const char *path, const struct dv_type *t)
{
    for (int depth = 0; t && depth < MAX_TYPE_DEPTH; depth++) {
        if ((t->kind != DV_T_STRUCT && t->kind != DV_T_CLASS) || !t->nr_members || t->members[0].offset)
            return false;
        if (t->members[0].name && !strncmp(t->members[0].name, "_vptr", 5))
            return true;
        t = type_of(s, path, strip(s, path, t->members[0].type));
    }
    return false;
}

bool tw_pointer_at(struct symbolizer *s, const char *path, dv_type_id t, uint64_t off, dv_type_id *pointee, char *field,
                   size_t size)
{
    dv_type_id ignored;
    if (!field || !size)
        return pointer_at(s, path, t, off, pointee ? pointee : &ignored, NULL, 0);
    struct sbuf sb = { field, size, 0 };
    field[0] = 0;
    return pointer_at(s, path, t, off, pointee ? pointee : &ignored, &sb, 0);
}
