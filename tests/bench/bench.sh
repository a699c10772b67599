#!/usr/bin/env bash
# bench.sh: overhead of libheapwatch.so (recording, sampled and full) and of heaptrack, against
# native runs, and a table of the project's speed and memory targets.
#
#   tests/bench/bench.sh LIBHEAPWATCH_SO BUILD_DIR
#
# Compiles the workloads and the measure runner into BUILD_DIR/bench/ (they and membw share
# bench.h, beside them: the monotonic clock, the xorshift generator, the scale argument), then
# runs every workload in every configuration BENCH_REPS times (interleaved) and prints a table
# of medians:
#   native     ./prog
#   sampled    LD_PRELOAD=SO HEAPWATCH_OUT=BUILD_DIR/bench-%p.db ./prog   (default sampling)
#   record     sampled plus HEAPWATCH_AT_EXIT=0 and BENCH_NO_SNAPSHOT=1: recording only, no
#              snapshot at all (w_bigheap skips its own "bench" snapshot)
#   full       sampled plus HEAPWATCH_SAMPLE_RATE=1 and BENCH_NO_SNAPSHOT=1: every allocation
#              recorded and the exit snapshot, as a program that does not call heapwatch_snapshot
#              runs (heaptrack runs the same binary, which then takes no snapshot either)
#   heaptrack  heaptrack -o BUILD_DIR/ht.<name> ./prog
#   thread     LD_PRELOAD=idle_thread.so ./prog: native with one idle thread (idle_thread.c), the
#              cost of glibc's locking once a process has two threads, as the event log's writer
#              makes it
# A configuration that cannot run (no .so, preload refused, crash, non-zero exit, timeout)
# shows FAILED; the others go on. Databases and heaptrack files are deleted after every run.
# Nothing about timings is asserted: the script exits 0 once it has run.
#
# Heap walk (when w_bigheap is among the workloads): from every sampled, fullwalk and inplace
# run of w_bigheap, the snapshot labelled "bench" is read from its database before the database
# is deleted (sqlite3 CLI): mode, pause, walk, write, scanned bytes, live objects, reachability
# counts and database size. Each rep also runs
#   fullwalk   the full configuration with w_bigheap's bench snapshot (shown as full)
#   inplace    the full configuration with HEAPWATCH_SNAPSHOT=inplace
#   lsan       w_bigheap built with clang -O2 -fsanitize=leak -DLSAN_BUILD, which times
#              __lsan_do_recoverable_leak_check() where the others take the snapshot
#              (skipped with a message when clang or its LeakSanitizer runtime is missing)
#   membw      this machine's single-thread memory read speed (membw.c)
# and the report adds a section of medians against the targets: pause <= 50 ms per snapshot,
# walk+write faster than LeakSanitizer's leak check, scan speed against read bandwidth.
#
# The report ends with one table of the targets, each with its measured median, its limit,
# measured/limit and "met" or "MISSED" (a figure that could not be measured, e.g. heaptrack not
# installed or a configuration that failed, shows n/a and why):
#   record wall / native wall <= 1.10 on every workload (churn = w_churn, mt_churn = w_churn2,
#     tree = w_deep, bigheap = w_bigheap, cxx_mix = w_cxx)
#   shim memory per live block on w_bigheap, (maxrss record - maxrss native) / objects, <= 16 B
#   snapshot cost on w_bigheap, wall sampled - wall record (its "bench" heap walk and the exit
#     snapshot), < LeakSanitizer's leak check of the same heap
#   full's extra ns per allocation <= 0.40 x heaptrack's, and full's cpu <= heaptrack's / 3,
#     on every workload
# A ratio or difference of two configurations is the median of its per-rep values (paired).
#   pause <= 50 ms and walk+write < LeakSanitizer's check, for the bench snapshot of the
#     sampled, full and inplace runs
#   heapwatch owners, types and path on the full run's bench snapshot (3M blocks): < 3 s cold, and their peak
#     memory (maxrss) < 200 bytes per block
# The targets are set for the default scale: with BENCH_SCALE the table is indicative only.
#
# Environment:
#   BENCH_REPS=3        runs per configuration (the median is shown)
#   BENCH_WORKLOADS     subset, e.g. "w_churn w_cxx" (default: all five)
#   BENCH_CONFIGS       subset of "native sampled record full heaptrack record_ev full_ev thread" (native
#                       is always run); record_ev and full_ev are record and full with the
#                       event log on (HEAPWATCH_EVENTS=1)
#   BENCH_SCALE         scale argument passed to every workload (default: none, i.e. 1.0)
#   BENCH_TIMEOUT=180   seconds after which one run is killed and counted as FAILED
#   BENCH_CFLAGS        extra flags for compiling the workloads
#   BENCH_HEAPWALK=1    0 skips the heap walk section's extra runs (inplace, lsan, membw)
# Other HEAPWATCH_* variables in the environment (but HEAPWATCH_AT_EXIT, which the script sets
# for record and leaves at its default for the others) are passed through to the heapwatch runs.
# make runs this with sh; the script needs bash (arrays, pipefail).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 LIBHEAPWATCH_SO BUILD_DIR" >&2
    exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
so=$(realpath -m -- "$1")
mkdir -p -- "$2"
build=$(cd -- "$2" && pwd)
reps=${BENCH_REPS:-3}
workloads=${BENCH_WORKLOADS:-"w_churn w_churn2 w_deep w_bigheap w_cxx"}
configs=${BENCH_CONFIGS:-"native sampled record full heaptrack record_ev full_ev thread"}
scale=${BENCH_SCALE:-}
run_timeout=${BENCH_TIMEOUT:-180}
extra_cflags=${BENCH_CFLAGS:-}
heapwalk=${BENCH_HEAPWALK:-1}
case " $workloads " in *" w_bigheap "*) ;; *) heapwalk=0 ;; esac

case $reps in '' | *[!0-9]* | 0) echo "BENCH_REPS must be a positive integer" >&2; exit 2 ;; esac
case " $configs " in *" native "*) ;; *) configs="native $configs" ;; esac

# Variables this script sets itself must not leak in from the caller.
unset LD_PRELOAD HEAPWATCH_OUT HEAPWATCH_SAMPLE_RATE HEAPWATCH_AT_EXIT HEAPWATCH_EVENTS
# The heap walk section reads the snapshots the shim writes; HEAPWATCH_SNAPSHOT (fork or
# inplace) may still come from the caller for the sampled and full runs.

bin=$build/bench
rundir=$build/bench/run
logdir=$build/bench/logs
rawdir=$build/bench/raw
mkdir -p "$bin" "$rundir" "$logdir" "$rawdir"
rm -f "$rawdir"/* "$logdir"/*

say() { echo "bench: $*" >&2; }

# ---- build ------------------------------------------------------------------------------------
cflags=(-std=gnu11 -O2 -g -pthread -Wall -Wextra -Werror)
cxxflags=(-std=gnu++17 -O2 -g -pthread -Wall -Wextra -Werror)
say "compiling into $bin"
gcc "${cflags[@]}" -o "$bin/measure" "$here/measure.c"
gcc "${cflags[@]}" -shared -fPIC -o "$bin/idle_thread.so" "$here/idle_thread.c"
for w in $workloads; do
    case $w in
    w_cxx)
        # shellcheck disable=SC2086
        g++ "${cxxflags[@]}" $extra_cflags -o "$bin/w_cxx" "$here/w_cxx.cpp"
        # shellcheck disable=SC2086
        g++ "${cxxflags[@]}" $extra_cflags -DBENCH_COUNT_ALLOCS -o "$bin/w_cxx_count" "$here/w_cxx.cpp"
        ;;
    *)
        # shellcheck disable=SC2086
        gcc "${cflags[@]}" $extra_cflags -o "$bin/$w" "$here/$w.c"
        ;;
    esac
done

# The heap walk section's programs.
lsan_skip=""
if [ "$heapwalk" != 0 ]; then
    gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -o "$bin/membw" "$here/membw.c"
    if ! command -v clang >/dev/null 2>&1; then
        lsan_skip="clang not installed"
    elif ! clang -std=gnu11 -O2 -g -pthread -Wall -Wextra -Werror -fsanitize=leak -DLSAN_BUILD \
        -o "$bin/w_bigheap_lsan" "$here/w_bigheap.c" 2>"$logdir/w_bigheap_lsan.build.err"; then
        lsan_skip="clang -fsanitize=leak build failed (see $logdir/w_bigheap_lsan.build.err)"
    fi
    if [ -n "$lsan_skip" ]; then say "LeakSanitizer comparison skipped: $lsan_skip"; fi
    if ! command -v sqlite3 >/dev/null 2>&1; then
        say "sqlite3 CLI not installed: the snapshots' figures cannot be read"
    fi
fi

have_heaptrack=0
if command -v heaptrack >/dev/null 2>&1; then have_heaptrack=1; fi

clean_outputs() { # $1: workload
    rm -f "$build"/bench-*.db* "$build"/ht."$1".* "$build"/ht."$1"
    find "$rundir" -mindepth 1 -delete 2>/dev/null || true
}

# why_skip CONFIG: prints a reason if CONFIG cannot run at all on this machine.
why_skip() {
    case $1 in
    sampled | record | full | fullwalk | inplace | record_ev | full_ev)
        if [ ! -f "$so" ]; then echo "no such file: $so"; fi ;;
    lsan)
        if [ -n "$lsan_skip" ]; then echo "$lsan_skip"; fi ;;
    heaptrack)
        if [ "$have_heaptrack" = 0 ]; then echo "heaptrack not installed"; fi ;;
    esac
}

# run_one WORKLOAD CONFIG REP: one measured run; appends to the raw file, or marks it failed.
run_one() {
    local w=$1 cfg=$2 rep=$3
    local raw=$rawdir/$w.$cfg err=$logdir/$w.$cfg.$rep.err
    local args=()
    [ -n "$scale" ] && args=("$scale")
    local cmd=()
    case $cfg in
    native) cmd=(env "$bin/$w") ;;
    thread) cmd=(env "LD_PRELOAD=$bin/idle_thread.so" "$bin/$w") ;;
    sampled) cmd=(env "LD_PRELOAD=$so" "HEAPWATCH_OUT=$build/bench-%p.db" "$bin/$w") ;;
    record) cmd=(env "LD_PRELOAD=$so" "HEAPWATCH_OUT=$build/bench-%p.db" HEAPWATCH_AT_EXIT=0 BENCH_NO_SNAPSHOT=1
        "$bin/$w") ;;
    full) cmd=(env "LD_PRELOAD=$so" "HEAPWATCH_OUT=$build/bench-%p.db" HEAPWATCH_SAMPLE_RATE=1 BENCH_NO_SNAPSHOT=1
        "$bin/$w") ;;
    fullwalk) cmd=(env "LD_PRELOAD=$so" "HEAPWATCH_OUT=$build/bench-%p.db" HEAPWATCH_SAMPLE_RATE=1 "$bin/$w") ;;
    record_ev) cmd=(env "LD_PRELOAD=$so" "HEAPWATCH_OUT=$build/bench-%p.db" HEAPWATCH_AT_EXIT=0 BENCH_NO_SNAPSHOT=1
        HEAPWATCH_EVENTS=1 "$bin/$w") ;;
    full_ev) cmd=(env "LD_PRELOAD=$so" "HEAPWATCH_OUT=$build/bench-%p.db" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_EVENTS=1
        BENCH_NO_SNAPSHOT=1 "$bin/$w") ;;
    inplace) cmd=(env "LD_PRELOAD=$so" "HEAPWATCH_OUT=$build/bench-%p.db" HEAPWATCH_SAMPLE_RATE=1
        HEAPWATCH_SNAPSHOT=inplace "$bin/$w") ;;
    lsan) cmd=(env "$bin/${w}_lsan") ;;
    heaptrack)
        # Through sh, to learn the pid of heaptrack's script: a killed script leaves its named
        # pipe /tmp/heaptrack_fifo<pid> behind.
        # shellcheck disable=SC2016
        cmd=(sh -c 'echo $$ >"$0" && exec "$@"' "$rundir/.heaptrack.pid"
            heaptrack -o "$build/ht.$w" "$bin/$w") ;;
    esac
    clean_outputs "$w"
    local tmp=$rawdir/.last
    rm -f "$tmp"
    (cd "$rundir" && "$bin/measure" "$tmp" -- timeout -k 10 "$run_timeout" "${cmd[@]}" ${args[@]+"${args[@]}"}) \
        </dev/null 2>"$err" || true
    local status=x reason=""
    if [ -s "$tmp" ]; then
        status=$(awk '{print $4}' "$tmp")
    else
        reason="measure failed"
    fi
    if [ -z "$reason" ]; then
        case $status in
        0) ;;
        124) reason="timeout after ${run_timeout}s" ;;
        137) reason="killed by SIGKILL (timeout -k, or out of memory)" ;;
        12[89] | 1[3-9][0-9] | 2[0-9][0-9]) reason="killed by signal $((status - 128))" ;;
        *) reason="exit status $status" ;;
        esac
    fi
    case $cfg in
    sampled | record | full | fullwalk | inplace | record_ev | full_ev)
        if [ -z "$reason" ] && [ "$cfg" = full_ev ] && command -v sqlite3 >/dev/null 2>&1; then
            # the event log's size on disk: bytes and events of its chunks
            local evdb
            evdb=$(find "$build" -maxdepth 1 -name 'bench-*.db' | head -n 1)
            [ -n "$evdb" ] && sqlite3 "$evdb" "SELECT coalesce(sum(length(data)), 0), coalesce(sum(events), 0) FROM event_chunk" \
                2>/dev/null | tr '|' ' ' >>"$rawdir/evlog.$w"
        fi
        if [ -z "$reason" ] && grep -q "cannot be preloaded" "$err"; then
            reason="preload refused by ld.so"
        elif [ -z "$reason" ]; then
            local dbs
            dbs=$( (find "$build" -maxdepth 1 -name 'bench-*.db'; find "$rundir" -name '*.db') | wc -l)
            [ "$dbs" -gt 0 ] || echo "nodb" >"$rawdir/$w.$cfg.nodb"
            case $w/$cfg in
            w_bigheap/sampled | w_bigheap/inplace) [ "$heapwalk" = 0 ] || walk_extract "$cfg" ;;
            w_bigheap/fullwalk) [ "$heapwalk" = 0 ] || walk_extract full ;;
            esac
        fi
        ;;
    lsan)
        if [ -z "$reason" ]; then
            local ms
            ms=$(sed -n 's/^lsan_check_ms=\([0-9.][0-9.]*\).*/\1/p' "$err" | tail -n 1)
            if [ -n "$ms" ]; then
                echo "$ms" >>"$rawdir/walk.lsan"
            else
                reason="no lsan_check_ms line on stderr"
            fi
        fi
        ;;
    esac
    if [ "$cfg" = heaptrack ] && [ -s "$rundir/.heaptrack.pid" ]; then
        local fifo
        fifo=/tmp/heaptrack_fifo$(cat "$rundir/.heaptrack.pid")
        if [ -p "$fifo" ]; then rm -f "$fifo" "$fifo.lock"; fi
    fi
    clean_outputs "$w"
    if [ -n "$reason" ]; then
        echo "$reason" >"$rawdir/$w.$cfg.failed"
        say "  $w/$cfg rep $rep FAILED: $reason (stderr: $err)"
        tail -n 3 "$err" | sed 's/^/bench:     | /' >&2 || true
        return
    fi
    echo "$(cat "$tmp") $rep" >>"$raw"   # the rep last: paired() matches runs of one rep
    say "  $w/$cfg rep $rep: $(cat "$tmp")"
}

# walk_extract CONFIG: after a w_bigheap run under the shim, appends the figures of its snapshot
# labelled "bench" to $rawdir/walk.CONFIG, one line:
#   pause_ns walk_ns write_ns scanned_bytes live_objects live_bytes reachable_objects
#   indirect_objects leaked_objects blob_bytes file_bytes mode
# blob_bytes: length of that snapshot's object_chunk and edge_chunk data; file_bytes: the whole
# database file, page_count * page_size after a WAL checkpoint. Unknown values are -1.
walk_extract() {
    local cfg=$1 db row
    command -v sqlite3 >/dev/null 2>&1 || return 0
    db=$(find "$build" -maxdepth 1 -name 'bench-*.db' | head -n 1)
    if [ -z "$db" ]; then
        say "  w_bigheap/$cfg: no database to read the snapshot from"
        return 0
    fi
    sqlite3 -batch "$db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null 2>&1 || true
    row=$(sqlite3 -batch -noheader -separator ' ' "$db" "
        SELECT s.pause_ns, s.walk_ns, s.write_ns, ifnull(s.scanned_bytes, -1), s.live_objects,
               s.live_bytes, ifnull(s.reachable_objects, -1), ifnull(s.indirect_objects, -1),
               ifnull(s.leaked_objects, -1),
               (SELECT ifnull(sum(length(data)), 0) FROM object_chunk WHERE snapshot_id = s.id) +
               (SELECT ifnull(sum(length(data)), 0) FROM edge_chunk WHERE snapshot_id = s.id),
               (SELECT page_count FROM pragma_page_count()) *
               (SELECT page_size FROM pragma_page_size()),
               s.mode
        FROM snapshot s WHERE s.label = 'bench' ORDER BY s.id DESC LIMIT 1;" 2>&1) || row=""
    case $row in
    [0-9]*) echo "$row" >>"$rawdir/walk.$cfg" ;;
    *) say "  w_bigheap/$cfg: no snapshot labelled bench in $db${row:+: $row}" ;;
    esac
    owners_extract "$cfg" "$db"
}

# owners_extract CONFIG DB: time `heapwatch owners` (dominator tree included), `types` and
# `path` (of the largest block of w_bigheap's struct obj) on the bench snapshot, cold (a fresh
# process, no cache), and their peak memory; appends
#   seconds maxrss_kb live_objects
# to owners.CONFIG, types.CONFIG and path.CONFIG (full mode only: every block has its stack
# there).
owners_extract() {
    local cfg=$1 db=$2 hw out id objs report
    [ "$cfg" = full ] || return 0
    hw=$(dirname "$so")/heapwatch
    [ -x "$hw" ] && [ -x /usr/bin/time ] || return 0
    id=$(sqlite3 -batch -noheader "$db" "SELECT id FROM snapshot WHERE label = 'bench' ORDER BY id DESC LIMIT 1;") || return 0
    objs=$(sqlite3 -batch -noheader "$db" "SELECT live_objects FROM snapshot WHERE id = $id;") || return 0
    for report in owners types path; do
        set -- "$db:$id" --json
        [ $report = path ] && set -- "$db:$id" --type "struct obj" --json
        out=$(/usr/bin/time -f '%e %M' "$hw" $report "$@" 2>&1 >/dev/null | tail -n 1) || {
            say "  w_bigheap/$cfg: heapwatch $report failed: $out"
            continue
        }
        echo "$out $objs" >>"$rawdir/$report.$cfg"
    done
}

# median COLUMN FILE
median() {
    awk -v c="$1" '{print $c}' "$2" | sort -g |
        awk '{v[NR]=$1} END {if (NR == 0) exit; if (NR % 2) print v[(NR+1)/2]; else printf "%.4f\n", (v[NR/2]+v[NR/2+1])/2}'
}

# paired A B MODE [N]: the median, over the reps that raw files A and B both hold, of what MODE
# makes of the two walls of one rep: ratio a/b, or diff (a - b) / N * 1e9 (ns per allocation
# when N counts the allocations). The configurations of one rep run back to back, the reps
# minutes apart: on a shared machine the natives of one bench moved by 40% from rep to rep,
# which a ratio of medians mixes in and a median of per-rep ratios mostly cancels.
paired() {
    awk -v mode="$3" -v n="${4:-1}" 'NR == FNR { b[$NF] = $1; next }
        ($NF in b) { if (mode == "ratio") { if (b[$NF] > 0) print $1 / b[$NF] } else print ($1 - b[$NF]) / n * 1e9 }' \
        "$2" "$1" | sort -g |
        awk '{v[NR]=$1} END {if (NR == 0) exit; if (NR % 2) printf "%.6f\n", v[(NR+1)/2]; else printf "%.6f\n", (v[NR/2]+v[NR/2+1])/2}'
}

# ---- allocation counts (one unmeasured native run each, which also warms the caches) ----------
declare -A allocs objects
for w in $workloads; do
    prog=$w
    [ "$w" = w_cxx ] && prog=w_cxx_count
    out=$(cd "$rundir" && "$bin/$prog" ${scale:+"$scale"} 2>/dev/null) || out=""
    n=$(printf '%s\n' "$out" | sed -n 's/.*allocs=\([0-9][0-9]*\).*/\1/p' | head -n 1)
    allocs[$w]=${n:-0}
    o=$(printf '%s\n' "$out" | sed -n 's/.*objects=\([0-9][0-9]*\).*/\1/p' | head -n 1)
    objects[$w]=${o:-0}
    say "$w: allocs=${allocs[$w]}${o:+ live objects=$o}"
done

# run_or_skip WORKLOAD CONFIG REP: one measured run, unless the configuration failed before or
# cannot run here (then say why once).
run_or_skip() {
    if [ -f "$rawdir/$1.$2.failed" ]; then return; fi
    reason=$(why_skip "$2")
    if [ -n "$reason" ]; then
        echo "$reason" >"$rawdir/$1.$2.failed"
        say "  $1/$2 skipped: $reason"
        return
    fi
    run_one "$1" "$2" "$3"
}

# ---- measured runs ----------------------------------------------------------------------------
start=$(date +%s)
for w in $workloads; do
    for rep in $(seq 1 "$reps"); do
        for cfg in $configs; do
            run_or_skip "$w" "$cfg" "$rep"
        done
        if [ "$w" = w_bigheap ] && [ "$heapwalk" != 0 ]; then
            for cfg in fullwalk inplace lsan; do
                run_or_skip "$w" "$cfg" "$rep"
            done
            if out=$("$bin/membw" 2>>"$logdir/membw.err"); then
                printf '%s\n' "$out" |
                    sed -n 's/.*seq_read_GBps=\([0-9.]*\) rand_read_GBps=\([0-9.]*\) latency_ns=\([0-9.]*\).*/\1 \2 \3/p' \
                        >>"$rawdir/membw"
                say "  membw rep $rep: $out"
            else
                say "  membw rep $rep FAILED (stderr: $logdir/membw.err)"
            fi
        fi
    done
done
elapsed=$(($(date +%s) - start))

# The event log's analyses on 10 million events: w_churn at a quarter scale in full mode with
# the log (5M pairs), then `heapwatch timeline` and `heapwatch peak` timed cold, REPS times;
# appends "seconds maxrss_kb events" to evtime.timeline and evtime.peak.
hwbin=$(dirname "$so")/heapwatch
case " $configs " in
*" full_ev "*)
    if [ -x "$hwbin" ] && [ -x /usr/bin/time ] && command -v sqlite3 >/dev/null 2>&1 && [ -x "$bin/w_churn" ]; then
        evdb=$build/bench-events.db
        rm -f "$evdb" "$evdb-wal" "$evdb-shm"
        (cd "$rundir" && env LD_PRELOAD="$so" HEAPWATCH_OUT="$evdb" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_EVENTS=1 \
            HEAPWATCH_AT_EXIT=0 "$bin/w_churn" 0.25 >/dev/null 2>>"$logdir/events.err") || true
        nev=$(sqlite3 "$evdb" "SELECT coalesce(sum(events), 0) FROM event_chunk" 2>/dev/null || echo 0)
        for rep in $(seq 1 "$reps"); do
            for report in timeline peak; do
                if out=$(/usr/bin/time -f '%e %M' "$hwbin" $report "$evdb" 2>&1 >/dev/null | tail -n 1); then
                    echo "$out $nev" >>"$rawdir/evtime.$report"
                    say "  events: heapwatch $report over $nev events: $out"
                fi
            done
        done
        rm -f "$evdb" "$evdb-wal" "$evdb-shm"
    fi
    ;;
esac

# ---- report -----------------------------------------------------------------------------------
# heapwalk_report: the heap walk section (medians of the walk.* raw files).
heapwalk_report() {
    local cfg raw n lsan_ms="" seq="" rnd="" lat="" have_membw=0
    echo
    echo "w_bigheap heap walk: the snapshot labelled \"bench\" (median of each column over the reps"
    echo "  that produced one; full = the fullwalk run, full mode with its bench snapshot (the targets'"
    echo "  full and full_ev rows are measured without it);"
    echo "  inplace = full with HEAPWATCH_SNAPSHOT=inplace)"
    echo "  pause = application held; walk = counters, roots, sort and mark; write = rows and commit"
    echo "  (fork: the child commits to the WAL and reports the snapshot, then checkpoints the WAL"
    echo "  into the database file, outside write; inplace: the writer's commit checkpoints, inside"
    echo "  write)"
    echo "  db B/obj = (bench snapshot's object_chunk + edge_chunk blob bytes) / live objects, and"
    echo "  (whole database file, page_count*page_size after checkpoint: schema, stacks and the tiny"
    echo "  exit snapshot included) / live objects: the snapshot's growth lies between the two"
    printf '  %-8s %-7s %4s %9s %10s %9s %9s %9s %13s %9s %17s %s\n' config mode reps live_objs \
        scanned_MB pause_ms walk_ms write_ms walk+write_ms scan_GB/s "db B/obj blob/file" \
        reachable/indirect/leaked
    if [ -s "$rawdir/walk.lsan" ]; then lsan_ms=$(median 1 "$rawdir/walk.lsan"); fi
    if [ -s "$rawdir/membw" ]; then
        seq=$(median 1 "$rawdir/membw") rnd=$(median 2 "$rawdir/membw") lat=$(median 3 "$rawdir/membw")
        have_membw=1
    fi
    local targets=() scans=()
    for cfg in sampled record full inplace; do
        raw=$rawdir/walk.$cfg
        if [ ! -s "$raw" ]; then
            local why="not run"
            case $cfg in
            sampled) case " $configs " in *" $cfg "*) why="no snapshot read" ;; esac ;;
            record) why="no snapshot: recording alone" ;;
            full | inplace) why="no snapshot read" ;;
            esac
            local run=$cfg
            [ "$cfg" = full ] && run=fullwalk
            [ -f "$rawdir/w_bigheap.$run.failed" ] && why="FAILED: $(cat "$rawdir/w_bigheap.$run.failed")"
            printf '  %-8s (%s)\n' "$cfg" "$why"
            continue
        fi
        n=$(wc -l <"$raw")
        local pause walk write scanned live reach ind leak blob file mode tot
        pause=$(median 1 "$raw") walk=$(median 2 "$raw") write=$(median 3 "$raw")
        scanned=$(median 4 "$raw") live=$(median 5 "$raw") reach=$(median 7 "$raw")
        ind=$(median 8 "$raw") leak=$(median 9 "$raw") blob=$(median 10 "$raw") file=$(median 11 "$raw")
        tot=$(awk '{printf "%.0f\n", $2 + $3}' "$raw" >"$raw.tot" && median 1 "$raw.tot")
        mode=$(awk '{print $12}' "$raw" | sort -u | paste -sd, -)
        awk -v cfg="$cfg" -v mode="$mode" -v n="$n" -v pause="$pause" -v walk="$walk" \
            -v write="$write" -v tot="$tot" -v scanned="$scanned" -v live="$live" -v reach="$reach" \
            -v ind="$ind" -v leak="$leak" -v blob="$blob" -v file="$file" 'BEGIN {
            scan = (scanned >= 0 && walk > 0) ? sprintf("%.2f", scanned / walk) : "-"
            db = live > 0 ? sprintf("%.1f/%.1f", blob / live, file / live) : "-"
            ril = reach < 0 ? "-" : sprintf("%.0f/%.0f/%.0f", reach, ind, leak)
            printf "  %-8s %-7s %4d %9d %10s %9.1f %9.1f %9.1f %13.1f %9s %17s %s\n", cfg,
                mode, n, live, (scanned >= 0 ? sprintf("%.1f", scanned / 1e6) : "-"), pause / 1e6,
                walk / 1e6, write / 1e6, tot / 1e6, scan, db, ril }'
        targets+=("$(awk -v cfg="$cfg" -v mode="$mode" -v pause="$pause" -v tot="$tot" -v lsan="$lsan_ms" 'BEGIN {
            p = pause / 1e6
            s = sprintf("  %-8s pause %8.1f ms <= 50 ms: %-4s", cfg, p, (p <= 50 ? "pass" : "miss"))
            if (lsan == "")
                s = s sprintf("   walk+write %8.1f ms < LSan check: (no LSan figure)", tot / 1e6)
            else
                s = s sprintf("   walk+write %8.1f ms < LSan check %8.1f ms: %-4s (ratio %.2f)",
                    tot / 1e6, lsan, (tot / 1e6 < lsan ? "pass" : "miss"), tot / 1e6 / lsan)
            print s }')")
        if [ "$have_membw" = 1 ]; then
            scans+=("$(awk -v cfg="$cfg" -v scanned="$scanned" -v walk="$walk" -v seq="$seq" 'BEGIN {
                if (scanned < 0 || walk <= 0) { printf "  %-8s no scan figure", cfg; exit }
                g = scanned / walk
                printf "  %-8s scan %.2f GB/s = %.1f%% of sequential read bandwidth %.2f GB/s", cfg, g,
                    (seq > 0 ? g / seq * 100 : 0), seq }')")
        fi
    done
    if [ -n "$lsan_ms" ]; then
        printf '  %-8s __lsan_do_recoverable_leak_check() of the same heap: %.1f ms (median of %d; %s)\n' \
            lsan "$lsan_ms" "$(wc -l <"$rawdir/walk.lsan")" \
            "$(clang --version 2>/dev/null | head -n 1 | sed 's/ *$//') -O2 -fsanitize=leak"
    elif [ -f "$rawdir/w_bigheap.lsan.failed" ]; then
        printf '  %-8s (%s)\n' lsan "LeakSanitizer check not measured: $(cat "$rawdir/w_bigheap.lsan.failed")"
    else
        printf '  %-8s (LeakSanitizer check not measured)\n' lsan
    fi
    echo
    if [ "$have_membw" = 1 ]; then
        awk -v seq="$seq" -v rnd="$rnd" -v lat="$lat" -v n="$(wc -l <"$rawdir/membw")" 'BEGIN {
            printf "memory (membw, 1 thread, 512 MiB, best of 3 per run, median of %d run(s)): sequential read %.2f GB/s,\n", n, seq
            printf "  random 64-byte lines %.2f GB/s, dependent load latency %.1f ns\n", rnd, lat }'
    else
        echo "memory: no membw figure"
    fi
    echo "targets: application pause <= 50 ms per snapshot; walk+write faster than LeakSanitizer's check"
    local line
    for line in ${targets[@]+"${targets[@]}"}; do echo "$line"; done
    echo "scan speed = scanned_bytes / walk_ns (walk includes counters and roots, not only the mark;"
    echo "  GB = 1e9 bytes; the mark runs on one thread, as membw does)"
    for line in ${scans[@]+"${scans[@]}"}; do echo "$line"; done
    echo "timings are wall-clock on a shared machine: other processes running at the same time add noise"
}

# ---- targets table ----------------------------------------------------------------------------
# tname WORKLOAD: the name the targets use for a workload.
tname() {
    case $1 in
    w_churn) echo churn ;; w_churn2) echo mt_churn ;; w_deep) echo tree ;;
    w_bigheap) echo bigheap ;; w_cxx) echo cxx_mix ;; *) echo "$1" ;;
    esac
}

# cfg_why WORKLOAD CONFIG: why WORKLOAD has no median under CONFIG; nothing if it has one.
cfg_why() {
    case " $workloads " in *" $1 "*) ;; *) echo "$1 not in BENCH_WORKLOADS"; return ;; esac
    case " $configs " in *" $2 "*) ;; *) echo "$2 not in BENCH_CONFIGS"; return ;; esac
    if [ -f "$rawdir/$1.$2.failed" ]; then
        echo "$1/$2 not measured: $(cat "$rawdir/$1.$2.failed")"
    elif [ ! -s "$rawdir/$1.$2" ]; then
        echo "$1/$2: no data"
    fi
}

# walk_why CONFIG: why there is no bench snapshot figure of w_bigheap under CONFIG; nothing if
# there is one.
walk_why() {
    case " $workloads " in *" w_bigheap "*) ;; *) echo "w_bigheap not in BENCH_WORKLOADS"; return ;; esac
    if [ "$heapwalk" = 0 ]; then echo "BENCH_HEAPWALK=0"; return; fi
    if [ -s "$rawdir/walk.$1" ]; then return; fi
    local run=$1
    [ "$1" = full ] && run=fullwalk   # the heap walk section's own run, as inplace
    if [ "$1" = sampled ]; then
        case " $configs " in *" $1 "*) ;; *) echo "$1 not in BENCH_CONFIGS"; return ;; esac
    fi
    if [ -f "$rawdir/w_bigheap.$run.failed" ]; then
        echo "w_bigheap/$run not measured: $(cat "$rawdir/w_bigheap.$run.failed")"
    elif ! command -v sqlite3 >/dev/null 2>&1; then
        echo "sqlite3 CLI not installed"
    else
        echo "no snapshot labelled bench read from w_bigheap/$1"
    fi
}

# trow LABEL OP LIMIT MEASURED UNIT FORMAT WHY: one row of the targets table, and its verdict
# appended to $rawdir/verdicts. OP is <= or <; LIMIT and MEASURED are numbers, or empty when
# unknown: then the row shows n/a and WHY.
trow() {
    awk -v label="$1" -v op="$2" -v lim="$3" -v m="$4" -v unit="$5" -v fmt="$6" -v why="$7" \
        -v vfile="$rawdir/verdicts" 'BEGIN {
        u = unit == "" ? "" : " " unit
        ls = lim == "" ? "n/a" : sprintf("%s " fmt "%s", op, lim, u)
        if (m == "" || lim == "") {
            printf "  %-56s %11s %13s %6s  n/a: %s\n", label, "n/a", ls, "-", why
            print "n/a" >>vfile
            exit
        }
        r = lim > 0 ? sprintf("%.2f", m / lim) : "-"
        v = (op == "<" ? m < lim : m <= lim) ? "met" : "MISSED"
        printf "  %-56s %11s %13s %6s  %s\n", label, sprintf(fmt "%s", m, u), ls, r, v
        print v >>vfile }'
}

# targets_report: the table of the project's targets, from the same medians as the report.
targets_report() {
    local w name why v lim nw cw hw objs lsan_ms="" lsan_why="" cfg raw mode n
    rm -f "$rawdir/verdicts"
    echo
    echo "targets (medians; a ratio or difference of two configurations is the median of the reps'"
    echo "  ratios or differences; ratio = measured / limit; met = measured within the limit)"
    printf '  %-56s %11s %13s %6s  %s\n' target measured limit ratio verdict
    for w in w_churn w_churn2 w_deep w_bigheap w_cxx; do
        why=$(cfg_why "$w" native)
        [ -n "$why" ] || why=$(cfg_why "$w" record)
        v=""
        if [ -z "$why" ]; then
            v=$(paired "$rawdir/$w.record" "$rawdir/$w.native" ratio)
            [ -n "$v" ] || why="no rep with both runs, or native wall is 0"
        fi
        trow "$(tname "$w"): record wall / native wall" "<=" 1.10 "$v" "" "%.3f" "$why"
    done

    objs=${objects[w_bigheap]:-0}
    why=$(cfg_why w_bigheap native)
    [ -n "$why" ] || why=$(cfg_why w_bigheap record)
    v=""
    if [ -z "$why" ] && [ "$objs" -le 0 ]; then why="live object count of w_bigheap unknown"; fi
    if [ -z "$why" ]; then
        v=$(awk -v cr="$(median 3 "$rawdir/w_bigheap.record")" -v nr="$(median 3 "$rawdir/w_bigheap.native")" \
            -v o="$objs" 'BEGIN { printf "%.6f", (cr - nr) * 1024 / o }')
    fi
    trow "bigheap: shim memory per live block (record)" "<=" 16 "$v" B "%.1f" "$why"

    case " $workloads " in
    *" w_bigheap "*)
        if [ "$heapwalk" = 0 ]; then
            lsan_why="BENCH_HEAPWALK=0"
        elif [ -s "$rawdir/walk.lsan" ]; then
            lsan_ms=$(median 1 "$rawdir/walk.lsan")
        elif [ -f "$rawdir/w_bigheap.lsan.failed" ]; then
            lsan_why="LeakSanitizer check not measured: $(cat "$rawdir/w_bigheap.lsan.failed")"
        else
            lsan_why="no LeakSanitizer figure"
        fi
        ;;
    *) lsan_why="w_bigheap not in BENCH_WORKLOADS" ;;
    esac
    why=$(cfg_why w_bigheap sampled)
    [ -n "$why" ] || why=$(cfg_why w_bigheap record)
    v=""
    if [ -z "$why" ]; then
        v=$(paired "$rawdir/w_bigheap.sampled" "$rawdir/w_bigheap.record" diff 1000000)
    fi
    if [ -z "$lsan_ms" ] && [ "$why" != "$lsan_why" ]; then why="${why:+$why; }$lsan_why"; fi
    trow "bigheap: snapshots, sampled - record wall" "<" "$lsan_ms" "$v" ms "%.1f" "$why"

    for w in w_churn w_churn2 w_deep w_bigheap w_cxx; do
        name=$(tname "$w")
        why=$(cfg_why "$w" native)
        [ -n "$why" ] || why=$(cfg_why "$w" full)
        [ -n "$why" ] || why=$(cfg_why "$w" heaptrack)
        n=${allocs[$w]:-0}
        if [ -z "$why" ] && [ "$n" -le 0 ]; then why="allocation count of $w unknown"; fi
        v="" lim=""
        if [ -z "$why" ]; then
            v=$(paired "$rawdir/$w.full" "$rawdir/$w.native" diff "$n")
            lim=$(awk -v h="$(paired "$rawdir/$w.heaptrack" "$rawdir/$w.native" diff "$n")" \
                'BEGIN { if (h > 0) printf "%.6f", 0.40 * h }')
            [ -n "$lim" ] || why="heaptrack no slower than native on $w"
        fi
        trow "$name: full extra ns/alloc (limit 0.40 x heaptrack's)" "<=" "$lim" "$v" ns "%.1f" "$why"
    done
    for w in w_churn w_churn2 w_deep w_bigheap w_cxx; do
        why=$(cfg_why "$w" full)
        [ -n "$why" ] || why=$(cfg_why "$w" heaptrack)
        v="" lim=""
        if [ -z "$why" ]; then
            v=$(median 2 "$rawdir/$w.full")
            lim=$(awk -v h="$(median 2 "$rawdir/$w.heaptrack")" 'BEGIN { printf "%.6f", h / 3 }')
        fi
        trow "$(tname "$w"): full cpu (limit heaptrack's / 3)" "<=" "$lim" "$v" s "%.3f" "$why"
    done

    for cfg in sampled full inplace; do
        raw=$rawdir/walk.$cfg
        why=$(walk_why "$cfg") v="" mode=""
        if [ -z "$why" ]; then
            v=$(awk -v p="$(median 1 "$raw")" 'BEGIN { printf "%.6f", p / 1e6 }')
            mode=" ($(awk '{print $12}' "$raw" | sort -u | paste -sd, -))"
        fi
        trow "bigheap: snapshot pause, $cfg$mode" "<=" 50 "$v" ms "%.1f" "$why"
    done
    for cfg in sampled full inplace; do
        raw=$rawdir/walk.$cfg
        why=$(walk_why "$cfg") v=""
        if [ -z "$why" ]; then
            awk '{printf "%.0f\n", $2 + $3}' "$raw" >"$raw.tot"
            v=$(awk -v t="$(median 1 "$raw.tot")" 'BEGIN { printf "%.6f", t / 1e6 }')
        fi
        if [ -z "$lsan_ms" ] && [ "$why" != "$lsan_why" ]; then why="${why:+$why; }$lsan_why"; fi
        trow "bigheap: walk+write, $cfg (limit LSan check)" "<" "$lsan_ms" "$v" ms "%.1f" "$why"
    done

    for report in owners types path; do
        raw=$rawdir/$report.full v="" why=""
        [ -s "$raw" ] || why="no $report run (needs the full w_bigheap run, /usr/bin/time and sqlite3)"
        [ -n "$why" ] || v=$(median 1 "$raw")
        trow "bigheap: heapwatch $report, cold" "<" 3 "$v" s "%.2f" "$why"
        [ -n "$why" ] || v=$(awk '{printf "%.1f\n", $2 * 1024 / $3}' "$raw" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
        trow "bigheap: heapwatch $report, memory per block" "<" 200 "$v" B "%.1f" "$why"
    done

    # the event log (HEAPWATCH_EVENTS=1)
    for w in w_churn w_churn2 w_deep w_bigheap w_cxx; do
        why=$(cfg_why "$w" native)
        [ -n "$why" ] || why=$(cfg_why "$w" record_ev)
        v=""
        [ -n "$why" ] || v=$(paired "$rawdir/$w.record_ev" "$rawdir/$w.native" ratio)
        trow "$(tname "$w"): record with events wall / native wall" "<=" 1.10 "$v" "" "%.3f" "$why"
        # What a second thread alone costs the same program (no target): the writer is one.
        if [ -z "$(cfg_why "$w" thread)" ] && [ -z "$(cfg_why "$w" native)" ]; then
            awk -v r="$(paired "$rawdir/$w.thread" "$rawdir/$w.native" ratio)" -v l="$(tname "$w")" \
                'BEGIN { if (r != "") printf "  %-56s %11.3f %13s %6s  %s\n", "  " l ": native with one idle thread / native", r, "-", "-", "info" }'
        fi
    done
    for w in w_churn w_churn2 w_deep w_bigheap w_cxx; do
        why=$(cfg_why "$w" full)
        [ -n "$why" ] || why=$(cfg_why "$w" full_ev)
        n=${allocs[$w]:-0}
        if [ -z "$why" ] && [ "$n" -le 0 ]; then why="allocation count of $w unknown"; fi
        v=""
        [ -n "$why" ] || v=$(paired "$rawdir/$w.full_ev" "$rawdir/$w.full" diff "$n")
        trow "$(tname "$w"): events' extra ns/pair over full" "<=" 30 "$v" ns "%.1f" "$why"
    done
    for w in w_churn w_churn2 w_deep w_bigheap w_cxx; do
        why="" v=""
        [ -s "$rawdir/evlog.$w" ] || why="no full_ev run read (needs sqlite3)"
        [ -n "$why" ] || v=$(awk '{b += $1; e += $2} END { if (e > 0) printf "%.6f", b / e }' "$rawdir/evlog.$w")
        [ -n "$why" ] || [ -n "$v" ] || why="no events logged"
        trow "$(tname "$w"): event log on disk, bytes/event" "<=" 6 "$v" B "%.2f" "$why"
    done
    for report in timeline peak; do
        why="" v=""
        [ -s "$rawdir/evtime.$report" ] || why="not measured (needs full_ev, /usr/bin/time, sqlite3)"
        [ -n "$why" ] || v=$(awk '{ printf "%.6f\n", $1 * 1e7 / ($3 > 0 ? $3 : 1) }' "$rawdir/evtime.$report" | sort -g |
            awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
        trow "heapwatch $report per 10M events" "<" 2 "$v" s "%.2f" "$why"
    done

    awk '{n[$1]++} END {printf "  %d met, %d MISSED, %d n/a\n", n["met"], n["MISSED"], n["n/a"]}' \
        "$rawdir/verdicts"
    objs=${objects[w_bigheap]:-0}
    echo "  record = sampled with HEAPWATCH_AT_EXIT=0 and no snapshot at all (w_bigheap skips its"
    echo "    heapwatch_snapshot(\"bench\") when BENCH_NO_SNAPSHOT is set): recording alone"
    echo "  memory per live block = (maxrss record - maxrss native) / $objs live blocks"
    echo "  snapshot cost = wall sampled - wall record: w_bigheap's bench snapshot, a walk of its $objs"
    echo "    live blocks, and its exit snapshot (of an almost empty heap); a difference of two walls,"
    echo "    as noisy as they are; limit = LeakSanitizer's check of the same heap (lsan)"
    echo "  full = every allocation recorded, no bench snapshot (w_bigheap's is the fullwalk run's)"
    echo "  extra ns/alloc = (wall - wall native) / allocations (each allocation is freed: one"
    echo "    alloc+free pair); cpu = user+sys of the whole process tree"
    echo "  pause, walk+write: the bench snapshot (heap walk section); limit of walk+write = LSan's check"
    echo "  native with one idle thread = wall thread / wall native: glibc's malloc takes its locks once a"
    echo "    process has two threads, and the event log's writer is a thread (idle_thread.c)"
    echo "  record_ev, full_ev: record and full with HEAPWATCH_EVENTS=1; events' extra = (full_ev -"
    echo "    full) / allocations; bytes/event = the full_ev runs' event_chunk data / events; timeline"
    echo "    and peak: over w_churn 0.25's log (5M pairs), scaled to 10M events"
    if [ -n "$scale" ]; then
        echo "  BENCH_SCALE=$scale: the targets are set for the default scale (3,000,000 blocks on bigheap);"
        echo "    these figures are indicative only"
    fi
    echo "  nothing is asserted: wall-clock medians on a shared machine, other processes add noise"
}

report=$bin/results.txt
{
    echo "heapwatch benchmark  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: $(uname -srm), $(nproc) cpus, $(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)" \
        "gcc, $(heaptrack --version 2>/dev/null || echo 'no heaptrack')"
    echo "shim: $so"
    echo "reps: $reps (median shown)   scale: ${scale:-default}   measured in ${elapsed}s"
    echo "wall = elapsed; cpu = user+sys of the whole process tree; maxrss = largest single process"
    echo "extra ns/pair = (wall - wall_native) / allocations; vs heaptrack = that / heaptrack's"
    echo
    printf '%-10s %-9s %9s %9s %10s %8s %8s %8s %14s %12s\n' \
        workload config wall_s cpu_s maxrss_MB wall_x cpu_x rss_x extra_ns/pair vs_heaptrack
    for w in $workloads; do
        nraw=$rawdir/$w.native
        nw="" nc="" nr=""
        if [ -s "$nraw" ] && [ ! -f "$rawdir/$w.native.failed" ]; then
            nw=$(median 1 "$nraw") nc=$(median 2 "$nraw") nr=$(median 3 "$nraw")
        fi
        hraw=$rawdir/$w.heaptrack
        hw=""
        if [ -s "$hraw" ] && [ ! -f "$rawdir/$w.heaptrack.failed" ]; then hw=$(median 1 "$hraw"); fi
        for cfg in $configs; do
            raw=$rawdir/$w.$cfg
            if [ -f "$raw.failed" ] || [ ! -s "$raw" ]; then
                reason="no data"
                [ -f "$raw.failed" ] && reason=$(cat "$raw.failed")
                printf '%-10s %-9s FAILED (%s)\n' "$w" "$cfg" "$reason"
                continue
            fi
            cw=$(median 1 "$raw") cc=$(median 2 "$raw") cr=$(median 3 "$raw")
            note=""
            [ -f "$raw.nodb" ] && note="  (no database written)"
            awk -v w="$w" -v cfg="$cfg" -v cw="$cw" -v cc="$cc" -v cr="$cr" \
                -v nw="$nw" -v nc="$nc" -v nr="$nr" -v hw="$hw" -v n="${allocs[$w]}" -v note="$note" '
                function ratio(a, b) { return (b == "" || b + 0 <= 0) ? "-" : sprintf("%.2f", a / b) }
                BEGIN {
                    extra = "-"; vs = "-"
                    if (cfg != "native" && nw != "" && n > 0) {
                        e = (cw - nw) / n * 1e9
                        extra = sprintf("%.1f", e)
                        if ((cfg == "sampled" || cfg == "record" || cfg == "full") && hw != "") {
                            he = (hw - nw) / n * 1e9
                            if (he > 0) vs = sprintf("%.1f%%", e / he * 100)
                        }
                    }
                    printf "%-10s %-9s %9.3f %9.3f %10.1f %8s %8s %8s %14s %12s%s\n", w, cfg, cw, cc,
                        cr / 1024, ratio(cw, nw), ratio(cc, nc), ratio(cr, nr), extra, vs, note
                }'
        done
    done
    case " $workloads " in
    *" w_bigheap "*)
        echo
        objs=${objects[w_bigheap]:-0}
        echo "w_bigheap memory overhead per live object ((maxrss - maxrss_native) / $objs objects):"
        nraw=$rawdir/w_bigheap.native
        if [ "$objs" -gt 0 ] && [ -s "$nraw" ] && [ ! -f "$nraw.failed" ]; then
            nr=$(median 3 "$nraw")
            for cfg in $configs; do
                [ "$cfg" = native ] && continue
                raw=$rawdir/w_bigheap.$cfg
                if [ -f "$raw.failed" ] || [ ! -s "$raw" ]; then
                    printf '  %-9s FAILED\n' "$cfg"
                    continue
                fi
                cr=$(median 3 "$raw")
                awk -v cfg="$cfg" -v cr="$cr" -v nr="$nr" -v o="$objs" 'BEGIN {
                    printf "  %-9s %8.1f bytes/object", cfg, (cr - nr) * 1024 / o
                    if (cfg == "heaptrack") printf "   (largest process: app or interpreter)"
                    printf "\n" }'
            done
        else
            echo "  (no native figure)"
        fi
        ;;
    esac
    if [ "$heapwalk" != 0 ]; then heapwalk_report; fi
    targets_report
} | tee "$report"
say "report saved in $report; stderr of every run in $logdir"
exit 0
