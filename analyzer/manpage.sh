#!/bin/sh
# manpage.sh HEAPWATCH: heapwatch(1) in roff on standard output, made from the binary's own
# help (the command list, each command's --help, run --help's settings), so that the man
# page and --help never disagree. The Makefile runs it after building the analyzer.
set -eu
hw=$1
# roff: a backslash is \e, a line starting with . or ' is protected with \&
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
cmds=$("$hw" --help 2>&1 | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p')
cat <<'HEAD'
.TH HEAPWATCH 1 "" "heapwatch" "User Commands"
.SH NAME
heapwatch \- heap profiler and leak detector for C and C++ programs
.SH SYNOPSIS
.B heapwatch
.I COMMAND
.RI [ options ]
.br
.B LD_PRELOAD=libheapwatch.so
.I program
.SH DESCRIPTION
HEAD
echo ".nf"
"$hw" --help 2>&1 | esc
echo ".fi"
for c in $cmds; do
    echo ".SH \"heapwatch $c\""
    echo ".nf"
    "$hw" "$c" --help 2>&1 | esc
    echo ".fi"
done
cat <<'TAIL'
.SH FILES
.TP
.I heapwatch.PID.db
the database a traced process writes (HEAPWATCH_OUT), read by every report
.SH SEE ALSO
.BR go (1)
tool pprof,
.BR heaptrack (1),
.BR valgrind (1).
The README of the source tree has the whole picture.
TAIL
