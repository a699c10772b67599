/* varstest_opaque.c: the only definition of struct opaque for tests/unit/varstest_prog.c,
 * whose unit sees a declaration: the DWARF reader must resolve one to the other. */
#include <stdlib.h>

struct opaque {
	long id;
	struct opaque *peer;
	char tail[16];
};

struct opaque *varstest_opaque_new(void)
{
	struct opaque *o = calloc(1, sizeof(*o));

	o->id = 42;
	return o;
}
