# lib.sh: shared helpers of the end-to-end tests (TAP output for prove).
# Each test script: `. ./lib.sh`, then plan N, then ok/is/ok_cmd/is_file calls; it runs in tests/.
set -u
TOP=$(cd .. && pwd)
HW="$TOP/heapwatch"
SHIM="$TOP/libheapwatch.so"
BIN="$PWD/progs/bin"
OUT="$PWD/out/$(basename "$0" .sh)"
rm -rf "$OUT" && mkdir -p "$OUT"
export HOME="${HOME:-/root}"
# Every HEAPWATCH_* setting (the shim's and the analyzer's) at its default, whatever the
# environment of whoever runs the suite says; a test sets what it tests.
unset $(env | sed -n 's/^\(HEAPWATCH_[A-Z0-9_]*\)=.*/\1/p')
_n=0
_failed=0

plan() { echo "1..$1"; }

# ok COND_STATUS DESCRIPTION: pass when the status is 0.
ok() {
    _n=$((_n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $_n - $2"; else echo "not ok $_n - $2"; _failed=$((_failed + 1)); fi
}

# is GOT EXPECTED DESCRIPTION
is() {
    _n=$((_n + 1))
    if [ "$1" = "$2" ]; then echo "ok $_n - $3"
    else echo "not ok $_n - $3"; fail_diag "  got:      '$1'" "  expected: '$2'"; _failed=$((_failed + 1)); fi
}

# ok_cmd DESCRIPTION [!] CMD [ARGS...]: pass when CMD exits 0 (with `!`: when it does not).
# CMD is a command or a shell function, run in this shell; its output is kept out of the TAP
# stream and shown, with the command and its status, only when the check fails. A condition of
# several commands (`a && b`, a pipeline) goes into a small function of the test.
#   ok_cmd "every block is in the live table" test "$live" -ge 200000
#   ok_cmd "frames are named module+offset" grep -q "nodebug+0x" "$OUT/top.txt"
#   ok_cmd "the process has exited" ! kill -0 "$pid"
ok_cmd() {
    _desc=$1; shift
    _neg=
    if [ "$1" = "!" ]; then _neg="! "; shift; fi
    "$@" >"$OUT/.ok_cmd.out" 2>&1
    _st=$?
    _n=$((_n + 1))
    if { [ -z "$_neg" ] && [ $_st -eq 0 ]; } || { [ -n "$_neg" ] && [ $_st -ne 0 ]; }; then
        echo "ok $_n - $_desc"
    else
        echo "not ok $_n - $_desc"
        _failed=$((_failed + 1))
        fail_diag "  command: $_neg$(quote_args "$@")" "  status:  $_st"
        if [ -s "$OUT/.ok_cmd.out" ]; then
            fail_diag "  output:"
            head -n 20 "$OUT/.ok_cmd.out" | sed 's/^/#     /' >&2
        fi
    fi
    rm -f "$OUT/.ok_cmd.out"
}

# is_file GOT_FILE EXPECTED_FILE DESCRIPTION: pass when the files are identical; else print
# `diff -u EXPECTED_FILE GOT_FILE` (git's test_cmp): "+" lines are what is printed now.
# Returns 1 when the check fails.
is_file() {
    _n=$((_n + 1))
    if cmp -s "$2" "$1"; then echo "ok $_n - $3"
    else
        echo "not ok $_n - $3"
        _failed=$((_failed + 1))
        fail_diag "  diff -u $2 $1"
        diff -u "$2" "$1" 2>&1 | sed 's/^/#   /' >&2
        return 1
    fi
}

diag() { echo "# $*"; }

# fail_diag LINE...: TAP diagnostics of a failed check, one "# LINE" each, on stderr, where
# prove shows them (it hides comments on stdout unless run with -v).
fail_diag() { for _l in "$@"; do echo "# $_l"; done >&2; }

# quote_args ARG...: the arguments as one shell command line, quoted where needed.
quote_args() {
    _q=
    for _a in "$@"; do
        case $_a in
            '' | *[!A-Za-z0-9_./:=+,@%^-]*) _a="'$(printf '%s' "$_a" | sed "s/'/'\\\\''/g")'" ;;
        esac
        _q="$_q${_q:+ }$_a"
    done
    printf '%s' "$_q"
}

# run_shim DB ENV... -- CMD...: run CMD under the shim writing DB; stdout to $OUT/stdout,
# stderr to $OUT/stderr; returns CMD's status.
run_shim() {
    db=$1; shift
    envs=""
    while [ "$1" != "--" ]; do envs="$envs $1"; shift; done
    shift
    rm -f "$db" "$db-wal" "$db-shm"
    env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$db" $envs "$@" >"$OUT/stdout" 2>"$OUT/stderr"
}

# jqr FILTER FILE: raw jq output
jqr() { jq -r "$1" "$2"; }

done_testing() {
    [ "$_failed" -eq 0 ]
}

# bounded SECONDS CMD...: run CMD in its own process group; if it is not done after SECONDS,
# kill the whole group (a hung fork child included) and return 124. Else CMD's status.
bounded() {
    _limit=$1; shift
    setsid "$@" &
    _pid=$!
    _t=0
    while kill -0 "$_pid" 2>/dev/null; do
        if [ "$_t" -ge $((_limit * 10)) ]; then
            env kill -s KILL -- "-$_pid" 2>/dev/null || kill -9 "$_pid" 2>/dev/null
            wait "$_pid" 2>/dev/null
            return 124
        fi
        sleep 0.1
        _t=$((_t + 1))
    done
    wait "$_pid"
}

# skip WHY: a check that cannot run here, counted as passed.
skip() { _n=$((_n + 1)); echo "ok $_n # SKIP $1"; }

# wait_for PID SECONDS: wait for background job PID, at most SECONDS; a job still running then
# is killed (with its process group if it leads one) and 124 returned, else the job's status.
wait_for() {
    _t=0
    while kill -0 "$1" 2>/dev/null && [ "$_t" -lt $(($2 * 10)) ]; do sleep 0.1; _t=$((_t + 1)); done
    if kill -0 "$1" 2>/dev/null; then
        env kill -s KILL -- "-$1" 2>/dev/null || kill -9 "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        return 124
    fi
    wait "$1"
}
