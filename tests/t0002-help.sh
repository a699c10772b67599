#!/bin/sh
# The command line is one table per command (analyzer/parse_options.h): --help, `heapwatch
# help CMD`, the usage line and the errors all come from it. This checks that they agree,
# that a typo gets "did you mean", that a command refuses another command's options, and that
# the README documents every option and every HEAPWATCH_* setting that the help lists.
. ./lib.sh
commands="run snap ls top diff growth leaks export"
plan 33

for c in $commands; do
    "$HW" "$c" --help >"$OUT/$c.help" 2>"$OUT/err"; rc=$?
    "$HW" help "$c" >"$OUT/$c.help2" 2>&1
    is "$rc:$(head -1 "$OUT/$c.help" | cut -d' ' -f1-3):$(cmp -s "$OUT/$c.help" "$OUT/$c.help2" && echo same)" \
       "0:usage: heapwatch $c:same" "$c: --help exits 0, starts with the usage, equals 'heapwatch help $c'"
done

# Every long option that some --help lists, and every setting run --help lists, is in README.md.
missing=
for c in $commands; do
    for o in $(grep -o '^  \(-., \|    \)--[a-z_-]*' "$OUT/$c.help" | sed 's/.*--/--/'); do
        [ "$o" = --help ] || grep -q -- "$o\b" "$TOP/README.md" || missing="$missing $c:$o"
    done
done
is "${missing:-none}" none "every option in the tables is documented in README.md"
settings=$(grep -o '^  HEAPWATCH_[A-Z_]*' "$OUT/run.help" | tr -d ' ')
is "$(echo "$settings" | wc -l)" "$(grep -c '^HW_OPT' "$TOP/schema/settings.def")" \
   "run --help lists every setting of schema/settings.def"
missing=
for s in $settings; do grep -q "\`$s\`" "$TOP/README.md" || missing="$missing $s"; done
is "${missing:-none}" none "every HEAPWATCH_* setting is documented in README.md"
is "$(grep -c 'SAMPLE_RATE (default 524288)' "$OUT/run.help")" 1 "run --help gives the defaults"

# Per-command tables: one command's options are not another's.
for args in "ls --by line" "leaks --nodecount 3" "top --exit-code" "snap 1 --all" "export --json"; do
    "$HW" $args >/dev/null 2>"$OUT/err"; rc=$?
    is "$rc:$(grep -c "unknown option" "$OUT/err")" "2:1" "$args: not this command's option: exit 2"
done

# Mistakes: one error line, then the usage and where the help is.
"$HW" top --nodecont 3 >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(head -1 "$OUT/err")" \
   "2:heapwatch: error: unknown option '--nodecont'; did you mean '--nodecount'?" "option typo: did you mean"
is "$(sed -n 2p "$OUT/err" | cut -c1-20):$(tail -1 "$OUT/err")" \
   "usage: heapwatch top:'heapwatch help top' describes every option." "then the usage line and where the help is"
"$HW" tpo >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(head -1 "$OUT/err")" "2:heapwatch: error: unknown command 'tpo'; did you mean 'top'?" "command typo: did you mean"
"$HW" help grwoth >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(head -1 "$OUT/err")" "2:heapwatch: error: unknown command 'grwoth'; did you mean 'growth'?" \
   "help of a misspelt command: did you mean"
"$HW" frobnicate >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(head -1 "$OUT/err")" "2:heapwatch: error: unknown command 'frobnicate'" "no near command: no suggestion"
"$HW" top --s bogus >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(head -1 "$OUT/err")" "2:heapwatch: error: unknown sample index 'bogus'" \
   "a prefix of an option and its old spelling names that one option"
"$HW" ls --json=yes >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(head -1 "$OUT/err")" "2:heapwatch: error: option '--json' takes no value" "a flag given a value"
"$HW" top --by >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(head -1 "$OUT/err")" "2:heapwatch: error: option '--by' needs a value" "a missing value"
"$HW" top --by bogus >/dev/null 2>"$OUT/err"; rc=$?
is "$rc:$(head -1 "$OUT/err")" "2:heapwatch: error: unknown grouping 'bogus' for --by" "a bad value: the option's own message"

# Spellings that scripts use keep working: prefixes, =, the old underscore, -N as a snapshot.
"$HW" help >"$OUT/help" 2>&1; rc=$?
is "$rc:$(grep -c '^  top ' "$OUT/help")" "0:1" "heapwatch help lists the commands"
run_shim "$OUT/t.db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/demo_service-O2" 2
"$HW" top "$OUT/t.db:latest" --json >"$OUT/a.json" 2>&1
"$HW" top --sample_index=inuse_space --nodec 20000 --js -- "$OUT/t.db:latest" >"$OUT/b.json" 2>&1; rc=$?
is "$rc:$(cmp -s "$OUT/a.json" "$OUT/b.json" && echo same)" "0:same" \
   "--sample_index=, shortened names and -- give the same report"
"$HW" top -n 1 "$OUT/t.db:-1" >"$OUT/c.txt" 2>&1; rc=$?
is "$rc:$(grep -c '^Showing 1 of' "$OUT/c.txt")" "0:1" "-n 1 and a -1 snapshot after it"
"$HW" help top extra >/dev/null 2>&1
is $? 2 "help takes one command"
# The man page and the bash completion are made from the same help (analyzer/manpage.sh,
# completion.sh): every command and every option of its --help is in both.
man_txt="$OUT/heapwatch.1.txt"
MANWIDTH=200 man -l "$TOP/build/heapwatch.1" >"$man_txt" 2>/dev/null || groff -man -Tutf8 "$TOP/build/heapwatch.1" >"$man_txt"
cmds=$("$HW" --help 2>&1 | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p')
missing=
for c in $cmds; do
    grep -q "heapwatch $c" "$man_txt" || missing="$missing $c"
    for o in $("$HW" "$c" --help 2>&1 | sed -n '/^options:/,$s/^ *\(-[a-zA-Z], \)\{0,1\}\(--[a-z][a-z-]*\).*/\2/p'); do
        grep -q -- "$o" "$man_txt" || missing="$missing $c:$o"
    done
done
is "${missing:-none}" none "the man page has every command and every option of its --help ($(echo $cmds | wc -w) commands)"
# complete WORDS...: what bash would offer for the last word
complete_words() { bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _heapwatch; echo "${COMPREPLY[*]}"' _ "$TOP/build/heapwatch.bash" "$@"; }
is "$(complete_words heapwatch ti)" "timeline" "completion: a command from its first letters"
is "$(complete_words heapwatch timeline --po)" "--points" "completion: an option of that command"
done_testing
