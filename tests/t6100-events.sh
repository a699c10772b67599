#!/bin/sh
# The event log (HEAPWATCH_EVENTS=1): timeline, peak, lifetimes, top/export --at, temporary
# allocations. progs/events.c knows its history exactly (its header has the numbers); full
# mode must reproduce it exactly, sampled mode within stated tolerances over three seeds, at
# -O0 and -O2. Also: 8 threads lose and duplicate nothing, a kill -9 leaves a readable log
# that says it was cut, a corrupt chunk gives one message, heaptrack counts the same
# temporaries, and a database without a log says how to record one.
. ./lib.sh
plan 100

# run_events DB MODE [ENV...]: the program under the shim with the log on, full mode unless ENV says
run_events() {
    _db=$1 _mode=$2; shift 2
    run_shim "$_db" HEAPWATCH_EVENTS=1 HEAPWATCH_SAMPLE_RATE=1 "$@" -- "$BIN/events-$opt" "$_mode"
}

# flat JSON FUNCTION VALUE: the flat VALUE of FUNCTION's row of a top/peak --by function report
flat() { jq -r --arg f "$2" --arg v "$3" '[.rows[] | select(.function == $f)] | if length == 1 then .[0].flat[$v] else "\(length) rows" end' "$1"; }

for opt in O0 O2; do
    # ---- the peak: between two snapshots, and who held it ---------------------------------------
    db="$OUT/peak-$opt.db"
    run_events "$db" peak
    is "$?:$(cat "$OUT/stdout")" "0:peak 110000 60" "-$opt: peak runs under the shim"
    "$HW" peak "$db" --by function --json >"$OUT/peak-$opt.json" 2>"$OUT/peak-$opt.err"
    is "$(jqr '.peak | "\(.inuse_space) \(.inuse_objects)"' "$OUT/peak-$opt.json")" "110000 60" \
        "-$opt: the peak is 110000 bytes in 60 objects, exactly"
    is "$(jqr '.peak | "\(.snapshot_before) \(.snapshot_after)"' "$OUT/peak-$opt.json")" "1 2" \
        "-$opt: it came between snapshot 1 (before) and 2 (after), which never saw it"
    is "$("$HW" ls "$db" --json | jq -r '[.snapshots[] | .live_bytes] | map(. < 110000) | all')" "true" \
        "-$opt: no snapshot holds as much: only the log knows the peak"
    is "$(flat "$OUT/peak-$opt.json" site_burst inuse_space) $(flat "$OUT/peak-$opt.json" site_keep inuse_space)" \
        "100000 10000" "-$opt: at the peak site_burst holds 100000 bytes and site_keep 10000"
    "$HW" top "$db" --at peak --by function --json >"$OUT/atpeak-$opt.json" 2>/dev/null
    is "$(jqr '.total.inuse_space' "$OUT/atpeak-$opt.json") $(flat "$OUT/atpeak-$opt.json" site_burst inuse_objects)" \
        "110000 50" "-$opt: top --at peak shows the same heap"
    "$HW" top "$db" --at 1 --by function --json >"$OUT/at1-$opt.json" 2>/dev/null
    is "$(flat "$OUT/at1-$opt.json" site_keep inuse_space) $(flat "$OUT/at1-$opt.json" site_burst inuse_space)" \
        "10000 0 rows" "-$opt: top --at 1 (snapshot 1's moment) holds site_keep only"
    peak_text=$("$HW" peak "$db" 2>&1)
    ok_cmd "-$opt: peak's text names the moment and the snapshots around it" \
        sh -c 'printf "%s\n" "$1" | grep -q "^Peak of inuse_space: 107.42KiB in 60 objects at .*between snapshots 1 and 2"' _ "$peak_text"

    "$HW" diff --moments --by function --json "$db:1" "$db:peak" >"$OUT/dpeak-$opt.json" 2>/dev/null
    is "$(jqr '[.rows[] | select(.function == "site_burst")][0].flat.inuse_space' "$OUT/dpeak-$opt.json") $(jqr '.b.label' "$OUT/dpeak-$opt.json")" \
        "100000 peak" "-$opt: diff --moments from snapshot 1's moment to the peak: site_burst +100000 bytes"

    # ---- a peak made of one temporary allocation ----------------------------------------------------
    db="$OUT/burst-$opt.db"
    run_events "$db" burst
    is "$?:$(cat "$OUT/stdout")" "0:burst 110000 11" "-$opt: burst runs under the shim"
    "$HW" peak "$db" --by function --json >"$OUT/burst-$opt.json" 2>/dev/null
    is "$(jqr '.peak | "\(.inuse_space) \(.inuse_objects)"' "$OUT/burst-$opt.json") $(flat "$OUT/burst-$opt.json" site_temp inuse_space)" \
        "110000 11 100000" "-$opt: a burst of temporaries peaks at the first of them: 110000 bytes, site_temp's 100000 on top"
    "$HW" top "$db" --by function --sample-index temporary_objects --json >"$OUT/burst-top-$opt.json" 2>/dev/null
    is "$(flat "$OUT/burst-top-$opt.json" site_temp temporary_objects)" "100" "-$opt: the burst's 100 blocks are temporary"

    # ---- temporary allocations --------------------------------------------------------------------
    db="$OUT/temps-$opt.db"
    run_events "$db" temps
    is "$?:$(cat "$OUT/stdout")" "0:temps 1050" "-$opt: temps runs under the shim"
    "$HW" top "$db" --sample-index temporary_objects --by function --json >"$OUT/temps-$opt.json" 2>/dev/null
    is "$(flat "$OUT/temps-$opt.json" site_temp temporary_objects) $(flat "$OUT/temps-$opt.json" site_temp temporary_space)" \
        "1000 64000" "-$opt: site_temp: 1000 temporary allocations, 64000 bytes"
    is "$(flat "$OUT/temps-$opt.json" site_pair temporary_objects) $(flat "$OUT/temps-$opt.json" site_pair alloc_objects)" \
        "0 200" "-$opt: site_pair: none of its 200 blocks is temporary (another event came between)"
    is "$(flat "$OUT/temps-$opt.json" site_grow temporary_objects)" "50" \
        "-$opt: site_grow: each realloc frees the block just made: 50 temporary"
    is "$(jqr '.total.temporary_objects' "$OUT/temps-$opt.json")" "1050" "-$opt: 1050 temporary allocations in all"
    "$HW" export -f json "$db" >"$OUT/temps-export-$opt.json" 2>/dev/null
    is "$(jqr '[.sample_types[].type] | join(",")' "$OUT/temps-export-$opt.json")" \
        "alloc_objects,alloc_space,inuse_objects,inuse_space,leaked_objects,leaked_space,temporary_objects,temporary_space" \
        "-$opt: an export of a database with a log has the temporary sample types"
    "$HW" export -f pprof "$db" -o "$OUT/temps-$opt.pb.gz" 2>/dev/null
    ok_cmd "-$opt: go tool pprof reads temporary_objects from the pprof export" \
        sh -c 'go tool pprof -top -sample_index=temporary_objects "$1" 2>/dev/null | grep -q "1000 .*site_temp"' _ "$OUT/temps-$opt.pb.gz"

    # ---- the timeline's series against the program's own accounting -----------------------------
    db="$OUT/phases-$opt.db"
    run_events "$db" phases
    st=$?
    cp "$OUT/stdout" "$OUT/phases-$opt.txt"
    is "$st:$(grep -c '^phase' "$OUT/phases-$opt.txt")" "0:3" "-$opt: phases runs under the shim"
    "$HW" timeline "$db" --points 60 --by function --json >"$OUT/timeline-$opt.json" 2>"$OUT/timeline-$opt.err"
    # check_phase K A B C: at every point inside phase K's still window, site_a/b/c hold A/B/C bytes
    check_phase() {
        set -- $(grep "^phase $1 " "$OUT/phases-$opt.txt")
        jq -r --argjson s "$3" --argjson e "$4" '
            (.sites | map({(.function): .values}) | add) as $v |
            [range(0; .points | length) as $k | select(.points[$k].time_ns > $s and .points[$k].time_ns < $e) |
             "\($v.site_a[$k] // 0) \($v.site_b[$k] // 0) \($v.site_c[$k] // 0)"] | unique | join(";")' \
            "$OUT/timeline-$opt.json"
    }
    is "$(check_phase 1)" "2000 0 0" "-$opt: timeline, phase 1: site_a 2000 bytes at every point"
    is "$(check_phase 2)" "2000 6000 0" "-$opt: timeline, phase 2: site_a 2000, site_b 6000"
    is "$(check_phase 3)" "0 6000 5000" "-$opt: timeline, phase 3: site_a freed, site_b 6000, site_c 5000"
    set -- $(grep "^phase 2 " "$OUT/phases-$opt.txt")
    m=$((($3 + $4) / 2))
    mid="@${m%?????????}.${m#${m%?????????}}"
    "$HW" top "$db" --at "$mid" --by function --json >"$OUT/mid-$opt.json" 2>/dev/null
    is "$(flat "$OUT/mid-$opt.json" site_a inuse_space) $(flat "$OUT/mid-$opt.json" site_b inuse_objects)" "2000 30" \
        "-$opt: top --at @TIME (the middle of phase 2): site_a 2000 bytes, site_b 30 objects"
    "$HW" timeline "$db" >"$OUT/timeline-$opt.txt" 2>&1
    ok_cmd "-$opt: the text timeline charts the sites by letter and says the log is complete" \
        sh -c 'grep -q "complete (the process exited)" "$1" && grep -q "^  A .*site_" "$1" && grep -Eq "s +[0-9.]+[KM]?i?B  [A-C.]+$" "$1"' _ "$OUT/timeline-$opt.txt"
    "$HW" lifetimes "$db" --json >"$OUT/life-$opt.json" 2>/dev/null
    is "$(jqr '[.sites[] | select(.function == "site_a")][0] | "\(.freed) \(.live) \(.histogram[6].objects)"' "$OUT/life-$opt.json")" \
        "20 0 20" "-$opt: lifetimes: site_a's 20 blocks lived between 100 ms and 1 s"
    is "$(jqr '[.sites[] | select(.function == "site_c")][0] | "\(.freed) \(.median_ns > 100000000 and .median_ns < 1000000000)"' "$OUT/life-$opt.json")" \
        "5 true" "-$opt: lifetimes: site_c's median is about 300 ms"

    # ---- 8 threads: every event, once, in each thread's order -----------------------------------------
    db="$OUT/threads-$opt.db"
    run_events "$db" threads
    is "$?:$(cat "$OUT/stdout")" "0:threads 40000" "-$opt: threads runs under the shim"
    "$HW" lifetimes "$db" --json >"$OUT/tlife-$opt.json" 2>/dev/null
    is "$(jqr '[.sites[] | select(.function == "site_thread")][0] | "\(.freed) \(.live)"' "$OUT/tlife-$opt.json")" \
        "40000 0" "-$opt: 8 threads: all 40000 allocations and their frees are in the log"
    "$HW" timeline "$db" --json >"$OUT/tline-$opt.json" 2>/dev/null
    is "$(jqr '.log | "\(.unmatched_frees) \(.events == ([.events] | add))"' "$OUT/tline-$opt.json")" "0 true" \
        "-$opt: no free comes before its allocation: each thread's order is kept"
    is "$(sqlite3 "$db" 'SELECT sum(events) FROM event_chunk')" "$(jqr '.log.events' "$OUT/tline-$opt.json")" \
        "-$opt: the chunks' record counts add up to the events read"
done

# ---- sampled mode: unbiased estimates, within 10% over three seeds (about 1200 and 1600 samples) --
opt=O2
for seed in 1 2 3; do
    db="$OUT/sampled-$seed.db"
    run_shim "$db" HEAPWATCH_EVENTS=1 HEAPWATCH_SAMPLE_RATE=16384 HEAPWATCH_SEED=$seed -- "$BIN/events-O2" sampled
    "$HW" peak "$db" --json >"$OUT/speak-$seed.json" 2>/dev/null
    ok_cmd "sampled (seed $seed): the peak estimate is within 10% of 20000000 bytes" \
        jq -e '.peak.inuse_space > 18000000 and .peak.inuse_space < 22000000' "$OUT/speak-$seed.json"
    "$HW" top "$db" --sample-index temporary_objects --by function --json >"$OUT/stemp-$seed.json" 2>/dev/null
    ok_cmd "sampled (seed $seed): the temporary count estimate is within 10% of 100000" \
        jq -e '[.rows[] | select(.function == "site_temp")][0].flat.temporary_objects | . > 90000 and . < 110000' "$OUT/stemp-$seed.json"
done

# ---- heaptrack counts the same temporary allocations -----------------------------------------------
if command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null; then
    rm -rf "$OUT/ht" && mkdir -p "$OUT/ht"
    heaptrack -o "$OUT/ht/temps" "$BIN/events-O2" temps >/dev/null 2>&1
    heaptrack_print "$OUT/ht"/temps.* >"$OUT/ht.txt" 2>/dev/null
    # "N temporary allocations of M allocations in total (...) from" then the site's name
    ht() { awk -v site="$1" '/temporary allocations of .* from$/ { n = $1; getline; if ($1 == site) print n }' "$OUT/ht.txt" | head -n 1; }
    is "$(ht site_temp):$(ht site_grow):$(ht site_pair)" "1000:50:" \
        "heaptrack counts the same temporaries: site_temp 1000, site_grow 50, site_pair none"
    is "$(flat "$OUT/temps-O2.json" site_temp temporary_objects):$(flat "$OUT/temps-O2.json" site_grow temporary_objects)" \
        "$(ht site_temp):$(ht site_grow)" "heapwatch's per-site temporaries equal heaptrack's"
else
    skip "heaptrack is not installed"
    skip "heaptrack is not installed"
fi

# ---- snapshots while the writer writes: each fork child must find SQLite free ----------------------
for run in 1 2; do
    db="$OUT/snaps-$run.db"
    rm -f "$db" "$db-wal" "$db-shm"
    bounded 60 env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$db" HEAPWATCH_EVENTS=1 HEAPWATCH_SAMPLE_RATE=1 \
        "$BIN/events-O2" snaps >"$OUT/snaps.out" 2>&1
    st=$?
    n=$(sed -n 's/^snaps //p' "$OUT/snaps.out")
    is "$st:$(sqlite3 "$db" "SELECT count(*) = ${n:-0} + 1 AND ${n:-0} >= 8 FROM snapshot" 2>/dev/null)" "0:1" \
        "run $run: ${n:-no} snapshots (and the exit one) while the event log was written all along: none hung"
    # full-mode churn makes events faster than the writer compresses them: it stores them as they
    # are (codec 0), unless the machine is too slow to make 16 MB of them a second
    "$HW" timeline "$db" --json >"$OUT/snaps-$run.json" 2>"$OUT/snaps-$run.err"
    is "$?:$(jqr '.log | "\(.complete) \(.unmatched_frees)"' "$OUT/snaps-$run.json")" "0:true 0" \
        "run $run: the log written while snapshots were taken reads back whole"
    diag "run $run: chunks by codec: $(sqlite3 "$db" 'SELECT group_concat(codec || ":" || n) FROM (SELECT codec, count(*) n FROM event_chunk GROUP BY codec)')"
done

# ---- kill -9: the committed chunks stay readable, and the log says it was cut -----------------------
db="$OUT/killed.db"
rm -f "$db" "$db-wal" "$db-shm"
LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$db" HEAPWATCH_EVENTS=1 HEAPWATCH_SAMPLE_RATE=1 "$BIN/events-O2" forever >"$OUT/forever.out" 2>&1 &
pid=$!
for i in $(seq 100); do grep -q ready "$OUT/forever.out" && break; sleep 0.1; done
sleep 1
kill -9 $pid
wait $pid 2>/dev/null
"$HW" timeline "$db" --json >"$OUT/killed.json" 2>"$OUT/killed.err"
is "$?:$(jqr '.log | "\(.complete) \(.events > 2000) \(.unmatched_frees)"' "$OUT/killed.json")" "0:false true 0" \
    "kill -9: the log reads back (over 2000 events in 2.5 s) and says it is incomplete"
is "$(jqr '[.points[-1].inuse_space, ([.sites[] | select(.function == "site_a")][0].values[-1])] | map(tostring) | join(" ")' "$OUT/killed.json")" \
    "10496 6400" "kill -9: at the log's end site_a holds its ring of 100 blocks of 64 bytes (and stdout its buffer)"
"$HW" timeline "$db" >"$OUT/killed.txt" 2>&1
ok_cmd "kill -9: the text says where and how the log ends" grep -q "ends without the process's exit" "$OUT/killed.txt"

# ---- an image that ends without exit(): its last events are written, and end its log ----------------
# The program ends at once, before any drain: the whole log is what the end writes. It lost
# its last second of events at an _exit (a shell's exit builtin, a forked worker) and an exec.
for how in _exit signal exec; do
    db="$OUT/end-$how.db"
    rm -f "$db" "$db"-* "$OUT"/end-$how.*.db
    LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$db" HEAPWATCH_EVENTS=1 HEAPWATCH_SAMPLE_RATE=1 "$BIN/events-O2" end $how \
        >"$OUT/end-$how.out" 2>&1
    st=$?
    "$HW" timeline "$db" --by function --json 2>>"$OUT/end-$how.out" |
        jq -r '"\(.log.complete) \(.log.events) \(.log.unmatched_frees) " + ([.sites[] | select(.function == "site_keep")][0].values[-1] | tostring)' \
        >"$OUT/end-$how.log" 2>&1
    is "$st:$(cat "$OUT/end-$how.log")" "0:true 20 0 10000" \
        "an image that ends by $how writes its 20 events and the log's end (site_keep holds 10000 bytes)"
done

# ---- chunks stored as they are: the same answers -------------------------------------------------------
is "$(sqlite3 "$OUT/peak-O2.db" 'SELECT count(*), min(codec) FROM event_chunk')" "1|1" \
    "a program with few events gets its log compressed (codec 1)"
cp "$OUT/peak-O2.db" "$OUT/stored.db"
python3 - "$OUT/stored.db" <<'PY'
import sqlite3, sys, zlib
c = sqlite3.connect(sys.argv[1])
for i, data in list(c.execute("SELECT id, data FROM event_chunk")):
    c.execute("UPDATE event_chunk SET codec = 0, data = ? WHERE id = ?", (zlib.decompress(data), i))
c.commit()
PY
for cmd in "peak --json" "timeline --json" "lifetimes --json"; do
    "$HW" $cmd "$OUT/peak-O2.db" | jq -S 'del(.db)' >"$OUT/stored-a.json"
    "$HW" $cmd "$OUT/stored.db" | jq -S 'del(.db)' >"$OUT/stored-b.json"
    cmp -s "$OUT/stored-a.json" "$OUT/stored-b.json" || break
done
ok_cmd "the same log stored as it is (codec 0) gives the same peak, timeline and lifetimes" \
    cmp "$OUT/stored-a.json" "$OUT/stored-b.json"

# ---- a corrupt chunk: one message, exit 3, never a crash ---------------------------------------------
for how in "data = x'789c0000'" "raw_bytes = raw_bytes + 1" "events = events + 1" "data = zeroblob(0)" "codec = 7" "codec = 0"; do
    cp "$OUT/peak-O2.db" "$OUT/corrupt.db"
    sqlite3 "$OUT/corrupt.db" "UPDATE event_chunk SET $how WHERE id = 1"
    "$HW" timeline "$OUT/corrupt.db" >"$OUT/corrupt.out" 2>"$OUT/corrupt.err"
    is "$?:$(wc -l <"$OUT/corrupt.err"):$(grep -c "event chunk 1 is corrupt" "$OUT/corrupt.err")" "3:1:1" \
        "a corrupt chunk ($how): one message, exit 3"
done

# a corrupt log does not stop a snapshot's export, which then goes without the temporary values
"$HW" export -f json "$OUT/corrupt.db" >"$OUT/corrupt-export.json" 2>"$OUT/corrupt-export.err"
is "$?:$(jqr '.sample_types | length' "$OUT/corrupt-export.json"):$(grep -c 'is corrupt.*without the temporary values' "$OUT/corrupt-export.err")" "0:6:1" \
    "export of a snapshot with a corrupt log: a warning, and the six sample types without the log's"
"$HW" top "$OUT/corrupt.db" --sample-index temporary_objects >/dev/null 2>"$OUT/corrupt-top.err"
is "$?:$(grep -c 'event chunk 1 is corrupt' "$OUT/corrupt-top.err")" "3:1" "asked for temporary_objects, a corrupt log is an error"

# ---- a database without a log ---------------------------------------------------------------------
db="$OUT/nolog.db"
run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/events-O2" peak
for cmd in "timeline" "peak" "lifetimes" "top --at peak" "top --sample-index temporary_objects"; do
    "$HW" $cmd "$db" >/dev/null 2>"$OUT/nolog.err"
    is "$?:$(grep -c 'has no event log.*HEAPWATCH_EVENTS=1' "$OUT/nolog.err")" "3:1" "without a log, $cmd says how to record one"
done
# A process that ran with the log on but ended before its first chunk (killed at start-up, as
# SIGPIPE kills the head of a pipeline): the reports say that, not how to turn the log on.
cp "$OUT/peak-O2.db" "$OUT/nochunk.db"
sqlite3 "$OUT/nochunk.db" "DELETE FROM event_chunk; DELETE FROM meta WHERE key = 'event_log_end'"
for cmd in "timeline" "top --sample-index temporary_objects"; do
    "$HW" $cmd "$OUT/nochunk.db" >/dev/null 2>"$OUT/nochunk.err"
    is "$?:$(grep -c 'has no event log yet.*ran with HEAPWATCH_EVENTS=1 but wrote none' "$OUT/nochunk.err"):$(grep -c . "$OUT/nochunk.err")" \
       "3:1:1" "recorded with the log on, but no chunk written: $cmd says so"
done
# A process that ended normally with nothing sampled (a short run at the default rate): its log is
# there, and empty.
cp "$OUT/peak-O2.db" "$OUT/emptylog.db"
sqlite3 "$OUT/emptylog.db" "DELETE FROM event_chunk"
"$HW" timeline "$OUT/emptylog.db" >/dev/null 2>"$OUT/emptylog.err"
is "$?:$(grep -c 'has an empty event log.*made no allocation after the log began' "$OUT/emptylog.err"):$(grep -c . "$OUT/emptylog.err")" \
   "3:1:1" "a complete log with no event: timeline says it is empty, and why"
"$HW" top "$OUT/peak-O2.db" --at soon >/dev/null 2>"$OUT/badat.err"
is "$?:$(grep -c "bad --at 'soon'" "$OUT/badat.err")" "2:1" "a bad --at is a usage error"
"$HW" export -f json "$db" >"$OUT/nolog-export.json" 2>/dev/null
is "$(jqr '[.sample_types[].type] | length' "$OUT/nolog-export.json")" "6" \
    "without a log an export keeps its six sample types"
done_testing
