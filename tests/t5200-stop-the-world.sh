#!/bin/sh
# Stop the world under fire. progs/storm.c has one mode per case; every run is bounded by a
# timeout (a deadlock fails, it never hangs the suite), and `storm drive` sends the program
# SIGUSR2 every 10 ms from outside for as long as it runs (after its handler is in place).
#
#  1. Signal storm: 6 threads churn the heap (mixed sizes, calloc, realloc, cross-thread
#     frees through queues; every block tagged and checked when freed) under a SIGUSR2
#     storm, at -O0 and -O2, in 'fork' mode and in 'inplace' mode, in full mode and (-O2)
#     in the default sampled mode. Exit status and stdout
#     (a checksum over every block) are those of the run without the shim, and EVERY
#     snapshot is whole: its blocks (object_chunk) are live_objects in number and live_bytes
#     in size, reachable + indirect + leaked = live, one thread row per thread, all stopped,
#     and, at HEAPWATCH_SAMPLE_RATE=1, the profile's inuse (alloc - free over the per-stack counters)
#     is exactly live_bytes. That last one holds with no correction: allocations made before
#     the shim was ready (its bootstrap pool) are neither in the live table nor in the
#     counters, and a trivial program's exit snapshot shows the same zero difference.
#  2. Signal masks: a thread that blocks every signal with pthread_sigmask, one with
#     sigprocmask, are still stopped (the shim keeps its suspend signal deliverable); one
#     that blocks it with the raw rt_sigprocmask system call is reported (threads_unstopped
#     1, thread state 'unstopped'), the snapshot is stored, and the program is unaffected --
#     also when that thread allocates while it runs unstopped, and also at SAMPLE_RATE=1.
#  3. Blocking calls: read() on a pipe, pthread_cond_wait and a contended mutex are restarted
#     (SA_RESTART): the results are those of the run without the shim. Sleeping calls are
#     not restartable (signal(7)), so a snapshot makes every one of them end early, and
#     this is the behaviour README.md must document:
#       nanosleep, clock_nanosleep  -1 / EINTR, with the correct remaining time
#       sleep(2)                    returns 1 at once: glibc returns the remaining *whole*
#                                   seconds (truncated), so `while ((n = sleep(n)));` loses
#                                   up to a second per snapshot
#       usleep, poll, epoll_wait, select, pause   -1 / EINTR
#  4. fork(), fork()+exit() and fork()+exec() in a loop in one thread while the storm runs in
#     six others: no deadlock, every child exits as it should, each has its own database.
#  5. heapwatch_snapshot() from 4 threads at once, 15 times each: every call returns 0, the
#     ids are 1..61 (with the exit snapshot) without a gap, the labels are all there.
#  6. The snapshot writer (a clone child with no exit signal) is invisible: a program that
#     reaps its own children with wait()/waitpid(-1) and counts SIGCHLD while snapshots are
#     written all the time sees only its own children, one SIGCHLD each, and ECHILD when
#     it has none left.
#  7. An application's SIGUSR2 handler: installed before the shim's constructor (from
#     .preinit_array) or in main(), the application's handler gets every SIGUSR2, the shim
#     takes no snapshot on it, and says so once on stderr.
. ./lib.sh
plan 65

T=60           # seconds: a run that takes longer is a deadlock
ITERS=800000   # storm iterations per worker: about 1 s without the shim at -O2
# Sampled mode runs near native speed (arena mode), so its storm is longer: a half-second run
# on a loaded CI machine saw fewer than 10 snapshots.
ITERS_SAMPLED=2400000
P="$BIN/storm"

# drive OUT MS ENV... -- CMD...: CMD under the shim with ENV, SIGUSR2 every MS ms;
# stdout to OUT.out, stderr to OUT.err; returns CMD's status (137 after a timeout).
drive() {
    _o=$1 _ms=$2; shift 2
    _envs=""
    while [ "$1" != "--" ]; do _envs="$_envs $1"; shift; done
    shift
    "$BIN/storm-O2" drive "$_ms" "$T" env LD_PRELOAD="$SHIM" $_envs "$@" >"$_o.out" 2>"$_o.err"
}

# shim OUT ENV... -- CMD...: CMD under the shim, no signals.
shim() {
    _o=$1; shift
    _envs=""
    while [ "$1" != "--" ]; do _envs="$_envs $1"; shift; done
    shift
    timeout -s KILL "$T" env LD_PRELOAD="$SHIM" $_envs "$@" >"$_o.out" 2>"$_o.err"
}

# check DB MODE THREADS_LO THREADS_HI UNSTOPPED INUSE > JSON: every snapshot of DB, whole.
# INUSE=1 (SAMPLE_RATE=1): the counters' inuse must equal live_bytes and live_objects.
check() {
    python3 - "$@" <<'EOF'
import json, sqlite3, sys
db, mode, lo, hi, unstopped, inuse = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1"
c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
tables = {r[0] for r in c.execute("select name from sqlite_master where type = 'table'")}

def varints(b):
    v = s = 0
    for x in b:
        v |= (x & 0x7f) << s
        s += 7
        if not x & 0x80:
            yield v
            v = s = 0

def blocks(snap):  # (address, size, class, flags) of every live block, in address order
    if "object_chunk" not in tables:  # the one-row-per-block layout
        return list(c.execute("select address, size, class, flags from object where snapshot_id = ? order by address", (snap,)))
    out = []
    for first, count, data in c.execute("select first, count, data from object_chunk where snapshot_id = ? order by first", (snap,)):
        f = list(varints(data))
        if len(f) != 6 * count or first != len(out):
            return None
        a = 0
        for k in range(count):
            d, size, stack, seq, tid, cf = f[6 * k:6 * k + 6]
            a = d if k == 0 else a + d
            out.append((a, size, cf & 3, cf >> 2))
    return out

res = {"snapshots": 0, "signal": 0, "full": 0, "bad": [], "exit_last": None, "max_pause_ms": 0}
rows = list(c.execute("select id, trigger, mode, threads, threads_unstopped, live_objects, live_bytes,"
                      " reachable_objects, reachable_bytes, indirect_objects, indirect_bytes,"
                      " leaked_objects, leaked_bytes, pause_ns, label from snapshot order by id"))
for (sid, trig, m, thr, unst, lobj, lbytes, ro, rb, io, ib, lo_, lb, pause, label) in rows:
    res["snapshots"] += 1
    res["signal"] += trig == "signal"
    res["full"] += thr == hi
    res["max_pause_ms"] = max(res["max_pause_ms"], pause // 1000000)
    why = []
    if m != mode: why.append("mode %s" % m)
    if unst != (unstopped if trig != "exit" else 0): why.append("threads_unstopped %d" % unst)
    if not lo <= thr <= hi: why.append("threads %d" % thr)
    states = [r[0] for r in c.execute("select state from thread where snapshot_id = ?", (sid,))]
    if len(states) != thr: why.append("%d thread rows for %d threads" % (len(states), thr))
    # the helper takes signal snapshots; one still pending at exit, the exiting thread
    want_caller = 0 if trig == "signal" and label != "pending at exit" else 1
    if states.count("caller") != want_caller or states.count("unstopped") != unst:
        why.append("thread states %s" % ",".join(sorted(states)))
    b = blocks(sid)
    if b is None:
        why.append("malformed object_chunk")
    else:
        if len(b) != lobj: why.append("%d blocks, live_objects %d" % (len(b), lobj))
        if sum(x[1] for x in b) != lbytes: why.append("blocks sum to %d bytes, live_bytes %d" % (sum(x[1] for x in b), lbytes))
        if any(b[k][0] + b[k][1] > b[k + 1][0] for k in range(len(b) - 1)): why.append("overlapping blocks")
        for cls, n, by in ((0, ro, rb), (1, io, ib), (2, lo_, lb)):
            if sum(1 for x in b if x[2] == cls) != n or sum(x[1] for x in b if x[2] == cls) != by:
                why.append("class %d totals differ from the blocks" % cls)
        if "object_chunk" in tables:
            nrows = c.execute("select count(*) from object where snapshot_id = ?", (sid,)).fetchone()[0]
            if nrows != sum(1 for x in b if x[2] or x[3]): why.append("object rows %d" % nrows)
    if None in (ro, io, lo_) or ro + io + lo_ != lobj or rb + ib + lb != lbytes:
        why.append("reachable+indirect+leaked != live")
    if inuse:
        ab, ao = c.execute("select coalesce(sum(alloc_bytes - free_bytes), 0), coalesce(sum(alloc_objects - free_objects), 0)"
                           " from snapshot_stack where snapshot_id = ?", (sid,)).fetchone()
        if "stack_count_chunk" in tables:  # schema 8: the counters packed, 7 varints a stack
            for (data,) in c.execute("select data from stack_count_chunk where snapshot_id = ?", (sid,)):
                f = list(varints(data))
                ao += sum(f[k + 1] - f[k + 3] for k in range(0, len(f), 7))
                ab += sum(f[k + 2] - f[k + 4] for k in range(0, len(f), 7))
        if ab != lbytes or ao != lobj: why.append("inuse %d bytes %d objects, live %d %d" % (ab, ao, lbytes, lobj))
    if why:
        res["bad"].append("snapshot %d (%s): %s" % (sid, trig, "; ".join(why)))
if rows:
    res["exit_last"] = [r[1] for r in rows].index("exit") == len(rows) - 1 if "exit" in [r[1] for r in rows] else False
print(json.dumps(res))
EOF
}

# report JSON: the bad snapshots, as diagnostics
report() { jq -r '.bad[:5][] | "  " + .' "$1" | while read -r l; do diag "$l"; done; }

# ---- 1. signal storm ----------------------------------------------------------------------------
# the output does not depend on the optimisation level: one run without the shim for all
timeout -s KILL "$T" "$P-O2" storm $ITERS >"$OUT/native.out" 2>/dev/null
timeout -s KILL "$T" "$P-O2" storm $ITERS_SAMPLED >"$OUT/native-sampled.out" 2>/dev/null
native=$?
# enough_full_snapshots N JSON: N signal snapshots and JSON's count of those with all threads
# stopped are both at least 10
enough_full_snapshots() { [ "$1" -ge 10 ] && [ "$(jq .full "$2")" -ge 10 ]; }
storm_case() {  # OPT MODE [RATE]: RATE sampled (the default rate) or 1 (full, the default)
    opt=$1 mode=$2 rate=${3:-1} o="$OUT/storm-$1-$2${3:+-$3}"
    inuse=0 label=${3:+ $3} iters=$ITERS ref="$OUT/native.out"
    [ "$rate" = 1 ] && inuse=1
    [ "$rate" = sampled ] && rate=524288 iters=$ITERS_SAMPLED ref="$OUT/native-sampled.out"
    drive "$o" 10 HEAPWATCH_OUT="$o.db" HEAPWATCH_SAMPLE_RATE=$rate HEAPWATCH_SNAPSHOT="$mode" -- "$P-$opt" storm $iters
    st=$?
    is "$st $(cat "$o.out")" "$native $(cat "$ref")" "storm -$opt $mode$label: exit status and output (checksum) unchanged"
    is "$(grep '^heapwatch:' "$o.err")" "" "storm -$opt $mode$label: nothing from the shim on stderr"
    check "$o.db" "$mode" 1 7 0 $inuse >"$o.json"
    n=$(jq .signal "$o.json")
    diag "storm -$opt $mode$label: $(sed -n 's/storm: sent //p' "$o.err") sent, $n signal snapshots, $(jq .full "$o.json") with all 7 threads, longest pause $(jq .max_pause_ms "$o.json") ms"
    ok_cmd "storm -$opt $mode$label: at least 10 snapshots with all 7 threads stopped" enough_full_snapshots "$n" "$o.json"
    is "$(jq '.bad | length' "$o.json")" 0 "storm -$opt $mode$label: every snapshot whole: $mode, all threads stopped, blocks = live totals = classes, inuse = live_bytes"
    report "$o.json"
    is "$(jq .exit_last "$o.json")" true "storm -$opt $mode$label: the exit snapshot is the last one"
}
storm_case O0 fork
storm_case O2 fork
storm_case O2 inplace
# Sampled mode: most blocks are one shadow byte (shadow.h), found again by the walk.
storm_case O2 fork sampled
storm_case O2 inplace sampled

# the reference for "inuse = live_bytes": a trivial program's exit snapshot
shim "$OUT/true" HEAPWATCH_OUT="$OUT/true.db" HEAPWATCH_SAMPLE_RATE=1 -- "$P-O2" child 7
check "$OUT/true.db" fork 1 1 0 1 >"$OUT/true.json"
is "$(jq -c '[.snapshots, .bad]' "$OUT/true.json")" '[1,[]]' "a trivial program: inuse = live_bytes exactly, nothing allocated before the shim counts"
report "$OUT/true.json"

# ---- 2. signal masks ------------------------------------------------------------------------------
timeout -s KILL "$T" "$P-O2" mask 5 >"$OUT/mask-native.out" 2>/dev/null
mask_case() {  # NAME ROUNDS ENV...
    name=$1 rounds=$2; shift 2
    o="$OUT/mask-$name"
    shim "$o" HEAPWATCH_OUT="$o.db" "$@" -- "$P-O2" mask "$rounds"
    st=$?
    is "$st $(cat "$o.out")" "0 $(cat "$OUT/mask-native.out")" "mask $name: the program is unaffected (status, output, its raw mask)"
    raw=$(sed -n 's/storm: tid \([0-9]*\) rt_sigprocmask/\1/p' "$o.err")
    is "$(sqlite3 "$o.db" "select count(*), sum(threads_unstopped = 1) from snapshot where trigger = 'api'" 2>&1)" \
       "$rounds|$rounds" "mask $name: all $rounds snapshots stored, each with threads_unstopped = 1"
    is "$(sqlite3 "$o.db" "select group_concat(distinct state) from thread where tid = ${raw:-0}" 2>&1)" unstopped \
       "mask $name: the raw rt_sigprocmask thread is 'unstopped' in every snapshot"
}
mask_case rate0 5 HEAPWATCH_SAMPLE_RATE=0
o="$OUT/mask-rate0"
for kind in pthread_sigmask sigprocmask; do
    tid=$(sed -n "s/storm: tid \([0-9]*\) $kind\$/\1/p" "$o.err")
    is "$(sqlite3 "$o.db" "select count(*), group_concat(distinct state) from thread where tid = ${tid:-0}")" "5|stopped" \
       "mask: the thread that blocked every signal with $kind is stopped in every snapshot"
done
# inplace: the unstopped thread keeps allocating and freeing while the world is walked in place
mask_case inplace 50 HEAPWATCH_SAMPLE_RATE=0 HEAPWATCH_SNAPSHOT=inplace
# rate 1: every allocation unwinds its stack, and libunwind saves and restores the signal mask
# around dl_iterate_phdr; the shim's own restore must not undo the application's raw block
mask_case rate1 5 HEAPWATCH_SAMPLE_RATE=1

# ---- 3. blocking calls ----------------------------------------------------------------------------
timeout -s KILL "$T" "$P-O2" block >"$OUT/block-native.out" 2>/dev/null
for mode in fork inplace; do
    o="$OUT/block-$mode"
    shim "$o" HEAPWATCH_OUT="$o.db" HEAPWATCH_SNAPSHOT=$mode -- "$P-O2" block
    st=$?
    is "$st $(grep -v '^intr:' "$o.out")" "0 $(grep -v '^intr:' "$OUT/block-native.out")" \
       "block $mode: read on a pipe, pthread_cond_wait, a mutex held across the snapshot: results unchanged"
    is "$(grep '^intr:' "$o.out")" "intr: nanosleep: returned -1 early, errno EINTR, remaining time reported
intr: clock_nanosleep: returned -1 early, errno EINTR, remaining time reported
intr: sleep: returned 1 early
intr: usleep: returned -1 early, errno EINTR
intr: poll: returned -1 early, errno EINTR
intr: epoll_wait: returned -1 early, errno EINTR
intr: select: returned -1 early, errno EINTR
intr: pause: returned -1 early, errno EINTR" \
       "block $mode: sleeping calls end early as documented: EINTR, remaining time (sleep: whole seconds, truncated)"
    is "$(sqlite3 "$o.db" "select threads, threads_unstopped, (select sum(state = 'caller') || ',' || sum(state = 'stopped')
         from thread t where t.snapshot_id = s.id) from snapshot s where label = 'blocked'")" "12|0|1,11" \
       "block $mode: all 12 threads stopped in their system calls"
done

# ---- 4. fork and exec in a loop during the storm ----------------------------------------------------
o="$OUT/forks"
mkdir -p "$o"
timeout -s KILL "$T" "$P-O2" storm $ITERS 30 >"$o/native.out" 2>/dev/null
native=$?
drive "$o/shim" 10 HEAPWATCH_OUT="$o/hw.%p.db" HEAPWATCH_SAMPLE_RATE=1 -- "$P-O2" storm $ITERS 30
st=$?
is "$st $(cat "$o/shim.out")" "$native $(cat "$o/native.out")" "forks: status and output unchanged; all 30 children exited as expected"
parent=$(for f in "$o"/hw.*.db; do
    [ "$(sqlite3 "$f" "select forked_from is null and cmdline like '% storm $ITERS 30' from process")" = 1 ] && echo "$f"
done)
check "$parent" fork 1 8 0 1 >"$o/parent.json"
diag "forks: $(jq .signal "$o/parent.json") signal snapshots in the parent"
ok_cmd "forks: at least 10 snapshots of the parent" test "$(jq .signal "$o/parent.json")" -ge 10
is "$(jq '.bad | length' "$o/parent.json")" 0 "forks: every snapshot of the parent whole"
report "$o/parent.json"
bad=0 badinuse=0 n=0
for f in "$o"/hw.*.db; do
    [ "$f" = "$parent" ] && continue
    n=$((n + 1))
    check "$f" fork 1 1 0 0 >"$f.json"
    [ "$(jq -c '[.snapshots > 0, .bad]' "$f.json")" = '[true,[]]' ] || { bad=$((bad + 1)); report "$f.json"; }
    check "$f" fork 1 1 0 1 >"$f.inuse.json"
    [ "$(jq -c '.bad' "$f.inuse.json")" = '[]' ] || { badinuse=$((badinuse + 1)); report "$f.inuse.json"; }
done
is "$n $bad" "20 0" "forks: 20 children with exit() (10 forked, 10 exec'd), each with a whole exit snapshot"
# A fork child inherits the live table and the counters as they were at fork(): the prepare
# handler holds the table's locks, but an allocation counted and not yet in the table (its
# thread waits for a shard lock) is in one and not the other.
is "$badinuse" 0 "forks: in every child, inuse at exit = live_bytes (nothing half-recorded inherited)"

# ---- 5. heapwatch_snapshot() from several threads at once ----------------------------------------------
for run in O0:fork O2:fork O2:inplace; do
    opt=${run%:*} mode=${run#*:} o="$OUT/api-$opt-$mode"
    shim "$o" HEAPWATCH_OUT="$o.db" HEAPWATCH_SNAPSHOT=$mode -- "$P-$opt" api 4 15
    st=$?
    is "$st $(cat "$o.out")" "0 api: 60 calls returned 0, 0 failed" "api -$opt $mode: 4 threads x 15 concurrent calls, every one returned 0"
    is "$(sqlite3 "$o.db" "select count(*), min(id), max(id), count(distinct label), sum(trigger = 'api') from snapshot")" \
       "61|1|61|60|60" "api -$opt $mode: ids 1..61 without a gap, 60 distinct labels"
    check "$o.db" "$mode" 1 5 0 0 >"$o.json"
    is "$(jq '.bad | length' "$o.json")" 0 "api -$opt $mode: every snapshot whole, with its caller"
    report "$o.json"
done

# ---- 6. the snapshot writer is invisible to wait() ----------------------------------------------------
o="$OUT/wait"
timeout -s KILL "$T" "$P-O2" wait 300 >"$o-native.out" 2>/dev/null
drive "$o" 10 HEAPWATCH_OUT="$o.db" -- "$P-O2" wait 300
st=$?
is "$st $(cat "$o.out")" "0 $(cat "$o-native.out")" "wait: only its own 300 children, one SIGCHLD each, ECHILD when none is left"
n=$(sed -n 's/storm: \([0-9]*\) API snapshots during the waits/\1/p' "$o.err")
diag "wait: ${n:-0} API snapshots and $(sqlite3 "$o.db" "select count(*) from snapshot where trigger = 'signal'") signal snapshots during the waits"
ok_cmd "wait: at least 10 snapshots written while it waited" test "${n:-0}" -ge 10

# ---- 7. the application's own SIGUSR2 handler -----------------------------------------------------------
for when in early main; do
    o="$OUT/handler-$when"
    shim "$o" HEAPWATCH_OUT="$o.db" -- "$P-O2" handler-$when 5
    st=$?
    is "$st $(cat "$o.out")" "0 handler: 10 signals raised, 10 handled by the program" "handler-$when: the program's SIGUSR2 handler gets every signal"
    is "$(sqlite3 "$o.db" "select count(*) from snapshot where trigger = 'signal'")" 0 "handler-$when: no snapshot taken on its SIGUSR2"
    is "$(grep -c '^heapwatch: .*signal 12.* snapshots on signal are off' "$o.err")" 1 "handler-$when: the shim says once on stderr that snapshots on signal are off"
done

done_testing
