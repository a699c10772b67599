#!/bin/sh
# heapwatch owners: which variables hold the heap, with retained sizes from the dominator
# tree. progs/owners.c builds a heap whose owners and sizes are known exactly (its header
# comment has the table); the snapshot is taken in full mode, so every block keeps its
# requested size. Checked at -O0 and -O2 built by gcc and by clang (whose DWARF 5 reaches
# addresses through .debug_addr: DW_OP_addrx), and on a stripped copy (owners by ELF symbol,
# or described ranges, never a crash).
. ./lib.sh
plan 102

# owner JSON NAME [FUNCTION]: "KIND RETAINED_BYTES RETAINED_OBJECTS" of the owner called NAME
# ("none" when there is none, "several" when more than one matches).
owner() {
    [ -s "$1" ] || { echo "no report"; return; }
    jq -r --arg n "$2" --arg f "${3:-}" '[.owners[] | select(.name == $n and ($f == "" or .function == $f))] |
        if length == 0 then "none" elif length > 1 then "several"
        else .[0] | "\(.kind) \(.retained_bytes) \(.retained_objects)" end' "$1"
}

# field JSON NAME KEY: one field of the owner called NAME
field() { jq -r --arg n "$2" --arg k "$3" '[.owners[] | select(.name == $n)][0][$k]' "$1"; }

# reachable JSON NAME: "REACHABLE_BYTES REACHABLE_OBJECTS"
reachable() { jq -r --arg n "$2" '[.owners[] | select(.name == $n)][0] | "\(.reachable_bytes) \(.reachable_objects)"' "$1"; }

for opt in O0 O2 clang-O0 clang-O2; do
    if [ ! -x "$BIN/owners-$opt" ]; then   # tests/Makefile builds -clang-* only with clang
        for _i in $(seq 23); do skip "-$opt: no $BIN/owners-$opt (clang not installed)"; done
        continue
    fi
    db="$OUT/owners-$opt.db"
    run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/owners-$opt"
    is "$?" 0 "-$opt: the program runs under the shim"
    id=$("$HW" ls "$db" --json | jq -r '[.snapshots[] | select(.label == "owners") | .id] | first // "none"')
    j="$OUT/owners-$opt.json"
    "$HW" owners "$db:$id" --json >"$j" 2>"$OUT/owners-$opt.err" || : >"$j"
    is "$(owner "$j" g_cache)" "global 4232 9" "-$opt: g_cache retains its cache, 4 entries and their values"
    is "$(field "$j" g_cache type)" "struct cache *" "-$opt: g_cache's declared type"
    is "$(owner "$j" g_table)" "global 192 8" "-$opt: a global array of 8 pointers retains its 8 entries"
    is "$(field "$j" g_table type)" "struct entry *[8]" "-$opt: g_table's declared type"
    is "$(owner "$j" g_config)" "global 4096 1" "-$opt: a nested field of a global struct (g_config.log.buf)"
    is "$(owner "$j" list get_list)" "static_local 480 10" "-$opt: a function-static local retains its list of 10 nodes"
    is "$(owner "$j" g_tree)" "global 168 7" "-$opt: g_tree retains its 7 nodes"
    is "$(owner "$j" g_shared_a)" "global 0 0" "-$opt: a block shared by two globals is retained by neither (a)"
    is "$(owner "$j" g_shared_b)" "global 0 0" "-$opt: ... nor by the other (b)"
    is "$(reachable "$j" g_shared_a)" "777 1" "-$opt: ... but reachable from each"
    ok_cmd "-$opt: the shared block is counted once, in shared" test "$(jqr .shared_bytes "$j")" -ge 777
    is "$(owner "$j" tls_buf | cut -d' ' -f1-2)" "tls 3000" "-$opt: a __thread variable of a live thread"
    is "$(jqr '[.owners[] | select(.name == "tls_buf")][0].thread | type' "$j")" number "-$opt: ... with its thread"
    if [ "$opt" = clang-O2 ]; then
        # Exception: clang -O2 inlines xmalloc into worker and, seeing that `mine` never
        # escapes, removes its malloc, memset and free altogether: no block, so no owner.
        is "$(owner "$j" mine worker)" none "-$opt: a local whose allocation clang removed owns nothing"
    else
        is "$(owner "$j" mine worker)" "local 5000 1" "-$opt: a local of a thread blocked in a system call"
    fi
    is "$(owner "$j" main_local main)" "local 1234 1" "-$opt: a local of the thread that took the snapshot"
    is "$(owner "$j" dso_held)" "global 64 1" "-$opt: a dlopen'd library's global"
    is "$(owner "$j" dso_tls_held | cut -d' ' -f1-2)" "tls 720" "-$opt: a dlopen'd library's __thread variable (dynamic TLS)"
    is "$(jqr '[.owners[] | select(.name | test("^pthread_setspecific value \\(key [0-9]+\\) of thread [0-9]+$"))] | map("\(.kind) \(.retained_bytes)") | join(",")' "$j")" \
        "thread 333" "-$opt: a pthread_setspecific value, named by its key (libc's DWARF for struct pthread)"
    ok_cmd "-$opt: owners' retained bytes plus shared add up to the reachable bytes" \
        test "$(jqr '([.owners[].retained_bytes] | add) + .shared_bytes' "$j")" = "$(jqr .reachable_bytes "$j")"
    ok_cmd "-$opt: reachable bytes are the snapshot's" \
        test "$(jqr .reachable_bytes "$j")" = "$("$HW" ls "$db" --json | jq -r --arg i "$id" '.snapshots[] | select((.id | tostring) == $i) | .reachable_bytes')"
    is "$(jqr .unattributed_objects "$j")" 0 "-$opt: every reachable block has an owner"
    "$HW" owners "$db:$id" >"$OUT/owners-$opt.txt" 2>&1
    ok_cmd "-$opt: the text report names g_cache with its type" grep -q 'g_cache \[struct cache \*\]' "$OUT/owners-$opt.txt"
done

# A stripped copy: no DWARF, then no symbols at all.
cp "$BIN/owners-O0" "$OUT/owners-O0"
cp "$BIN/owners_dso-O0.so" "$OUT/owners_dso-O0.so"
objcopy --strip-debug "$OUT/owners-O0"
run_shim "$OUT/nodebug.db" HEAPWATCH_SAMPLE_RATE=1 -- "$OUT/owners-O0"
is "$?" 0 "no debug info: the program runs"
"$HW" owners "$OUT/nodebug.db:1" --json >"$OUT/nodebug.json" 2>"$OUT/nodebug.err"
is "$?" 0 "no debug info: owners succeeds"
is "$(owner "$OUT/nodebug.json" g_cache)" "global 4232 9" "no debug info: g_cache is named by its ELF symbol"
is "$(field "$OUT/nodebug.json" g_cache type)" null "no debug info: ... with no type"
ok_cmd "no debug info: a warning says so, naming the module" grep -q "no debug information for '.*/owners-O0'" "$OUT/nodebug.err"
strip --strip-all "$OUT/owners-O0"
run_shim "$OUT/stripped.db" HEAPWATCH_SAMPLE_RATE=1 -- "$OUT/owners-O0"
"$HW" owners "$OUT/stripped.db:1" --json >"$OUT/stripped.json" 2>"$OUT/stripped.err"
is "$?" 0 "stripped: owners succeeds"
ok_cmd "stripped: g_cache's memory is held by a described range of the executable's .bss" \
    test "$(jqr '[.owners[] | select(.kind == "data" and (.name | startswith(".bss of owners-O0+0x")) and .retained_bytes == 4232)] | length' "$OUT/stripped.json")" -ge 1

# Bad input: a snapshot without a heap walk, an unknown snapshot.
run_shim "$OUT/counters.db" HEAPWATCH_OBJECTS=0 HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/owners-O0"
"$HW" owners "$OUT/counters.db:1" >"$OUT/counters.out" 2>"$OUT/counters.err"
is "$?" 3 "a snapshot without a heap walk: exit 3"
ok_cmd "... saying so" grep -q "without a heap walk" "$OUT/counters.err"
"$HW" owners "$OUT/counters.db:99" >/dev/null 2>"$OUT/unknown.err"
is "$?" 3 "an unknown snapshot: exit 3"
done_testing
