#!/bin/sh
# growth --by owner and diff --by owner: which variables' retained memory grows, and which
# sites' unreachable memory does. progs/owner_growth.c runs 8 phases with a snapshot after
# each, and its header has the exact sizes: g_sessions accumulates, g_cache fills for 3
# phases and stays full, g_batch comes and goes (a sawtooth), leak_site drops a list each
# phase. Full mode (every block keeps its requested size), no exit snapshot (the 8 are the
# program's), at -O0 and -O2.
. ./lib.sh
plan 76

src="$PWD/progs/owner_growth.c"
leak_line=$(grep -n 'struct lnode \*n = malloc' "$src" | cut -d: -f1)

# row JSON NAME: "KIND CLASS SERIES" of the one row called NAME ("absent", or "N rows")
row() {
    [ -s "$1" ] || { echo "no report"; return; }
    jq -r --arg n "$2" '[.rows[] | select(.name == $n)] |
        if length == 0 then "absent" elif length > 1 then "\(length) rows"
        else .[0] | "\(.kind) \(.class) \(.series | map(tostring) | join(","))" end' "$1"
}

# delta JSON NAME: "A_BYTES A_OBJECTS B_BYTES B_OBJECTS DELTA_BYTES DELTA_OBJECTS" of a diff row
delta() {
    [ -s "$1" ] || { echo "no report"; return; }
    jq -r --arg n "$2" '[.rows[] | select(.name == $n)] |
        if length != 1 then "\(length) rows"
        else .[0] | "\(.a.bytes) \(.a.objects) \(.b.bytes) \(.b.objects) \(.delta.bytes) \(.delta.objects)" end' "$1"
}

for opt in O0 O2; do
    db="$OUT/og-$opt.db"
    run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_AT_EXIT=0 -- "$BIN/owner_growth-$opt"
    is "$?:$(cat "$OUT/stdout")" "0:phases 8" "-$opt: the program runs under the shim"
    is "$("$HW" ls "$db" --json | jq -r '[.snapshots[] | .label] | join(",")')" \
        "phase 1,phase 2,phase 3,phase 4,phase 5,phase 6,phase 7,phase 8" "-$opt: 8 snapshots, one a phase"

    g="$OUT/growth-$opt.json"
    "$HW" growth "$db" --by owner --all --json >"$g" 2>"$OUT/growth-$opt.err" || : >"$g"
    is "$(jqr '"\(.by) \(.sample_index) \(.snapshots | length) \(.skipped | length)"' "$g")" "owner inuse_space 8 0" \
        "-$opt: growth --by owner over the 8 walked snapshots"
    is "$(row "$g" g_sessions)" "global accumulation 640,1280,1920,2560,3200,3840,4480,5120" \
        "-$opt: g_sessions accumulates: exactly 640 more retained bytes a phase"
    is "$(row "$g" g_cache)" "global cache 1216,2176,3136,3136,3136,3136,3136,3136" \
        "-$opt: g_cache filled for 3 phases, then stayed full: a cache, not accumulation"
    is "$(row "$g" g_batch)" "global churn 4160,0,4160,0,4160,0,4160,0" "-$opt: the g_batch sawtooth is churn"
    is "$(row "$g" leak_site)" "leak leak 192,384,576,768,960,1152,1344,1536" \
        "-$opt: the unreachable lists of leak_site (direct and indirect) grow: a leak"
    is "$(jqr '[.rows[] | select(.name == "leak_site")][0] | "\(.file | split("/") | last):\(.line) \(.function)"' "$g")" \
        "owner_growth.c:$leak_line leak_site" "-$opt: the leak is named by its allocation site, as top --by line names it"
    is "$(jqr '[.rows[] | select(.name == "g_sessions")][0] | "\(.module | split("/") | last) \(.type) \(.trend) \(.slope_per_snapshot) \(.first) \(.last)"' "$g")" \
        "owner_growth-$opt struct session * growing 640 640 5120" "-$opt: g_sessions's module, type and evidence"
    is "$(jqr '[.rows[] | select(.class == "accumulation" or .class == "leak") | .name] | join(",")' "$g")" \
        "g_sessions,leak_site" "-$opt: nothing else is flagged as growing"
    is "$(jqr '[.rows[] | select(.class == "churn" or .class == "stable" | not) | .name] | sort | join(",")' "$g")" \
        "g_cache,g_sessions,leak_site" "-$opt: ... nor as a cache"

    "$HW" growth "$db" --by owner --sample-index inuse_objects --json >"$OUT/objects-$opt.json" 2>&1
    is "$(row "$OUT/objects-$opt.json" g_sessions)" "global accumulation 10,20,30,40,50,60,70,80" \
        "-$opt: --sample-index inuse_objects: g_sessions's 10 more sessions a phase"
    is "$(row "$OUT/objects-$opt.json" leak_site)" "leak leak 4,8,12,16,20,24,28,32" \
        "-$opt: ... and leak_site's 4 more nodes a phase"
    "$HW" growth "$db" --by owner --json >"$OUT/default-$opt.json" 2>&1
    is "$(jqr '[.rows[] | .class + ":" + .name] | join(",")' "$OUT/default-$opt.json")" \
        "accumulation:g_sessions,leak:leak_site,cache:g_cache" \
        "-$opt: without --all: what grows, the steepest first, then the caches"
    "$HW" growth "$db" --by owner >"$OUT/growth-$opt.txt" 2>&1
    ok_cmd "-$opt: the text report names g_sessions as accumulation" \
        grep -Eq '^accumulation +\+640B +640B +5\.00KiB .* global +g_sessions \[struct session \*\] in owner_growth-'"$opt"'$' \
        "$OUT/growth-$opt.txt"
    ok_cmd "-$opt: ... and the leak by its site" \
        grep -Eq "^leak +\+192B .* leak +leak_site owner_growth\.c:$leak_line\$" "$OUT/growth-$opt.txt"
    "$HW" growth "$db" --by owner --exit-code >/dev/null 2>&1
    is "$?" 1 "-$opt: growth --by owner --exit-code: 1 when something grows"

    d="$OUT/diff-$opt.json"
    "$HW" diff "$db:2" "$db:5" --by owner --json >"$d" 2>"$OUT/diff-$opt.err" || : >"$d"
    is "$(jqr '"\(.by) \(.a.snapshot) \(.b.snapshot) \(.a.label)"' "$d")" "owner 2 5 phase 2" "-$opt: diff --by owner of phases 2 and 5"
    is "$(delta "$d" g_sessions)" "1280 20 3200 50 1920 30" "-$opt: diff: g_sessions from 20 to 50 sessions"
    is "$(delta "$d" g_cache)" "2176 21 3136 31 960 10" "-$opt: diff: g_cache from 20 to 30 entries"
    is "$(delta "$d" g_batch)" "0 0 4160 21 4160 21" "-$opt: diff: g_batch, absent in A"
    is "$(delta "$d" leak_site)" "384 8 960 20 576 12" "-$opt: diff: leak_site's unreachable nodes"
    is "$(jqr '[.rows[] | .name] | join(",")' "$d")" "g_batch,g_sessions,g_cache,leak_site" \
        "-$opt: diff rows: the largest change first, unchanged rows left out"
    is "$(jqr '"\(.a.total.bytes) \(.b.total.bytes) \(.delta.bytes) \(.delta.objects)"' "$d")" "3840 11456 7616 73" \
        "-$opt: diff totals: the walked heap of each side and their difference"

    # The same by type: struct session accumulates, struct centry is a cache, the dropped lists
    # of struct lnode (never typed: no variable of that type) are an unreachable (unknown).
    t="$OUT/growth-type-$opt.json"
    "$HW" growth "$db" --by type --all --json >"$t" 2>"$OUT/growth-type-$opt.err" || : >"$t"
    is "$(jqr '[.rows[] | select(.name == "struct session")][0] | "\(.kind) \(.class) \(.series | map(tostring) | join(","))"' "$t")" \
        "type accumulation 640,1280,1920,2560,3200,3840,4480,5120" "-$opt: growth --by type: struct session accumulates"
    is "$(jqr '[.rows[] | select(.name == "struct centry")][0] | "\(.kind) \(.class) \(.series | map(tostring) | join(","))"' "$t")" \
        "type cache 960,1920,2880,2880,2880,2880,2880,2880" "-$opt: ... struct centry fills, then plateaus: a cache"
    is "$(jqr '[.rows[] | select(.kind == "leak")][0] | "\(.name) \(.class) \(.series | map(tostring) | join(","))"' "$t")" \
        "(unknown) leak 192,384,576,768,960,1152,1344,1536" "-$opt: ... the leaked lists: unreachable memory that grows, a leak"
    "$HW" diff "$db:2" "$db:5" --by type --json >"$OUT/diff-type-$opt.json" 2>&1
    is "$(delta "$OUT/diff-type-$opt.json" "struct session")" "1280 20 3200 50 1920 30" "-$opt: diff --by type: struct session"
done

db="$OUT/og-O0.db"
"$HW" diff "$db:2" "$db:5" --by owner >"$OUT/diff.txt" 2>&1
ok_cmd "diff text: g_sessions's change, bytes and objects in A and B" \
    grep -Eq '^ +\+1\.88KiB +1\.25KiB +3\.12KiB +20 -> 50  global +g_sessions \[struct session \*\] in owner_growth-O0$' "$OUT/diff.txt"
"$HW" diff "$db:4" "$db:4" --by owner --exit-code >"$OUT/same.txt" 2>&1
is "$?:$(tail -1 "$OUT/same.txt")" "0:(no change)" "diff of a snapshot with itself: no change, exit 0"
"$HW" diff "$db:1" "$db:8" --by owner --exit-code >/dev/null 2>&1
is "$?" 1 "diff --by owner --exit-code: 1 when the walked heap grew"

# A snapshot without a heap walk among walked ones (a walk that ran out of memory leaves one):
# left out with a warning, the others still classed.
mixed="$OUT/mixed.db"
cp "$db" "$mixed"
sqlite3 "$mixed" "UPDATE snapshot SET mode = 'counters', reachable_objects = NULL, reachable_bytes = NULL,
    indirect_objects = NULL, indirect_bytes = NULL, leaked_objects = NULL, leaked_bytes = NULL,
    scanned_bytes = NULL WHERE id = 3;
    DELETE FROM object_chunk WHERE snapshot_id = 3; DELETE FROM edge_chunk WHERE snapshot_id = 3;
    DELETE FROM root WHERE snapshot_id = 3; DELETE FROM thread WHERE snapshot_id = 3;
    DELETE FROM frame WHERE snapshot_id = 3;"
"$HW" growth "$mixed" --by owner --json >"$OUT/mixed.json" 2>"$OUT/mixed.err"
is "$?:$(jqr '"\(.snapshots | map(tostring) | join(",")) skipped \(.skipped | map(tostring) | join(","))"' "$OUT/mixed.json")" \
    "0:1,2,4,5,6,7,8 skipped 3" "a snapshot without a heap walk is left out"
is "$(cat "$OUT/mixed.err")" "heapwatch: warning: snapshot 3 of '$mixed' has no heap walk: left out of growth by owner" \
    "... with one warning"
is "$(row "$OUT/mixed.json" g_sessions)" "global accumulation 640,1280,2560,3200,3840,4480,5120" \
    "... and the other snapshots still show g_sessions accumulating"
"$HW" growth "$mixed" --by owner >"$OUT/mixed.txt" 2>/dev/null
ok_cmd "... which the text report says too" grep -q '^(1 snapshot without a heap walk left out)$' "$OUT/mixed.txt"

# Fewer walked snapshots than a trend needs: growth's own message.
run_shim "$OUT/short.db" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_AT_EXIT=0 -- "$BIN/owner_growth-O0" 3
"$HW" growth "$OUT/short.db" --by owner >"$OUT/short.txt" 2>&1
is "$?:$(sed -n 2p "$OUT/short.txt")" "0:(at least 4 snapshots are needed to tell growth from noise)" \
    "3 snapshots: the message growth gives"
"$HW" growth "$OUT/short.db" --by owner --all --json >"$OUT/short.json" 2>&1
is "$(row "$OUT/short.json" g_sessions)" "global insufficient 640,1280,1920" "... and every row is insufficient"

# Two runs of one program: rows line up by owner, not by address or pid. The main thread's
# owners are keyed as "main" (its tid is the pid); other threads' by their tids.
"$HW" diff "$db:3" "$OUT/short.db:3" --by owner >"$OUT/runs.txt" 2>&1
is "$?:$(tail -1 "$OUT/runs.txt")" "0:(no change)" "diff of the same phase of two runs: no change"
for r in 1 2; do run_shim "$OUT/owners$r.db" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_AT_EXIT=0 -- "$BIN/owners-O0"; done
"$HW" diff "$OUT/owners1.db:1" "$OUT/owners2.db:1" --by owner --json >"$OUT/runs.json" 2>&1
is "$(jqr '[.rows[] | select(.name == "main_local" or .name == "g_cache")] | length' "$OUT/runs.json"):$(jqr '[.rows[] | select(.name == "tls_buf")] | length' "$OUT/runs.json")" \
    "0:2" "two runs of progs/owners.c: the main thread's local and the globals line up, another thread's do not"

# Bad input: no heap walk at all; a grouping another command cannot take; wrong options.
run_shim "$OUT/counters.db" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_AT_EXIT=0 HEAPWATCH_OBJECTS=0 -- "$BIN/owner_growth-O0"
"$HW" growth "$OUT/counters.db" --by owner >"$OUT/counters.out" 2>"$OUT/counters.err"
is "$?:$(cat "$OUT/counters.err")" \
    "3:heapwatch: error: no snapshot of '$OUT/counters.db' has a heap walk (HEAPWATCH_OBJECTS=0): --by owner needs one" \
    "growth --by owner without heap walks: exit 3, one message"
is "$(cat "$OUT/counters.out")" "" "... and no report"
"$HW" diff "$OUT/counters.db:1" "$OUT/counters.db:2" --by owner >/dev/null 2>"$OUT/counters-diff.err"
is "$?:$(cat "$OUT/counters-diff.err")" "3:heapwatch: error: snapshot 1 was taken without a heap walk (HEAPWATCH_OBJECTS=0)" \
    "diff --by owner without a heap walk: exit 3, one message"
"$HW" diff "$OUT/counters.db:1" "$db:2" --by owner >/dev/null 2>&1
is "$?" 3 "diff --by owner with one side unwalked: exit 3"
"$HW" growth "$OUT/counters.db" --by function --json >/dev/null 2>&1
is "$?" 0 "growth by site still works there"
"$HW" top "$db:1" --by owner >/dev/null 2>"$OUT/err"
is "$?:$(head -1 "$OUT/err")" \
    "2:heapwatch: error: --by owner is for diff and growth (one snapshot's owners: heapwatch owners)" "top --by owner: exit 2"
"$HW" growth "$db" --by owner --sample-index alloc_space >/dev/null 2>"$OUT/err"
is "$?:$(head -1 "$OUT/err")" \
    "2:heapwatch: error: --by owner measures what is held at each snapshot: use --sample-index inuse_space or inuse_objects, not alloc_space" \
    "growth --by owner --sample-index alloc_space: exit 2"
"$HW" diff "$db:1" "$db:2" --by owner --cum >/dev/null 2>"$OUT/err"
is "$?:$(head -1 "$OUT/err")" "2:heapwatch: error: --cum has no meaning with --by owner" "diff --by owner --cum: exit 2"
"$HW" growth "$OUT/counters.db" --by type >/dev/null 2>"$OUT/err"
is "$?" 3 "growth --by type without heap walks: exit 3"
done_testing
