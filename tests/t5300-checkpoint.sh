#!/bin/sh
# Where a walked snapshot's data lands. In fork mode the snapshot's child commits it to the
# WAL, reports the snapshot's id, and only then checkpoints (copies the WAL into the database
# file) itself, while the parent goes on (snapshot.c, sink.h; the parent's helper thread or
# exit reaps it): the rows are readable as soon as heapwatch_snapshot() returns, the
# database file alone holds them soon after while the process still runs, and
# at exit the exit snapshot is checkpointed at once, so no WAL is left behind. In inplace
# mode the writer checkpoints as it closes. Checked for both, while progs/checkpoint.c waits
# between two API snapshots.
. ./lib.sh
plan 20

# db_alone DB QUERY: QUERY on a copy of the database file without its WAL.
db_alone() {
    cp "$1" "$OUT/alone.db" && rm -f "$OUT/alone.db-wal" "$OUT/alone.db-shm"
    sqlite3 "$OUT/alone.db" "$2" 2>/dev/null
}

for mode in fork inplace; do
    db="$OUT/$mode.db"
    fifo="$OUT/$mode.in"
    rm -f "$db" "$db-wal" "$db-shm" "$fifo"
    mkfifo "$fifo"
    timeout -s KILL 120 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$db" HEAPWATCH_SNAPSHOT=$mode \
        "$BIN/checkpoint-O2" <"$fifo" >"$OUT/$mode.out" 2>"$OUT/$mode.err" &
    pid=$!
    exec 3>"$fifo"
    for _ in $(seq 600); do grep -q '^one' "$OUT/$mode.out" && break; sleep 0.1; done
    is "$(cat "$OUT/$mode.out")" "one 0" "$mode: heapwatch_snapshot(\"one\") succeeds"
    # read-only: a read-write connection would checkpoint the WAL itself as it closes
    is "$(sqlite3 -readonly "$db" "select mode, live_objects >= 20000, reachable_objects >= 20000 from snapshot where label = 'one'")" \
       "$mode|1|1" "$mode: its row is readable as soon as the call returns"
    got=
    for _ in $(seq 100); do
        got=$(db_alone "$db" "select count(*) from snapshot where label = 'one'")
        [ "$got" = 1 ] && break
        sleep 0.1
    done
    is "$got" 1 "$mode: the database file alone holds it while the process runs (checkpointed)"
    echo go >&3
    exec 3>&-
    wait $pid
    is "$?" 0 "$mode: the program exits 0"
    is "$(tr '\n' ' ' <"$OUT/$mode.out")" "one 0 two 0 " "$mode: both API snapshots taken"
    ok_cmd "$mode: no WAL content left after exit" test ! -s "$db-wal"
    is "$(db_alone "$db" "select group_concat(trigger || ':' || ifnull(label, ''), ' ') from (select * from snapshot order by id)")" \
       "api:one api:two exit:" "$mode: the database file alone holds every snapshot after exit"
    is "$(db_alone "$db" "select count(*) from snapshot where walk_ns > 0 and write_ns > 0 and pause_ns > 0")" 3 \
       "$mode: every snapshot has its pause, walk and write times"
    is "$(sqlite3 "$db" "pragma integrity_check")" ok "$mode: the database is intact"
done

# Without the exit snapshot, the last API snapshot's child may still be checkpointing when
# main returns: exit waits for it.
db="$OUT/noexit.db"
rm -f "$db" "$db-wal" "$db-shm"
echo go | timeout -s KILL 120 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$db" HEAPWATCH_AT_EXIT=0 \
    "$BIN/checkpoint-O2" >"$OUT/noexit.out" 2>"$OUT/noexit.err"
is "$?:$(tr '\n' ' ' <"$OUT/noexit.out")" "0:one 0 two 0 " "HEAPWATCH_AT_EXIT=0: both API snapshots taken"
is "$([ -s "$db-wal" ] && echo "WAL left"; db_alone "$db" "select group_concat(label, ' ') from (select * from snapshot order by id)")" \
   "one two" "HEAPWATCH_AT_EXIT=0: no WAL content left, the database file alone holds both"
done_testing
