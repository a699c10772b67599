/* schema.h: the database contract shared by preload/ and analyzer/.
 * The tables themselves are defined once, in schema/schema.sql, which both sides embed
 * (the Makefile turns it into a C string). */
#ifndef HW_SCHEMA_H
#define HW_SCHEMA_H

#define HW_SCHEMA_VERSION 9
#define HW_SCHEMA_OLDEST_READ 2  /* the oldest version the analyzer still reads */
#define HW_DB_FORMAT "heapwatch"
#define HW_VERSION "0.1.0"

extern const char hw_schema_sql[];

#endif
