#!/bin/sh
# The sampled mode meant for production keeps no entry per unsampled block: with glibc it
# walks glibc's own arenas at a snapshot (arena mode, preload/record_arena.h), elsewhere an
# unsampled block is one shadow byte (preload/shadow.h); yet every snapshot must still count
# the live blocks exactly and walk them all. The shadow map keeps exact requested bytes; the
# arena walk has unsampled blocks' usable sizes, so its bytes must lie between the program's
# requested and usable totals. progs/census.c knows its own numbers (sizes
# whose slack spans 0 to far above what a byte holds, blocks mmapped by glibc, every entry
# point, a leaked list and single leaks, 4 threads freeing each other's blocks) and prints
# them; each run's snapshots must agree with it, in full mode, in sampled mode, with the
# heap walked in place and without a heap walk (the per-thread counters), with glibc's malloc and with jemalloc and tcmalloc when Debian's
# libjemalloc2 and libtcmalloc-minimal4 are installed (`make deps` installs them).
. ./lib.sh
plan 66

LIBDIR=/usr/lib/x86_64-linux-gnu
progs="$BIN/census-O0 $BIN/census-O2"
for lib in libjemalloc.so.2 libtcmalloc_minimal.so.4; do
    if [ -e "$LIBDIR/$lib" ]; then
        gcc -std=gnu11 -O2 -g -I"$TOP/include" -pthread progs/census.c -o "$OUT/census-$lib" "$LIBDIR/$lib" &&
            progs="$progs $OUT/census-$lib"
    fi
done

# field LABEL KEY: KEY of the snapshot labelled LABEL in $OUT/ls.json
field() { jq -r --arg l "$1" --arg k "$2" '.snapshots[] | select(.label == $l) | .[$k]' "$OUT/ls.json"; }
# delta KEY: census's KEY minus baseline's
delta() { echo $(( $(field census "$1") - $(field baseline "$1") )); }
# truth KEY: census.c's own count from its first output line
truth() { sed -n "s/^census .*\b$1=\([0-9]*\).*/\1/p" "$OUT/stdout"; }
# within LOW HIGH VALUE: "ok" when LOW <= VALUE <= HIGH, else the three
within() { if [ "$3" -ge "$1" ] && [ "$3" -le "$2" ]; then echo ok; else echo "$3 not in [$1, $2]"; fi; }

runs=0 walks=0
for prog in $progs; do
    name=$(basename "$prog")
    for mode in full fullshadow sampled shadow inplace counters; do
        case $mode in
        full) set -- HEAPWATCH_SAMPLE_RATE=1 ;;
        fullshadow) set -- HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_BLOCKS=shadow ;;
        sampled) set -- HEAPWATCH_SEED=7 ;;
        shadow) set -- HEAPWATCH_SEED=7 HEAPWATCH_BLOCKS=shadow ;;
        inplace) set -- HEAPWATCH_SEED=7 HEAPWATCH_SNAPSHOT=inplace ;;
        counters) set -- HEAPWATCH_SEED=7 HEAPWATCH_OBJECTS=0 ;;
        esac
        [ "$name" = census-O0 ] && [ "$mode" != full ] && [ "$mode" != sampled ] && continue
        case $mode in shadow | fullshadow) [ "$name" != census-O2 ] && continue ;; esac   # the others are shadow anyway
        run_shim "$OUT/c.db" "$@" -- "$prog"
        rc=$?
        "$HW" ls "$OUT/c.db" --json > "$OUT/ls.json" 2>"$OUT/ls.err"
        blocks=$(sqlite3 "$OUT/c.db" "SELECT settings FROM process" | sed -n 's/^BLOCKS=//p')
        runs=$((runs + 1))
        # full mode records every block, in the arena walk too (its record in its header)
        if [ "$blocks" = arena ] && [ "$mode" != full ]; then
            is "$rc:$(delta live_objects):$(within "$(truth bytes)" "$(truth usable)" "$(delta live_bytes)")" \
               "0:$(truth objects):ok" "$name $mode: live blocks exactly, bytes between requested and usable (arena walk)"
        else
            is "$rc:$(delta live_objects):$(delta live_bytes)" "0:$(truth objects):$(truth bytes)" \
               "$name $mode: live blocks and requested bytes, exactly ($blocks)"
        fi
        want=shadow   # counters mode uses the shadow map; jemalloc and tcmalloc too
        case "$mode:$name" in full:census-O*|sampled:census-O*|inplace:census-O*) want=arena ;; esac
        is "$blocks" "$want" "$name $mode: the live blocks come from the $want mode"
        # The threads' cross-thread frees: their blocks are all counted; glibc adds at most
        # one block per thread of its own (the thread's DTV), and it varies with the version.
        got=$(( $(field threads live_objects) - $(field census live_objects) ))
        want=$(sed -n 's/^threads objects=\([0-9]*\).*/\1/p' "$OUT/stdout")
        ok_cmd "$name $mode: 4 threads' blocks after cross-thread frees ($got counted, $want theirs)" \
            test "$got" -ge "$want" -a "$got" -le $((want + 4))
        # Without a heap walk the live totals are the per-thread counters (threads.h) alone.
        [ "$mode" = counters ] && continue
        if [ "$blocks" = arena ] && [ "$mode" != full ]; then
            is "$(delta leaked_objects):$(within "$(truth direct_bytes)" "$(truth direct_usable)" "$(delta leaked_bytes)"):$(delta indirect_objects):$(within "$(truth indirect_bytes)" "$(truth indirect_usable)" "$(delta indirect_bytes)")" \
               "$(truth direct):ok:$(truth indirect):ok" "$name $mode: the walk's direct and indirect leaks, with their sizes"
        else
            is "$(delta leaked_objects):$(delta leaked_bytes):$(delta indirect_objects):$(delta indirect_bytes)" \
               "$(truth direct):$(truth direct_bytes):$(truth indirect):$(truth indirect_bytes)" \
               "$name $mode: the walk's direct and indirect leaks, with their sizes"
        fi
        walks=$((walks + 1))
    done
done
# A block freed by glibc inside the shim's own dlsym (guarded): forgotten, never a phantom.
# The joined thread's DTV, allocated by the dynamic linker, is suppressed by default: in
# sampled mode too, where it is not sampled (the linker's blocks always get their stack).
for mode in full sampled; do
    rate=1
    [ $mode = sampled ] && rate=524288
    run_shim "$OUT/g.db" HEAPWATCH_SAMPLE_RATE=$rate HEAPWATCH_AT_EXIT=0 -- "$BIN/guardfree-O2"
    "$HW" leaks "$OUT/g.db" --json > "$OUT/g.json" 2>&1
    is "$(jq -c '[.total.leaked_objects, .total.indirect_objects, .total.live_objects - .total.suppressed_objects]' "$OUT/g.json")" \
       "[0,0,0]" "$mode: no phantom of dlerror's message (freed inside the shim's dlsym); the DTV suppressed"
done
"$HW" top "$OUT/g.db" --json --sample-index alloc_objects > "$OUT/g-top.json" 2>&1
is "$(jq '[.rows[].flat.alloc_objects] | add // 0' "$OUT/g-top.json")" 0 \
   "sampled: the linker's blocks have a stack but are not counted as samples"

# Growing a big buffer by realloc stays glibc's growth in place (or mremap), not a copy of the
# whole buffer each time, in sampled mode too; a minute is a generous bound for what takes a
# fraction of a second (it took minutes when the shim copied).
# Full mode too, where every block carries its record in a header that moves with it.
for rate in 524288 1; do
    rm -f "$OUT/regrow.db"
    bounded 60 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$OUT/regrow.db" HEAPWATCH_SAMPLE_RATE=$rate "$BIN/regrow-O2" >"$OUT/regrow.out" 2>&1
    is "$?:$(cat "$OUT/regrow.out"):$("$HW" ls "$OUT/regrow.db" --json | jq '.snapshots[-1].live_objects')" "0:regrow 81920000:1" \
        "rate $rate: a buffer grown a page at a time to 80 MB, and 64 grown and shrunk: done, and nothing left but stdout's buffer"
done

# 16 runs (census-O0: full and sampled only; shadow and fullshadow: census-O2 only), 13 of them
# with a heap walk
for i in $(seq $((3 * (16 - runs) + (13 - walks)))); do skip "jemalloc or tcmalloc not installed (make deps)"; done
done_testing
