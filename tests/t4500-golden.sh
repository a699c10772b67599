#!/bin/sh
# Golden output of the text reports: ls, top, diff, growth and leaks of the demo service (the
# program of `make demo`) run in full mode, each compared with its file expect/t4500-NAME.txt;
# a difference is printed as `diff -u EXPECTED GOT`. `UPDATE=1 prove t4500-golden.sh` rewrites
# the expected files instead: read `git diff tests/expect` before committing them.
#
# Deterministic by construction: demo_service has one thread and takes its own snapshots
# (HEAPWATCH_SNAPSHOT() after each of its 8 rounds, then the exit snapshot), no signal, no
# timer, and full mode (HEAPWATCH_SAMPLE_RATE=1) records every allocation, so no sampling.
# Seven runs walking the heap in a fork child and one walking it in place gave the same masked
# output, and the test passed five times in a row while other tests loaded the machine.
# Masked, as it differs from run to run or from checkout to checkout and is no report's logic:
#   the checkout's path (source files, binary, command line)                   -> TOP
#   ls: the pid                                                                 -> PID
#   leaks: program counters (ASLR) and module offsets (the linker's layout)    -> 0xPC, 0xOFFSET
#   ls: seconds since start, pause and write ms; growth: the time spanned      -> T.TT, P.P, W.W, D.D
#   trailing blanks, for `git diff --check` (ls prints none since it ends a row without a
#   label after its last column)
# The demo's stdout is a pipe: its buffer, a block in the exit snapshot, is st_blksize bytes
# (at most 8 KiB), which for a file depends on the file system, and is 4 KiB for a pipe.
# The expected files assume what `make deps` installs on Debian 12: its gcc (lines and inlining
# of the -O2 demo) and glibc with debug symbols (libc6-dbg) for the
# files and lines of libc frames. Only report output is compared, no --help or error text.
. ./lib.sh
plan 29

EXPECT="$PWD/expect"

ere_quote() { printf '%s\n' "$1" | sed 's/[][\.*^$|+?(){}]/\\&/g'; }
top_re=$(ere_quote "$TOP")
top_phys_re=$(ere_quote "$(cd "$TOP" && pwd -P)")

# mask: stdin to stdout, what varies replaced (above); columns keep their widths.
mask() {
    sed -E -e "s|$top_phys_re|TOP|g; s|$top_re|TOP|g" \
        -e 's/^(demo\.db: pid )[0-9]+,/\1PID,/' \
        -e 's/^( *[0-9]+) +[0-9]+\.[0-9]{2}s /\1     T.TTs /' \
        -e 's/ +[0-9]+\.[0-9] +[0-9]+\.[0-9]( |$)/      P.P      W.W\1/' \
        -e 's/, [0-9]+\.[0-9] s\)$/, D.D s)/' \
        -e 's/^(    #[0-9]+ )0x[0-9a-f]+ in /\10xPC in /' \
        -e 's/\+0x[0-9a-f]+\)$/+0xOFFSET)/' \
        -e 's/ +$//'
}

# run_demo MODE: demo_service 8 under the shim, full mode, heap walks MODE (fork or inplace),
# writing $OUT/MODE/demo.db.
run_demo() {
    mkdir -p "$OUT/$1"
    { (cd "$OUT/$1" && exec env LD_PRELOAD="$SHIM" HEAPWATCH_OUT=demo.db HEAPWATCH_SAMPLE_RATE=1 \
        HEAPWATCH_SNAPSHOT="$1" "$BIN/demo_service-O2" 8 2>stderr); echo $? >"$OUT/$1/status"; } |
        cat >"$OUT/$1/stdout"
    is "$(cat "$OUT/$1/status"):$(cat "$OUT/$1/stdout" "$OUT/$1/stderr")" \
       "0:served 8000 requests, checksum 182890" "$1: the demo runs as without the shim"
}

# report MODE NAME ARGS...: heapwatch ARGS in $OUT/MODE, masked into $OUT/MODE/NAME.txt; a
# non-zero status or anything on stderr is appended, so that the comparison shows it.
report() {
    _dir="$OUT/$1" _name=$2; shift 2
    (cd "$_dir" && "$HW" "$@") >"$_dir/$_name.raw" 2>"$_dir/$_name.err"
    _rc=$?
    {
        mask <"$_dir/$_name.raw"
        [ $_rc -eq 0 ] || echo "## heapwatch $*: exit status $_rc"
        [ ! -s "$_dir/$_name.err" ] || { echo "## stderr:"; mask <"$_dir/$_name.err"; }
    } >"$_dir/$_name.txt"
}

# golden NAME: $OUT/fork/NAME.txt against expect/t4500-NAME.txt (with UPDATE=1, rewrite it)
golden() {
    if [ "${UPDATE:-}" = 1 ]; then
        mkdir -p "$EXPECT" && cp "$OUT/fork/$1.txt" "$EXPECT/t4500-$1.txt"
        ok $? "$1: expected output rewritten (UPDATE=1)"
    else
        is_file "$OUT/fork/$1.txt" "$EXPECT/t4500-$1.txt" "$1: output as expected" ||
            fail_diag "  (a change meant to be? UPDATE=1 prove t4500-golden.sh rewrites expect/t4500-*.txt)"
    fi
}

# The reports: NAME and heapwatch's arguments, one a line. The snapshots: 1-8 after each round
# (labelled "round N"), 9 at exit; the demo leaks a session every 10 requests, its index only
# grows, its cache fills up by round 2, and its batch is 300, 600, 0, 300... blocks.
REPORTS='top               top demo.db
ls                ls demo.db
top-cum           top demo.db --cum --nodecount 12
top-alloc-function top demo.db --sample-index alloc_space --by function
top-objects-stack top demo.db:3 --sample-index inuse_objects --by stack
top-leaked        top demo.db --sample-index leaked_space
diff              diff demo.db:1 demo.db:8
diff-function     diff demo.db:first demo.db:-1 --by function --sample-index alloc_objects
diff-stack        diff demo.db:2 demo.db:3 --by stack --sample-index inuse_objects
growth            growth demo.db
growth-all        growth demo.db --all --by function
leaks             leaks demo.db
leaks-suppressed  leaks demo.db:2 --suppressions sup.txt'

# all_reports MODE
all_reports() {
    printf 'leak:session_open\n' >"$OUT/$1/sup.txt"
    echo "$REPORTS" | while read -r name args; do
        report "$1" "$name" $args
    done
}

# --- a heap walk in a fork child (the default): each report against its expected file ---------
run_demo fork
# top comes first: it symbolizes with an empty cache (the analyzer caches frames in the database)
all_reports fork
for name in $(echo "$REPORTS" | cut -d' ' -f1); do
    golden "$name"
done
report fork top-again top demo.db
is_file "$OUT/fork/top-again.txt" "$OUT/fork/top.txt" "top again, symbolized from the cache: the same report"

# --- a heap walk in place: the same reports ----------------------------------------------------
run_demo inplace
all_reports inplace
for name in $(echo "$REPORTS" | cut -d' ' -f1); do
    is_file "$OUT/inplace/$name.txt" "$OUT/fork/$name.txt" "inplace walk: $name as with the fork walk"
done

done_testing
