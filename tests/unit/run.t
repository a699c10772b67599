#!/bin/sh
# run.t: runs every unit test (tests/unit/bin/t-*) and reports one TAP line per binary, with
# that binary's own TAP output as "# " diagnostics when it fails. A binary passes when it
# exits 0, prints a plan, runs as many tests as planned and fails none (a "not ok ... # TODO"
# is a known bug, listed but not a failure). A t-*.c without its binary (not built) fails.
#
#   cd tests && make units && prove -v unit/run.t
#   HW_UNIT_WRAPPER="valgrind -q --error-exitcode=1" prove -v unit/run.t   # under a wrapper
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.." || exit 1  # tests/, where prove runs us
wrapper=${HW_UNIT_WRAPPER:-}
limit=${HW_UNIT_TIMEOUT:-600}
timeout=
command -v timeout >/dev/null 2>&1 && timeout="timeout $limit"
out=$(mktemp "${TMPDIR:-/tmp}/hw-unit.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT
trap 'exit 130' INT TERM

# Every test that has a source or a binary, once.
names=$(
    for f in "$here"/t-*.c "$here"/bin/t-*; do
        [ -e "$f" ] && basename "$f" .c
    done | sort -u
)

n=0
failed=0
for name in $names; do
    n=$((n + 1))
    bin="$here/bin/$name"
    if [ ! -x "$bin" ] || [ -d "$bin" ]; then
        echo "not ok $n - $name # binary unit/bin/$name missing: run make units"
        failed=$((failed + 1))
        continue
    fi
    # shellcheck disable=SC2086 # word splitting of the wrapper and timeout is intended
    $timeout $wrapper "$bin" >"$out" 2>&1 </dev/null
    rc=$?
    # -> "tests plan failures todos"; plan -1 when absent
    set -- $(awk '
        /^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; has = 1 }
        /^Bail out!/ { bad++ }
        /^(not )?ok( |$)/ {
            tests++
            if ($0 ~ /# *TODO/) todo++
            else if ($0 ~ /^not ok/) bad++
        }
        END { printf "%d %d %d %d\n", tests, has ? plan : -1, bad, todo }' "$out")
    tests=$1 plan=$2 bad=$3 todo=$4
    why=
    if [ "$rc" -eq 124 ] && [ -n "$timeout" ]; then why="timed out after ${limit}s"
    elif [ "$rc" -ne 0 ]; then why="exit status $rc"
    fi
    [ "$bad" -ne 0 ] && why="${why:+$why, }$bad of $tests failed"
    if [ "$plan" -lt 0 ]; then why="${why:+$why, }no plan"
    elif [ "$plan" -ne "$tests" ]; then why="${why:+$why, }ran $tests of $plan planned"
    fi
    if [ -z "$why" ]; then
        echo "ok $n - $name ($tests checks${todo:+, $todo TODO})" | sed 's/, 0 TODO//'
        # Known bugs stay visible.
        grep -E '^not ok .*# *TODO' "$out" | sed "s/^/# $name: /"
    else
        echo "not ok $n - $name ($why)"
        sed 's/^/#   /' "$out"
        failed=$((failed + 1))
    fi
done

if [ "$n" -eq 0 ]; then
    echo "1..0 # SKIP no unit tests in unit/"
else
    echo "1..$n"
fi
[ "$failed" -eq 0 ]
