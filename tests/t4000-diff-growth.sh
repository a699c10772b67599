#!/bin/sh
# diff and growth against a program whose behaviour is known exactly (progs/demo_service.c):
# per round of 1000 requests it leaks 100 sessions of 96 bytes, indexes 1000 keys of 13 bytes,
# fills a cache capped at 2000 entries of 256 bytes, keeps 0/300/600 batch blocks of 512 bytes
# (a sawtooth) and frees all of its 2 temporary buffers per request.
. ./lib.sh
plan 22

db="$OUT/demo.db"
run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/demo_service-O2" 8
ok $? "demo service runs under the shim"
is "$(cat "$OUT/stdout")" "served 8000 requests, checksum 182890" "its output is unchanged"

"$HW" ls "$db" --json > "$OUT/ls.json"
is "$(jq '.snapshots | length' "$OUT/ls.json")" 9 "8 API snapshots and one at exit"
is "$(jq -r '[.snapshots[] | .trigger] | unique | join(",")' "$OUT/ls.json")" "api,exit" "triggers are recorded"
is "$(jq -r '.snapshots[2].label' "$OUT/ls.json")" "round 3" "labels are recorded"
is "$(jq '[.snapshots[] | select(.live_bytes != .inuse_space)] | length' "$OUT/ls.json")" 0 \
   "full mode: every snapshot's live objects sum to the profile's inuse bytes"

# diff: flat inuse per site between round 1 and round 8
"$HW" diff "$db:1" "$db:8" --json > "$OUT/diff.json"
ok $? "diff --json works"
"$HW" diff "$db:1" "$db:8" --json --sample-index alloc_objects > "$OUT/diff-alloc.json"
delta() {  # FUNCTION VALUE [FILE] -> summed flat delta of that function's rows
    jq --arg f "$1" --arg v "$2" '[.rows[] | select(.function == $f) | .flat[$v]] | add // 0' "${3:-$OUT/diff.json}"
}
is "$(delta session_open inuse_space)" 67200 "diff: 700 leaked sessions of 96 bytes"
is "$(delta session_open inuse_objects)" 700 "diff: 700 more session objects"
is "$(delta cache_put inuse_space)" 256000 "diff: the cache went from 1000 to 2000 entries"
is "$(delta batch_fill inuse_space)" 153600 "diff: batch from 300 to 600 blocks"
is "$(delta parse_request alloc_objects "$OUT/diff-alloc.json")" 14000 "diff: 7000 requests allocated 2 temporaries each"
is "$(delta parse_request inuse_space "$OUT/diff-alloc.json")" 0 "diff: temporaries are not in use"
"$HW" diff "$db:3" "$db:3" --exit-code > /dev/null
ok $? "diff of a snapshot with itself: no change, exit status 0"
"$HW" diff "$db:1" "$db:latest" --exit-code > /dev/null
is $? 1 "diff --exit-code: 1 when inuse grew"

# growth: classes with their evidence
"$HW" growth "$db" --all --by function --json > "$OUT/growth.json"
ok $? "growth --json works"
cls() { jq -r --arg f "$1" '[.rows[] | select(.function == $f) | .class] | first // "absent"' "$OUT/growth.json"; }
is "$(cls session_open)" growing "the leak grows"
is "$(cls cache_put)" plateau "the capped cache is a plateau, not growth"
is "$(cls batch_fill)" churn "the sawtooth batch is churn, not growth"
is "$(jq -r '[.rows[] | select(.function == "parse_request")] | length' "$OUT/growth.json")" 0 \
   "temporary buffers never show in inuse growth"
is "$(jq '[.rows[] | select(.function == "session_open") | .slope_per_snapshot] | first' "$OUT/growth.json")" 9600 \
   "the leak's Theil-Sen slope is exactly 9600 bytes per snapshot"
"$HW" growth "$db" --exit-code > /dev/null
is $? 1 "growth --exit-code: 1 when something grows"
