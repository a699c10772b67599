#!/usr/bin/env bash
# bench.sh: overhead of libheapwatch.so (sampled and full) and of heaptrack, against native runs.
#
#   tests/bench/bench.sh LIBHEAPWATCH_SO BUILD_DIR
#
# Compiles the workloads and the measure runner into BUILD_DIR/bench/, then runs every workload
# in every configuration BENCH_REPS times (interleaved) and prints a table of medians:
#   native     ./prog
#   sampled    LD_PRELOAD=SO HEAPWATCH_OUT=BUILD_DIR/bench-%p.db ./prog   (default sampling)
#   full       the same plus HEAPWATCH_SAMPLE_RATE=1
#   heaptrack  heaptrack -o BUILD_DIR/ht.<name> ./prog
# A configuration that cannot run (no .so, preload refused, crash, non-zero exit, timeout)
# shows FAILED; the others go on. Databases and heaptrack files are deleted after every run.
# Nothing about timings is asserted: the script exits 0 once it has run.
#
# Environment:
#   BENCH_REPS=3        runs per configuration (the median is shown)
#   BENCH_WORKLOADS     subset, e.g. "w_churn w_cxx" (default: all five)
#   BENCH_CONFIGS       subset of "native sampled full heaptrack" (native is always run)
#   BENCH_SCALE         scale argument passed to every workload (default: none, i.e. 1.0)
#   BENCH_TIMEOUT=180   seconds after which one run is killed and counted as FAILED
#   BENCH_CFLAGS        extra flags for compiling the workloads
# Other HEAPWATCH_* variables in the environment are passed through to the heapwatch runs.
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
configs=${BENCH_CONFIGS:-"native sampled full heaptrack"}
scale=${BENCH_SCALE:-}
run_timeout=${BENCH_TIMEOUT:-180}
extra_cflags=${BENCH_CFLAGS:-}

case $reps in '' | *[!0-9]* | 0) echo "BENCH_REPS must be a positive integer" >&2; exit 2 ;; esac
case " $configs " in *" native "*) ;; *) configs="native $configs" ;; esac

# Variables this script sets itself must not leak in from the caller.
unset LD_PRELOAD HEAPWATCH_OUT HEAPWATCH_SAMPLE_RATE

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

have_heaptrack=0
if command -v heaptrack >/dev/null 2>&1; then have_heaptrack=1; fi

clean_outputs() { # $1: workload
    rm -f "$build"/bench-*.db* "$build"/ht."$1".* "$build"/ht."$1"
    find "$rundir" -mindepth 1 -delete 2>/dev/null || true
}

# why_skip CONFIG: prints a reason if CONFIG cannot run at all on this machine.
why_skip() {
    case $1 in
    sampled | full)
        if [ ! -f "$so" ]; then echo "no such file: $so"; fi ;;
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
    sampled) cmd=(env "LD_PRELOAD=$so" "HEAPWATCH_OUT=$build/bench-%p.db" "$bin/$w") ;;
    full) cmd=(env "LD_PRELOAD=$so" "HEAPWATCH_OUT=$build/bench-%p.db" HEAPWATCH_SAMPLE_RATE=1 "$bin/$w") ;;
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
    sampled | full)
        if [ -z "$reason" ] && grep -q "cannot be preloaded" "$err"; then
            reason="preload refused by ld.so"
        elif [ -z "$reason" ]; then
            local dbs
            dbs=$( (find "$build" -maxdepth 1 -name 'bench-*.db'; find "$rundir" -name '*.db') | wc -l)
            [ "$dbs" -gt 0 ] || echo "nodb" >"$rawdir/$w.$cfg.nodb"
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
    cat "$tmp" >>"$raw"
    say "  $w/$cfg rep $rep: $(cat "$tmp")"
}

# median COLUMN FILE
median() {
    awk -v c="$1" '{print $c}' "$2" | sort -g |
        awk '{v[NR]=$1} END {if (NR == 0) exit; if (NR % 2) print v[(NR+1)/2]; else printf "%.4f\n", (v[NR/2]+v[NR/2+1])/2}'
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

# ---- measured runs ----------------------------------------------------------------------------
start=$(date +%s)
for w in $workloads; do
    for rep in $(seq 1 "$reps"); do
        for cfg in $configs; do
            if [ -f "$rawdir/$w.$cfg.failed" ]; then continue; fi
            reason=$(why_skip "$cfg")
            if [ -n "$reason" ]; then
                echo "$reason" >"$rawdir/$w.$cfg.failed"
                say "  $w/$cfg skipped: $reason"
                continue
            fi
            run_one "$w" "$cfg" "$rep"
        done
    done
done
elapsed=$(($(date +%s) - start))

# ---- report -----------------------------------------------------------------------------------
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
                        if ((cfg == "sampled" || cfg == "full") && hw != "") {
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
} | tee "$report"
say "report saved in $report; stderr of every run in $logdir"
exit 0
