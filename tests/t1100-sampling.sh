#!/bin/sh
# Sampled mode is statistically right: the unbiased estimates of alloc and inuse, objects and
# bytes, per site, are close to the truth for small blocks, large blocks and a site that mixes
# both (Go issue 26618), for several seeds. Seeds are fixed, so each run is reproducible; the
# tolerances are 4 standard deviations or more of each estimate at these sample counts.
. ./lib.sh
SEEDS="1 2 3 4 5"
RATE=65536
plan $((5 * 12 + 4 + 2))

# est JSON FUNCTION VALUE
est() { jq --arg f "$2" --arg v "$3" '[.rows[] | select(.function == $f) | .flat[$v]] | add // 0' "$1"; }
# within GOT TRUTH PERCENT -> status
within() { awk -v g="$1" -v t="$2" -v p="$3" 'BEGIN { d = g - t; if (d < 0) d = -d; exit !(d <= t * p / 100) }'; }
check() {  # JSON FUNCTION VALUE TRUTH PERCENT DESCRIPTION
    got=$(est "$1" "$2" "$3")
    within "$got" "$4" "$5"
    r=$?
    ok $r "$6: $2 $3 $got within $5% of $4"
}

sums=""
for seed in $SEEDS; do
    db="$OUT/s$seed.db"
    run_shim "$db" HEAPWATCH_SAMPLE_RATE=$RATE HEAPWATCH_SEED=$seed -- "$BIN/sampling-O2"
    "$HW" top "$db:1" --by function --json > "$OUT/s$seed.json"
    j="$OUT/s$seed.json"
    check "$j" alloc_small alloc_space 12800000 25 "seed $seed"
    check "$j" alloc_small inuse_space 6400000 30 "seed $seed"
    check "$j" alloc_small alloc_objects 200000 25 "seed $seed"
    check "$j" alloc_large alloc_space 78643200 15 "seed $seed"
    check "$j" alloc_large inuse_space 26214400 25 "seed $seed"
    check "$j" alloc_large alloc_objects 300 15 "seed $seed"
    check "$j" alloc_mixed alloc_space 110251200 10 "seed $seed"
    check "$j" alloc_mixed alloc_objects 100000 25 "seed $seed"
    check "$j" alloc_mixed inuse_space 6393600 30 "seed $seed"
    check "$j" alloc_mixed inuse_objects 99900 30 "seed $seed"
    # sampling only chooses who gets a stack: the live table is exact whatever the rate
    "$HW" ls "$db" --json > "$OUT/ls$seed.json"
    live=$(jq '.snapshots[0].live_objects' "$OUT/ls$seed.json")
    ok_cmd "seed $seed: every live block is in the live table ($live)" test "$live" -ge $((100000 + 100 + 99900))
    ok_cmd "seed $seed: live bytes are exact, not estimated" \
       test "$(jq '.snapshots[0].live_bytes' "$OUT/ls$seed.json")" -ge $((6400000 + 26214400 + 6393600))
    sums="$sums $(est "$j" alloc_small alloc_space) $(est "$j" alloc_mixed alloc_objects)"
done

# Over the seeds, the mean estimate is much closer to the truth.
mean() { echo "$sums" | awk -v k="$1" '{ s = 0; n = 0; for (i = k; i <= NF; i += 2) { s += $i; n++ } print s / n }'; }
within "$(mean 1)" 12800000 8; ok $? "mean over seeds of small alloc_space within 8% ($(mean 1))"
within "$(mean 2)" 100000 10; ok $? "mean over seeds of mixed alloc_objects within 10% ($(mean 2))"

# Default rate (512 KiB): large blocks are sampled often and weighted right.
db="$OUT/default.db"
run_shim "$db" HEAPWATCH_SEED=7 -- "$BIN/sampling-O2"
"$HW" top "$db:1" --by function --json > "$OUT/default.json"
check "$OUT/default.json" alloc_large alloc_space 78643200 25 "default rate"
check "$OUT/default.json" alloc_mixed alloc_space 110251200 30 "default rate"

# Different seeds give different samples (the seed is used).
ok_cmd "different seeds sample differently" \
   test "$(est "$OUT/s1.json" alloc_small alloc_space)" != "$(est "$OUT/s2.json" alloc_small alloc_space)"
# The same seed gives the same estimate (reproducible).
run_shim "$OUT/again.db" HEAPWATCH_SAMPLE_RATE=$RATE HEAPWATCH_SEED=1 -- "$BIN/sampling-O2"
"$HW" top "$OUT/again.db:1" --by function --json > "$OUT/again.json"
is "$(est "$OUT/again.json" alloc_small alloc_space)" "$(est "$OUT/s1.json" alloc_small alloc_space)" "the same seed reproduces the estimate"
