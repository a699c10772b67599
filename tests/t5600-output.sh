#!/bin/sh
# Where databases go: a symlinked directory is followed (a symlink as the file never is); a
# name that is taken is never overwritten, and says so; a fixed name is the traced program's,
# not that of a child that ends first; heapwatch run under a wrapper that
# forks and execs names every database it wrote and the command's; a full disk at start
# leaves no file and one message; a disk that fills mid-run costs one message, leaves no WAL
# at exit, and the lost snapshots are recorded once space returns. A program that ends at once,
# before the helper thread made its database, still leaves a whole one.
. ./lib.sh
plan 27

dir="$OUT/d"
mkdir -p "$dir/real"
ln -s real "$dir/link"

# --- a symlinked directory -------------------------------------------------------------------
run_shim "$dir/link/x.db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/exact-O2"
is "$? $(grep -c . "$OUT/stderr")" "0 0" "output through a symlinked directory: runs, nothing on stderr"
is "$("$HW" ls "$dir/real/x.db" --json | jq '.snapshots | length')" 2 "... and the database (in the real directory) has its snapshots"
link_untouched() { [ -L "$dir/link" ] && [ ! -L "$dir/real/x.db" ]; }
ok_cmd "... a real file, the link untouched" link_untouched

# --- a program that ends at once -----------------------------------------------------------------
# exit took the write lock before the helper made the database, and the helper then began one that
# exit_group cut short: a file without its tables, 19 times in 30 (AT_EXIT=0, no exit snapshot).
whole=0
for i in $(seq 1 40); do
    rm -f "$OUT/quick.db"
    env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$OUT/quick.db" HEAPWATCH_AT_EXIT=0 /bin/true >/dev/null 2>&1
    [ "$(sqlite3 "$OUT/quick.db" 'select count(*) from process' 2>/dev/null)" = 1 ] && whole=$((whole + 1))
done
is "$whole" 40 "40 quick runs without an exit snapshot: each leaves a whole database"

# --- a taken name -----------------------------------------------------------------------------
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/real/x.db" HEAPWATCH_SAMPLE_RATE=1 "$BIN/exact-O2" >/dev/null 2>"$OUT/stderr"
is "$?" 0 "a taken name: the program runs"
alt=$(ls "$dir/real" | grep -E '^x\.[0-9]+\.db$')
is "$(grep -c "exists; this process ([0-9]*) writes '.*/real/$alt'" "$OUT/stderr") $(grep -c . "$OUT/stderr")" "1 1" \
   "a taken name: one line says where this process writes ($alt)"
is "$("$HW" ls "$dir/real/x.db" --json | jq '.snapshots | length') $("$HW" ls "$dir/real/$alt" --json | jq '.snapshots | length')" \
   "2 2" "the first database keeps its snapshots; the second has its own"

# --- a fixed name, and children that end first ----------------------------------------------------
# /bin/true and echo's subshell (which execs /bin/echo) end before bash: the first of them took
# the name, and bash wrote kid.PID.db and said so on its stderr.
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/kid.db" bash -c '/bin/true; x=$(/bin/echo hi); echo "$x"' \
    >"$OUT/kid.out" 2>"$OUT/kid.err"
is "$? $(cat "$OUT/kid.out") $(grep -c . "$OUT/kid.err")" "0 hi 0" \
   "a fixed name, children that end first: the program's status and output, nothing on stderr"
is "$(sqlite3 "$dir/kid.db" 'select exe from process')" "$(readlink -f "$(command -v bash)")" \
   "... the name is the traced program's"
is "$(ls "$dir" | grep -cE '^kid\.[0-9]+\.db$')" 2 "... and each child's database is kid.PID.db"

# --- heapwatch run under a wrapper that forks and execs ----------------------------------------
cat > "$dir/wrap.sh" <<SH
#!/bin/bash
greeting=\$(echo hello)
exec "$BIN/exact-O2"
SH
chmod +x "$dir/wrap.sh"
(cd "$dir" && "$HW" run --full -o app.db -- ./wrap.sh) >"$OUT/run.out" 2>"$OUT/run.err"
is "$? $(grep -c 'exists\|cannot create' "$OUT/run.err")" "0 0" "run -o app.db of a wrapper: status 0, no complaint about taken names"
is "$(jq -r '.exe' <<EOF2
{"exe": "$(sqlite3 "$dir/app.db" 'select exe from process')"}
EOF2
)" "$BIN/exact-O2" "app.db is the command's final program's (the wrapper's empty database made way)"
is "$("$HW" ls "$dir/app.db" --json | jq '.snapshots | length')" 2 "... with its snapshots"
is "$(grep -c "app.db  (pid [0-9]*, exact-O2; the command)" "$OUT/run.err")" 1 "run names the command's database"
is "$(grep -c "app\.[0-9]*\.db  (pid [0-9]*, bash; fork of [0-9]*)" "$OUT/run.err")" 1 "run names the forked subshell's database"
is "$(sed -n 's/^heapwatch: \([0-9]*\) databases written.*/\1/p' "$OUT/run.err")" 2 "run counts the databases it wrote"
is "$(ls "$dir" | grep -c 'app.*\.db-\(wal\|shm\)$')" 0 "no -wal or -shm file is left"

# --- a full disk -------------------------------------------------------------------------------
mnt="$OUT/mnt"
mkdir -p "$mnt"
if mount -t tmpfs -o size=4m tmpfs "$mnt" 2>/dev/null; then
    trap 'umount "$mnt" 2>/dev/null' EXIT INT TERM
    dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null
    run_shim "$mnt/full.db" -- "$BIN/exact-O2"
    is "$? $(grep -c "cannot create '$mnt/full.db': disk full" "$OUT/stderr") $(grep -c . "$OUT/stderr")" "0 1 1" \
       "a full disk at start: the program runs, one message says the disk is full"
    is "$(ls "$mnt" | grep -c full)" 0 "... and no empty database is left behind"
    : >"$mnt/empty.db" 2>/dev/null || { rm -f "$mnt/filler"; : >"$mnt/empty.db"; dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null; }
    "$HW" ls "$mnt/empty.db" >/dev/null 2>"$OUT/empty.err"
    is "$? $(grep -c "empty: the traced process could not write it" "$OUT/empty.err")" "3 1" "the analyzer on an empty file: exit 3, says it is empty"
    rm -f "$mnt/filler" "$mnt/empty.db"

    # mid-run: two snapshots, the disk fills, three are lost, space returns, one more
    rm -f "$dir/cmd" && mkfifo "$dir/cmd"
    env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$mnt/mid.db" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_AT_EXIT=0 \
        "$BIN/snapper-O2" <"$dir/cmd" >"$OUT/mid.out" 2>"$OUT/mid.err" &
    pid=$!
    exec 3>"$dir/cmd"
    say() { echo "$1" >&3; n=$2; t=0; while [ "$(grep -c . "$OUT/mid.out")" -lt "$n" ] && [ $t -lt 200 ]; do sleep 0.05; t=$((t + 1)); done; }
    say a 1; say s 2; say a 3; say s 4
    dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null
    say a 5; say s 6; say s 7; say s 8
    rm -f "$mnt/filler"
    say s 9
    echo q >&3
    exec 3>&-
    wait_for $pid 60
    is "$? $(grep -c '^snapshot 0$' "$OUT/mid.out") $(grep -c '^snapshot -1$' "$OUT/mid.out")" "0 3 3" \
       "disk full mid-run: the program runs on; 3 snapshots written, 3 lost"
    is "$(grep -c 'could not be written (disk full' "$OUT/mid.err") $(grep -c 'written again: 3 were lost' "$OUT/mid.err") $(grep -c . "$OUT/mid.err")" \
       "1 1 2" "one message when the disk fills, one when space returns, nothing else"
    is "$("$HW" ls "$mnt/mid.db" --json | jq -c '[(.snapshots | length), (.gaps[] | [.after_snapshot, .lost, .reason])]')" \
       '[3,[2,3,"disk full"]]' "the database records the gap: 3 lost after snapshot 2 (disk full)"
    is "$("$HW" ls "$mnt/mid.db" | grep -c '3 snapshot(s) taken here could not be written (disk full)')" 1 "ls shows the gap"
    is "$(ls "$mnt" | grep -c 'mid.db-\(wal\|shm\)')" 0 "no WAL left after exit"

    # The event log through a full disk: a chunk that cannot be written ends the log. Records
    # are deltas from the one before in their thread's stream, so chunks written once space
    # returned read back shifted (frees that match nothing, wrong stacks and times).
    rm -f "$mnt"/*.db*
    env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$mnt/ev.db" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_EVENTS=1 \
        "$BIN/events-O2" forever >"$OUT/ev.out" 2>"$OUT/ev.err" &
    pid=$!
    t=0; while [ "$(cat "$OUT/ev.out")" != ready ] && [ $t -lt 200 ]; do sleep 0.05; t=$((t + 1)); done
    dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null
    t=0; while ! grep -q "event log" "$OUT/ev.err" && [ $t -lt 100 ]; do sleep 0.05; t=$((t + 1)); done
    rm -f "$mnt/filler"
    sleep 2.5   # two drains or more with space again
    kill -KILL $pid
    wait $pid 2>/dev/null
    is "$(grep -c "cannot write the event log to '$mnt/ev.db' (disk full.*; it ends here" "$OUT/ev.err") $(grep -c . "$OUT/ev.err")" \
       "1 1" "events on a full disk: one message says the log ends there"
    "$HW" timeline "$mnt/ev.db" --json >"$OUT/ev.json" 2>"$OUT/ev.tl.err"
    is "$?:$(jq -c '.log | [.complete, .unmatched_frees, .events > 1000]' "$OUT/ev.json")" "0:[false,0,true]" \
       "... and the log written before it reads back whole, with nothing after it"
    umount "$mnt"
    trap - EXIT
else
    for i in 1 2 3 4 5 6 7 8 9 10; do skip "cannot mount a tmpfs here (not root?)"; done
fi
done_testing
