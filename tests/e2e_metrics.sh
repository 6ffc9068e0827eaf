#!/usr/bin/env bash
# --metrics on both daemons (issue 8), on loopback: a receiver and a
# bandwidth-capped sender (64 MiB memory image with the standard page mix
# + 64 MiB random disk at 20 MiB/s, a few seconds) both serve Prometheus
# text on 127.0.0.1 port 0 (the port read from their log).  Scraped about
# every 0.4 s during the migration and once after (the sender keeps
# serving thanks to --metrics-linger); checks:
#  - every scrape is 200, text/plain; version=0.0.4, and parses as the
#    exposition format (HELP and TYPE before a family's samples, every
#    sample `name{labels} value`, histogram buckets cumulative);
#  - at least two scrapes during the migration; logical bytes strictly
#    increase between the first and last of them on both sides, and never
#    go down;
#  - after the end: receiver sessions_total{result="ok"} 1, active 0;
#    sender result{result="ok"} 1, downtime histogram count 1; pages by
#    kind sum to the units sent (round events) on both sides; logical
#    bytes equal on both sides and to the done event's;
#  - another path is a 404; the sender ends its linger on SIGTERM, exit 0.
# Usage: FERRY_BIN=build bash tests/e2e_metrics.sh
source "$(dirname "$0")/lib.sh"
t_certs
MIB=1048576

mkdir -p "$T/src" "$T/dst"
"$FERRY_BIN/ferry-guest" create --mem "$T/src/mem.img" --mem-size 64M --seed 8 >/dev/null ||
	{ not_ok "ferry-guest create"; t_done; }
head -c $((64 * MIB)) /dev/urandom >"$T/src/disk.img"

cat >"$T/prom.py" <<'PY'
"""prom.py scrape URL OUT: GET URL; OUT gets the body, OUT.status "CODE CONTENT-TYPE".
prom.py check FILE: exit 0 when FILE parses as Prometheus text format 0.0.4.
prom.py get FILE NAME [LABEL=VALUE]: print the sample's value ("" if absent)."""
import re, sys, urllib.error, urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')

def parse(text):
    """{(name, frozenset(labels))): value}, or raise ValueError."""
    if not text.endswith("\n"):
        raise ValueError("no final newline")
    types, helps, out, last_family = {}, set(), {}, None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4:
                raise ValueError("line %d: short comment" % n)
            fam = parts[2]
            if line.startswith("# TYPE "):
                if parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise ValueError("line %d: bad type" % n)
                if fam in types:
                    raise ValueError("line %d: second TYPE for %s" % (n, fam))
                types[fam] = parts[3]
            else:
                helps.add(fam)
            continue
        if line.startswith("#") or line == "":
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("line %d: not a sample: %r" % (n, line))
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        fam = name
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and types.get(name[:-len(suf)]) == "histogram":
                fam = name[:-len(suf)]
        if fam not in types or fam not in helps:
            raise ValueError("line %d: %s sampled before its HELP and TYPE" % (n, name))
        pairs, pos = [], 0
        while pos < len(labels):
            lm = LABEL.match(labels, pos)
            if not lm:
                raise ValueError("line %d: bad labels %r" % (n, labels))
            pairs.append((lm.group(1), lm.group(2)))
            pos = lm.end()
        float(value)
        key = (name, frozenset(pairs))
        if key in out:
            raise ValueError("line %d: duplicate sample" % n)
        out[key] = float(value)
    for fam, t in types.items():
        if t != "histogram":
            continue
        b = sorted(((float(dict(k[1])["le"]), v) for k, v in out.items() if k[0] == fam + "_bucket"))
        if not b or b[-1][0] != float("inf") or any(x[1] > y[1] for x, y in zip(b, b[1:])):
            raise ValueError("%s: buckets missing, without +Inf or not cumulative" % fam)
        if b[-1][1] != out.get((fam + "_count", frozenset())):
            raise ValueError("%s: +Inf bucket differs from _count" % fam)
    return out

def main():
    cmd = sys.argv[1]
    if cmd == "scrape":
        try:
            r = urllib.request.urlopen(sys.argv[2], timeout=5)
            code, ctype, body = r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            code, ctype, body = e.code, e.headers.get("Content-Type", ""), e.read()
        open(sys.argv[3], "wb").write(body)
        open(sys.argv[3] + ".status", "w").write("%d %s\n" % (code, ctype))
        return 0
    text = open(sys.argv[2]).read()
    if cmd == "check":
        try:
            parse(text)
        except ValueError as e:
            print(e)
            return 1
        return 0
    if cmd == "get":
        want = frozenset(tuple(a.split("=", 1)) for a in sys.argv[4:])
        v = parse(text).get((sys.argv[3], want))
        print("" if v is None else ("%d" % v if v == int(v) else v))
        return 0
    if cmd == "sum":   # sum of every sample of a name
        print("%d" % sum(v for k, v in parse(text).items() if k[0] == sys.argv[3]))
        return 0
    return 2

sys.exit(main())
PY
prom() { python3 "$T/prom.py" "$@"; }

# port_from_log LOGFILE: the port of "metrics on http://127.0.0.1:PORT/metrics".
port_from_log() {
	local i p
	for i in $(seq 1 100); do
		p=$(sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$1" 2>/dev/null | head -1)
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.05
	done
	return 1
}

t_start_recv recv "$T/dst" --metrics 127.0.0.1:0 || t_done
RMP=$(port_from_log "$T/recv.log") || { not_ok "receiver logs its metrics port"; diag <"$T/recv.log"; t_done; }
check "receiver serves metrics on 127.0.0.1 port 0 (got $RMP)" [ "$RMP" -gt 0 ]
check "listening event names the metrics address" grep -q "\"metrics\": *\"127.0.0.1:$RMP\"" "$T/recv.json"
RURL=http://127.0.0.1:$RMP/metrics

prom scrape "$RURL" "$T/r0.txt"
check "receiver before any migration: 200 text/plain; version=0.0.4" \
	grep -q '^200 text/plain; version=0.0.4' "$T/r0.txt.status"
check "receiver before any migration: active 0" [ "$(prom get "$T/r0.txt" ferry_recv_sessions_active)" = 0 ]

# shellcheck disable=SC2046
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --json --no-progress \
	--mem "$T/src/mem.img" --disk "$T/src/disk.img" --bandwidth 20MiB/s \
	--metrics 127.0.0.1:0 --metrics-linger 60s >"$T/send.json" 2>"$T/send.log" &
SEND_PID=$!
t_bg "$SEND_PID"
SMP=$(port_from_log "$T/send.log") || { not_ok "sender logs its metrics port"; diag <"$T/send.log"; t_done; }
SURL=http://127.0.0.1:$SMP/metrics

# Scrape both until the sender's done event (at most 60 s).
n=0
for _ in $(seq 1 150); do
	grep -q '"event": *"done"' "$T/send.json" && break
	n=$((n + 1))
	prom scrape "$RURL" "$T/r$n.txt"
	prom scrape "$SURL" "$T/s$n.txt"
	sleep 0.4
done
check "the sender's done event came" grep -q '"event": *"done"' "$T/send.json"
check "migration result ok" [ "$(json_done "$T/send.json" result)" = ok ]
prom scrape "$RURL" "$T/rend.txt"
prom scrape "$SURL" "$T/send.txt"

bad=0
for f in "$T"/r[0-9]*.txt "$T"/s[0-9]*.txt "$T/rend.txt" "$T/send.txt"; do
	grep -q '^200 text/plain; version=0.0.4' "$f.status" || { echo "$f: $(cat "$f.status")"; bad=1; }
	out=$(prom check "$f") || { echo "$f: $out"; bad=1; }
done >"$T/parse.out"
check "every scrape: 200, text/plain; version=0.0.4, parses as the exposition format" [ "$bad" -eq 0 ]
[ "$bad" -eq 0 ] || diag <"$T/parse.out"

# Scrapes taken during the migration: receiver session active and the
# sender not done (its own state gauge).
during=()
for i in $(seq 1 "$n"); do
	[ "$(prom get "$T/r$i.txt" ferry_recv_sessions_active)" = 1 ] || continue
	[ "$(prom get "$T/s$i.txt" ferry_send_state state=done)" = 0 ] || continue
	during+=("$i")
done
check "at least two scrapes during the migration (${#during[@]})" [ "${#during[@]}" -ge 2 ]
if [ "${#during[@]}" -ge 2 ]; then
	for side in r:ferry_recv_logical_bytes_total s:ferry_send_logical_bytes_total; do
		p=${side%%:*} name=${side#*:} vals=()
		for i in "${during[@]}"; do vals+=("$(prom get "$T/$p$i.txt" "$name")"); done
		first=${vals[0]} last=${vals[${#vals[@]}-1]} mono=1 prev=0
		for v in "${vals[@]}"; do [ "$v" -ge "$prev" ] || mono=0; prev=$v; done
		check "$name strictly increases during the migration ($first -> $last)" [ "$last" -gt "$first" ]
		check "$name never goes down (${vals[*]})" [ "$mono" -eq 1 ]
	done
	i=${during[${#during[@]}-1]}
	check "receiver wire bytes move during the migration" \
		[ "$(prom get "$T/r$i.txt" ferry_recv_wire_bytes_total)" -gt 0 ]
fi

rget() { prom get "$T/rend.txt" "$@"; }
sget() { prom get "$T/send.txt" "$@"; }
check "after: receiver sessions_total{result=\"ok\"} is 1" [ "$(rget ferry_recv_sessions_total result=ok)" = 1 ]
check "after: receiver sessions_total{result=\"network\"} is 0" \
	[ "$(rget ferry_recv_sessions_total result=network)" = 0 ]
check "after: receiver sessions_active is 0" [ "$(rget ferry_recv_sessions_active)" = 0 ]
check "after: sender result{result=\"ok\"} is 1" [ "$(sget ferry_send_result result=ok)" = 1 ]
check "after: sender downtime histogram count is 1" [ "$(sget ferry_send_downtime_seconds_count)" = 1 ]
check "after: sender rounds >= 2 (pre-copy + final)" [ "$(sget ferry_send_rounds)" -ge 2 ]
check "after: no pauses or resumes" [ "$(sget ferry_send_pauses_total)$(sget ferry_send_resumes_total)$(rget ferry_recv_pauses_total)$(rget ferry_recv_resumes_total)" = 0000 ]
units=$(python3 -c '
import json,sys
print(sum(json.loads(l).get("units_sent", 0) for l in open(sys.argv[1])
          if l.startswith("{") and json.loads(l).get("event") == "round"))' "$T/send.json")
spages=$(prom sum "$T/send.txt" ferry_send_pages_total)
rpages=$(prom sum "$T/rend.txt" ferry_recv_pages_total)
check "sender pages by kind sum to the units sent ($spages = $units)" [ "$spages" = "$units" ]
check "receiver pages by kind sum to the units sent ($rpages = $units)" [ "$rpages" = "$units" ]
check "several page kinds occurred (zero and raw > 0)" \
	[ "$(sget ferry_send_pages_total kind=zero)" -gt 0 -a "$(sget ferry_send_pages_total kind=raw)" -gt 0 ]
slog=$(sget ferry_send_logical_bytes_total)
check "logical bytes: sender = receiver = done event ($slog)" \
	[ "$slog" = "$(rget ferry_recv_logical_bytes_total)" -a "$slog" = "$(json_done "$T/send.json" logical_bytes)" ]
check "sender wire bytes >= 64 MiB (random disk)" [ "$(sget ferry_send_wire_bytes_total)" -ge $((64 * MIB)) ]

for u in "http://127.0.0.1:$RMP/" "http://127.0.0.1:$RMP/metricsx" "http://127.0.0.1:$SMP/nope"; do
	prom scrape "$u" "$T/404.txt"
	check "404 on $u" grep -q '^404 ' "$T/404.txt.status"
done
prom scrape "$RURL?x=1" "$T/q.txt"
check "a query string still reaches /metrics" grep -q '^200 ' "$T/q.txt.status"

kill -TERM "$SEND_PID"
wait "$SEND_PID"
check "ferry-send ends its --metrics-linger on SIGTERM with exit 0" [ $? -eq 0 ]
kill -TERM "$RECV_PID"
wait "$RECV_PID"
check "ferry-recv stops on SIGTERM with exit 0" [ $? -eq 0 ]
t_no_sanitizer_reports "the daemons' logs"
t_done
