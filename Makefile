# heapwatch: build, test, demo, bench, install.
#   make            libheapwatch.so and heapwatch in this directory
#   make deps       install the Debian packages the build and the tests need (idempotent)
#   make test       unit tests, then the end-to-end tests (TAP through prove)
#   make demo       run the bundled demo service under the shim and print the reports
#   make bench      speed and memory against native and heaptrack
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX ?= /usr/local
DESTDIR ?=
BUILD := build
CC ?= gcc
CFLAGS_COMMON := -std=gnu11 -Wall -Wextra -Werror -g -O2
SHIM_CFLAGS := $(CFLAGS_COMMON) -fPIC -fvisibility=hidden -fno-omit-frame-pointer -ftls-model=initial-exec
ANA_CFLAGS := $(CFLAGS_COMMON) -I/usr/include/libdwarf
ZLIB_A := $(firstword $(wildcard /usr/lib/*/libz.a) /usr/lib/x86_64-linux-gnu/libz.a)
SQLITE_A := $(firstword $(wildcard /usr/lib/*/libsqlite3.a) /usr/lib/x86_64-linux-gnu/libsqlite3.a)

SHIM_SRCS := $(wildcard preload/*.c)
SHIM_OBJS := $(patsubst preload/%.c,$(BUILD)/preload/%.o,$(SHIM_SRCS)) $(BUILD)/schema_sql.o
ANA_SRCS := $(wildcard analyzer/*.c)
ANA_OBJS := $(patsubst analyzer/%.c,$(BUILD)/analyzer/%.o,$(ANA_SRCS)) $(BUILD)/schema_sql_ana.o $(BUILD)/report_html.o
# Shim files that must never call the libc allocator, stdio or getenv: they run inside an
# interposed malloc (the HW_HOOKSAFE tier of preload/hw.h, which says what check-contexts checks).
HOOKSAFE_SRCS := preload/interpose.c preload/livetable.c preload/depot.c preload/record.c \
                 preload/real.c preload/sys.c preload/options.c preload/threads.c \
                 preload/arena.c preload/stw.c preload/mark.c preload/blockmap.c preload/cfi.c \
                 preload/unwind.c preload/maps.c preload/shadow.c preload/events.c preload/record_arena.c \
                 preload/forkgate.c

DEPS_PKGS := gcc g++ make libunwind-dev libdwarf-dev libelf-dev libsqlite3-dev zlib1g-dev libc6-dbg libjemalloc2 libtcmalloc-minimal4 \
             sqlite3 golang-go heaptrack valgrind python3 git perl clang jq procps nginx apache2-utils chromium

all: libheapwatch.so heapwatch $(BUILD)/heapwatch.1 $(BUILD)/heapwatch.bash

$(BUILD)/preload $(BUILD)/analyzer:
	mkdir -p $@

$(BUILD)/schema_sql.c: schema/schema.sql | $(BUILD)/preload
	{ echo 'const char hw_schema_sql[] ='; sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$$/\\n"/' $<; echo ';'; } > $@

$(BUILD)/schema_sql.o: $(BUILD)/schema_sql.c
	$(CC) $(SHIM_CFLAGS) -c $< -o $@

$(BUILD)/schema_sql_ana.o: $(BUILD)/schema_sql.c
	$(CC) $(ANA_CFLAGS) -c $< -o $@

# The page of `heapwatch html`, embedded as one string.
$(BUILD)/report_html.c: analyzer/html/report.html | $(BUILD)/analyzer
	{ echo 'const char hw_report_html[] ='; sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$$/\\n"/' $<; echo ';'; } > $@

$(BUILD)/report_html.o: $(BUILD)/report_html.c
	$(CC) $(ANA_CFLAGS) -c $< -o $@

# interpose.c lets C++ exceptions (bad_alloc from the real operator new) pass through; its hooks
# need no frame of their own (stacks are unwound by CFI, and the shim's frames are dropped).
$(BUILD)/preload/interpose.o: SHIM_EXTRA := -fexceptions -fomit-frame-pointer
$(BUILD)/preload/%.o: preload/%.c preload/*.h schema/settings.def schema/schema.h schema/chunk.h | $(BUILD)/preload
	$(CC) $(SHIM_CFLAGS) $(SHIM_EXTRA) -c $< -o $@

# The private SQLite is linked statically with its symbols hidden (-Wl,--exclude-libs,ALL),
# so a program that uses its own SQLite never meets ours.
libheapwatch.so: $(SHIM_OBJS)
	$(CC) -shared -o $@ $^ -Wl,--exclude-libs,ALL -Wl,-z,nodelete $(SQLITE_A) $(ZLIB_A) -lunwind -ldl -lpthread -lm

$(BUILD)/analyzer/%.o: analyzer/%.c analyzer/*.h schema/*.h schema/settings.def | $(BUILD)/analyzer
	$(CC) $(ANA_CFLAGS) -c $< -o $@

heapwatch: $(ANA_OBJS)
	$(CC) -o $@ $^ -lsqlite3 -ldwarf -lelf -lz -lstdc++ -lm

# The man page and the bash completion come from the binary's own help: they cannot disagree.
$(BUILD)/heapwatch.1: heapwatch analyzer/manpage.sh
	sh analyzer/manpage.sh ./heapwatch > $@.tmp && mv $@.tmp $@

$(BUILD)/heapwatch.bash: heapwatch analyzer/completion.sh
	sh analyzer/completion.sh ./heapwatch > $@.tmp && mv $@.tmp $@

check-contexts: $(patsubst preload/%.c,$(BUILD)/preload/%.o,$(HOOKSAFE_SRCS))
	@bad=$$(for o in $^; do nm -u $$o | awk -v o=$$o '$$2 ~ /^(malloc|calloc|realloc|free|.*printf|getenv|fopen|dlsym)$$/ && o !~ /(real|interpose)\.o$$/ {print o": "$$2}'; done); \
	if [ -n "$$bad" ]; then echo "hook-safe objects call forbidden functions:"; echo "$$bad"; exit 1; fi; echo "check-contexts: ok"

# Installing nginx (for the test of a real server) would start it on port 80: a policy-rc.d
# that answers 101 keeps every package's service stopped while we install.
deps:
	@missing=$$(for p in $(DEPS_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  if [ ! -f /var/lib/apt/heapwatch-updated ]; then apt-get update -qq && touch /var/lib/apt/heapwatch-updated; fi; \
	  guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  [ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; \
	fi

test: deps all check-contexts
	$(MAKE) -C tests all
	cd tests && prove -f -j2 unit/run.t t[0-9]*.sh

demo: deps all
	$(MAKE) -C tests progs
	sh tests/demo.sh

bench: deps all
	sh tests/bench/bench.sh $(CURDIR)/libheapwatch.so $(CURDIR)/$(BUILD)/bench

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/heapwatch $(DESTDIR)$(PREFIX)/include
	install -m 755 heapwatch $(DESTDIR)$(PREFIX)/bin/heapwatch
	install -m 755 libheapwatch.so $(DESTDIR)$(PREFIX)/lib/heapwatch/libheapwatch.so
	install -m 644 include/heapwatch.h $(DESTDIR)$(PREFIX)/include/heapwatch.h
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 $(BUILD)/heapwatch.1 $(DESTDIR)$(PREFIX)/share/man/man1/heapwatch.1
	install -m 644 $(BUILD)/heapwatch.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/heapwatch

clean:
	rm -rf $(BUILD) libheapwatch.so heapwatch
	$(MAKE) -C tests clean

.PHONY: all deps test demo bench install clean check-contexts
