#!/bin/sh
# Exact counts in full mode: every allocator entry point, C and C++, -O0 and -O2. Each site's
# alloc/inuse objects and bytes must be exactly what the program did, at its function:line.
# Exact stacks: stackshapes' allocations, from recursions of every depth to 24, two call
# sites at one depth, four allocation functions, three threads and longjmps out of the
# recursion, counted per stack as the program counted them (the shim's stack memo reuses a
# previous stack's outer frames: it must never hand out another stack's).
. ./lib.sh

# site NAME SRC -> line number of the "SITE:NAME" marker
site() { grep -n "SITE:$1\b" "progs/$2" | cut -d: -f1; }

# values SNAPJSON FILE LINE -> "alloc_objects alloc_space inuse_objects inuse_space" (flat)
values() {
    jq -r --arg f "$2" --argjson l "$3" '[.rows[] | select((.file // "" | endswith("/" + $f)) and .line == $l)]
        | if length == 0 then "missing" else (map(.flat) | "\(map(.alloc_objects)|add) \(map(.alloc_space)|add) \(map(.inuse_objects)|add) \(map(.inuse_space)|add)") end' "$1"
}

# function_at SNAPJSON FILE LINE -> function name of that row
function_at() {
    jq -r --arg f "$2" --argjson l "$3" '[.rows[] | select((.file // "" | endswith("/" + $f)) and .line == $l) | .function] | first // "missing"' "$1"
}

C_EXPECT="malloc:use_malloc:100 4800 50 2400
calloc:use_calloc:100 12000 70 8400
realloc_start:use_realloc:100 1600 0 0
realloc_grow:use_realloc:100 3200 0 0
realloc_grow2:use_realloc:100 6400 100 6400
posix_memalign:use_aligned:100 20000 100 20000
aligned_alloc:use_aligned:100 25600 100 25600
memalign:use_aligned:100 10000 100 10000
valloc:use_aligned:100 30000 90 27000
strdup:use_aligned:100 1100 100 1100"

CXX_EXPECT="new:plain:100 4000 75 3000
new_array:arrays_and_nothrow:100 10000 50 5000
new_nothrow:arrays_and_nothrow:100 4000 100 4000
new_aligned:over_aligned:100 12800 0 0
new_aligned_array:over_aligned:100 51200 100 51200"

plan $(( 2 * (2 + 10 * 2) + 2 * (2 + 5 * 2) + 1 + 2 ))

check_prog() {  # PROG SRC EXPECT
    for opt in O0 O2; do
        db="$OUT/$1-$opt.db"
        run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/$1-$opt"
        ok $? "$1 -$opt runs under the shim"
        "$HW" top "$db:1" --by line --json > "$OUT/$1-$opt.json" 2>"$OUT/$1-$opt.err"
        ok $? "$1 -$opt: top --json works"
        while IFS=: read -r name fn expect; do
            line=$(site "$name" "$2")
            is "$(values "$OUT/$1-$opt.json" "$2" "$line")" "$expect" "$1 -$opt: $name at $2:$line: alloc/inuse objects and bytes"
            is "$(function_at "$OUT/$1-$opt.json" "$2" "$line")" "$fn" "$1 -$opt: $name is charged to $fn"
        done <<EOF_EXPECT
$3
EOF_EXPECT
    done
}

check_prog exact exact.c "$C_EXPECT"
check_prog exact_cxx exact_cxx.cpp "$CXX_EXPECT"

# An aligned new of a size that rounding up to the alignment wraps: whatever libstdc++ does
# (12 returns a small block, as the shim's own rounding does), the shim does the same.
native=$("$BIN/hugenew-O2")
run_shim "$OUT/huge.db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/hugenew-O2"
is "$(sed 's/(0x[0-9a-f]*)/(P)/' "$OUT/stdout")" "$(echo "${native:-no output}" | sed 's/(0x[0-9a-f]*)/(P)/')" \
   "aligned new of SIZE_MAX - 10: the same outcome as without the shim"

for opt in O0 O2; do
    run_shim "$OUT/shapes-$opt.db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/stackshapes-$opt"
    sort "$OUT/stdout" > "$OUT/shapes-want-$opt"
    "$HW" export "$OUT/shapes-$opt.db" --format folded --sample-index alloc_objects |
        sed -n 's/.*;\(run;once;.*\)/\1/p' | awk '{ n[$1] += $2 } END { for (s in n) print s, n[s] }' | sort > "$OUT/shapes-got-$opt"
    is "$(wc -l < "$OUT/shapes-want-$opt"):$(diff "$OUT/shapes-want-$opt" "$OUT/shapes-got-$opt" | head -c 600)" "50:" \
       "stackshapes -$opt: each of its 50 stacks (3 threads) counted as the program counted it"
done
