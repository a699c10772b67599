#!/bin/sh
# Export: `go tool pprof` (Debian golang-go) reads the gzip'd profile.proto and agrees with
# `heapwatch top` on every function's flat and cum values, for all four sample types and the
# heap walk's leaked_space and leaked_objects; folded
# stacks add up to the same totals.
. ./lib.sh
plan 17
export GOCACHE="$OUT/gocache" GOPATH="$OUT/gopath"

db="$OUT/demo.db"
run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/demo_service-O2" 4
"$HW" export "$db:3" --format pprof -o "$OUT/heap.pb.gz"
ok $? "export --format pprof writes a file"
is "$(head -c 2 "$OUT/heap.pb.gz" | od -An -tx1 | tr -d ' ')" "1f8b" "it is gzip'd"
go tool pprof -raw -symbolize=none "$OUT/heap.pb.gz" > "$OUT/raw.txt" 2>"$OUT/raw.err"
ok $? "go tool pprof parses it"
ok_cmd "Go's four heap sample types, in Go's order" \
   grep -q "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes" "$OUT/raw.txt"

# pprof's -top with exact units, against heapwatch top --by function
for index in inuse_space alloc_space inuse_objects alloc_objects leaked_space leaked_objects; do
    go tool pprof -top -symbolize=none -nodecount=1000 -unit=B -sample_index=$index "$OUT/heap.pb.gz" 2>/dev/null |
        awk '/^ *[0-9.]+B? +[0-9.]+% +[0-9.]+% +[0-9.]+B? +[0-9.]+% / { f = $1; c = $4; sub(/B$/, "", f); sub(/B$/, "", c); $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print $0 "\t" f "\t" c }' |
        sed 's/ (inline)//' | sort > "$OUT/pprof-$index.txt"
    "$HW" top "$db:3" --by function --json --sample-index $index |
        jq -r --arg i $index '.rows[] | select(.flat[$i] != 0 or .cum[$i] != 0) | "\(.function)\t\(.flat[$i])\t\(.cum[$i])"' | sort > "$OUT/hw-$index.txt"
    diff -u "$OUT/hw-$index.txt" "$OUT/pprof-$index.txt" > "$OUT/diff-$index.txt"
    ok $? "$index: go tool pprof -top and heapwatch top agree on every function ($(wc -l < "$OUT/hw-$index.txt") rows)"
done
# the demo leaks from its first round on: the leak comparison above is not of two empty lists
ok_cmd "leaked_space: snapshot 3 has leaks to compare" test "$(wc -l < "$OUT/hw-leaked_space.txt")" -gt 0

# inline frames: -O2 inlines handle() into main; pprof must see it as an inlined frame
traces_have_handle() { go tool pprof -traces -symbolize=none "$OUT/heap.pb.gz" 2>/dev/null | grep -q "handle"; }
ok_cmd "inlined frames survive the export" traces_have_handle

# folded stacks: one line per stack, values add up to the total
"$HW" export "$db:3" --format folded -o "$OUT/heap.folded"
ok $? "export --format folded"
total=$("$HW" top "$db:3" --json | jq '.total.inuse_space')
is "$(awk '{ s += $NF } END { print s }' "$OUT/heap.folded")" "$total" "folded values add up to inuse_space"
ok_cmd "folded stacks run outermost to innermost" grep -q "main;handle;cache_put" "$OUT/heap.folded"
"$HW" export "$db:3" --format json > "$OUT/heap.json"
ok $? "export --format json"
"$HW" export "$db:3" --format pprof -o /nonexistent/dir/x.pb.gz 2>"$OUT/err"
is "$?:$(wc -l < "$OUT/err")" "4:1" "unwritable export path: exit 4, one line"
