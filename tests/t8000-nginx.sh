#!/bin/sh
# A real server under load: nginx (Debian's) with a master and two workers, under the shim,
# serving ab on 127.0.0.1. heapwatch snap reaches each worker during the load (they are fork
# children that have taken no snapshot yet, and SIGUSR2 is nginx's own upgrade signal), each
# process writes the database its settings name (nginx rewrites its environment block for its
# process title, which once renamed them '.1289'), ab sees no failed request, and nginx stops
# cleanly, each process leaving its exit snapshot.
. ./lib.sh
plan 12

if ! command -v nginx >/dev/null 2>&1 || ! command -v ab >/dev/null 2>&1; then
    for i in $(seq 12); do skip "nginx or ab (apache2-utils) not installed: make deps"; done
    exit 0
fi
dir="$OUT/db"
mkdir -p "$dir" "$OUT/tmp" "$OUT/logs"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=""
[ "$(id -u)" -eq 0 ] && user="user root;"  # as root, workers would become nobody, who cannot write $dir
cat >"$OUT/nginx.conf" <<CONF
$user
worker_processes 2;
pid $OUT/nginx.pid;
error_log $OUT/logs/error.log;
events { worker_connections 128; }
http {
    access_log off;
    client_body_temp_path $OUT/tmp/body;
    proxy_temp_path $OUT/tmp/proxy;
    fastcgi_temp_path $OUT/tmp/fastcgi;
    uwsgi_temp_path $OUT/tmp/uwsgi;
    scgi_temp_path $OUT/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 "hello from nginx\n"; }
    }
}
CONF
(cd "$OUT" && exec setsid env LD_PRELOAD="$SHIM" HEAPWATCH_OUT="$dir/ng.%p.db" \
    nginx -p "$OUT" -c "$OUT/nginx.conf" -g 'daemon off; master_process on;' >"$OUT/nginx.out" 2>"$OUT/nginx.err") &
master=$!
trap 'env kill -s KILL -- "-$master" 2>/dev/null' EXIT INT TERM
t=0
until ab -n 1 "http://127.0.0.1:$port/" >/dev/null 2>&1 || [ $t -ge 100 ]; do sleep 0.1; t=$((t + 1)); done
workers=$(pgrep -P "$master" | sort -n)
is "$(echo $workers | wc -w)" 2 "nginx under the shim: a master and two workers serve"

ab -n 30000 -c 8 "http://127.0.0.1:$port/" >"$OUT/ab.out" 2>&1 &
abpid=$!
sleep 0.5
reached=0
for w in $workers; do
    "$HW" snap "$w" --json --timeout 60 >"$OUT/snap.$w.json" 2>"$OUT/snap.$w.err" &&
        [ "$(jq -r .db "$OUT/snap.$w.json")" = "$dir/ng.$w.db" ] && reached=$((reached + 1))
done
running=$(kill -0 $abpid 2>/dev/null && echo yes || echo no)
is "$reached $running" "2 yes" "heapwatch snap reaches each worker during the load (ab still running), in the database its settings name"
"$HW" snap "$master" --json --timeout 60 >"$OUT/snap.master.json" 2>"$OUT/snap.master.err"
is "$? $(jq -r .db "$OUT/snap.master.json")" "0 $dir/ng.$master.db" "... and the master"
wait_for $abpid 120
is "$(sed -n 's/^Failed requests: *//p' "$OUT/ab.out") $(sed -n 's/^Complete requests: *//p' "$OUT/ab.out")" "0 30000" \
   "ab: 30000 requests, none failed"
for w in $workers; do
    is "$("$HW" ls "$dir/ng.$w.db" --json | jq -r '"\(.pid) \([.snapshots[].trigger] | join(" "))"')" "$w signal" \
       "worker $w: its own database, the snap's snapshot in it"
done

kill -QUIT "$master"
t=0
while kill -0 "$master" 2>/dev/null && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done
ok_cmd "nginx stops on SIGQUIT under the shim" ! kill -0 "$master"
kill -KILL "-$master" 2>/dev/null
bad=""
for f in "$dir"/ng.*.db; do
    p=$(basename "$f" .db); p=${p#ng.}
    [ "$("$HW" ls "$f" --json | jq -r '"\(.pid) \(.snapshots[-1].trigger)"')" = "$p exit" ] || bad="$bad $(basename "$f")"
done
is "${bad:-none}" none "every database is named after its process and ends with an exit snapshot"
is "$(ls "$dir" | grep -c '^ng\.[0-9]*\.db$')" 3 "three databases: the master and the two workers"
is "$(ls -a "$OUT" "$dir" | grep -c '^\.[0-9]')" 0 "no database named after a rewritten environment ('.1289')"
is "$(grep -c 'takes signal 12 for itself (a handler of its own, or SIG_IGN); snapshots on signal are off' "$OUT/nginx.err")" 1 "the shim says once that SIGUSR2 is nginx's"
is "$(grep -v 'takes signal 12 for itself' "$OUT/nginx.err" | grep -c .)" 0 "and nothing else"
done_testing
