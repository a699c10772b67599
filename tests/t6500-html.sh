#!/bin/sh
# heapwatch html: one self-contained page, checked in a real browser (Debian's chromium,
# headless; `make deps` installs it). The page takes its view, search and zoom from the URL
# hash, and marks its flame graph's frames with data attributes (name, value, width), so the
# DOM chromium dumps after the scripts ran says what a user would see. A screenshot of each
# view is saved in this test's output directory for a reviewer.
. ./lib.sh
plan 26

if ! command -v chromium >/dev/null 2>&1; then
    for i in $(seq 26); do skip "chromium not installed (make deps)"; done
    done_testing
    exit $?
fi
# dom FILE HASH: the page's DOM after its scripts ran, on one line (attributes such as a
# frame's title hold newlines)
dom() { timeout 60 chromium --headless --no-sandbox --disable-gpu --window-size=1200,900 --virtual-time-budget=8000 \
    --dump-dom "file://$1#$2" 2>/dev/null | tr '\n' ' '; }
shot() { timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,900 \
    --virtual-time-budget=8000 --screenshot="$3" "file://$1#$2" >/dev/null 2>&1; }
# frame DOMFILE NAME ATTR: ATTR of the first flame frame named NAME
frame() { grep -o "<div class=\"fr[^\"]*\"[^>]*data-name=\"$2\"[^>]*>" "$1" | head -n 1 | sed -n "s/.*$3=\"\\([^\"]*\\)\".*/\\1/p"; }
frame_class() { grep -o "<div class=\"fr[^\"]*\"[^>]*data-name=\"$2\"" "$1" | head -n 1 | sed 's/^<div class="\([^"]*\)".*/\1/'; }

# The demo service: growth, leaks, a cache; full mode, with the event log.
db="$OUT/demo.db"
run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 HEAPWATCH_EVENTS=1 -- "$BIN/demo_service-O2" 6
page="$OUT/demo.html"
"$HW" html "$db" --base "$db:1" -o "$page" 2>"$OUT/html.err"
is "$?:$(test -s "$page" && echo written)" "0:written" "html writes one file"
# (the one URL is SVG's namespace, an identifier the page never loads)
ok_cmd "it fetches nothing: no URL, no fetch, no XMLHttpRequest" \
    sh -c '! grep -Eo "https?://[^\"]*|fetch\(|XMLHttpRequest|<link |src=" "$1" | grep -vqx "http://www.w3.org/2000/svg"' _ "$page"

# load: no console error, and the page says it is ready
timeout 60 chromium --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 --virtual-time-budget=8000 \
    --dump-dom "file://$page" >"$OUT/load.dom" 2>"$OUT/load.log"
ok_cmd "the demo's report loads with no console error" ! grep -E 'CONSOLE.*(rror|Uncaught)|Uncaught' "$OUT/load.log"
ok_cmd "the page ran to its end" grep -q 'data-ready="1"' "$OUT/load.dom"

# the flame graph's root is the snapshot's total, across the whole width
total=$("$HW" top "$db" --json | jq '.total.inuse_space')
dom "$page" "view=flame" >"$OUT/flame.dom"
is "$(frame "$OUT/flame.dom" all data-value)" "$total" "the flame graph's root holds the snapshot's inuse_space ($total)"
root_w=$(frame "$OUT/flame.dom" all data-width)
ok_cmd "the root spans the whole graph ($root_w px)" test "${root_w%.*}" -ge 500
total_alloc=$("$HW" top "$db" --json | jq '.total.alloc_space')
dom "$page" "view=flame&type=alloc_space" >"$OUT/flame-alloc.dom"
is "$(frame "$OUT/flame-alloc.dom" all data-value)" "$total_alloc" "with type=alloc_space the root holds alloc_space ($total_alloc)"

# the top table shows top --json's numbers: its first row, as the page renders bytes
dom "$page" "view=top" >"$OUT/top.dom"
want=$("$HW" top "$db:latest" --by function --json | jq -r '.rows[0] | "\(.function) \(.flat.inuse_space)"')
got=$(grep -o '<tr><td class="name">[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td>' "$OUT/top.dom" | head -n 1 |
    sed 's/<tr><td class="name">\([^ <]*\)[^<]*<\/td>\(<td>[^<]*<\/td>\)\{6\}<td>\([^<]*\)<\/td>.*/\1 \3/')
bytes_of() { awk -v v="$1" 'BEGIN { u = "B KiB MiB GiB"; split(u, n, " "); i = 1; x = v; while (x >= 1024 && i < 4) { x /= 1024; i++ } if (i == 1) printf "%dB", x; else printf "%.2f%s", x, n[i] }'; }
is "$got" "$(echo "$want" | cut -d' ' -f1) $(bytes_of "$(echo "$want" | cut -d' ' -f2)")" "the top table's first row is top --json's ($want)"

# search highlights; zoom rescales
dom "$page" "view=flame&search=cache_put" >"$OUT/search.dom"
is "$(frame_class "$OUT/search.dom" cache_put)" "fr hl" "searching for cache_put highlights its frame"
is "$(frame_class "$OUT/search.dom" index_add)" "fr" "and not the others"
path=$(frame "$OUT/flame.dom" handle data-path)
w_before=$(frame "$OUT/flame.dom" cache_put data-width)
dom "$page" "view=flame&zoom=$path" >"$OUT/zoom.dom"
w_after=$(frame "$OUT/zoom.dom" cache_put data-width)
is "$(frame "$OUT/zoom.dom" handle data-width)" "$root_w" "zooming into handle gives it the whole width"
ok_cmd "and rescales its child cache_put ($w_before -> $w_after px)" \
    awk -v a="$w_before" -v b="$w_after" -v h="$(frame "$OUT/flame.dom" handle data-width)" -v r="$root_w" \
    'BEGIN { exit !(b > a && (b / a - r / h) ^ 2 < 0.0001) }'

# diff: the known grower in the growth colour; growth: growing sites first
dom "$page" "view=diff" >"$OUT/diff.dom"
ok_cmd "the diff shows cache_put, which grew, in the growth colour" sh -c 'grep -o "<div class=\"fr[^\"]*\"[^>]*data-name=\"cache_put\"" "$1" | grep -q "fr grow"' _ "$OUT/diff.dom"
dom "$page" "view=growth" >"$OUT/growth.dom"
first=$(grep -o '<td class="name">[^<]*</td><td>[a-z]*</td>' "$OUT/growth.dom" | head -n 2 | sed 's/.*<td>\([a-z]*\)<\/td>/\1/' | tr '\n' ' ')
is "$first" "growing growing " "the growth view lists the growing sites first"
ok_cmd "the growth view lists index_add and session_open, the demo's growers, among its first rows" \
    sh -c 'grep -o "<td class=\"name\">[^<]*</td><td>growing" "$1" | grep -q index_add && grep -o "<td class=\"name\">[^<]*</td><td>growing" "$1" | grep -q session_open' _ "$OUT/growth.dom"

for view in snapshots flame top diff growth leaks timeline owners types; do
    shot "$page" "view=$view" "$OUT/view-$view.png"
done
ok_cmd "a screenshot of each of the 9 views" test "$(ls "$OUT"/view-*.png | wc -l)" -eq 9

# heapwatch web: the same page from 127.0.0.1, any snapshot and base on request
"$HW" web "$OUT/demo.db" >"$OUT/web.out" 2>&1 &
web=$!
for i in $(seq 50); do grep -q "^heapwatch: serving" "$OUT/web.out" && break; sleep 0.1; done
url=$(sed -n 's/.* on \(http:[^ ]*\) .*/\1/p' "$OUT/web.out")
port=${url##*:}
port=${port%/}
ok_cmd "web listens on 127.0.0.1 only, on the port it prints ($url)" sh -c 'ss -ltn | grep -q "127.0.0.1:$1 " && ! ss -ltn | grep -Eq "(0.0.0.0|\*|\[::\]):$1 "' _ "$port"
get() { python3 -c 'import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=60); print(r.status); sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e: print(e.code); sys.stdout.write(e.read().decode())' "$1"; }
get "$url" >"$OUT/web-latest.html"
is "$(head -n 1 "$OUT/web-latest.html"):$(grep -c '"ls":{' "$OUT/web-latest.html")" "200:1" "GET / serves the latest snapshot's page"
get "${url}?snap=3&base=1" >"$OUT/web-diff.html"
is "$(head -n 1 "$OUT/web-diff.html"):$(grep -o '"diff":{"a":{"db":"[^"]*","snapshot":1' "$OUT/web-diff.html" | wc -l)" "200:1" \
    "GET /?snap=3&base=1 serves snapshot 3 with the diff from 1"
get "${url}?snap=99" >"$OUT/web-404.txt"
is "$(head -n 1 "$OUT/web-404.txt"):$(grep -c 'no such snapshot' "$OUT/web-404.txt")" "404:1" "a snapshot that does not exist: 404, and the server goes on"
timeout 60 chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=8000 --dump-dom "${url}?snap=3&base=1" 2>/dev/null | tr '\n' ' ' >"$OUT/web.dom"
ok_cmd "served, the page offers every snapshot and the base in pickers" \
    sh -c 'grep -q "<select id=\"psnap\">" "$1" && test "$(grep -o "<option value=\"[0-9][0-9]*\"" "$1" | wc -l)" -eq 14' _ "$OUT/web.dom"
kill $web 2>/dev/null
wait $web 2>/dev/null

# 131072 stacks: small, quick, and no heap contents
db="$OUT/many.db"
run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$BIN/manystacks-O0"
"$HW" html "$db" -o "$OUT/many.html" 2>/dev/null
is "$("$HW" top "$db" --by stack --json | jq '.rows | length >= 100000')" true "the database has over 100k stacks"
size=$(stat -c %s "$OUT/many.html")
ok_cmd "its report stays under 10 MB ($size bytes)" test "$size" -lt 10000000
dom "$OUT/many.html" "view=flame" >"$OUT/many.dom"
ms=$(sed -n 's/.*data-ms="\([0-9]*\)".*/\1/p' "$OUT/many.dom")
ok_cmd "and renders in under 3 s (${ms:-no} ms)" test "${ms:-99999}" -lt 3000
ok_cmd "the page holds no heap contents (the blocks' marker string)" ! grep -q HEAP_SECRET_7f3a "$OUT/many.html" "$OUT/many.dom"

# HTML's special characters in names: a template of a reference type, in a file with a quote
odd="$OUT/we\"ird"
mkdir -p "$odd"
cp progs/html_names.cpp "$odd/names.cpp"
g++ -O0 -g -o "$OUT/names" "$odd/names.cpp"
db="$OUT/names.db"
run_shim "$db" HEAPWATCH_SAMPLE_RATE=1 -- "$OUT/names"
"$HW" html "$db" -o "$OUT/names.html" 2>/dev/null
dom "$OUT/names.html" "view=flame&search=make_box" >"$OUT/names.dom"
ok_cmd "a name with <, > and & is shown as text, escaped in the DOM, and the page still works" \
    sh -c 'grep -q "data-name=\"void\* make_box&lt;int&amp;&gt;(int)\"" "$1" && grep -q "data-ready=\"1\"" "$1" && ! grep -q "<int&>" "$1"' _ "$OUT/names.dom"
done_testing
