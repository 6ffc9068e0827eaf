#!/usr/bin/env bash
# Issue 5: ferry-send --libvirt-uri/--domain and ferry-recv --libvirt-uri
# with libvirt's in-process test driver (tests/data/libvirt: a source node
# with one domain per failing check and one that passes all, and a
# destination node).  No libvirtd.
#   - each failing domain is refused with its check's code and message
#     before any page moves (source checks: before connecting at all);
#   - --check-only prints the table, or a JSON "checks" event;
#   - pass-all migrates, its images are equal, the receiver defined and
#     started it, and --undefine-source removed it from the source;
#   - a failure after switchover leaves the source domain running and
#     nothing defined or left on the destination.
source "$(dirname "$0")/lib.sh"
t_certs
mkdir -p "$T/src" "$T/dst"
sed "s|@DIR@|$T|g" "$REPO/tests/data/libvirt/src-node.xml" >"$T/src-node.xml"
cp "$REPO/tests/data/libvirt/dst-node.xml" "$T/dst-node.xml"
for d in pass-all cdrom hostdev shareable readonly blockdev cache vcpus memory cpumodel arch \
	same-file disk-space late clash; do
	for v in vda vdb; do head -c 2M /dev/urandom >"$T/src/$d-$v.img"; done
done
touch "$T/src/install.iso"
truncate -s 900G "$T/src/disk-space-vdb.img"
# Two copies of pass-all that fail late: "late" loses its state file before
# switchover; "clash" already exists at the destination (another domain of
# that name), so defining it after commit fails there.
python3 - "$T/src-node.xml" "$T/dst-node.xml" <<'PY'
import re, sys
src, dst = sys.argv[1], sys.argv[2]
s = open(src).read()
m = re.search(r"  <domain type='test'>\s*<name>pass-all</name>.*?</domain>\n", s, re.S)
copies = ""
for n in ("late", "clash"):
    copies += m.group(0).replace("<name>pass-all</name>", "<name>%s</name>" % n).replace("pass-all-v", n + "-v")
open(src, "w").write(s.replace("</node>", copies + "</node>"))
d = open(dst).read()
other = ("  <domain type='test'>\n    <name>clash</name>\n    <memory unit='MiB'>64</memory>\n"
         "    <vcpu>1</vcpu>\n    <os><type arch='i686'>hvm</type></os>\n  </domain>\n")
open(dst, "w").write(d.replace("</node>", other + "</node>"))
PY

t_start_recv recv "$T/dst" --libvirt-uri "test://$T/dst-node.xml" || t_done
SRC_URI="test://$T/src-node.xml"
# send NAME ARGS...: ferry-send for domain NAME; JSON in $T/NAME.json, log in $T/NAME.log.
send() {
	local name=$1; shift
	# shellcheck disable=SC2046
	"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --libvirt-uri "$SRC_URI" \
		--domain "$name" --json "$@" >"$T/$name.json" 2>"$T/$name.log"
}
sessions() { grep -c '"event":"done"' "$T/recv.json"; }
# ckv DESCRIPTION 'CONDITION': one TAP line for a compound condition.
ckv() { local d=$1; shift; if eval "$*"; then ok "$d"; else not_ok "$d"; fi; }
checkname() { case $1 in blockdev) echo file-backed ;; vcpus) echo host-cpus ;;
	cpumodel) echo cpu-model ;; arch) echo cpu-arch ;; *) echo "$1" ;; esac; }
field() { python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
d = [e for e in ev if e.get("event") == sys.argv[2]]
print(d[-1].get(sys.argv[3], "") if d else "")' "$@"; }

# ---- refused by a source check: before any connection
for pair in cdrom:VIRT_CDROM hostdev:VIRT_HOSTDEV shareable:VIRT_SHAREABLE \
	readonly:VIRT_READONLY blockdev:VIRT_NOTFILE cache:VIRT_CACHE; do
	name=${pair%%:*} code=${pair#*:}
	before=$(grep -c "TLS session with" "$T/recv.log")
	send "$name"
	rc=$?
	ckv "$name: refused (exit 3, got $rc), code $code ($(field "$T/$name.json" done code))" \
		'[ "$rc" -eq 3 ] && [ "$(field "$T/$name.json" done code)" = "$code" ]'
	err=$(field "$T/$name.json" done error)
	check "$name: the message names the check and the device ($err)" \
		grep -Eq "check $(checkname "$name"): .*(vd[ab]|hdc|pci|host)" <<<"$err"
	check "$name: refused before connecting (no TLS session at the receiver)" \
		[ "$(grep -c "TLS session with" "$T/recv.log")" -eq "$before" ]
done

# ---- refused by a destination check: CHECKS then REFUSE, no page sent
for pair in vcpus:VIRT_CPUS memory:VIRT_MEMORY cpumodel:VIRT_CPU_MODEL arch:VIRT_ARCH \
	same-file:REFUSE_SAMEFILE disk-space:REFUSE_SPACE; do
	name=${pair%%:*} code=${pair#*:}
	[ "$name" = same-file ] && ln -f "$T/src/same-file-vda.img" "$T/dst/same-file-vda.img"
	n0=$(sessions)
	send "$name"
	rc=$?
	ckv "$name: refused by the receiver (exit 3, got $rc), code $code" \
		'[ "$rc" -eq 3 ] && grep -q "($code)" <<<"$(field "$T/$name.json" done error)"'
	check "$name: the receiver names the check ($(field "$T/recv.json" done error))" \
		grep -q "check $(checkname "$name")" <<<"$(field "$T/recv.json" done error)"
	ckv "$name: the receiver's session ended refused with no byte applied" \
		'[ "$(sessions)" -eq $((n0 + 1)) ] && [ "$(field "$T/recv.json" done logical_bytes)" = 0 ]'
	rm -f "$T/dst/same-file-vda.img"
	check "$name: destination directory empty" [ -z "$(ls -A "$T/dst")" ]
done

# ---- --check-only: the table, and its JSON
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --libvirt-uri "$SRC_URI" \
	--domain pass-all --check-only >"$T/co-pass.txt" 2>"$T/co-pass.log"
rc=$?
check "check-only pass-all: exit 0 ($rc)" [ "$rc" -eq 0 ]
check "check-only pass-all: the table has a row per check, all pass" python3 - "$T/co-pass.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip() and not l.startswith("CHECK")]
names = [r[0] for r in rows]
need = "cdrom hostdev shareable readonly file-backed cache same-file cpu-arch cpu-model host-cpus memory disk-space name-free".split()
sys.exit(0 if all(n in names for n in need) and all("pass" in r for r in rows) else 1)
PY
send vcpus --check-only
rc=$?
check "check-only vcpus: exit 3 ($rc)" [ "$rc" -eq 3 ]
check "check-only vcpus: JSON checks event: host-cpus fails with VIRT_CPUS, the rest pass" \
	python3 - "$T/vcpus.json" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
c = [e for e in ev if e.get("event") == "checks"][-1]
rows = {r["check"]: r for r in c["checks"]}
bad = [n for n, r in rows.items() if r["result"] != "pass"]
ok = (c["ok"] is False and c["domain"] == "vcpus" and c["destination_checked"] is True
      and bad == ["host-cpus"] and rows["host-cpus"]["code"] == "VIRT_CPUS"
      and "8 vCPUs" in rows["host-cpus"]["source"] and "4" in rows["host-cpus"]["destination"]
      and len(rows) >= 13)
sys.exit(0 if ok else 1)
PY
check "check-only: nothing written at the destination" [ -z "$(ls -A "$T/dst")" ]
send cache --check-only --force-check cache
rc=$?
check "check-only cache --force-check cache: the row says waived" \
	python3 - "$T/cache.json" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
c = [e for e in ev if e.get("event") == "checks"][-1]
rows = {r["check"]: r for r in c["checks"]}
sys.exit(0 if rows["cache"]["result"] == "waived" else 1)
PY
check "check-only cache --force-check cache: exit 0 ($rc)" [ "$rc" -eq 0 ]
send same-file --force-check same-file
rc=$?
ckv "same-file cannot be waived: usage error (exit 2, got $rc)" \
	'[ "$rc" -eq 2 ] && [ "$(field "$T/same-file.json" done code)" = USAGE ]'

# ---- pass-all migrates; defined and running at the destination; undefined here
send pass-all --undefine-source
rc=$?
check "pass-all: migrates (exit $rc)" [ "$rc" -eq 0 ]
for v in vda vdb; do
	check "pass-all: $v image equal (cmp)" cmp "$T/src/pass-all-$v.img" "$T/dst/pass-all-$v.img"
done
ckv "pass-all: the receiver defined and started it ($(field "$T/recv.json" done domain_state))" \
	'[ "$(field "$T/recv.json" done domain)" = pass-all ] &&
	 [ "$(field "$T/recv.json" done domain_state)" = running ]'
check "pass-all: gone from the source with --undefine-source ($(field "$T/pass-all.json" done source_domain_state))" \
	[ "$(field "$T/pass-all.json" done source_domain_state)" = undefined ]
check "pass-all: no staging file left" [ "$(t_staging_left "$T/dst")" -eq 0 ]

# ---- a failure after switchover: the state file is gone when the guest pauses
head -c 64K /dev/urandom >"$T/late.state"
send late --state "$T/late.state" --bandwidth 1MiB/s --completion-timeout-per-gib 10000s &
SPID=$!
t_bg "$SPID"
for _ in $(seq 1 100); do grep -q '"state":"precopy"' "$T/late.json" 2>/dev/null && break; sleep 0.05; done
rm -f "$T/late.state"
wait "$SPID"
rc=$?
ckv "late: fails after the pause (exit $rc; $(field "$T/late.json" done error))" \
	'[ "$rc" -ne 0 ] && grep -q "\"state\":\"switchover\"" "$T/late.json"'
check "late: the source domain runs again ($(field "$T/late.json" done source_domain_state))" \
	[ "$(field "$T/late.json" done source_domain_state)" = running ]
sleep 0.5
ckv "late: nothing defined at the destination ($(field "$T/recv.json" done domain_state))" \
	'[ "$(field "$T/recv.json" done domain)" = late ] &&
	 [ "$(field "$T/recv.json" done domain_state)" = "not defined" ]'
check "late: no image of it at the destination" [ -z "$(ls -A "$T/dst" | grep late)" ]

# ---- a domain of that name is defined at the destination already
send clash
rc=$?
ckv "clash: refused at pre-flight, code VIRT_EXISTS (exit $rc)" \
	'[ "$rc" -eq 3 ] && grep -q "(VIRT_EXISTS)" <<<"$(field "$T/clash.json" done error)"'
check "clash: nothing of it written at the destination" [ -z "$(ls -A "$T/dst" | grep clash)" ]

# ---- waived: defining the domain at the destination fails after the images landed
send clash --force-check name-free
rc=$?
ckv "clash: the receiver could not define it: the sender fails (exit $rc; $(field "$T/clash.json" done error))" \
	'[ "$rc" -ne 0 ] && grep -q "clash" <<<"$(field "$T/clash.json" done error)"'
check "clash: the source domain runs again ($(field "$T/clash.json" done source_domain_state))" \
	[ "$(field "$T/clash.json" done source_domain_state)" = running ]
check "clash: the committed images were removed from the destination" \
	[ -z "$(ls -A "$T/dst" | grep clash)" ]
check "clash: the receiver logged why ($(grep -o "clash.*images were removed" "$T/recv.log" | head -1))" \
	grep -q "committed images were removed" "$T/recv.log"
check "receiver still running" kill -0 "$RECV_PID"
t_no_sanitizer_reports "the daemons' logs"
t_done
