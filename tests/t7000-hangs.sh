#!/bin/sh
# Hangs: the traced program must never block because of the shim. Each race runs in a loop
# with a time limit, and a run that does not end in time (its whole process group is then
# killed) is a failure, never a stuck test:
#   - forks while the shim is inside SQLite: at the first instruction of main (the helper is
#     creating the database), from several threads while another takes snapshots, while
#     children take their exit snapshots (a child used to inherit SQLite's mutex locked),
#     while the event log's writer is busy;
#   - a snapshot's walk child whose parent is killed right after the clone, and a snapshot
#     whose pipe to that child the program closed as it was made;
#   - allocations inside dl_iterate_phdr callbacks (the loader lock held) while other threads
#     unwind new call paths and create threads (libunwind's mutex inverted with the loader
#     lock).
. ./lib.sh
plan 27

dir="$OUT/db"
mkdir -p "$dir"

# storm MODE-ENV RATE THREADS FORKS: one forkstorm run; "ok" or why not.
storm() {
    rm -rf "$dir" && mkdir -p "$dir"
    bounded 90 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/fs.%p.db" HEAPWATCH_SAMPLE_RATE="$2" $1 \
        "$BIN/forkstorm-O2" "$3" "$4" >"$OUT/stdout" 2>"$OUT/stderr"
    rc=$?
    [ $rc -eq 124 ] && { echo "hung"; return; }
    [ $rc -ne 0 ] && { echo "exit $rc: $(head -c 300 "$OUT/stderr")"; return; }
    forks=$(sed -n 's/^forks //p' "$OUT/stdout")
    [ "$forks" -eq $(($3 * $4 + 1)) ] || { echo "forks $forks"; return; }
    # every process wrote its database: parent, children, grandchildren (every third child).
    # fork waits for no SQLite write of the parent's, only for SQLite's mutexes (held for
    # microseconds): a child does without a database only when a thread held one for a whole
    # second, which one in a run is allowed to, on a loaded machine (before, a child forked
    # during a write of the event log or of an inplace snapshot went without one)
    want=$((1 + forks + ($3 * $4 + 2) / 3))
    without=$(grep -c "held one of SQLite's locks for over a second" "$OUT/stderr")
    got=$(ls "$dir"/*.db | wc -l)
    [ "$without" -le 1 ] || { echo "$without children without a database"; return; }
    [ "$got" -ge $((want - without)) ] || { echo "$got databases, expected $want ($without said why not)"; return; }
    echo ok
}

for rate in 1 524288; do
    is "$(storm HEAPWATCH_OBJECTS=0 $rate 4 50)" ok "200 forks from 4 threads while counters snapshots write SQLite in-process (rate $rate)"
    is "$(storm HEAPWATCH_SNAPSHOT=inplace $rate 4 25)" ok "100 forks from 4 threads during inplace heap walks (rate $rate)"
    is "$(storm HEAPWATCH_SNAPSHOT=fork $rate 4 25)" ok "100 forks from 4 threads during fork-mode heap walks (rate $rate)"
done

# The event log's writer keeps its SQLite connection open between chunks: no fork child and no
# walk child may inherit it open. Every database's log must read back.
logs_read() {
    for db in "$dir"/*.db; do
        "$HW" timeline "$db" --json >/dev/null 2>"$OUT/tl.err" || grep -q "has no event log\|has an empty event log" "$OUT/tl.err" ||
            { echo "$db: $(head -c 200 "$OUT/tl.err")"; return; }
    done
    echo ok
}
for mode in "HEAPWATCH_SNAPSHOT=fork" "HEAPWATCH_OBJECTS=0"; do
    r=$(storm "$mode HEAPWATCH_EVENTS=1" 1 4 25)
    [ "$r" = ok ] && r=$(logs_read)
    is "$r" ok "100 forks from 4 threads with the event log on ($mode): no hang, every log reads back"
done

# Forks while the event log's writer is always inside SQLite, and behind: three threads log
# every allocation, tens of megabytes a second. A fork waited for the writer's whole chunk
# (tens of megabytes, or hundreds once behind), up to a second, and the child then went
# without a database: 113 ms a fork on average, the longest 1009 ms, 2 children of 50
# without a database. It now waits for SQLite's mutexes only: a few milliseconds at most.
# The bound of 500 ms is for a fork that waits for a write, not a measure of speed.
rm -rf "$dir" && mkdir -p "$dir"
bounded 120 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/lag.%p.db" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_EVENTS=1 \
    "$BIN/forklag-O2" 40 >"$OUT/lag.out" 2>"$OUT/lag.err"
is "$?:$(sed 's/ worst_ms.*//' "$OUT/lag.out")" "0:forks 40" "40 forks while the event writer is busy: every child exits 0"
is "$(ls "$dir"/lag.*.db | wc -l)" 41 "... and every process wrote its database"
worst=$(sed -n 's/.*worst_ms //p' "$OUT/lag.out")
ok_cmd "... and no fork waited for a write: the longest took ${worst:-?} ms (< 500)" test "${worst:-9999}" -lt 500
parent=$(ls -S "$dir"/lag.*.db | head -n 1)
"$HW" timeline "$parent" --json >"$OUT/lag.json" 2>"$OUT/lag.tl.err"
is "$?:$(jq -c '.log | [.complete, .unmatched_frees, .events > 1000000]' "$OUT/lag.json")" "0:[true,0,true]" \
    "... and the parent's event log, written in pieces of a lagging writer, reads back whole"

# A fork as the first thing main does, while the helper creates the database: many runs,
# two at a time.
at_start() {
    i=0
    bad=""
    while [ $i -lt 60 ]; do
        for j in 1 2; do
            rm -rf "$dir/$j" && mkdir -p "$dir/$j"
            ( bounded 30 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/$j/s.%p.db" HEAPWATCH_SAMPLE_RATE="$1" \
                "$BIN/forkstorm-O2" 0 0 >/dev/null 2>"$OUT/start.$j"; echo $? >"$OUT/start.rc.$j" ) &
        done
        wait
        for j in 1 2; do
            rc=$(cat "$OUT/start.rc.$j")
            [ "$rc" -eq 0 ] && [ "$(ls "$dir/$j" | grep -c '\.db$')" -eq 2 ] || bad="$bad run$i.$j:rc=$rc"
        done
        i=$((i + 1))
    done
    echo "${bad:-ok}"
}
is "$(at_start 1)" ok "120 runs forking at start, full mode: no hang, two databases each"
is "$(at_start 524288)" ok "120 runs forking at start, sampled mode: no hang, two databases each"

# A walk child whose parent is killed between the clone and the write that tells it the pause
# (killpause_dso.so, preloaded first, kills the process at that write) writes the snapshot and
# ends. It held its copy of the pipe's write end and waited for the pause for ever: a process
# left behind for good, found by a signal storm with timeouts on bash.
orphan() {
    rm -rf "$dir" && mkdir -p "$dir"
    setsid env LD_PRELOAD="$BIN/killpause_dso-O2.so $SHIM" HEAPWATCH_OUT="$dir/o.db" "$BIN/leaks-O2" direct \
        >/dev/null 2>&1 &
    sid=$!
    wait $sid
    st=$?
    n=0
    while [ $n -lt 100 ] && pgrep -s $sid >/dev/null; do sleep 0.1; n=$((n + 1)); done
    left=$(pgrep -s $sid | wc -l)
    pkill -9 -s $sid 2>/dev/null
    echo "$st $left $(sqlite3 "$dir/o.db" "SELECT count(*) FROM snapshot WHERE label = 'direct'" 2>&1)"
}
is "$(orphan)" "137 0 1" "a walk child whose parent is killed right after the clone writes the snapshot and ends"

# A pipe to the walk child that the program closes as it is made (closepipe_dso.so: a double
# close of its own in another thread, before the shim moves the descriptor out of reach) costs
# that snapshot, said once, never a wait: the snapshot waited 10 minutes for its child's report
# on a descriptor of -1, and exit 30 s for the snapshot (bash under a signal storm).
bounded 30 env LD_PRELOAD="$BIN/closepipe_dso-O2.so $SHIM" HEAPWATCH_OUT="$dir/c.db" "$BIN/leaks-O2" direct \
    >"$OUT/closepipe.out" 2>"$OUT/closepipe.err"
is "$?:$(grep -c "closed by the program as it was made" "$OUT/closepipe.err")" "0:1" \
    "a snapshot whose pipe the program closed as it was made is given up and said (the API's; exit's is counted)"

# loaderlock ROUNDS RATE: 50 runs, two at a time; "ok" or the runs that hung or failed.
loader() {
    i=0
    bad=""
    while [ $i -lt 25 ]; do
        for j in 1 2; do
            rm -rf "$dir/l$j" && mkdir -p "$dir/l$j"
            ( bounded 30 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/l$j/l.%p.db" HEAPWATCH_SAMPLE_RATE="$1" \
                "$BIN/loaderlock-O2" 150 >"$OUT/loader.$j" 2>&1; echo $? >"$OUT/loader.rc.$j" ) &
        done
        wait
        for j in 1 2; do
            rc=$(cat "$OUT/loader.rc.$j")
            [ "$rc" -eq 0 ] && [ "$(cat "$OUT/loader.$j")" = done ] || bad="$bad run$i.$j:rc=$rc"
        done
        i=$((i + 1))
    done
    echo "${bad:-ok}"
}
is "$(loader 1)" ok "50 runs of allocations inside dl_iterate_phdr callbacks against unwinding threads, full mode"
is "$(loader 524288)" ok "50 runs of the loader-lock pattern, sampled mode"
is "$(loader 64)" ok "50 runs of the loader-lock pattern, one sample every 64 bytes"

# The stacks taken inside the callback are whole: the callback, dl_iterate_phdr, the iterator.
rm -rf "$dir" && mkdir -p "$dir"
bounded 30 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/l.db" HEAPWATCH_SAMPLE_RATE=1 "$BIN/loaderlock-O0" 20 >/dev/null 2>&1
ok $? "loaderlock at -O0 under the shim"
"$HW" top "$dir/l.db" --by stack --sample-index alloc_objects --json >"$OUT/top.json" 2>"$OUT/top.err"
ok $? "top by stack reads its database"
n=$(jq '[.rows[] | select([.frames[0:3][].function] == ["cb", "__dl_iterate_phdr", "iterator"])] | length' "$OUT/top.json")
ok_cmd "an allocation in the callback is charged to cb < dl_iterate_phdr < iterator ($n stacks)" test "${n:-0}" -ge 1
# Forks while other threads allocate holding a lock that the fork takes after the shim's
# prepare handler closed its gate: another library's own prepare handler (registered first),
# and glibc's stdio list lock (getline in one thread, fflush(NULL) in another). Both hung for
# good (also before the gate: the live table's locks); a thread now waits at the gate 20 ms
# at most per fork.
fl="$OUT/forklock"
mkdir -p "$fl"
seq 1000 | sed 's/^/line /' >"$fl/lines.txt"
if gcc -shared -fPIC -O2 -pthread progs/forklock/lib.c -o "$fl/liblk.so" &&
   gcc -O2 -pthread progs/forklock/main.c -o "$fl/forklock" -L"$fl" -llk -Wl,-rpath,"$fl"; then
    # The stdio case runs 10 times: a reader that had passed the gate and then waited for the
    # stack depot, which the forking thread holds, hung it in about 1 run of 25 (the depot's
    # lock now gives up as the gate does, forkgate.h: hw_spin_lock_or_fork).
    for rate in 1 524288; do
        for case in lib stdio; do
            runs=1 r=""
            [ $case = stdio ] && runs=10
            while [ $runs -gt 0 ] && [ -z "$r" ]; do
                rm -f "$fl"/*.db*
                bounded 60 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$fl/f.%p.db" HEAPWATCH_SAMPLE_RATE=$rate \
                    "$fl/forklock" $case 200 "$fl/lines.txt" >"$fl/out" 2>&1
                rc=$?
                [ "$rc:$(head -n 1 "$fl/out")" = "0:done" ] || r="$rc:$(head -n 1 "$fl/out")"
                runs=$((runs - 1))
            done
            is "${r:-0:done}" "0:done" "rate $rate: 200 forks while a thread allocates holding a lock fork takes after the shim ($case): no hang"
        done
    done
    # With the shadow map, every recorded block takes a live table lock, which the forking
    # thread holds: the stdio case hung in 20 runs of 20 before those locks gave up too.
    rm -f "$fl"/*.db*
    bounded 60 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$fl/f.%p.db" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_BLOCKS=shadow \
        "$fl/forklock" stdio 200 "$fl/lines.txt" >"$fl/out" 2>&1
    is "$?:$(head -n 1 "$fl/out")" "0:done" "shadow map, full mode: 200 forks against getline and fflush(NULL): no hang"
else
    for i in 1 2 3 4 5; do ok 1 "cannot build progs/forklock"; done
fi
done_testing
