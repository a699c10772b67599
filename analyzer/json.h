/* json.h: a small streaming JSON writer for --json output (stdout). Commas are inserted
 * automatically; keys and values are escaped. */
#ifndef HW_JSON_H
#define HW_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct json {
    FILE *out;
    int depth;
    bool need_comma[64];
    bool after_key;
};

void json_init(struct json *j, FILE *out);
void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j);
void json_end_array(struct json *j);
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s);   /* NULL -> null */
void json_int(struct json *j, int64_t v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* Finish with a newline. */
void json_finish(struct json *j);

#endif
