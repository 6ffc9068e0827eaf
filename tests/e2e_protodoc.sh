#!/usr/bin/env bash
# The protocol constants in C against proto/PROTOCOL.md: every FT_* type
# (number, name), FERRY_* limit, resume label, PK_*/RSM_*/DK_* value and
# error code of src/common/err.h must appear with the same value in the
# document's tables and text, and the frame table in src/common/frame.c
# (payload min/max, direction) must match the table of section 4.
#
# One TAP line per group of constants; a failing line is followed by '#'
# lines naming each mismatch.  Needs only python3 (standard library).
source "$(dirname "$0")/lib.sh"

if ! command -v python3 >/dev/null; then
	echo "ok 1 - protodoc # SKIP python3 not found"
	echo "1..1"
	exit 0
fi

python3 - "$REPO" >"$T/report" 2>"$T/stderr" <<'PY'
import os
import re
import sys

REPO = sys.argv[1]
HDR = open(os.path.join(REPO, "proto/ferry_proto.h")).read()
ERRH = open(os.path.join(REPO, "src/common/err.h")).read()
FRAMEC = open(os.path.join(REPO, "src/common/frame.c")).read()
DOC = open(os.path.join(REPO, "proto/PROTOCOL.md")).read()


def strip_c_comments(s):
    s = re.sub(r"/\*.*?\*/", " ", s, flags=re.S)
    return re.sub(r"//[^\n]*", " ", s)


def c_eval(expr, names):
    """A C integer constant expression of the header: literals with u/l
    suffixes, + - * / << >> and parentheses, and known names."""
    e = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", expr.strip())
    for n in sorted(names, key=len, reverse=True):
        e = re.sub(r"\b%s\b" % n, "(%d)" % names[n], e)
    if not re.fullmatch(r"[0-9a-fA-FxX()+\-*/<> \t]*", e):
        raise ValueError("cannot evaluate %r" % expr)
    return int(eval(e.replace("/", "//"), {"__builtins__": {}}))


# ---- the C side -------------------------------------------------------------

hdr = strip_c_comments(HDR)
consts, strings = {}, {}
for m in re.finditer(r"^[ \t]*#define[ \t]+(\w+)[ \t]+(.+?)[ \t]*$", hdr, re.M):
    name, val = m.group(1), m.group(2)
    if val.startswith('"'):
        strings[name] = val.strip('"')
    else:
        try:
            consts[name] = c_eval(val, consts)
        except (ValueError, SyntaxError):
            pass
enums = {}
for body in re.findall(r"enum\s+\w+\s*\{(.*?)\}", hdr, re.S):
    nxt = 0
    for item in body.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            n, v = item.split("=", 1)
            nxt = c_eval(v, {**consts, **enums})
            n = n.strip()
        else:
            n = item
        enums[n] = nxt
        nxt += 1
consts.update(enums)

errs = {}
m = re.search(r"enum\s+ferr_code\s*\{(.*?)\}", strip_c_comments(ERRH), re.S)
for item in m.group(1).split(","):
    item = item.strip()
    if "=" in item:
        n, v = item.split("=", 1)
        errs[n.strip()] = c_eval(v, {})

ftab = {}
for m in re.finditer(r'\[FT_(\w+)\]\s*=\s*\{\s*"([^"]*)"\s*,\s*([^,]+),\s*([^,]+),\s*(FDIR_\w+)\s*\}',
                     strip_c_comments(FRAMEC)):
    ftab[m.group(1)] = (m.group(2), c_eval(m.group(3), consts), c_eval(m.group(4), consts),
                        m.group(5))

# ---- the document -----------------------------------------------------------

sections = {}          # "4.6" -> text, "4" -> text up to 4.1, "title" -> ...
cur = "0"
for line in DOC.splitlines(keepends=True):
    h = re.match(r"^#+\s+(\d+(?:\.\d+)*)\.?\s", line)
    if h:
        cur = h.group(1)
    sections[cur] = sections.get(cur, "") + line
DOCFLAT = re.sub(r"\s+", " ", DOC)


def tables(text):
    """Markdown tables in text: lists of rows (lists of cells, unquoted)."""
    out, cur_t = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(re.fullmatch(r"-+", c) for c in cells):
                continue
            if cur_t is None:
                cur_t = []
                out.append(cur_t)
            cur_t.append(cells)
        else:
            cur_t = None
    return out


def rows_with_field(sec, field):
    """Cells of the rows of section sec whose field column is `field`."""
    res = []
    for t in tables(sections.get(sec, "")):
        for r in t[1:]:
            if len(r) >= 3 and r[1] == "`%s`" % field:
                res.append(r)
    return res


UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def doc_eval(s):
    """'1 MiB + 4 KiB', '2^46', '16 MiB', '0x46525931', '1052672'."""
    e = s.strip().replace("\u2212", "-")
    e = re.sub(r"(\d+)\s*(KiB|MiB|GiB|TiB)", lambda m: "(%s*%d)" % (m.group(1), UNITS[m.group(2)]), e)
    e = e.replace("^", "**")
    if not re.fullmatch(r"[0-9a-fA-FxX()+\-* ]+", e):
        raise ValueError("cannot evaluate %r" % s)
    return int(eval(e, {"__builtins__": {}}))


def doc_range(cell):
    """'1..64 (`FERRY_MAX_DEVICES`)' or 'bytes, 1..2^46' -> (lo, hi)."""
    m = re.search(r"(\d[\w^ +*]*?)\s*\.\.\s*(\d+(?:\^\d+)?(?:\s*(?:KiB|MiB|GiB|TiB))?)", cell)
    if not m:
        return None
    return doc_eval(m.group(1)), doc_eval(m.group(2))


results = []


def group(desc, problems):
    results.append((desc, problems))


def expect(problems, what, doc_val, c_name, c_val):
    if doc_val is None:
        problems.append("%s: not found in PROTOCOL.md (%s = %s in C)" % (what, c_name, c_val))
    elif doc_val != c_val:
        problems.append("%s: PROTOCOL.md says %s, %s = %s" % (what, doc_val, c_name, c_val))


# 1. frame types --------------------------------------------------------------
p = []
doc_types = {}
for t in tables(sections.get("4", "")):
    if t[0][:2] == ["type", "name"]:
        for r in t[1:]:
            doc_types[int(r[0])] = (r[1], r[2], r[3])
c_types = {v: n[3:] for n, v in enums.items() if n.startswith("FT_") and n not in ("FT_INVALID", "FT_COUNT")}
for v, n in sorted(c_types.items()):
    if v not in doc_types:
        p.append("FT_%s = %d: no row %d in the section 4 table" % (n, v, v))
    elif doc_types[v][0] != n:
        p.append("type %d: PROTOCOL.md names it %s, ferry_proto.h FT_%s" % (v, doc_types[v][0], n))
for v, r in sorted(doc_types.items()):
    if v not in c_types:
        p.append("section 4 row %d %s: no FT_* with that value" % (v, r[0]))
heads = {int(m.group(2)): m.group(1) for m in re.finditer(r"^### 4\.\d+\. ([A-Z]+) \((\d+)\)", DOC, re.M)}
for m in re.finditer(r"^### 4\.\d+\. ([A-Z]+) \((\d+)\) and ([A-Z]+) \((\d+)\)", DOC, re.M):
    heads[int(m.group(2))] = m.group(1)
    heads[int(m.group(4))] = m.group(3)
for v, n in sorted(c_types.items()):
    if heads.get(v) != n:
        p.append("FT_%s = %d: section heading says %s" % (n, v, heads.get(v, "nothing")))
if enums.get("FT_INVALID") != 0 or "0 is never valid" not in DOCFLAT:
    p.append("FT_INVALID = %s; PROTOCOL.md 3.2 says type 0 is never valid" % enums.get("FT_INVALID"))
if enums.get("FT_COUNT") != max(c_types) + 1:
    p.append("FT_COUNT = %s, not one above the last type %d" % (enums.get("FT_COUNT"), max(c_types)))
group("frame types: FT_* numbers and names match PROTOCOL.md section 4 (table and headings)", p)

# 2. frame table ----------------------------------------------------------------
p = []
DIRMAP = {"S->R": "FDIR_S2R", "R->S": "FDIR_R2S", "both": "FDIR_BOTH"}
for v, (dn, ddir, dlen) in sorted(doc_types.items()):
    n = c_types.get(v)
    if n is None:
        continue
    if n not in ftab:
        p.append("%s: no entry in frame.c's frame_table" % n)
        continue
    cname, cmin, cmax, cdir = ftab[n]
    if cname != n:
        p.append("%s: frame.c names it \"%s\"" % (n, cname))
    if DIRMAP.get(ddir) != cdir:
        p.append("%s: direction %s in PROTOCOL.md, %s in frame.c" % (n, ddir, cdir))
    m = re.fullmatch(r"(\d+)(?:\.\.(\d+|max))?", dlen)
    if not m:
        p.append("%s: cannot read the length cell %r" % (n, dlen))
        continue
    dmin = int(m.group(1))
    dmax = dmin if m.group(2) is None else (0 if m.group(2) == "max" else int(m.group(2)))
    if (dmin, dmax) != (cmin, cmax):
        show = lambda a, b: "%d..%s" % (a, "max" if b == 0 else b)
        p.append("%s: payload %s in PROTOCOL.md, %s in frame.c" % (n, show(dmin, dmax), show(cmin, cmax)))
for n in ftab:
    if n not in c_types.values():
        p.append("frame.c has an entry for FT_%s, which is not a frame type" % n)
group("frame table: frame.c min/max payload and direction match PROTOCOL.md section 4", p)

# 3. magic, version, capabilities -------------------------------------------
p = []
for sec in ("4.1", "4.2", "4.12"):
    rows = rows_with_field(sec, "u32 magic")
    got = None
    if rows:
        mm = re.search(r"0x[0-9a-fA-F]+", rows[0][2])
        got = int(mm.group(0), 16) if mm else None
    expect(p, "section %s magic" % sec, got, "FERRY_MAGIC", consts.get("FERRY_MAGIC"))
    rows = rows_with_field(sec, "u16 version")
    got = int(re.match(r"\d+", rows[0][2]).group(0)) if rows and re.match(r"\d+", rows[0][2]) else None
    expect(p, "section %s version" % sec, got, "FERRY_VERSION", consts.get("FERRY_VERSION"))
mm = re.search(r'`0x[0-9a-fA-F]+` \("(\w{4})"\)', DOC)
if mm and int.from_bytes(mm.group(1).encode(), "big") != consts.get("FERRY_MAGIC"):
    p.append('magic text "%s" is not FERRY_MAGIC 0x%08x' % (mm.group(1), consts["FERRY_MAGIC"]))
mm = re.search(r"This is version (\d+)", DOC)
expect(p, "section 8 version", int(mm.group(1)) if mm else None, "FERRY_VERSION", consts.get("FERRY_VERSION"))
mm = re.search(r"^# .*version (\d+)", DOC, re.M)
expect(p, "title version", int(mm.group(1)) if mm else None, "FERRY_VERSION", consts.get("FERRY_VERSION"))
if "none are defined in version 1" in DOCFLAT and consts.get("FERRY_CAPS_KNOWN") != 0:
    p.append("4.1 defines no capability bits, FERRY_CAPS_KNOWN = %s" % consts.get("FERRY_CAPS_KNOWN"))
group("FERRY_MAGIC, FERRY_VERSION, FERRY_CAPS_KNOWN match sections 4.1, 4.2, 4.12 and 8", p)

# 4. framing limits ---------------------------------------------------------------
p = []
mm = re.search(r"an (\d+)-byte header", DOCFLAT)
expect(p, "3.2 header length", int(mm.group(1)) if mm else None, "FERRY_FRAME_HDR_LEN",
       consts.get("FERRY_FRAME_HDR_LEN"))
hdr_rows = [t for t in tables(sections.get("3", "")) if t[0][:2] == ["offset", "field"]]
if hdr_rows:
    last = hdr_rows[0][-1]
    size = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}[re.match(r"`(u\d+)", last[1]).group(1)]
    expect(p, "3.2 header table size", int(last[0]) + size, "FERRY_FRAME_HDR_LEN",
           consts.get("FERRY_FRAME_HDR_LEN"))
mentioned = set()
for mm in re.finditer(r"`(FERRY_\w+)`\s*=\s*([0-9][0-9A-Za-z ^+*=\-]*)", DOCFLAT):
    name, expr = mm.group(1), mm.group(2)
    mentioned.add(name)
    vals = []
    for side in expr.split("="):
        side = side.strip()
        side = re.sub(r"\s+[a-z]+$", "", side)   # trailing word ("... enough")
        try:
            vals.append(doc_eval(side))
        except (ValueError, SyntaxError):
            p.append("%s: cannot evaluate %r in PROTOCOL.md" % (name, side))
    if len(set(vals)) > 1:
        p.append("%s: PROTOCOL.md gives unequal values %s" % (name, " = ".join(map(str, vals))))
    if vals:
        expect(p, name, vals[0], name, consts.get(name))
for name in ("FERRY_MAX_FRAME_MIN", "FERRY_MAX_FRAME_DEFAULT", "FERRY_MAX_FRAME_LIMIT"):
    if name not in mentioned:
        p.append("%s = %s: no '`%s` = value' in PROTOCOL.md" % (name, consts.get(name), name))
group("frame limits: FERRY_FRAME_HDR_LEN, FERRY_MAX_FRAME_MIN/DEFAULT/LIMIT match section 3", p)

# 5. manifest limits ---------------------------------------------------------------
p = []
for mm in re.finditer(r"(\d[\d^]*(?:\s*\.\.\s*\d[\d^]*)?)\s*(?:units\s*)?\(`(FERRY_\w+)`\)", DOCFLAT):
    val = doc_eval(mm.group(1).split("..")[-1])
    expect(p, "%s (in the text)" % mm.group(2), val, mm.group(2), consts.get(mm.group(2)))
r = rows_with_field("4.3", "u32 ndev")
expect(p, "4.3 ndev range max", doc_range(r[0][2])[1] if r and doc_range(r[0][2]) else None,
       "FERRY_MAX_DEVICES", consts.get("FERRY_MAX_DEVICES"))
r = [t for t in tables(sections.get("4.3", "")) if t[0][:2] == ["size", "field"]]
dev_rows = {row[1]: row for row in r[0][1:]} if r else {}
row = dev_rows.get("`u16 name_len`")
expect(p, "4.3 device name_len max", doc_range(row[2])[1] if row else None, "FERRY_NAME_MAX",
       consts.get("FERRY_NAME_MAX"))
mm = re.search(r"names \(devices and state\) are (\d+)\.\.(\d+) bytes", DOCFLAT)
expect(p, "4.3 name rule length max", int(mm.group(2)) if mm else None, "FERRY_NAME_MAX",
       consts.get("FERRY_NAME_MAX"))
row = dev_rows.get("`u64 size`")
expect(p, "4.3 device size max", doc_range(row[2])[1] if row else None, "FERRY_DEVICE_SIZE_MAX",
       consts.get("FERRY_DEVICE_SIZE_MAX"))
r = rows_with_field("4.3", "u64 state_size")
expect(p, "4.3 state_size max", doc_range(r[0][2])[1] if r else None, "FERRY_STATE_SIZE_MAX",
       consts.get("FERRY_STATE_SIZE_MAX"))
mm = re.search(r"at most 2\^(\d+) units \(`FERRY_MAX_TOTAL_UNITS`\)", DOCFLAT)
expect(p, "4.3 total units", 1 << int(mm.group(1)) if mm else None, "FERRY_MAX_TOTAL_UNITS",
       consts.get("FERRY_MAX_TOTAL_UNITS"))
mm = re.search(r"power of two from (\d+(?: [KMG]iB)?) to (\d+(?: [KMG]iB)?)", DOCFLAT)
expect(p, "4.3 REFUSE_UNIT lower bound", doc_eval(mm.group(1)) if mm else None, "FERRY_UNIT_MIN",
       consts.get("FERRY_UNIT_MIN"))
expect(p, "4.3 REFUSE_UNIT upper bound", doc_eval(mm.group(2)) if mm else None, "FERRY_UNIT_MAX",
       consts.get("FERRY_UNIT_MAX"))
mm = re.search(r"FERRY_MAX_FRAME_MIN` = [^,]*, enough for one entry of the largest unit", DOCFLAT)
if mm and consts.get("FERRY_MAX_FRAME_MIN", 0) < 20 + 5 + consts.get("FERRY_UNIT_MAX", 0):
    p.append("FERRY_MAX_FRAME_MIN %d cannot hold a PAGES of one RAW entry of FERRY_UNIT_MAX"
             % consts["FERRY_MAX_FRAME_MIN"])
group("manifest limits: FERRY_MAX_DEVICES, FERRY_NAME_MAX, FERRY_DEVICE_SIZE_MAX, "
      "FERRY_STATE_SIZE_MAX, FERRY_MAX_TOTAL_UNITS, FERRY_UNIT_MIN/MAX match section 4.3", p)

# 6. PAGES limits ------------------------------------------------------------------
p = []
r = rows_with_field("4.6", "u32 count")
expect(p, "4.6 count max", doc_range(r[0][2])[1] if r else None, "FERRY_MAX_PAGES_PER_FRAME",
       consts.get("FERRY_MAX_PAGES_PER_FRAME"))
mm = re.search(r"\*\*REF\*\* \(\d+\):.*?`bytes\[(\d+)\] hash`", DOCFLAT)
expect(p, "4.6 REF hash bytes", int(mm.group(1)) if mm else None, "FERRY_HASH_LEN", consts.get("FERRY_HASH_LEN"))
mm = re.search(r"\*\*REF\*\* \(\d+\):.*?(\d+) bytes\.", DOCFLAT)
expect(p, "4.6 REF entry size", int(mm.group(1)) if mm else None,
       "5 + 4 + 4 + FERRY_HASH_LEN", 13 + consts.get("FERRY_HASH_LEN", 0))
for what, pat in (("4.9 digest", r"`bytes\[(\d+)\] digest`"), ("4.9 state_digest", r"`bytes\[(\d+)\] state_digest`"),
                  ("5.2 hash", r"canonical form \(big-endian, (\d+) bytes\)")):
    mm = re.search(pat, DOCFLAT)
    expect(p, what, int(mm.group(1)) if mm else None, "FERRY_HASH_LEN", consts.get("FERRY_HASH_LEN"))
mm = re.search(r"\*\*ZERO\*\* \(\d+\): [^*]*?(\d+) bytes\.", DOCFLAT)
expect(p, "4.6 ZERO entry size", int(mm.group(1)) if mm else None, "FERRY_PAGE_ENTRY_MIN",
       consts.get("FERRY_PAGE_ENTRY_MIN"))
group("PAGES limits: FERRY_MAX_PAGES_PER_FRAME, FERRY_HASH_LEN, FERRY_PAGE_ENTRY_MIN match sections 4.6, 4.9, 5.2", p)

# 7. text -----------------------------------------------------------------------------
p = []
for sec in ("4.5", "4.11"):
    r = rows_with_field(sec, "u16 text_len")
    expect(p, "%s text_len max" % sec, doc_range(r[0][2])[1] if r else None, "FERRY_TEXT_MAX",
           consts.get("FERRY_TEXT_MAX"))
group("FERRY_TEXT_MAX matches the text_len ranges of REFUSE (4.5) and ERROR (4.11)", p)

# 8. resume -------------------------------------------------------------------------
p = []
labels = re.findall(r'Exporter\([^,]*,\s*"([^"]+)"', DOC)
expect(p, "4.12 key exporter label", labels[0] if labels else None, "FERRY_RESUME_KEY_LABEL",
       strings.get("FERRY_RESUME_KEY_LABEL"))
expect(p, "4.12 binding exporter label", labels[1] if len(labels) > 1 else None,
       "FERRY_RESUME_BIND_LABEL", strings.get("FERRY_RESUME_BIND_LABEL"))
mm = re.search(r'HMAC-SHA256\(key,\s*"([^"]+)"', DOC)
expect(p, "4.12 proof prefix", mm.group(1) if mm else None, "FERRY_RESUME_PROOF_PREFIX",
       strings.get("FERRY_RESUME_PROOF_PREFIX"))
for sec in ("4.2", "4.12"):
    r = [row for t in tables(sections.get(sec, "")) for row in t[1:] if len(row) > 1 and "session_id" in row[1]]
    mm = re.search(r"bytes\[(\d+)\]", r[0][1]) if r else None
    expect(p, "%s session_id bytes" % sec, int(mm.group(1)) if mm else None, "FERRY_SESSION_ID_LEN",
           consts.get("FERRY_SESSION_ID_LEN"))
r = [row for t in tables(sections.get("4.12", "")) for row in t[1:] if len(row) > 1 and "proof" in row[1]]
mm = re.search(r"bytes\[(\d+)\]", r[0][1]) if r else None
expect(p, "4.12 proof bytes", int(mm.group(1)) if mm else None, "FERRY_PROOF_LEN", consts.get("FERRY_PROOF_LEN"))
mm = re.search(r"Exporter\(first connection,[^)]*?, (\d+)\)", DOC)
expect(p, "4.12 key length", int(mm.group(1)) if mm else None, "FERRY_PROOF_LEN (HMAC-SHA256 key)",
       consts.get("FERRY_PROOF_LEN"))
group("resume: labels, FERRY_SESSION_ID_LEN, FERRY_PROOF_LEN match section 4.12", p)


def pairs(cell):
    return {int(a): b for a, b in re.findall(r"(\d+) ([A-Za-z][A-Za-z0-9_]*)", cell)}


def enum_check(prefix, doc_map, where, p, fold=False, skip=("INVALID",)):
    c = {v: n[len(prefix):] for n, v in enums.items() if n.startswith(prefix) and n[len(prefix):] not in skip}
    norm = (lambda s: s.upper()) if fold else (lambda s: s)
    for v, n in sorted(c.items()):
        if v not in doc_map:
            p.append("%s%s = %d: not in %s" % (prefix, n, v, where))
        elif norm(doc_map[v]) != n:
            p.append("%d: %s in %s, %s%s in C" % (v, doc_map[v], where, prefix, n))
    for v, n in sorted(doc_map.items()):
        if v not in c:
            p.append("%d %s in %s: no %s* with that value" % (v, n, where, prefix))


# 9. PK_* ----------------------------------------------------------------------------
p = []
r = [row for t in tables(sections.get("4.6", "")) for row in t[1:] if len(row) > 1 and row[1] == "`u8 kind`"]
enum_check("PK_", pairs(r[0][2]) if r else {}, "the 4.6 entry table", p)
bullets = {int(v): n for n, v in re.findall(r"^- \*\*([A-Z0-9]+)\*\* \((\d+)\)", sections.get("4.6", ""), re.M)}
enum_check("PK_", bullets, "the 4.6 entry list", p)
group("entry kinds: PK_* match section 4.6", p)

# 10. RSM_* -----------------------------------------------------------------------------
p = []
r = rows_with_field("4.13", "u32 status")
enum_check("RSM_", pairs(r[0][2]) if r else {}, "the 4.13 status row", p)
for v, n in ((v, n[4:]) for n, v in enums.items() if n.startswith("RSM_") and n != "RSM_INVALID"):
    if not re.search(r"^- %s:" % n, sections.get("4.13", ""), re.M):
        p.append("RSM_%s: no '- %s:' item in 4.13" % (n, n))
group("resume statuses: RSM_* match section 4.13", p)

# 11. DK_* ------------------------------------------------------------------------------
p = []
row = dev_rows.get("`u8 kind`")
enum_check("DK_", pairs(row[2]) if row else {}, "the 4.3 device table", p, fold=True)
group("device kinds: DK_* match section 4.3", p)

# 12/13. error codes ---------------------------------------------------------------------
doc_codes = {}
for t in tables(sections.get("7", "")):
    if t[0][:2] == ["code", "name"]:
        for r in t[1:]:
            doc_codes[r[1]] = int(r[0])
p = []
for name, code in sorted(doc_codes.items(), key=lambda x: x[1]):
    c = errs.get("FERR_" + name)
    if c is None:
        p.append("%d %s in section 7: no FERR_%s in err.h" % (code, name, name))
    elif -c != code:
        p.append("%s: wire code %d in section 7, FERR_%s = %d in err.h (wire %d)" % (name, code, name, c, -c))
group("error codes: every code in PROTOCOL.md section 7 is in err.h with the same value", p)
p = []
for name, c in sorted(errs.items(), key=lambda x: -x[1]):
    if c > -10:
        continue   # FERR_OK, FERR_NEED_MORE: not errors, never on the wire
    n = name[5:]
    if n not in doc_codes:
        p.append("FERR_%s = %d (wire %d): not in the section 7 table" % (n, c, -c))
group("error codes: every error code in err.h is in PROTOCOL.md section 7", p)

# 14. message layouts against the section 4 table ---------------------------------------
p = []
SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}
heads_sec = {m.group(2): m.group(1) for m in re.finditer(r"^### (4\.\d+)\. ([A-Z]+) \(", DOC, re.M)}
checked = 0
for v, (dn, _, dlen) in sorted(doc_types.items()):
    sec = heads_sec.get(dn)
    if sec is None or dn in ("PONG",):
        continue
    t = [t for t in tables(sections.get(sec, "")) if t[0][:2] == ["offset", "field"]]
    if not t:
        continue
    fixed, var = 0, None
    for row in t[0][1:]:
        if not re.fullmatch(r"\d+", row[0]):
            var = row[1]
            break
        mm = re.fullmatch(r"`(u\d+) \w+`", row[1]) or re.fullmatch(r"`bytes\[(\d+)\] \w+`", row[1])
        if mm is None:
            var = row[1]
            fixed = int(row[0])
            break
        fixed = int(row[0]) + (SIZES[mm.group(1)] if mm.group(1) in SIZES else int(mm.group(1)))
    checked += 1
    m = re.fullmatch(r"(\d+)(?:\.\.(\d+|max))?", dlen)
    dmin = int(m.group(1))
    if var is None and m.group(2) is None and fixed != dmin:
        p.append("%s: fields of %s add up to %d bytes, the section 4 table says %d" % (dn, sec, fixed, dmin))
    if var is not None and fixed > dmin:
        p.append("%s: fixed fields of %s take %d bytes, more than the table's minimum %d" % (dn, sec, fixed, dmin))
if checked < 14:
    p.append("only %d of the 14 message sections have a readable field table" % checked)
group("message layouts: the field tables of sections 4.1-4.14 add up to the section 4 sizes", p)

for desc, probs in results:
    print(("ok" if not probs else "not ok") + "\t" + desc)
    for x in probs:
        print("diag\t" + x)
PY
rc=$?
if [ "$rc" -ne 0 ] || [ ! -s "$T/report" ]; then
	not_ok "protodoc: the python checker ran (status $rc)"
	diag <"$T/stderr"
	t_done
fi
while IFS=$'\t' read -r kind text; do
	case "$kind" in
	ok) ok "$text" ;;
	"not ok") not_ok "$text" ;;
	diag) echo "$text" | diag ;;
	esac
done <"$T/report"
t_done
