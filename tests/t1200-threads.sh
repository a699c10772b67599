#!/bin/sh
# Threads: 8 threads allocate and free concurrently, with cross-thread frees. No object may be
# lost: after the join, inuse is exactly zero and alloc counts every allocation.
. ./lib.sh
plan 14

for opt in O0 O2; do
    db="$OUT/threads-$opt.db"
    run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/threads-$opt"
    ok $? "threads -$opt runs under the shim"
    is "$(cat "$OUT/stdout")" "$("$BIN/threads-$opt")" "threads -$opt: output unchanged"
    requested=$(sed -n 's/.*done, \([0-9]*\) bytes requested/\1/p' "$OUT/stdout")
    "$HW" top "$db:1" --by function --json > "$OUT/t.json"
    is "$(jq '[.rows[] | select(.function == "worker") | .flat.alloc_space] | add' "$OUT/t.json")" "$requested" \
       "threads -$opt: alloc_space is exactly the bytes the threads requested"
    is "$(jq '[.rows[] | select(.function == "worker") | .flat.alloc_objects] | add' "$OUT/t.json")" 400000 \
       "threads -$opt: exactly 8*200*250 allocations at the worker site"
    is "$(jq '[.rows[] | select(.function == "worker") | .flat.inuse_objects, .flat.inuse_space] | add' "$OUT/t.json")" 0 \
       "threads -$opt: inuse at the worker site is exactly zero after the join"
    "$HW" ls "$db" --json > "$OUT/ls.json"
    is "$(jq '.snapshots[0] | .live_bytes == .inuse_space' "$OUT/ls.json")" true \
       "threads -$opt: the live table agrees with the counters"
    full_live=$(jq -c '.snapshots[0] | [.live_objects, .live_bytes]' "$OUT/ls.json")
done

# Sampled, where most of the 400,000 blocks are shadow bytes freed by other threads: after
# the join, exactly the live blocks of the full run.
run_shim "$OUT/threads-sampled.db" -- "$BIN/threads-O2"
"$HW" ls "$OUT/threads-sampled.db" --json > "$OUT/ls.json"
is "$(jq -c '.snapshots[0] | [.live_objects, .live_bytes]' "$OUT/ls.json")" "$full_live" \
   "threads sampled: after 8 threads' cross-thread frees, the live blocks and bytes of the full run"

# The shim's SQLite reads SQLITE_TMPDIR and TMPDIR once, with getenv; on the helper thread
# that raced with the program's setenv and crashed a git. It must happen on the main thread,
# in the constructor (progs/getenv_spy_dso.c reports each lookup and its thread).
LD_PRELOAD="$BIN/getenv_spy_dso-O2.so:$SHIM" HEAPWATCH_OUT="$OUT/spy.%p.db" "$BIN/threads-O2" >/dev/null 2>"$OUT/spy.err"
is "$?:$(grep -c 'on the main thread' "$OUT/spy.err"):$(grep -c 'off the main thread' "$OUT/spy.err")" "0:2:0" \
   "SQLite reads the environment on the main thread only (both names), never on the helper"
