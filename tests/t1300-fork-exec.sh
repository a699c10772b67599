#!/bin/sh
# fork and exec: each child gets its own database, with the right content; the parent's
# database is not disturbed; exit statuses are unchanged.
. ./lib.sh
plan 15

dir="$OUT/db"
mkdir -p "$dir"
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/hw.%p.db" HEAPWATCH_SAMPLE_RATE=1 "$BIN/forker-O2" >"$OUT/stdout" 2>"$OUT/stderr"
ok $? "forker runs under the shim"
native=$("$BIN/forker-O2" | sed 's/[0-9][0-9]*/N/g')
is "$(sed 's/[0-9][0-9]*/N/g' "$OUT/stdout")" "$native" "output unchanged (pids masked)"
is "$(grep -c . "$OUT/stderr")" 0 "nothing on stderr"
is "$(ls "$dir"/hw.*.db | wc -l)" 3 "three databases: parent, fork child, exec child"

# find each database by its process record
for f in "$dir"/hw.*.db; do
    "$HW" ls "$f" --json > "$f.json"
done
parent=$(for f in "$dir"/hw.*.db; do jq -r 'select(.cmdline | endswith("forker-O2")) | .db' "$f.json"; done | head -n 1)
execd=$(for f in "$dir"/hw.*.db; do jq -r 'select(.cmdline | endswith(" child")) | .db' "$f.json"; done)
forked=$(for f in "$dir"/hw.*.db; do [ "$f" != "$parent" ] && [ "$f" != "$execd" ] && echo "$f"; done)

sum_at() {  # DB SIZE: inuse bytes of blocks of that size at the exit snapshot (alloc_n's rows)
    "$HW" top "$1" --by function --json | jq '[.rows[] | select(.function == "alloc_n") | .flat.inuse_space] | add // 0'
}
is "$(sum_at "$parent")" $((10 * 1000 + 5 * 3000)) "parent: its own 10+5 blocks, not the children's"
is "$(sum_at "$forked")" $((10 * 1000 + 7 * 2000)) "fork child: the inherited 10 blocks plus its own 7"
is "$(sum_at "$execd")" $((3 * 5000)) "exec child: only its own 3 blocks"
is "$(jq -r '.snapshots[-1].trigger' "$forked.json")" exit "fork child: exit snapshot taken"
is "$(sqlite3 "$forked" 'select forked_from from process')" "$(jq .pid "$parent.json")" "fork child: records its parent"
is "$(sqlite3 "$execd" 'select forked_from is null from process')" 1 "exec child: a process of its own"

# The same run sampled, with the shadow map (most blocks are shadow bytes, shadow.h): the fork
# child inherits the map, and each process's exit snapshot has the same live blocks and
# bytes as in full mode. With glibc's arenas walked instead (the default, record_arena.h) the
# fork child inherits the arenas: the same blocks, in usable sizes (at most 64 bytes a block
# more than asked for here).
live_at_exit() { jq -c '.snapshots[-1] | [.live_objects, .live_bytes]' "$1.json"; }
full_parent=$(live_at_exit "$parent") full_forked=$(live_at_exit "$forked") full_execd=$(live_at_exit "$execd")
sdir="$OUT/sampled"
mkdir -p "$sdir"
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$sdir/hw.%p.db" HEAPWATCH_BLOCKS=shadow "$BIN/forker-O2" >/dev/null 2>&1
for f in "$sdir"/hw.*.db; do "$HW" ls "$f" --json > "$f.json"; done
role_of() { # JSON -> parent | execd | forked
    if jq -e '.cmdline | endswith(" child")' "$1" >/dev/null; then echo execd
    elif [ "$(sqlite3 "${1%.json}" 'select forked_from is null from process')" = 1 ]; then echo parent
    else echo forked; fi
}
got=$(for f in "$sdir"/hw.*.db; do echo "$(role_of "$f.json")=$(live_at_exit "$f")"; done | sort | tr '\n' ' ')
is "$got" "execd=$full_execd forked=$full_forked parent=$full_parent " \
   "sampled (shadow map): parent, fork child and exec child end with the live blocks and bytes of the full run"
# close ROLE [O,B] FULL: "ROLE=O" when the objects are the full run's and the bytes within 64 a block
close() {
    echo "$2 $3" | tr -d '[]' | tr ',' ' ' | {
        read -r o b fo fb
        if [ "$o" = "$fo" ] && [ "$b" -ge "$fb" ] && [ "$b" -le $((fb + 64 * fo)) ]; then echo "$1=$o"; else echo "$1=$o,$b (full $fo,$fb)"; fi
    }
}
# Ten runs: the fork child's new helper thread may be given the parent helper's thread block
# again, and the parent helper's tcache struct then showed as 4 blocks (1 run in 3).
adir="$OUT/arena"
for run in 1 2 3 4 5 6 7 8 9 10; do
    rm -rf "$adir"
    mkdir -p "$adir"
    env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$adir/hw.%p.db" "$BIN/forker-O2" >/dev/null 2>&1
    for f in "$adir"/hw.*.db; do "$HW" ls "$f" --json > "$f.json"; done
    got=$(for f in "$adir"/hw.*.db; do r=$(role_of "$f.json"); eval "full=\$full_$r"; close "$r" "$(live_at_exit "$f")" "$full"; done | sort | tr '\n' ' ')
    case "$got" in *"("*) break ;; esac
done
is "$got" "execd=$(echo "$full_execd" | sed 's/^\[\([0-9]*\),.*/\1/') forked=$(echo "$full_forked" | sed 's/^\[\([0-9]*\),.*/\1/') parent=$(echo "$full_parent" | sed 's/^\[\([0-9]*\),.*/\1/') " \
   "sampled (glibc's arenas), 10 runs: parent, fork child and exec child end with the full run's live blocks, in usable sizes"

# HEAPWATCH_CHILDREN=0: exec'd children are not traced (forked ones still are)
rm -rf "$dir" && mkdir -p "$dir"
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/hw.%p.db" HEAPWATCH_CHILDREN=0 "$BIN/forker-O2" >/dev/null 2>&1
is "$(ls "$dir"/hw.*.db | wc -l)" 2 "HEAPWATCH_CHILDREN=0: parent and fork child only"

# exec without fork keeps the pid: each new image takes the next free name, counted from the
# pid-named one (hw.PID.db, hw.PID-2.db, hw.PID-3.db), never from the last one taken.
rm -rf "$dir" && mkdir -p "$dir"
env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/hw.%p.db" "$BIN/reexec-O2" 2 >/dev/null 2>&1 &
pid=$!
wait $pid
is "$(cd "$dir" && ls hw.*.db | tr '\n' ' ')" "hw.$pid-2.db hw.$pid-3.db hw.$pid.db " \
   "exec without fork, twice: one database per image, numbered from the pid-named one"

# _exit and _Exit at once, with the event log on: its helper creates the database at start-up,
# and the end must not cut that short (a file without tables, 1 run in 5 before the wrappers).
qdir="$OUT/quick"
rm -rf "$qdir" && mkdir -p "$qdir"
statuses="" unreadable=0
for fn in _exit _Exit; do
    for i in $(seq 30); do
        env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$qdir/$fn-$i.db" HEAPWATCH_EVENTS=1 "$BIN/quickexit-O2" "$fn" >/dev/null 2>&1
        statuses="$statuses$?"
    done
done
made=0
for f in "$qdir"/*.db; do [ -e "$f" ] && { made=$((made + 1)); "$HW" ls "$f" >/dev/null 2>&1 || unreadable=$((unreadable + 1)); }; done
diag "_exit: $made databases made in 60 runs (a run that ends before its helper starts makes none)"
is "$(echo "$statuses" | tr -d 3 | wc -c) $unreadable $([ "$made" -ge 10 ] && echo made)" "1 0 made" \
   "_exit and _Exit, 30 runs each with the event log: status 3 every time, every database left whole"
