#!/bin/sh
# Leak verdicts on heaps as ordinary programs leave them (progs/verdicts.c): stale copies of
# pointers in dead stack frames, glibc's allocator state pointing into blocks, pthread keys
# beyond the first 32, results of exited but unjoined threads. Each case's leaks are known
# exactly; heapwatch must report them at -O0 and -O2, in full and sampled mode, and never
# report a leak where none is.
. ./lib.sh
plan 67

# leak_rows JSON FUNCTION: "direct N B" / "indirect N B" of rows with FUNCTION in their stack
# ("none" when there is no such row, "no report" when the JSON is missing). Sampled mode has
# no stacks for most blocks: there the rows without frames count too, so each case's program
# leaks nothing else.
leak_rows() {
    [ -s "$1" ] || { echo "no report"; return; }
    r=$(jq -r --arg f "$2" '[.rows[] | select(any(.frames[]; .function == $f) or (.frames | length) == 0)] |
        group_by(.kind)[] | "\(.[0].kind) \(map(.objects) | add) \(map(.bytes) | add)"' "$1" | sort | tr '\n' ' ' | sed 's/ $//')
    echo "${r:-none}"
}

# run_case OPT RATE CASE [ARG]: run verdicts-OPT CASE under the shim; its leaks JSON of the
# snapshot labelled CASE (or the exit snapshot) in $OUT/CASE-OPT-RATE.json.
run_case() {
    opt=$1 rate=$2 c=$3
    shift 3
    tag="$c${1:+-$1}-$opt-$rate"
    db="$OUT/$tag.db"
    run_shim "$db" HEAPWATCH_SAMPLE_RATE="$rate" HEAPWATCH_SEED=1 -- "$BIN/verdicts-$opt" "$c" "$@"
    echo $? >"$OUT/$tag.rc"
    cp "$OUT/stdout" "$OUT/$tag.stdout"
    # the snapshot labelled CASE, or the exit one for the cases that have no label
    case $c in
        exit | return | chains) id=latest ;;
        *) id=$("$HW" ls "$db" --json | jq -r --arg l "$c" '[.snapshots[] | select(.label == $l) | .id] | first // "none"') ;;
    esac
    # a failed report leaves no JSON, and every check on it fails
    "$HW" leaks "$db:$id" --json >"$OUT/$tag.json" 2>"$OUT/$tag.err" || : >"$OUT/$tag.json"
    echo "$OUT/$tag.json"
}

# sz RATE N: the bytes of a leaked block of N requested bytes, as the walk reports it: N in
# full mode; in sampled mode glibc's usable size (the arena walk's, for a block not sampled:
# N rounded up to 16 past its 8-byte header, at least 24)
sz() {
    if [ "$1" = 1 ]; then echo "$2"; return; fi
    u=$(( (($2 + 23) / 16) * 16 - 8 ))
    echo $(( u < 24 ? 24 : u ))
}

for opt in O0 O2; do
    for rate in 1 524288; do
        # glibc's top chunk header inside the block (16k+1..16k+8 bytes), and controls
        for size in 100 2664 24; do
            j=$(run_case $opt $rate top $size)
            is "$(leak_rows "$j" lose_top)" "direct 1 $(sz $rate $size)" "-$opt rate $rate: a lost malloc($size) whose end holds glibc's top chunk header is a leak"
        done
        j=$(run_case $opt $rate top 1337)
        is "$(leak_rows "$j" lose_top)" "direct 1 $(sz $rate 1337)" "-$opt rate $rate: a lost malloc(1337) is a leak (control)"
        j=$(run_case $opt $rate bin)
        is "$(leak_rows "$j" lose_before_bin)" "direct 1 $(sz $rate 100)" "-$opt rate $rate: a lost block followed by a free chunk in the unsorted bin is a leak"
        j=$(run_case $opt $rate ignored)
        is "$(head -n 1 "$OUT/ignored-$opt-$rate.stdout") | $(jq -r '.total | "\(.leaked_objects) \(.indirect_objects)"' "$j") | $(leak_rows "$j" lose_top)" \
           "ignore list=0 stack=ok hole=ok | 1 0 | direct 1 $(sz $rate 80)" \
           "-$opt rate $rate: a list whose head is heapwatch_ignore()d is no leak, a block beside it is; a stack address and one after an unmapped page are refused or ignored, without a fault"
        j=$(run_case $opt $rate remainder)
        is "$(head -n 1 "$OUT/remainder-$opt-$rate.stdout") | $(leak_rows "$j" lose_over_remainder)" "remainder inside | direct 1 $(sz $rate 1500)" \
           "-$opt rate $rate: a lost block that main_arena.last_remainder points into (stale since a large request) is a leak"
        j=$(run_case $opt $rate link)
        is "$(leak_rows "$j" lose_before_link)" "direct 1 $(sz $rate 100)" "-$opt rate $rate: a lost block whose next chunk's header address is in a live block (a stale bin link) is a leak"
        # stale stack data
        j=$(run_case $opt $rate api)
        is "$(leak_rows "$j" lose_scribbled)" "direct 1 $(sz $rate 352)" "-$opt rate $rate: a leak whose pointer is left all over a dead frame below heapwatch_snapshot() is found"
        for c in exit return; do
            j=$(run_case $opt $rate $c)
            is "$(leak_rows "$j" lose_in_frame)" "direct 3 $((3 * $(sz $rate 336)))" "-$opt rate $rate: blocks held only by a function that returned before exit are leaks ($c)"
        done
    done
done

# pthread keys: no leak, and the key numbers are the program's own.
native=$("$BIN/verdicts-O2" keys)
for rate in 1 524288; do
    j=$(run_case O2 $rate keys)
    is "$(leak_rows "$j" keep_in_keys)" none "rate $rate: values of pthread keys 5 and 35 (glibc's second-level array) are reachable"
    is "$(cat "$OUT/keys-O2-$rate.stdout")" "$native" "rate $rate: the program's key numbers are unchanged"
done

# the result of an exited, unjoined thread is reachable; a detached thread's is lost
for opt in O0 O2; do
    j=$(run_case $opt 1 exited)
    is "$(leak_rows "$j" thread_result) $(leak_rows "$j" detached_result)" "none direct 1 416" \
       "-$opt: an exited joinable thread's result is reachable until joined; a detached thread's result is a leak"
done
# memcheck's nine pointer chains: its own counts, and heapwatch's
# (without valgrind, what memcheck says of its own leak-cases.c: 3, 2 and 6)
vg="direct 3 indirect 2 possible 6"
if command -v valgrind >/dev/null 2>&1; then
    valgrind --leak-check=full "$BIN/verdicts-O2" chains >/dev/null 2>"$OUT/chains.vg"
    vg=$(awk '/definitely lost:/ {d=$7} /indirectly lost:/ {i=$7} /possibly lost:/ {p=$7} END {print "direct " d " indirect " i " possible " p}' "$OUT/chains.vg")
    is "$vg" "direct 3 indirect 2 possible 6" "memcheck on the nine chains: 3 definitely, 2 indirectly, 6 possibly lost"
else
    skip "valgrind not installed"
fi
for opt in O0 O2; do
    for rate in 1 524288; do
        j=$(run_case $opt $rate chains)
        is "$(jq -r '.total | "direct \(.leaked_objects) indirect \(.indirect_objects) possible \(.possible_objects)"' "$j")" "$vg" \
           "-$opt rate $rate: the nine chains classified as memcheck does (possibly lost spreads along start pointers)"
    done
done

# frames in a library unloaded before the snapshot resolve (its module is recorded at dlclose)
# (full mode: in sampled mode most blocks have no stack to resolve anyway)
for opt in O0 O2; do
    j=$(run_case $opt 1 dlclosed)
    is "$(leak_rows "$j" dso_keep)" "direct 7 1456" "-$opt: leaks allocated by a dlclose'd library are charged to its function"
done

# arguments of threads that have not run yet
for rate in 1 524288; do
    run_shim "$OUT/starting-$rate.db" HEAPWATCH_SAMPLE_RATE=$rate -- "$BIN/verdicts-O2" starting
    is "$("$HW" ls "$OUT/starting-$rate.db" --json | jq -r '[.snapshots[] | select(.label == "starting") | .leaked_objects + .indirect_objects] | "\(length) \(add)"')" \
       "20 0" "rate $rate: the argument of a thread that has not run yet is never a leak (20 snapshots)"
done

# a coroutine on a heap-block stack; a guard page inside a block, in both walk modes
for opt in O0 O2; do
    j=$(run_case $opt 1 coroutine)
    is "$(leak_rows "$j" lose_pair)" "direct 1 48 indirect 1 48" "-$opt: on a coroutine's heap stack, a lost pair above that block is a direct and an indirect leak"
    for mode in fork inplace; do
        export HEAPWATCH_SNAPSHOT=$mode
        j=$(run_case $opt 1 guard)
        unset HEAPWATCH_SNAPSHOT
        is "$(cat "$OUT/guard-$opt-1.rc") $(cat "$OUT/guard-$opt-1.stdout" | head -n 1) $(leak_rows "$j" lose_top)" \
           "0 snapshot 0 direct 1 208" "-$opt $mode: a block with a PROT_NONE page: the program lives, the snapshot is stored and finds the leak"
    done
done
for opt in O0 O2; do
    bad=0
    for f in "$OUT"/*-$opt-*.rc; do [ "$(cat "$f")" -eq 0 ] || bad=$((bad + 1)); done
    is "$bad" 0 "-$opt: every run exited 0"
done
done_testing
