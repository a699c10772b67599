#!/bin/sh
# Snapshots on signal: each signal a program sends itself gives a snapshot of that moment
# (the signalled thread waits in the handler until the world is stopped), in every walk
# mode; a signal from outside gives a snapshot taken after it arrived, even when the program
# exits right after it (the pending request is taken before the exit snapshot).
. ./lib.sh
plan 17

dir="$OUT/db"
mkdir -p "$dir"

# phase_counts DB: "trigger:objects-of-phase()" for every snapshot, in order
phase_counts() {
    n=$("$HW" ls "$1" --json | jq '.snapshots | length')
    i=1
    while [ "$i" -le "$n" ]; do
        t=$("$HW" ls "$1" --json | jq -r --argjson i "$i" '.snapshots[] | select(.id == $i) | .trigger')
        c=$("$HW" top "$1:$i" --by function --json | jq '[.rows[] | select(.function == "phase") | .flat.inuse_objects] | add // 0')
        printf '%s:%s ' "$t" "$c"
        i=$((i + 1))
    done
}
expect="signal:1 signal:3 signal:6 signal:10 signal:15 signal:21 signal:28 signal:36 exit:36 "
for mode in "HEAPWATCH_SNAPSHOT=fork" "HEAPWATCH_SNAPSHOT=inplace" "HEAPWATCH_OBJECTS=0"; do
    db="$dir/phases-${mode#*=}.db"
    bounded 60 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$db" HEAPWATCH_SAMPLE_RATE=1 $mode "$BIN/phases-O2" 8 \
        >"$OUT/stdout" 2>"$OUT/stderr"
    is "$? $(cat "$OUT/stdout")" "0 phases 8" "$mode: the program runs and exits as without the shim"
    is "$(phase_counts "$db")" "$expect" "$mode: 8 signals sent to itself, 8 snapshots, each of its moment"
done
# sampled: the counts are estimates, the number of snapshots is exact
db="$dir/phases-sampled.db"
bounded 60 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$db" "$BIN/phases-O2" 8 >/dev/null 2>&1
is "$("$HW" ls "$db" --json | jq -r '[.snapshots[].trigger] | join(" ")')" \
   "signal signal signal signal signal signal signal signal exit" "sampled mode: 8 signals, 8 snapshots before the exit one"
is "$("$HW" ls "$db" --json | jq -r '[.snapshots[0:8][].live_objects] | [length, (. as $v | [range(1; length)] | all($v[.] > $v[. - 1]))] | map(tostring) | join(" ")')" \
   "8 true" "sampled mode: the exact live counts of the 8 snapshots grow strictly"

# start_waiting DB: `phases wait` under the shim, writing DB, its standard input the open
# descriptor 3 (closing it makes the program exit); returns once it said "ready"; sets pid.
# The last run's output goes first: the job truncates wait.out only once its input is open,
# which is after our end opens, and a "ready" left in it let a SIGUSR2 kill the process before
# the shim had its handler (no database at all).
start_waiting() {
    rm -f "$dir/in" "$OUT/wait.out" && mkfifo "$dir/in"
    env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$1" HEAPWATCH_SAMPLE_RATE=1 "$BIN/phases-O2" wait <"$dir/in" >"$OUT/wait.out" 2>&1 &
    pid=$!
    exec 3>"$dir/in"
    t=0
    while [ "$(cat "$OUT/wait.out")" != ready ] && [ $t -lt 100 ]; do sleep 0.05; t=$((t + 1)); done
}

# A signal from outside, then the program exits at once: the request is not lost, and the
# program ends as it would without it.
bad=""
i=0
while [ $i -lt 5 ]; do
    db="$dir/wait-$i.db"
    start_waiting "$db"
    ready=$(cat "$OUT/wait.out")
    sent=$(date +%s%N)
    kill -USR2 $pid
    exec 3>&-
    wait_for $pid 60
    rc=$?
    got=$("$HW" ls "$db" --json 2>/dev/null | jq --argjson t "$sent" '[.snapshots[] | select(.trigger == "signal" and .time_ns >= $t)] | length')
    [ "$ready:$rc" = "ready:0" ] && [ "${got:-0}" -ge 1 ] || bad="$bad run$i:ready=$ready,rc=$rc,signal_snapshots=${got:-none}"
    i=$((i + 1))
done
is "${bad:-ok}" ok "a signal from outside right before exit: a snapshot taken after it, in 5 of 5 runs"

# Signals from outside while it runs: each gives a snapshot taken after it arrived.
db="$dir/outside.db"
start_waiting "$db"
served=0
for k in 1 2 3; do
    sent=$(date +%s%N)
    kill -USR2 $pid
    t=0
    while [ $t -lt 200 ]; do
        # The database is made by the first snapshot (this single-threaded program starts the
        # helper thread, which makes it, on the first signal): absent or empty until then.
        n=$("$HW" ls "$db" --json 2>/dev/null | jq --argjson t "$sent" '[.snapshots[] | select(.time_ns >= $t)] | length')
        n=${n:-0}
        [ "$n" -ge 1 ] && { served=$((served + 1)); break; }
        sleep 0.05
        t=$((t + 1))
    done
done
exec 3>&-
wait_for $pid 60
is "$served" 3 "three signals from outside, one after another: each followed by a snapshot taken after it"
is "$("$HW" ls "$db" --json | jq -r '[.snapshots[].trigger] | join(" ")')" "signal signal signal exit" "then the exit snapshot, and nothing else"

# A self-signal while the helper cannot stop the world must not hang the program: a signal
# raised inside a dl_iterate_phdr callback (the loader lock held, which stopping needs).
cat > "$OUT/inphdr.c" <<'C'
#define _GNU_SOURCE
#include <link.h>
#include <signal.h>
#include <stdio.h>
static int cb(struct dl_phdr_info *i, size_t s, void *d) { (void)i; (void)s; (void)d; raise(SIGUSR2); return 1; }
int main(void) { dl_iterate_phdr(cb, NULL); puts("done"); return 0; }
C
cc -O1 -o "$OUT/inphdr" "$OUT/inphdr.c"
start=$(date +%s)
bounded 30 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/inphdr.db" "$OUT/inphdr" >"$OUT/stdout" 2>&1
is "$? $(cat "$OUT/stdout")" "0 done" "raise() with the loader lock held: the program goes on (after a bounded wait) and exits"
elapsed=$(($(date +%s) - start))
ok_cmd "... within the wait's limit (${elapsed}s)" test $elapsed -le 15
# heapwatch snap reaches a fork child that has taken no snapshot yet (no database of its own)
cat > "$OUT/forkwait.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void)
{
    pid_t c = fork();
    if (c == 0) {
        char *p = malloc(4000);
        memset(p, 1, 4000);
        printf("%d\n", (int)getpid());
        fflush(stdout);
        char b;
        while (read(0, &b, 1) > 0)
            ;
        _exit(0);
    }
    waitpid(c, NULL, 0);
    return 0;
}
C
cc -O1 -o "$OUT/forkwait" "$OUT/forkwait.c"
rm -f "$dir/in" && mkfifo "$dir/in"
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/fw.%p.db" "$OUT/forkwait" <"$dir/in" >"$OUT/fw.out" 2>&1 &
exec 3>"$dir/in"
t=0
while [ ! -s "$OUT/fw.out" ] && [ $t -lt 100 ]; do sleep 0.05; t=$((t + 1)); done
child=$(cat "$OUT/fw.out")
ls "$dir"/fw.*.db >"$OUT/fw.before" 2>/dev/null
"$HW" snap "$child" --json --timeout 30 >"$OUT/fw.json" 2>"$OUT/fw.err"
rc=$?
exec 3>&-
wait_for $! 60
is "$rc $(jq -r '"\(.pid) \(.db | test("fw\\.[0-9]+\\.db$")) \(.trigger)"' "$OUT/fw.json" 2>/dev/null) $(grep -c "fw.$child.db" "$OUT/fw.before")" \
   "0 $child true signal 0" "snap reaches a fork child before its first snapshot: its database fw.CHILD.db is created for it"
# --- a program that resets the trigger signal, or takes it -----------------------------------------
# git, xargs and Python's subprocess set every signal to SIG_DFL: the shim's handler stands for
# that default (no message, and it is told SIG_DFL); a handler of the program's own takes the
# signal (one message, and its sigaction's old action is the SIG_DFL it had).
rm -f "$OUT/db/reset.db"*
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$OUT/db/reset.db" "$BIN/sigdefault-O2" reset >"$OUT/reset.out" 2>"$OUT/reset.err"
is "$?|$(tr '\n' ' ' <"$OUT/reset.out")|$(grep -c . "$OUT/reset.err")|$("$HW" ls "$OUT/db/reset.db" --json | jq -r '[.snapshots[].trigger] | join(" ")')" \
   "0|old SIG_DFL signal() returned SIG_DFL now SIG_DFL alive |0|signal exit" \
   "SIG_DFL set twice: reported as SIG_DFL, nothing said, and its raise still takes a snapshot"
rm -f "$OUT/db/own.db"*
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$OUT/db/own.db" "$BIN/sigdefault-O2" handler >"$OUT/own.out" 2>"$OUT/own.err"
is "$?|$(tr '\n' ' ' <"$OUT/own.out")|$(grep -c 'takes signal 12 for itself' "$OUT/own.err")|$(grep -c . "$OUT/own.err")" \
   "0|old SIG_DFL handler ran 1 |1|1" "a handler of its own: its old action is SIG_DFL, it gets the signal, one message"
rm -f "$OUT/db/vf.db"*
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$OUT/db/vf.db" HEAPWATCH_CHILDREN=0 "$BIN/sigdefault-O2" vfork >"$OUT/vf.out" 2>"$OUT/vf.err"
is "$?|$(tr '\n' ' ' <"$OUT/vf.out")|$(grep -c . "$OUT/vf.err")|$("$HW" ls "$OUT/db/vf.db" --json | jq -r '[.snapshots[].trigger] | join(" ")')" \
   "0|parent sees SIG_DFL alive |0|signal exit" "a vfork child that ignores the signal before its exec changes nothing in its parent"
done_testing
