#!/usr/bin/env bash
# No plaintext on the wire: a marker string the guest wrote into memory
# (and the manifest's file names) must not appear in the TCP bytes between
# ferry-send and ferry-recv, captured by a relay; while the destination
# image does contain the marker (so the test would see it if it leaked).
source "$(dirname "$0")/lib.sh"
t_certs
G=$FERRY_BIN/ferry-guest
MARK="FERRY-PLAINTEXT-MARKER-$$-$RANDOM"
mkdir -p "$T/src" "$T/dst"
"$G" create --mem "$T/src/mem.img" --mem-size 16M --seed 3 >/dev/null
"$G" mark --mem "$T/src/mem.img" --page 100 --text "$MARK" >/dev/null
check "marker is in the source image" grep -qa "$MARK" "$T/src/mem.img"

t_start_recv recv "$T/dst" || t_done
python3 "$REPO/tests/relay.py" "$RECV_PORT" "$T/capture.bin" >"$T/relay.out" &
t_bg $!
for _ in $(seq 1 100); do grep -q port "$T/relay.out" && break; sleep 0.05; done
RELAY_PORT=$(awk '/port/ {print $2}' "$T/relay.out")
# shellcheck disable=SC2046
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RELAY_PORT" $(SEND_TLS) --mem "$T/src/mem.img" \
	--json >"$T/send.json" 2>"$T/send.log"
check "migration through the relay succeeds" [ "$(json_done "$T/send.json" result)" = ok ]
size=$(stat -c %s "$T/capture.bin" 2>/dev/null || echo 0)
check "relay captured the session ($size bytes)" [ "$size" -gt 100000 ]
check "marker arrived at the destination" grep -qa "$MARK" "$T/dst/mem.img"
check "marker is not in the captured TCP bytes" bash -c "! grep -qa '$MARK' '$T/capture.bin'"
check "file name (manifest) is not in the captured TCP bytes" bash -c "! grep -qa 'mem.img' '$T/capture.bin'"
check "captured bytes start with a TLS record" bash -c "head -c 3 '$T/capture.bin' | od -An -tx1 | grep -q '16 03 0'"
t_done
