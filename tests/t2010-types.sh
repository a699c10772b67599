#!/bin/sh
# heapwatch types and path: block types inferred from DWARF and the chains of fields that
# reach a block. progs/types.c builds a heap whose types and paths are known exactly (its
# header comment has the table); full mode, so every block keeps its requested size and
# stack. Checked at -O0 and -O2 built by gcc and by clang (DWARF 5 through .debug_addr and
# .debug_str_offsets), on a copy without debug info, and with bad input.
. ./lib.sh
plan 177

# typ JSON TYPE: "OBJECTS BYTES" of the types row TYPE ("none" when absent)
typ() { jq -r --arg t "$2" '[.types[] | select(.type == $t)] | if length == 0 then "none" else .[0] | "\(.objects) \(.bytes)" end' "$1"; }
# how JSON TYPE HOW: objects of row TYPE typed by HOW
how() { jq -r --arg t "$2" --arg h "$3" '[.types[] | select(.type == $t)][0].typed_by[$h]' "$1"; }

for opt in O0 O2 clang-O0 clang-O2; do
    if [ ! -x "$BIN/types-$opt" ]; then   # tests/Makefile builds -clang-* only with clang
        for _i in $(seq 35); do skip "-$opt: no $BIN/types-$opt (clang not installed)"; done
        continue
    fi
    db="$OUT/types-$opt.db"
    run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/types-$opt"
    is "$?" 0 "-$opt: the program runs under the shim"
    j="$OUT/types-$opt.json"
    "$HW" types "$db:1" --json >"$j" 2>"$OUT/types-$opt.err" || : >"$j"
    is "$(typ "$j" "struct server")" "1 48" "-$opt: a global struct pointer types its target"
    is "$(typ "$j" "struct session")" "4 128" "-$opt: an array member of pointers types its 4 targets"
    is "$(typ "$j" "struct user")" "4 160" "-$opt: a member of a typed block types its target"
    is "$(typ "$j" "char[]")" "5 161" "-$opt: char * targets are char[] (4 names, the union's s)"
    is "$(typ "$j" "struct item")" "20 640" "-$opt: lists typed through ->next, g_vec's elements, the leaked list"
    is "$(how "$j" "struct item" site)" 6 "-$opt: ... the leaked list by its allocation site"
    is "$(typ "$j" "struct tnode")" "7 168" "-$opt: a tree typed through ->left and ->right"
    is "$(typ "$j" "struct point[]")" "1 120" "-$opt: a block of 10 struct point is an array"
    is "$(typ "$j" "struct item *[]")" "1 64" "-$opt: an array of pointers (struct item **)"
    is "$(typ "$j" "struct msg")" "1 116" "-$opt: a struct with a flexible array member stays one struct"
    is "$(typ "$j" "struct blob")" "2 112" "-$opt: a void * member's target typed by its site"
    is "$(how "$j" "struct blob" site)" 1 "-$opt: ... one of them by site"
    is "$(typ "$j" "struct derived")" "1 40" "-$opt: the outer struct wins over its first member's type"
    is "$(typ "$j" "struct base")" none "-$opt: ... and the inner type is no row"
    is "$(jqr .conflicts "$j")" 0 "-$opt: no conflicts"
    is "$(typ "$j" "(unknown)")" "1 50" "-$opt: every block typed but the one only an interior pointer reaches"
    is "$(jqr '.bytes - .typed_bytes' "$j")" 50 "-$opt: typed bytes are all the others"

    p="$OUT/path-$opt.json"
    "$HW" path "$db:1" --type "struct user" --json >"$p" 2>"$OUT/path-$opt.err" || : >"$p"
    is "$(jqr .expression "$p")" "g_server->sessions[0]->user" "-$opt: --type: the path to the first user"
    is "$(jqr '[.steps[].type] | join(",")' "$p")" "struct server,struct session,struct user" "-$opt: ... each step typed"
    is "$(jqr '[.steps[].field] | join(",")' "$p")" ",->sessions[0],->user" "-$opt: ... each step's field"
    is "$(jqr '.owner.name + " " + .owner.kind' "$p")" "g_server global" "-$opt: ... from its owner"
    name2=$(sed -n 's/^name2 //p' "$OUT/stderr")
    leaked=$(sed -n 's/^leaked //p' "$OUT/stderr")
    "$HW" path "$db:1" "$name2" --json >"$OUT/path-name-$opt.json" 2>&1
    is "$(jqr .expression "$OUT/path-name-$opt.json")" "g_server->sessions[2]->user->name" \
        "-$opt: path ADDR through three fields"
    is "$(jqr '.target.type + " " + (.target.size | tostring)' "$OUT/path-name-$opt.json")" "char[] 21" "-$opt: ... to a char[] of 21 bytes"
    inner=$(printf '0x%x' $(($name2 + 5)))
    "$HW" path "$db:1" "$inner" --json >"$OUT/path-inner-$opt.json" 2>&1
    is "$(jqr .target.address "$OUT/path-inner-$opt.json")" "$(printf '%d' "$name2")" "-$opt: an address inside a block names the block"
    inner=$(sed -n 's/^inner //p' "$OUT/stderr")
    "$HW" path "$db:1" "$inner" --json >"$OUT/path-inner2-$opt.json" 2>&1
    is "$(jqr '"\(.expression) \(.steps[0].target_offset) \(.target.address + 10 == ('"$(printf '%d' "$inner")"'))"' "$OUT/path-inner2-$opt.json")" \
        "g_inner 10 true" "-$opt: an interior pointer: path says where in the block it points"
    "$HW" path "$db:1" "$leaked" --json >"$OUT/path-leak-$opt.json" 2>&1
    is "$(jqr .reachable "$OUT/path-leak-$opt.json")" false "-$opt: a leaked block is unreachable"
    is "$(jqr '.expression | sub("0x[0-9a-f]+"; "ADDR")' "$OUT/path-leak-$opt.json")" "leaked block ADDR->next->next" \
        "-$opt: ... held through ->next->next from the direct leak"
    is "$(jqr '[.steps[].class] | join(",")' "$OUT/path-leak-$opt.json")" "direct leak,indirect leak,indirect leak" \
        "-$opt: ... the chain starts at the direct leak"
    is "$(jqr '.steps[0].typed_by' "$OUT/path-leak-$opt.json")" site "-$opt: ... typed by its allocation site"
    "$HW" path "$db:1" --site make_list --json >"$OUT/path-site-$opt.json" 2>&1
    is "$(jqr '.target.class + " " + .target.type' "$OUT/path-site-$opt.json")" "reachable struct item" \
        "-$opt: --site FUNC: the largest block with FUNC on its stack (the first reachable one of equals)"
    "$HW" path "$db:1" "$name2" >"$OUT/path-name-$opt.txt" 2>&1
    ok_cmd "-$opt: the text report says the expression" grep -q "Reached as g_server->sessions\[2\]->user->name" "$OUT/path-name-$opt.txt"

    "$HW" top "$db:1" --by type --json >"$OUT/top-$opt.json" 2>&1
    is "$(jqr '[.rows[] | "\(.type)=\(.flat.inuse_objects)/\(.flat.leaked_objects)"] | .[0:3] | join(",")' "$OUT/top-$opt.json")" \
        "struct item=20/6,struct tnode=7/0,char[]=5/0" "-$opt: top --by type: inuse and leaked objects by type"
    "$HW" top "$db:1" --by type --sample-index alloc_space >/dev/null 2>&1
    is "$?" 2 "-$opt: top --by type --sample-index alloc_space: exit 2 (a walk has no alloc values)"

    o="$OUT/owners-type-$opt.json"
    "$HW" owners "$db:1" --by type --json >"$o" 2>&1
    is "$(jq -r '[.owners[] | select(.name == "g_server")][0].types | map("\(.type)=\(.objects)") | join(",")' "$o")" \
        "struct user=4,struct session=4,char[]=4,struct server=1" "-$opt: owners --by type splits g_server's retained objects"
    is "$(jq -r '.shared.types | map("\(.type)=\(.bytes)") | join(",")' "$o")" "struct point[]=120,struct derived=40" \
        "-$opt: ... and the shared memory (g_points' block, also held by g_mid)"
done

# C++ (progs/types_cxx.cpp): polymorphic objects typed by their vtables whatever pointer
# holds them (a Shape * or a void *), std::vector<T *>'s elements through its buffer.
for opt in O0 O2; do
    db="$OUT/cxx-$opt.db"
    run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/types_cxx-$opt"
    is "$?" 0 "C++ -$opt: the program runs under the shim"
    j="$OUT/cxx-$opt.json"
    "$HW" types "$db:1" --json >"$j" 2>"$OUT/cxx-$opt.err" || : >"$j"
    is "$(typ "$j" "shapes::Circle") $(how "$j" "shapes::Circle" vtable)" "4 96 4" \
        "C++ -$opt: 3 Circles held as Shape * and one as void *: typed by their vtable"
    is "$(typ "$j" "shapes::Square") $(how "$j" "shapes::Square" vtable)" "3 192 3" \
        "C++ -$opt: 3 Squares (64 B): their dynamic type, not Shape[4]"
    is "$(typ "$j" "shapes::Shape")" none "C++ -$opt: no block typed as the base class"
    is "$(typ "$j" "shapes::Shape *[]")" "1 40" "C++ -$opt: the vector<Shape *>'s buffer"
    is "$(typ "$j" "Item") $(how "$j" "Item" declared)" "4 96 4" "C++ -$opt: vector<Item *>'s elements through its buffer"
    is "$(jqr .conflicts "$j")" 0 "C++ -$opt: a Shape * to a Circle is no conflict (the class embeds its base)"
    "$HW" path "$db:1" --type shapes::Square --json >"$OUT/cxx-path-$opt.json" 2>&1
    ok_cmd "C++ -$opt: path through the vector's buffer, base classes left out" \
        grep -Eq '"expression":"g_(shapes\._M_impl\._M_start\[[34]\]|one)"' "$OUT/cxx-path-$opt.json"
done

# The types are cached in the database: the second report reads them, the same; a corrupt
# cache entry is inferred again.
db="$OUT/types-O0.db"
"$HW" types "$db:1" --json >"$OUT/cached.json" 2>&1
is "$(sqlite3 "$db" "SELECT count(*) FROM cache_blob_v1 WHERE kind = 'types' AND snapshot_id = 1")" 1 "types are cached"
ok_cmd "... and read back the same" cmp "$OUT/types-O0.json" "$OUT/cached.json"
sqlite3 "$db" "UPDATE cache_blob_v1 SET data = x'0011223344556677889900' WHERE kind = 'types'"
"$HW" types "$db:1" --json >"$OUT/recached.json" 2>&1
ok_cmd "a corrupt cache entry: inferred again, the same" cmp "$OUT/types-O0.json" "$OUT/recached.json"
"$HW" path "$db:1" --type "struct user" --json >"$OUT/cached-path.json" 2>&1
is "$(jqr .expression "$OUT/cached-path.json")" "g_server->sessions[0]->user" "path with cached types"

# No debug info: nothing typed, untyped blocks grouped by site, path still works by offsets.
cp "$BIN/types-O0" "$OUT/types-O0"
strip --strip-all "$OUT/types-O0"
run_shim "$OUT/stripped.db" HEAPWATCH_SAMPLE_RATE=1 -- "$OUT/types-O0"
"$HW" types "$OUT/stripped.db:1" --json >"$OUT/stripped.json" 2>"$OUT/stripped.err"
is "$?" 0 "stripped: types succeeds"
is "$(jqr .typed_bytes "$OUT/stripped.json")" 0 "stripped: nothing typed"
ok_cmd "stripped: untyped blocks are grouped by allocation site" \
    test "$(jqr '[.types[] | select(.type == "(unknown)" and .site != null)] | length' "$OUT/stripped.json")" -ge 2
name2=$(sed -n 's/^name2 //p' "$OUT/stderr")
"$HW" path "$OUT/stripped.db:1" "$name2" --json >"$OUT/stripped-path.json" 2>"$OUT/stripped-path.err"
is "$?" 0 "stripped: path succeeds"
ok_cmd "stripped: ... with byte offsets for fields" grep -q '"field":"+0x8"' "$OUT/stripped-path.json"

# Bad input.
"$HW" path "$OUT/types-O0.db:1" 0x10 >/dev/null 2>"$OUT/bad1.err"
is "$?" 3 "an address in no block: exit 3"
ok_cmd "... saying so" grep -q "no live block" "$OUT/bad1.err"
"$HW" path "$OUT/types-O0.db:1" zzz >/dev/null 2>"$OUT/bad2.err"
is "$?" 2 "not an address: exit 2"
"$HW" path "$OUT/types-O0.db:1" --type "struct nosuch" >/dev/null 2>"$OUT/bad3.err"
is "$?" 3 "an unknown type: exit 3"
"$HW" path "$OUT/types-O0.db:1" --site nosuch_function >/dev/null 2>"$OUT/bad4.err"
is "$?" 3 "an unknown site: exit 3"
"$HW" path "$OUT/types-O0.db:1" >/dev/null 2>"$OUT/bad5.err"
is "$?" 2 "no block named: exit 2"
run_shim "$OUT/counters.db" HEAPWATCH_OBJECTS=0 -- "$BIN/types-O0"
"$HW" types "$OUT/counters.db:1" >/dev/null 2>"$OUT/counters.err"
is "$?" 3 "types of a snapshot without a heap walk: exit 3"
"$HW" owners "$OUT/types-O0.db:1" --by line >/dev/null 2>"$OUT/by.err"
is "$?" 2 "owners --by line: exit 2"
done_testing
