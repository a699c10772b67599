#!/bin/sh
# Bad input gets one clear message and a non-zero exit (analyzer) or a warning and the default
# (shim); the traced program is never affected; committed snapshots are never lost.
. ./lib.sh
plan 45

prog="$BIN/demo_service-O2"   # prints the same with and without the shim
expected_out=$("$prog" 2)

# --- the shim: garbage settings -----------------------------------------------------------
for setting in HEAPWATCH_SAMPLE_RATE=lots HEAPWATCH_SIGNAL=SIGBOGUS HEAPWATCH_INTERVAL=-5 \
               HEAPWATCH_STACK_DEPTH=100000 HEAPWATCH_AT_EXIT=maybe HEAPWATCH_COLOUR=1; do
    name=${setting%%=*}
    run_shim "$OUT/bad.db" "$setting" -- "$prog" 2
    rc=$?
    is "$rc:$(cat "$OUT/stdout")" "0:$expected_out" "$setting: the program runs unchanged"
    is "$(grep -c "^heapwatch: .*$name" "$OUT/stderr")" 1 "$setting: one warning naming the variable"
done
is "$(sqlite3 "$OUT/bad.db" 'select count(*) from snapshot')" 3 "the database is still written with defaults"

# --- the shim: unwritable or unsafe output --------------------------------------------------
run_shim "$OUT/no/such/dir/x.db" -- "$prog" 2
is "$?:$(cat "$OUT/stdout")" "0:$expected_out" "unwritable path: program unaffected"
is "$(grep -c "^heapwatch: cannot create '.*no/such/dir/x.db'" "$OUT/stderr")" 1 "unwritable path: one clear message"
ln -sf /etc/passwd "$OUT/link.db"
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$OUT/link.db" "$prog" 2 >"$OUT/stdout" 2>"$OUT/stderr"
is "$?:$(cat "$OUT/stdout")" "0:$expected_out" "symlink as output: program unaffected"
link_kept() {
    [ -L "$OUT/link.db" ] && head -c 5 /etc/passwd | grep -q '^root:' &&
        grep -q "link.db' exists; this process ([0-9]*) writes '.*link\.[0-9]*\.db'" "$OUT/stderr"
}
ok_cmd "symlink as output: never followed; the process writes NAME.PID.db beside it, and says so" link_kept
run_shim "$OUT/exists.db" -- "$prog" 2
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$OUT/exists.db" "$prog" 2 >/dev/null 2>"$OUT/stderr"
ok_cmd "an existing database is never overwritten: this process writes NAME.PID.db, and says so" \
   grep -q "exists.db' exists; this process ([0-9]*) writes '.*exists\.[0-9]*\.db'" "$OUT/stderr"
is "$(sqlite3 "$OUT/exists.db" 'select count(*) from snapshot')" 3 "...and keeps its snapshots"

# --- the shim: exit status and signals are preserved ----------------------------------------
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$OUT/st.db" sh -c 'exit 7' 2>/dev/null
is $? 7 "exit status preserved"
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$OUT/sig.db" sh -c 'kill -TERM $$' 2>/dev/null
is $? 143 "death by signal preserved"

# --- the analyzer: databases ----------------------------------------------------------------
db="$OUT/good.db"
run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/exact-O2"
"$HW" top "$OUT/missing.db:1" >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(wc -l < "$OUT/err")" "3:1" "missing database: exit 3, one line"
head -c 4096 /dev/urandom > "$OUT/garbage.db"
"$HW" ls "$OUT/garbage.db" >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(grep -c 'not a database\|not a heapwatch database' "$OUT/err")" "3:1" "random bytes: exit 3, clear message"
sqlite3 "$OUT/foreign.db" 'create table t(x); insert into t values (1);'
"$HW" ls "$OUT/foreign.db" >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(grep -c "^heapwatch: error: cannot read '$OUT/foreign.db': not a heapwatch database" "$OUT/err")" "3:1" "foreign SQLite database: exit 3, one clear line"
# What a process killed while it created its database leaves: the header page, no table.
rm -f "$OUT/notables.db"
sqlite3 "$OUT/notables.db" 'PRAGMA page_size=16384; PRAGMA journal_mode=WAL' >/dev/null
"$HW" ls "$OUT/notables.db" >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(grep -c "^heapwatch: error: cannot read '$OUT/notables.db': no tables yet: its process is creating them this moment, or was killed while it did$" "$OUT/err"):$(wc -l < "$OUT/err")" \
   "3:1:1" "a database without tables (its process killed while creating it): exit 3, says so"
cp "$db" "$OUT/newer.db"
sqlite3 "$OUT/newer.db" 'PRAGMA user_version = 99'
"$HW" ls "$OUT/newer.db" >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(grep -c 'schema version 99 is newer' "$OUT/err")" "3:1" "newer schema: exit 3, says so"
head -c 2048 "$db" > "$OUT/truncated.db"
"$HW" ls "$OUT/truncated.db" >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(wc -l < "$OUT/err")" "3:1" "truncated database: exit 3, one line"
cp "$db" "$OUT/nochunks.db"
sqlite3 "$OUT/nochunks.db" 'DELETE FROM object_chunk'
"$HW" leaks "$OUT/nochunks.db:1" >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(grep -c "snapshot 1 holds 0 of its [0-9]* blocks (object_chunk rows missing: corrupt database)" "$OUT/err"):$(wc -l < "$OUT/err")" \
   "3:1:1" "a walked snapshot whose packed blocks were deleted: exit 3, says so (not an empty heap)"
cp "$db" "$OUT/huge.db"
# A hand-written snapshot_stack row beside the packed counters: the reader adds both.
sqlite3 "$OUT/huge.db" 'INSERT INTO snapshot_stack SELECT 1, max(first + count - 1), 1, 9223372036854775807, 0, 0, 1, 0
                        FROM stack_chunk'
"$HW" top "$OUT/huge.db:1" --sample-index alloc_space >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(grep -c "do not fit in 64 bits" "$OUT/err"):$(wc -l < "$OUT/err")" "3:1:1" \
   "sizes of INT64_MAX that overflow a total: exit 3, one line, no overflow"
cp "$db" "$OUT/countcut.db"
sqlite3 "$OUT/countcut.db" 'UPDATE stack_count_chunk SET data = substr(data, 1, length(data) - 1) WHERE snapshot_id = 1'
for cmd in "top $OUT/countcut.db:1" "ls $OUT/countcut.db"; do
    "$HW" $cmd >/dev/null 2>"$OUT/err"; rc=$?
    is "$rc:$(grep -c "snapshot 1's stack_count_chunk at row 0 [a-z ]* (corrupt database)" "$OUT/err"):$(wc -l < "$OUT/err")" \
       "3:1:1" "packed counters cut short: ${cmd%% *} exits 3 with one line naming the snapshot"
done
cp "$db" "$OUT/stackcut.db"
sqlite3 "$OUT/stackcut.db" 'UPDATE stack_chunk SET data = substr(data, 1, length(data) - 1) WHERE first = 1'
"$HW" top "$OUT/stackcut.db:1" >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(grep -c "stack chunk at node 1 is truncated or malformed at node [0-9]* (corrupt database)" "$OUT/err"):$(wc -l < "$OUT/err")" \
   "3:1:1" "a packed stack chunk cut short: exit 3, one line naming the node"
cp "$db" "$OUT/stackhuge.db"
sqlite3 "$OUT/stackhuge.db" 'UPDATE stack_chunk SET count = 1000000000 WHERE first = 1'
(ulimit -v 1000000; "$HW" top "$OUT/stackhuge.db:1" >/dev/null 2>"$OUT/err"); rc=$?   # 1 GB: no 12 GB table
is "$rc:$(grep -c "(corrupt database)" "$OUT/err"):$(wc -l < "$OUT/err")" "3:1:1" \
   "a stack chunk that claims a billion nodes: exit 3, one line, no table sized by it"
cp "$db" "$OUT/stackgone.db"
sqlite3 "$OUT/stackgone.db" 'DELETE FROM stack_chunk'
"$HW" top "$OUT/stackgone.db:1" >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(grep -c "stack [0-9]* is missing (corrupt database)" "$OUT/err"):$(wc -l < "$OUT/err")" \
   "3:1:1" "packed stacks deleted: exit 3, says a stack is missing"

# --- the analyzer: snapshot names and usage --------------------------------------------------
"$HW" top "$db:42" >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(cat "$OUT/err")" "3:heapwatch: error: no snapshot 42 in '$db' (it has 1 to 2)" "unknown snapshot id: exit 3"
"$HW" top "$db:-5" >/dev/null 2>"$OUT/err"
is $? 3 "relative id beyond the first: exit 3"
"$HW" top "$db:abc" >/dev/null 2>"$OUT/err"
is $? 2 "malformed snapshot id: exit 2"
"$HW" frobnicate >/dev/null 2>&1
is $? 2 "unknown command: exit 2"
"$HW" top --no-such-option "$db" >/dev/null 2>&1
is $? 2 "unknown option: exit 2"
"$HW" top "$db" --sample-index bogus >/dev/null 2>&1
is $? 2 "unknown sample index: exit 2"
"$HW" top "$db" > /dev/full 2>/dev/null
is $? 4 "stdout write failure: exit 4"
(cd "$OUT" && mkdir -p empty && cd empty && "$HW" ls >/dev/null 2>"$OUT/err"); rc=$?
is "$rc:$(grep -c 'no heapwatch.*db in the current directory' "$OUT/err")" "3:1" "no database around: exit 3, says what to do"

# --- a binary without debug information: function names, one warning ------------------------
gcc -O2 -I"$TOP/include" progs/exact.c -o "$OUT/nodebug" && strip "$OUT/nodebug"
run_shim "$OUT/nodebug.db" HEAPWATCH_SAMPLE_RATE=1 -- "$OUT/nodebug"
"$HW" top "$OUT/nodebug.db:1" >"$OUT/top.txt" 2>"$OUT/err"; rc=$?
is "$rc:$(grep -c "warning: no debug information for '.*nodebug'" "$OUT/err")" "0:1" "stripped binary: report works, one warning"
ok_cmd "stripped binary: frames named module+offset" grep -q "nodebug+0x" "$OUT/top.txt"

# --- committed snapshots survive a kill -9 mid-run -----------------------------------------
rm -f "$OUT/killed.db"*
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$OUT/killed.db" HEAPWATCH_SAMPLE_RATE=1 "$BIN/demo_service-O2" 1 wait >/dev/null 2>&1 &
pid=$!
n=0
while [ $n -lt 100 ] && [ ! -s "$OUT/killed.db" ]; do sleep 0.1; n=$((n + 1)); done
for i in 1 2 3; do
    kill -USR2 $pid; sleep 0.3
done
kill -KILL $pid; wait $pid 2>/dev/null
is "$("$HW" ls "$OUT/killed.db" --json | jq '[.snapshots[] | select(.trigger == "signal")] | length')" 3 \
   "killed with SIGKILL: the 3 committed snapshots are readable"
