#!/bin/sh
# demo.sh: what `make demo` shows: a small service with a leak, a growing index, a cache and
# churn runs under heapwatch; it takes a snapshot after each round of 1000 requests (through
# heapwatch.h), one on SIGUSR2 and one with `heapwatch snap`; then the reports, leaks included,
# which variables hold the memory, of what types, through which fields, and from the event log
# the timeline, the peak, the temporary allocations and the lifetimes.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
hw="$top/heapwatch"
work="$top/build/demo"
rm -rf "$work" && mkdir -p "$work" && cd "$work"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "heapwatch run --full --events -o demo.db -- demo_service 8"
"$hw" run --full --events -o demo.db -- "$top/tests/progs/bin/demo_service-O2" 8

step "LD_PRELOAD=libheapwatch.so demo_service 0 wait &   # then kill -USR2, heapwatch snap, kill -TERM"
LD_PRELOAD="$top/libheapwatch.so" HEAPWATCH_OUT=signals.db "$top/tests/progs/bin/demo_service-O2" 0 wait >/dev/null &
pid=$!
sleep 0.5; kill -USR2 $pid; sleep 0.5
"$hw" snap $pid
sleep 0.3; kill -TERM $pid; wait $pid || true
"$hw" ls signals.db

step "heapwatch ls demo.db"
"$hw" ls demo.db
step "heapwatch top demo.db --sample-index inuse_space      # who holds memory now"
"$hw" top demo.db --sample-index inuse_space --nodecount 8
step "heapwatch top demo.db --sample-index alloc_space --by function   # who allocated the most"
"$hw" top demo.db --sample-index alloc_space --by function --nodecount 8
step "heapwatch diff demo.db:1 demo.db:8 --by function      # what grew"
"$hw" diff demo.db:1 demo.db:8 --by function --nodecount 6
step "heapwatch leaks demo.db                               # unreachable blocks, by stack"
"$hw" leaks demo.db
step "heapwatch growth demo.db --all --by function         # steady growth vs cache vs churn"
"$hw" growth demo.db --all --by function
step "heapwatch owners demo.db --by type -n 4                # which variables hold it, of what type"
"$hw" owners demo.db --by type -n 4
step "heapwatch types demo.db -n 6                           # the heap by type (DWARF)"
"$hw" types demo.db -n 6
step "heapwatch growth demo.db --by owner                    # which variable accumulates, which site leaks"
"$hw" growth demo.db --by owner
step "heapwatch path demo.db --site session_open             # how a block is reached (here: a leak)"
"$hw" path demo.db --site session_open
step "heapwatch path demo.db --type 'struct cache_entry'     # ... and a reachable one"
"$hw" path demo.db --type 'struct cache_entry'
step "heapwatch timeline demo.db --points 16 --top 4          # memory over the run (event log)"
"$hw" timeline demo.db --points 16 --top 4
step "heapwatch peak demo.db --nodecount 6                     # when it peaked, who held it"
"$hw" peak demo.db --nodecount 6 --by function
step "heapwatch top demo.db --sample-index temporary_objects --by function   # freed right away"
"$hw" top demo.db --sample-index temporary_objects --by function --nodecount 5
step "heapwatch lifetimes demo.db -n 5                          # how long allocations live"
"$hw" lifetimes demo.db -n 5
step "heapwatch export demo.db --format pprof -o heap.pb.gz && go tool pprof -top heap.pb.gz"
"$hw" export demo.db --format pprof -o heap.pb.gz
if command -v go >/dev/null 2>&1; then
    GOCACHE="$work/gocache" go tool pprof -top -nodecount=8 heap.pb.gz 2>/dev/null
fi
step "heapwatch html demo.db --base demo.db:1 -o demo.html   # all of it, in a browser"
"$hw" html demo.db --base demo.db:1 -o demo.html
printf '\nThe databases are in %s; open %s/demo.html in a browser.\n' "$work" "$work"
