-- ferry-dissector.lua: Wireshark / tshark dissector for ferry's wire protocol
-- (proto/PROTOCOL.md, version 1), carried inside TLS 1.3.
--
-- ferry has no plaintext mode, so Wireshark can only show ferry frames when
-- it can decrypt the TLS connection.  Start both daemons with SSLKEYLOGFILE
-- pointing at one file (they append the TLS secrets to it, NSS key log
-- format, and warn on stderr), capture, then give Wireshark that file:
--
--   SSLKEYLOGFILE=/tmp/ferry.keys ferry-recv --listen 127.0.0.1:7300 ...
--   SSLKEYLOGFILE=/tmp/ferry.keys ferry-send --to 127.0.0.1:7300 ...
--   dumpcap -i lo -f 'tcp port 7300' -w /tmp/ferry.pcapng
--
--   tshark -r /tmp/ferry.pcapng -X lua_script:tools/ferry-dissector.lua \
--       -o tls.keylog_file:/tmp/ferry.keys -Y ferry
--   tshark ... -T fields -e frame.number -e ferry.type -e ferry.session_id
--
-- In Wireshark: copy this file into the personal Lua plugins folder
-- (Help > About Wireshark > Folders, usually ~/.local/lib/wireshark/plugins/)
-- or start it with `wireshark -X lua_script:tools/ferry-dissector.lua`, and
-- set Preferences > Protocols > TLS > (Pre)-Master-Secret log filename.
-- The key log file is a secret: anyone holding it reads the migration.
--
-- How ferry is found inside TLS.  The port is chosen at run time, so there
-- are two ways:
--   * A heuristic on decrypted TLS application data (on by default, listed
--     as "ferry_tls" under Analyze > Enabled Protocols) recognises the first
--     frame of a connection: HELLO, WELCOME or RESUME with the magic "FRY1"
--     and their exact length, and registers the receiver's port as ferry
--     for the rest of the capture, so every later record of the connection
--     (and of later connections to that port) is ferry.  This needs the
--     capture to hold the first frame of the connection.
--   * The preference ferry.tls_port (Preferences > Protocols > FERRY, or
--     `-o ferry.tls_port:7300`) makes every TLS connection on that TCP port
--     ferry, also when the capture starts in the middle of a migration.  It
--     also tells Wireshark that the port carries TLS (no "Decode As").
--     A capture started mid-connection can begin inside a frame: the bytes
--     up to the next record that starts a frame are shown as undecoded.
--
-- Frames that span TLS records are reassembled (this needs the TLS
-- preference "Reassemble TLS Application Data spanning multiple TLS
-- records", tls.desegment_ssl_application_data, on by default; with it
-- off, Wireshark 4.0 does not try heuristics inside TLS at all, so only
-- ferry.tls_port works, and a frame split over records shows as partial),
-- and a record holding several frames shows each one.  A PAGES entry of kind RAW is as
-- long as its unit, which only the MANIFEST says: the dissector remembers
-- each connection's manifest (and, through the session id, carries it over
-- to a RESUME connection).  Without it, a RAW entry is decoded only when it
-- is the last entry of its frame.
--
-- Field names (filter with them, or print with tshark -T fields -e NAME):
--   ferry.type ferry.flags ferry.reserved ferry.len   frame header (section 3)
--   ferry.magic ferry.version ferry.caps ferry.max_frame ferry.hash_seed
--   ferry.session_id ferry.resume.proof               HELLO/WELCOME/RESUME
--   ferry.manifest.ndev ferry.manifest.state_size ferry.manifest.state_name
--   ferry.dev.id ferry.dev.kind ferry.dev.name ferry.dev.unit ferry.dev.size
--   ferry.dev.src_dev ferry.dev.src_ino               MANIFEST devices
--   ferry.pages.seq ferry.ack.seq ferry.commit.seq ferry.committed.seq
--   ferry.seq      (hidden) any of those four, and QSTREAM's: `ferry.seq == 5`
--                  shows PAGES (or QSTREAM) 5 and the ACK of it
--   ferry.next_seq ACCEPT and RESUMED
--   ferry.pages.device ferry.pages.round ferry.pages.count
--   ferry.page.index ferry.page.kind ferry.page.src_device
--   ferry.page.src_index ferry.page.hash ferry.page.clen ferry.page.data
--   ferry.state.offset ferry.state.data
--   ferry.commit.ndev ferry.commit.dev_id ferry.commit.digest
--   ferry.commit.state_digest
--   ferry.refuse.code ferry.refuse.device ferry.refuse.text
--   ferry.error.code ferry.error.text
--   ferry.resumed.status ferry.resumed.state_offset
--   ferry.nonce    PING and PONG
--   ferry.domain.flags ferry.domain.check_only ferry.domain.arch
--   ferry.domain.model ferry.domain.uuid ferry.domain.nwaive ferry.domain.waive
--   ferry.domain.xml_len ferry.domain.xml (and *_len of each string)  DOMAIN
--   ferry.checks.nrows ferry.checks.status (pass/fail/waived)
--   ferry.checks.code ferry.checks.name ferry.checks.source
--   ferry.checks.destination ferry.checks.why (and *_len)         CHECKS rows
--   ferry.qstream.seq ferry.qstream.stream_off ferry.qstream.count  QSTREAM
--   ferry.qitem.type ferry.qitem.len ferry.qitem.data               its items
--   ferry.qblocks.n ferry.qblock.id ferry.qblock.len               BLOCKS
--   ferry.qpage.rec ferry.qpage.block ferry.qpage.offset ferry.qpage.kind
--   ferry.qpage.src_block ferry.qpage.src_offset ferry.qpage.hash
--   ferry.qpage.clen ferry.qpage.data
--   ferry.qpage.record_len (generated: the QEMU record it rebuilds, when the
--                   capture holds the BLOCKS item)                PAGE items
--   ferry.qreturn.offset ferry.qreturn.data                         QRETURN
--   ferry.have.device ferry.have.first ferry.have.count ferry.have.hash  HAVE
--   ferry.direction (generated: "sender->receiver" once the connection's
--                   first frame was seen)
-- Codes in ferry.refuse.code, ferry.error.code and ferry.checks.code are the
-- positive wire values of proto/PROTOCOL.md section 7 (REFUSE_SIZE is 21).
--
-- Tested with tshark 4.0 (Debian 12); uses only the Lua API of Wireshark
-- 3.x/4.x.  Keep in sync with proto/PROTOCOL.md and proto/ferry_proto.h.

local ferry = Proto("ferry", "ferry live-migration protocol")

local MAGIC = 0x46525931        -- "FRY1"
local HDR_LEN = 8
local MAX_FRAME_LIMIT = 16 * 1024 * 1024

-- Section 4: type -> name, payload min, payload max (nil: up to max_frame),
-- allowed direction ("S" sender->receiver, "R" receiver->sender, "B" both).
local TYPES = {
	[1]  = { "HELLO", 24, 24, "S" },
	[2]  = { "WELCOME", 32, 32, "R" },
	[3]  = { "MANIFEST", 14, nil, "S" },
	[4]  = { "ACCEPT", 8, 8, "R" },
	[5]  = { "REFUSE", 10, 10 + 1024, "R" },
	[6]  = { "PAGES", 25, nil, "S" },
	[7]  = { "ACK", 8, 8, "R" },
	[8]  = { "STATE", 8, nil, "S" },
	[9]  = { "COMMIT", 28, 12 + 20 * 64 + 16, "S" },
	[10] = { "COMMITTED", 8, 8, "R" },
	[11] = { "ERROR", 6, 6 + 1024, "B" },
	[12] = { "RESUME", 60, 60, "S" },
	[13] = { "RESUMED", 20, 20, "R" },
	[14] = { "PING", 8, 8, "B" },
	[15] = { "PONG", 8, 8, "B" },
	[16] = { "DOMAIN", 14, nil, "S" },
	[17] = { "CHECKS", 15, 2 + 16 * (1 + 4 + 1 + 31 + 2 + 160 + 2 + 160 + 2 + 512), "R" },
	[18] = { "QSTREAM", 20 + 6, nil, "S" },
	[19] = { "QRETURN", 9, 8 + 1024 * 1024, "R" },
	[20] = { "HAVE", 12 + 16, nil, "R" },
}
local type_names = {}
for t, v in pairs(TYPES) do type_names[t] = v[1] end

-- Section 7
local code_names = {
	[10] = "PROTO", [11] = "PROTO_TYPE", [12] = "PROTO_LENGTH",
	[13] = "PROTO_STATE", [14] = "PROTO_RANGE", [15] = "PROTO_CODEC",
	[16] = "PROTO_HASH", [17] = "PROTO_VERSION", [18] = "PROTO_RESUME",
	[19] = "PROTO_FLOOD",
	[20] = "REFUSED", [21] = "REFUSE_SIZE", [22] = "REFUSE_COUNT",
	[23] = "REFUSE_SAMEFILE", [24] = "REFUSE_SPACE", [25] = "REFUSE_UNIT",
	[26] = "REFUSE_NAME", [27] = "REFUSE_BUSY", [28] = "REFUSE_DIR",
	[30] = "IO", [31] = "NOMEM", [32] = "TLS", [33] = "NET", [34] = "VERIFY",
	[35] = "TIMEOUT", [36] = "ABORTED", [37] = "USAGE", [38] = "INDOUBT",
	[39] = "TLS_INTEGRITY", [40] = "INTERNAL",
	-- libvirt checks: 51..63 are refusals
	[50] = "VIRT", [51] = "VIRT_XML", [52] = "VIRT_CDROM", [53] = "VIRT_HOSTDEV",
	[54] = "VIRT_SHAREABLE", [55] = "VIRT_READONLY", [56] = "VIRT_NOTFILE",
	[57] = "VIRT_CACHE", [58] = "VIRT_ARCH", [59] = "VIRT_CPU_MODEL",
	[60] = "VIRT_CPUS", [61] = "VIRT_MEMORY", [62] = "VIRT_IMAGES", [63] = "VIRT_EXISTS",
	-- QEMU streams: 64, 65 are refusals
	[64] = "QEMU_CAP", [65] = "QEMU_STATE", [70] = "QEMU",
}
local dev_kinds = { [1] = "memory", [2] = "disk", [3] = "qemu" }
local page_kinds = { [1] = "ZERO", [2] = "REF", [3] = "LZ4", [4] = "RAW" }
local resumed_status = { [1] = "RECEIVING", [2] = "COMMITTED", [3] = "FAILED" }
-- Section 4.16: CHECKS row status
local check_status = { [1] = "pass", [2] = "fail", [3] = "waived" }
-- Sections 4.15, 4.16: limits
local DOMAIN_CHECK_ONLY = 1
local HOST_TOKEN_MAX, UUID_LEN, WAIVE_MAX = 63, 36, 16
local CHECKS_MAX, CHECK_NAME_MAX, CHECK_VALUE_MAX, CHECK_WHY_MAX = 16, 31, 160, 512
local DOMAIN_XML_MAX = 1024 * 1024
-- Sections 4.17, 4.18: QSTREAM items, page records, limits
local qitem_types = { [1] = "OPAQUE", [2] = "BLOCKS", [3] = "PAGE" }
local QREC_DATA, QREC_CONT = 1, 2
local QPAGE_SIZE, QBLOCKS_MAX, QRETURN_MAX, MAX_ITEMS = 4096, 256, 1024 * 1024, 4096

local PF = ProtoField
local f = {
	type = PF.uint8("ferry.type", "Type", base.DEC, type_names),
	flags = PF.uint8("ferry.flags", "Flags", base.HEX),
	reserved = PF.uint16("ferry.reserved", "Reserved", base.HEX),
	len = PF.uint32("ferry.len", "Payload length", base.DEC),
	direction = PF.string("ferry.direction", "Direction"),

	magic = PF.uint32("ferry.magic", "Magic", base.HEX),
	version = PF.uint16("ferry.version", "Version", base.DEC),
	hs_reserved = PF.uint16("ferry.hs_reserved", "Reserved", base.HEX),
	caps = PF.uint32("ferry.caps", "Capabilities", base.HEX),
	max_frame = PF.uint32("ferry.max_frame", "Max frame payload", base.DEC),
	hash_seed = PF.uint64("ferry.hash_seed", "Hash seed", base.HEX),
	session_id = PF.bytes("ferry.session_id", "Session id"),
	proof = PF.bytes("ferry.resume.proof", "Resume proof"),

	m_ndev = PF.uint32("ferry.manifest.ndev", "Devices", base.DEC),
	m_state_size = PF.uint64("ferry.manifest.state_size", "State size", base.DEC),
	m_state_name_len = PF.uint16("ferry.manifest.state_name_len", "State name length", base.DEC),
	m_state_name = PF.string("ferry.manifest.state_name", "State name"),
	d_id = PF.uint32("ferry.dev.id", "Device id", base.DEC),
	d_kind = PF.uint8("ferry.dev.kind", "Kind", base.DEC, dev_kinds),
	d_reserved = PF.uint8("ferry.dev.reserved", "Reserved", base.HEX),
	d_name_len = PF.uint16("ferry.dev.name_len", "Name length", base.DEC),
	d_unit = PF.uint32("ferry.dev.unit", "Unit", base.DEC),
	d_size = PF.uint64("ferry.dev.size", "Size", base.DEC),
	d_src_dev = PF.uint64("ferry.dev.src_dev", "Source st_dev", base.HEX),
	d_src_ino = PF.uint64("ferry.dev.src_ino", "Source st_ino", base.DEC),
	d_name = PF.string("ferry.dev.name", "Name"),

	seq = PF.uint64("ferry.seq", "Sequence number (any frame)", base.DEC),
	pages_seq = PF.uint64("ferry.pages.seq", "Sequence number", base.DEC),
	ack_seq = PF.uint64("ferry.ack.seq", "Highest PAGES applied", base.DEC),
	commit_seq = PF.uint64("ferry.commit.seq", "Last PAGES sent", base.DEC),
	committed_seq = PF.uint64("ferry.committed.seq", "COMMIT's sequence number", base.DEC),
	next_seq = PF.uint64("ferry.next_seq", "Next sequence number", base.DEC),

	refuse_code = PF.uint32("ferry.refuse.code", "Refusal code", base.DEC, code_names),
	refuse_device = PF.uint32("ferry.refuse.device", "Device id", base.DEC),
	refuse_text_len = PF.uint16("ferry.refuse.text_len", "Text length", base.DEC),
	refuse_text = PF.string("ferry.refuse.text", "Text"),

	p_device = PF.uint32("ferry.pages.device", "Device id", base.DEC),
	p_round = PF.uint32("ferry.pages.round", "Round", base.DEC),
	p_count = PF.uint32("ferry.pages.count", "Entries", base.DEC),
	e_index = PF.uint32("ferry.page.index", "Unit index", base.DEC),
	e_kind = PF.uint8("ferry.page.kind", "Kind", base.DEC, page_kinds),
	e_src_device = PF.uint32("ferry.page.src_device", "Source device", base.DEC),
	e_src_index = PF.uint32("ferry.page.src_index", "Source index", base.DEC),
	e_hash = PF.bytes("ferry.page.hash", "Hash"),
	e_clen = PF.uint32("ferry.page.clen", "Compressed length", base.DEC),
	e_data = PF.bytes("ferry.page.data", "Data"),

	s_offset = PF.uint64("ferry.state.offset", "Offset", base.DEC),
	s_data = PF.bytes("ferry.state.data", "Data"),

	c_ndev = PF.uint32("ferry.commit.ndev", "Devices", base.DEC),
	c_dev_id = PF.uint32("ferry.commit.dev_id", "Device id", base.DEC),
	c_digest = PF.bytes("ferry.commit.digest", "Digest"),
	c_state_digest = PF.bytes("ferry.commit.state_digest", "State digest"),

	error_code = PF.uint32("ferry.error.code", "Error code", base.DEC, code_names),
	error_text_len = PF.uint16("ferry.error.text_len", "Text length", base.DEC),
	error_text = PF.string("ferry.error.text", "Text"),

	r_status = PF.uint32("ferry.resumed.status", "Status", base.DEC, resumed_status),
	r_state_offset = PF.uint64("ferry.resumed.state_offset", "State offset", base.DEC),

	nonce = PF.uint64("ferry.nonce", "Nonce", base.HEX),

	dom_flags = PF.uint32("ferry.domain.flags", "Flags", base.HEX),
	dom_check_only = PF.bool("ferry.domain.check_only", "Check only", 32, nil, DOMAIN_CHECK_ONLY),
	dom_arch_len = PF.uint8("ferry.domain.arch_len", "Host arch length", base.DEC),
	dom_arch = PF.string("ferry.domain.arch", "Source host CPU architecture"),
	dom_model_len = PF.uint8("ferry.domain.model_len", "Host CPU model length", base.DEC),
	dom_model = PF.string("ferry.domain.model", "Source host CPU model"),
	dom_uuid_len = PF.uint8("ferry.domain.uuid_len", "Host UUID length", base.DEC),
	dom_uuid = PF.string("ferry.domain.uuid", "Source host UUID"),
	dom_nwaive = PF.uint8("ferry.domain.nwaive", "Waived checks", base.DEC),
	dom_waive_len = PF.uint8("ferry.domain.waive_len", "Waived check name length", base.DEC),
	dom_waive = PF.string("ferry.domain.waive", "Waived check"),
	dom_xml_len = PF.uint32("ferry.domain.xml_len", "Domain XML length", base.DEC),
	dom_xml = PF.bytes("ferry.domain.xml", "Domain XML"),

	chk_nrows = PF.uint16("ferry.checks.nrows", "Rows", base.DEC),
	chk_status = PF.uint8("ferry.checks.status", "Status", base.DEC, check_status),
	chk_code = PF.uint32("ferry.checks.code", "Check code", base.DEC, code_names),
	chk_name_len = PF.uint8("ferry.checks.name_len", "Name length", base.DEC),
	chk_name = PF.string("ferry.checks.name", "Check"),
	chk_source_len = PF.uint16("ferry.checks.source_len", "Source value length", base.DEC),
	chk_source = PF.string("ferry.checks.source", "Source value"),
	chk_destination_len = PF.uint16("ferry.checks.destination_len", "Destination value length", base.DEC),
	chk_destination = PF.string("ferry.checks.destination", "Destination value"),
	chk_why_len = PF.uint16("ferry.checks.why_len", "Why length", base.DEC),
	chk_why = PF.string("ferry.checks.why", "Why"),

	qs_seq = PF.uint64("ferry.qstream.seq", "Sequence number", base.DEC),
	qs_stream_off = PF.uint64("ferry.qstream.stream_off", "Stream offset", base.DEC),
	qs_count = PF.uint32("ferry.qstream.count", "Items", base.DEC),
	qi_type = PF.uint8("ferry.qitem.type", "Item type", base.DEC, qitem_types),
	qi_len = PF.uint32("ferry.qitem.len", "Opaque length", base.DEC),
	qi_data = PF.bytes("ferry.qitem.data", "Opaque bytes"),
	qb_n = PF.uint16("ferry.qblocks.n", "Blocks", base.DEC),
	qb_id_len = PF.uint8("ferry.qblock.id_len", "Block id length", base.DEC),
	qb_id = PF.string("ferry.qblock.id", "Block id"),
	qb_len = PF.uint64("ferry.qblock.len", "Block length", base.DEC),
	qp_rec = PF.uint8("ferry.qpage.rec", "Record (bit 0 DATA, bit 1 CONT)", base.HEX),
	qp_block = PF.uint16("ferry.qpage.block", "Block", base.DEC),
	qp_offset = PF.uint64("ferry.qpage.offset", "Offset", base.DEC),
	qp_kind = PF.uint8("ferry.qpage.kind", "Kind", base.DEC, page_kinds),
	qp_src_block = PF.uint16("ferry.qpage.src_block", "Source block", base.DEC),
	qp_src_offset = PF.uint64("ferry.qpage.src_offset", "Source offset", base.DEC),
	qp_hash = PF.bytes("ferry.qpage.hash", "Hash"),
	qp_clen = PF.uint32("ferry.qpage.clen", "Compressed length", base.DEC),
	qp_data = PF.bytes("ferry.qpage.data", "Data"),
	qp_record_len = PF.uint32("ferry.qpage.record_len", "QEMU record length", base.DEC),
	qr_offset = PF.uint64("ferry.qreturn.offset", "Return-path offset", base.DEC),
	qr_data = PF.bytes("ferry.qreturn.data", "Return-path bytes"),
	h_device = PF.uint32("ferry.have.device", "Device id", base.DEC),
	h_first = PF.uint32("ferry.have.first", "First unit", base.DEC),
	h_count = PF.uint32("ferry.have.count", "Units", base.DEC),
	h_hash = PF.bytes("ferry.have.hash", "Hash of a unit the receiver holds"),
}
local fields_list = {}
for _, v in pairs(f) do fields_list[#fields_list + 1] = v end
ferry.fields = fields_list

local ex = {
	malformed = ProtoExpert.new("ferry.malformed", "Malformed ferry frame",
		expert.group.MALFORMED, expert.severity.ERROR),
	nonzero = ProtoExpert.new("ferry.nonzero", "Field that must be zero is not",
		expert.group.PROTOCOL, expert.severity.WARN),
	direction = ProtoExpert.new("ferry.wrong_direction", "Frame type not allowed in this direction",
		expert.group.PROTOCOL, expert.severity.WARN),
	undecoded = ProtoExpert.new("ferry.undecoded", "Not decoded",
		expert.group.UNDECODED, expert.severity.NOTE),
	error = ProtoExpert.new("ferry.error_frame", "ferry ERROR or REFUSE",
		expert.group.RESPONSE_CODE, expert.severity.NOTE),
}
ferry.experts = { ex.malformed, ex.nonzero, ex.direction, ex.undecoded, ex.error }

ferry.prefs.tls_port = Pref.uint("TLS port", 0,
	"TCP port of ferry-recv (its --listen port): TLS on this port is decoded as " ..
	"ferry. 0: rely on the heuristic, which needs the start of each connection.")

-- Per-connection state, reset when a capture is (re)loaded.
--   conns[key] = { sender = "addr/port", session = "hex", devices = {id -> {unit, size}},
--                  qblocks = {index -> id length} (QSTREAM's block table, 4.17) }
--   sessions[hex session id] = devices, qsessions[...] = qblocks, for RESUME connections
local conns, sessions, qsessions = {}, {}, {}
local info_packet = nil

local pref_port = 0      -- ferry.tls_port as last applied
local learned = {}       -- receiver ports the heuristic registered: port -> true
local forget_learned     -- defined with the registration, at the end

function ferry.init()
	conns, sessions, qsessions = {}, {}, {}
	info_packet = nil
	if forget_learned then forget_learned() end
end

local function endpoint(addr, port) return tostring(addr) .. "/" .. tostring(port) end

local function conn_key(pinfo)
	local a = endpoint(pinfo.src, pinfo.src_port)
	local b = endpoint(pinfo.dst, pinfo.dst_port)
	if a < b then return a .. "|" .. b end
	return b .. "|" .. a
end

local function conn_of(pinfo)
	local key = conn_key(pinfo)
	local c = conns[key]
	if c == nil then
		c = { devices = {} }
		conns[key] = c
	end
	return c
end

-- A sequence number: its own field, plus the hidden ferry.seq shared by
-- PAGES, ACK, COMMIT and COMMITTED (`ferry.seq == 5`: PAGES 5 and its ACK).
local function add_seq(tree, field, range)
	tree:add(field, range)
	tree:add(f.seq, range):set_hidden()
end

local function hex(range) return tostring(range:bytes()):lower() end

local function add_info(pinfo, s)
	if info_packet ~= pinfo.number then
		info_packet = pinfo.number
		pinfo.cols.info:set(s)
	else
		pinfo.cols.info:append(", " .. s)
	end
end

local function code_str(code)
	return (code_names[code] or "unknown") .. " (" .. code .. ")"
end

-- Payload parsers.  Each gets the payload range p (length n >= the type's
-- minimum), the frame's subtree and the connection state, and returns a
-- short summary for the Info column.  Bounds are checked: a payload that
-- ends early or leaves bytes over gets an expert note, never an error.

local function need(tree, p, off, n, what)
	if off + n > p:len() then
		tree:add_proto_expert_info(ex.malformed,
			string.format("%s: needs %d bytes at offset %d, payload has %d", what, n, off, p:len()))
		return false
	end
	return true
end

local function trailing(tree, p, off)
	if off < p:len() then
		tree:add_proto_expert_info(ex.malformed,
			string.format("%d bytes left over after the last field", p:len() - off))
	end
end

local function zero_check(tree, item, v)
	if v ~= 0 then item:add_proto_expert_info(ex.nonzero) end
end

local function parse_handshake(p, tree, c, pinfo, t)
	local s
	tree:add(f.magic, p(0, 4))
	if p(0, 4):uint() ~= MAGIC then
		tree:add_proto_expert_info(ex.malformed, "magic is not 0x46525931 (FRY1)")
	end
	tree:add(f.version, p(4, 2))
	zero_check(tree, tree:add(f.hs_reserved, p(6, 2)), p(6, 2):uint())
	if t == 12 then
		tree:add(f.max_frame, p(8, 4))
		tree:add(f.session_id, p(12, 16))
		tree:add(f.proof, p(28, 32))
		local sid = hex(p(12, 16))
		c.session = sid
		if sessions[sid] ~= nil then c.devices = sessions[sid] end
		if qsessions[sid] ~= nil then c.qblocks = qsessions[sid] end
		return "RESUME session " .. sid:sub(1, 16)
	end
	tree:add(f.caps, p(8, 4))
	tree:add(f.max_frame, p(12, 4))
	if t == 1 then
		tree:add(f.hash_seed, p(16, 8))
		s = string.format("HELLO v%d max_frame=%d", p(4, 2):uint(), p(12, 4):uint())
	else
		tree:add(f.session_id, p(16, 16))
		local sid = hex(p(16, 16))
		c.session = sid
		s = "WELCOME session " .. sid:sub(1, 16)
	end
	return s
end

local function parse_manifest(p, tree, c)
	local ndev = p(0, 4):uint()
	tree:add(f.m_ndev, p(0, 4))
	tree:add(f.m_state_size, p(4, 8))
	local snl = p(12, 2):uint()
	tree:add(f.m_state_name_len, p(12, 2))
	local off = 14
	if snl > 0 then
		if not need(tree, p, off, snl, "state_name") then return "MANIFEST (truncated)" end
		tree:add(f.m_state_name, p(off, snl))
		off = off + snl
	end
	local devices = {}
	for i = 1, ndev do
		if not need(tree, p, off, 36, "device " .. i) then
			return "MANIFEST (truncated)"
		end
		local nl = p(off + 6, 2):uint()
		local dlen = 36 + nl
		if not need(tree, p, off, dlen, "device " .. i .. " name") then
			return "MANIFEST (truncated)"
		end
		local id = p(off, 4):uint()
		local unit = p(off + 8, 4):uint()
		local size = p(off + 12, 8):uint64():tonumber()
		local name = nl > 0 and p(off + 36, nl):string() or ""
		local dt = tree:add(ferry, p(off, dlen), string.format(
			"Device %d: %s %s, %.0f bytes, unit %d", id,
			dev_kinds[p(off + 4, 1):uint()] or "kind?", name, size, unit))
		dt:add(f.d_id, p(off, 4))
		dt:add(f.d_kind, p(off + 4, 1))
		zero_check(dt, dt:add(f.d_reserved, p(off + 5, 1)), p(off + 5, 1):uint())
		dt:add(f.d_name_len, p(off + 6, 2))
		dt:add(f.d_unit, p(off + 8, 4))
		dt:add(f.d_size, p(off + 12, 8))
		dt:add(f.d_src_dev, p(off + 20, 8))
		dt:add(f.d_src_ino, p(off + 28, 8))
		if nl > 0 then dt:add(f.d_name, p(off + 36, nl)) end
		devices[id] = { unit = unit, size = size }
		off = off + dlen
	end
	trailing(tree, p, off)
	c.devices = devices
	if c.session ~= nil then sessions[c.session] = devices end
	return string.format("MANIFEST ndev=%d", ndev)
end


-- Length of unit `index` of a device: the last unit may be short.
local function unit_len(dev, index)
	local units = math.ceil(dev.size / dev.unit)
	local rest = dev.size % dev.unit
	if index == units - 1 and rest ~= 0 then return rest end
	return dev.unit
end

local function parse_pages(p, tree, c)
	local seq = p(0, 8):uint64()
	local devid, round, count = p(8, 4):uint(), p(12, 4):uint(), p(16, 4):uint()
	add_seq(tree, f.pages_seq, p(0, 8))
	tree:add(f.p_device, p(8, 4))
	tree:add(f.p_round, p(12, 4))
	tree:add(f.p_count, p(16, 4))
	local dev = c.devices[devid]
	local off, complete = 20, true
	for i = 1, count do
		if not need(tree, p, off, 5, "entry " .. i) then complete = false; break end
		local idx, k = p(off, 4):uint(), p(off + 4, 1):uint()
		local elen
		if k == 1 then
			elen = 5
		elseif k == 2 then
			elen = 29
		elseif k == 3 then
			if not need(tree, p, off, 9, "entry " .. i .. " clen") then complete = false; break end
			elen = 9 + p(off + 5, 4):uint()
		elseif k == 4 then
			if dev ~= nil then
				elen = 5 + unit_len(dev, idx)
			elseif i == count then
				elen = p:len() - off
			else
				tree:add_proto_expert_info(ex.undecoded, string.format(
					"entry %d and later: RAW unit length unknown (no MANIFEST for device %d in this capture)",
					i, devid))
				complete = false
				break
			end
		else
			tree:add_proto_expert_info(ex.malformed, string.format(
				"entry %d: unknown kind %d", i, k))
			complete = false
			break
		end
		if not need(tree, p, off, elen, "entry " .. i) then complete = false; break end
		local et = tree:add(ferry, p(off, elen), string.format("Entry %d: unit %d %s (%d bytes)",
			i, idx, page_kinds[k], elen))
		et:add(f.e_index, p(off, 4))
		et:add(f.e_kind, p(off + 4, 1))
		if k == 2 then
			et:add(f.e_src_device, p(off + 5, 4))
			et:add(f.e_src_index, p(off + 9, 4))
			et:add(f.e_hash, p(off + 13, 16))
		elseif k == 3 then
			et:add(f.e_clen, p(off + 5, 4))
			if elen > 9 then et:add(f.e_data, p(off + 9, elen - 9)) end
		elseif k == 4 and elen > 5 then
			et:add(f.e_data, p(off + 5, elen - 5))
		end
		off = off + elen
	end
	if complete then trailing(tree, p, off) end
	return string.format("PAGES seq=%s dev=%d round=%d count=%d", tostring(seq), devid, round, count)
end

local function parse_commit(p, tree)
	local ndev = p(8, 4):uint()
	add_seq(tree, f.commit_seq, p(0, 8))
	tree:add(f.c_ndev, p(8, 4))
	local off = 12
	for i = 1, ndev do
		if not need(tree, p, off, 20, "digest " .. i) then return "COMMIT (truncated)" end
		local dt = tree:add(ferry, p(off, 20), string.format("Device %d digest %s",
			p(off, 4):uint(), hex(p(off + 4, 16))))
		dt:add(f.c_dev_id, p(off, 4))
		dt:add(f.c_digest, p(off + 4, 16))
		off = off + 20
	end
	if not need(tree, p, off, 16, "state_digest") then return "COMMIT (truncated)" end
	tree:add(f.c_state_digest, p(off, 16))
	trailing(tree, p, off + 16)
	return string.format("COMMIT seq=%s ndev=%d", tostring(p(0, 8):uint64()), ndev)
end

-- REFUSE and ERROR: u32 code, [u32 device], u16 text_len, text
local function parse_code_text(p, tree, pinfo, is_refuse)
	local code = p(0, 4):uint()
	local off = 4
	local name = is_refuse and "REFUSE" or "ERROR"
	if is_refuse then
		tree:add(f.refuse_code, p(0, 4))
		tree:add(f.refuse_device, p(4, 4))
		off = 8
	else
		tree:add(f.error_code, p(0, 4))
	end
	local tl = p(off, 2):uint()
	tree:add(is_refuse and f.refuse_text_len or f.error_text_len, p(off, 2))
	off = off + 2
	local text = ""
	if tl > 0 and need(tree, p, off, tl, "text") then
		tree:add(is_refuse and f.refuse_text or f.error_text, p(off, tl))
		text = p(off, tl):string()
		off = off + tl
	end
	if off <= p:len() then trailing(tree, p, off) end
	tree:add_proto_expert_info(ex.error, string.format("%s %s: %s", name, code_str(code), text))
	return string.format("%s %s", name, code_str(code))
end

-- Byte checks of section 4.15 (names: a-z 0-9 -; host tokens: 0x21..0x7e;
-- uuid: 0-9 a-f -).  Returns the offset of the first bad byte, or nil.
local function bad_byte(range, kind)
	local b = range:bytes()
	for i = 0, b:len() - 1 do
		local c = b:get_index(i)
		local good
		if kind == "host" then
			good = c >= 0x21 and c <= 0x7e
		elseif kind == "uuid" then
			good = (c >= 0x30 and c <= 0x39) or (c >= 0x61 and c <= 0x66) or c == 0x2d
		else
			good = (c >= 0x61 and c <= 0x7a) or (c >= 0x30 and c <= 0x39) or c == 0x2d
		end
		if not good then return i end
	end
	return nil
end

-- A u8- or u16-length-prefixed string at off: adds the length and the
-- string (when not empty), flags a length outside [lo, hi] and bytes
-- outside kind's set.  Returns the new offset, the string, or nil when the
-- payload ends first.
local function lstring(tree, p, off, wide, lenf, strf, lo, hi, kind, what)
	local lw = wide and 2 or 1
	if not need(tree, p, off, lw, what .. " length") then return nil end
	local n = p(off, lw):uint()
	local li = tree:add(lenf, p(off, lw))
	if n < lo or n > hi then
		li:add_proto_expert_info(ex.malformed, string.format("%s: length %d outside %d..%d",
			what, n, lo, hi))
	end
	off = off + lw
	if not need(tree, p, off, n, what) then return nil end
	local str = ""
	if n > 0 then
		local si = tree:add(strf, p(off, n))
		str = p(off, n):string()
		local at = kind and bad_byte(p(off, n), kind)
		if at then
			si:add_proto_expert_info(ex.malformed, string.format("%s: byte 0x%02x at %d not allowed",
				what, p(off + at, 1):uint(), at))
		end
	end
	return off + n, str
end

-- DOMAIN (4.15): u32 flags, arch, model, uuid, nwaive x name, u32 xml_len, xml
local function parse_domain(p, tree)
	local flags = p(0, 4):uint()
	local fi = tree:add(f.dom_flags, p(0, 4))
	tree:add(f.dom_check_only, p(0, 4))
	if flags > DOMAIN_CHECK_ONLY then   -- any bit but bit 0
		fi:add_proto_expert_info(ex.malformed, string.format("unknown flags 0x%08x", flags))
	end
	local off, arch, model, uuid = 4
	off, arch = lstring(tree, p, off, false, f.dom_arch_len, f.dom_arch, 1, HOST_TOKEN_MAX, "host", "arch")
	if off == nil then return "DOMAIN (truncated)" end
	off, model = lstring(tree, p, off, false, f.dom_model_len, f.dom_model, 0, HOST_TOKEN_MAX, "host", "model")
	if off == nil then return "DOMAIN (truncated)" end
	off, uuid = lstring(tree, p, off, false, f.dom_uuid_len, f.dom_uuid, 0, UUID_LEN, "uuid", "uuid")
	if off == nil then return "DOMAIN (truncated)" end
	if #uuid ~= 0 and #uuid ~= UUID_LEN then
		tree:add_proto_expert_info(ex.malformed, string.format("uuid: %d bytes, 0 or %d", #uuid, UUID_LEN))
	end
	if not need(tree, p, off, 1, "nwaive") then return "DOMAIN (truncated)" end
	local nw = p(off, 1):uint()
	local ni = tree:add(f.dom_nwaive, p(off, 1))
	if nw > WAIVE_MAX then
		ni:add_proto_expert_info(ex.malformed, string.format("%d waived checks, at most %d", nw, WAIVE_MAX))
	end
	off = off + 1
	local seen, names = {}, {}
	for i = 1, nw do
		local name
		off, name = lstring(tree, p, off, false, f.dom_waive_len, f.dom_waive, 1, CHECK_NAME_MAX, "name",
			"waived check " .. i)
		if off == nil then return "DOMAIN (truncated)" end
		if seen[name] then
			tree:add_proto_expert_info(ex.malformed, "check '" .. name .. "' waived twice")
		end
		seen[name] = true
		names[#names + 1] = name
	end
	if not need(tree, p, off, 4, "xml_len") then return "DOMAIN (truncated)" end
	local xl = p(off, 4):uint()
	local xi = tree:add(f.dom_xml_len, p(off, 4))
	if xl < 1 or xl > DOMAIN_XML_MAX then
		xi:add_proto_expert_info(ex.malformed, string.format("xml_len %d outside 1..%d", xl, DOMAIN_XML_MAX))
	end
	off = off + 4
	if xl > 0 then
		if not need(tree, p, off, xl, "xml") then return "DOMAIN (truncated)" end
		local head = p(off, math.min(xl, 48)):string():gsub("[%c]", ".")
		tree:add(f.dom_xml, p(off, xl)):append_text(" (" .. head .. (xl > 48 and "..." or "") .. ")")
		off = off + xl
	end
	trailing(tree, p, off)
	local s = string.format("DOMAIN arch=%s xml=%d bytes", arch, xl)
	if #model > 0 then s = s .. " model=" .. model end
	if #names > 0 then s = s .. " waived=" .. table.concat(names, ",") end
	if flags % 2 == 1 then s = s .. " check-only" end
	return s
end

-- CHECKS (4.16): u16 nrows, then rows of status, code, name, source,
-- destination, why.  A failed row gets an expert note.
local function parse_checks(p, tree)
	local nrows = p(0, 2):uint()
	local ni = tree:add(f.chk_nrows, p(0, 2))
	if nrows < 1 or nrows > CHECKS_MAX then
		ni:add_proto_expert_info(ex.malformed, string.format("%d rows outside 1..%d", nrows, CHECKS_MAX))
	end
	local off = 2
	local count = { 0, 0, 0 }
	for i = 1, nrows do
		if not need(tree, p, off, 6, "row " .. i) then return "CHECKS (truncated)" end
		local start = off
		local st, code, nl = p(off, 1):uint(), p(off + 1, 4):uint(), p(off + 5, 1):uint()
		local name = (off + 6 + nl <= p:len() and nl > 0) and p(off + 6, nl):string() or ""
		local rt = tree:add(ferry, p(off, math.min(p:len() - off, 6 + nl)), string.format(
			"Row %d: %s %s, %s", i, check_status[st] or ("status " .. st), name,
			code == 0 and "code 0" or code_str(code)))
		local si = rt:add(f.chk_status, p(off, 1))
		if check_status[st] == nil then
			si:add_proto_expert_info(ex.malformed, string.format("status %d: 1 pass, 2 fail, 3 waived", st))
		else
			count[st] = count[st] + 1
		end
		local ci = rt:add(f.chk_code, p(off + 1, 4))
		if st ~= 1 and code == 0 then
			ci:add_proto_expert_info(ex.malformed, "a failed or waived row with code 0")
		end
		off = off + 5
		local why
		off = lstring(rt, p, off, false, f.chk_name_len, f.chk_name, 1, CHECK_NAME_MAX, "name", "name")
		if off == nil then return "CHECKS (truncated)" end
		off = lstring(rt, p, off, true, f.chk_source_len, f.chk_source, 0, CHECK_VALUE_MAX, nil, "source")
		if off == nil then return "CHECKS (truncated)" end
		off = lstring(rt, p, off, true, f.chk_destination_len, f.chk_destination, 0, CHECK_VALUE_MAX, nil,
			"destination")
		if off == nil then return "CHECKS (truncated)" end
		off, why = lstring(rt, p, off, true, f.chk_why_len, f.chk_why, 0, CHECK_WHY_MAX, nil, "why")
		if off == nil then return "CHECKS (truncated)" end
		rt:set_len(off - start)
		if st == 2 then
			rt:add_proto_expert_info(ex.error, string.format("check %s failed: %s: %s", name,
				code_str(code), why))
		end
	end
	trailing(tree, p, off)
	return string.format("CHECKS %d rows: %d pass, %d fail, %d waived", nrows, count[1], count[2], count[3])
end

-- QSTREAM (4.17): u64 seq, u64 stream_off, u32 count, then items: OPAQUE
-- (u32 len, bytes), BLOCKS (u16 n, n x (str8 id, u64 len)), PAGE (u8 rec,
-- u16 block, u64 offset, u8 kind, the kind's payload).  Items have their
-- own lengths, so all decode without the block table; it only gives the
-- record length of a PAGE.
local function parse_qstream(p, tree, c)
	local count = p(16, 4):uint()
	add_seq(tree, f.qs_seq, p(0, 8))
	tree:add(f.qs_stream_off, p(8, 8))
	local ci = tree:add(f.qs_count, p(16, 4))
	if count < 1 or count > MAX_ITEMS then
		ci:add_proto_expert_info(ex.malformed, string.format("count %d outside 1..%d", count, MAX_ITEMS))
	end
	local off, complete = 20, true
	local n = { 0, 0, 0 }
	for i = 1, count do
		if not need(tree, p, off, 1, "item " .. i) then complete = false; break end
		local t = p(off, 1):uint()
		local ilen
		if t == 1 then
			if not need(tree, p, off, 5, "item " .. i .. " len") then complete = false; break end
			ilen = 5 + p(off + 1, 4):uint()
		elseif t == 2 then
			if not need(tree, p, off, 3, "item " .. i .. " n") then complete = false; break end
			ilen = 3
			for _ = 1, p(off + 1, 2):uint() do
				if not need(tree, p, off, ilen + 1, "item " .. i .. " block") then complete = false; break end
				ilen = ilen + 1 + p(off + ilen, 1):uint() + 8
			end
			if not complete then break end
		elseif t == 3 then
			if not need(tree, p, off, 13, "item " .. i) then complete = false; break end
			local k = p(off + 12, 1):uint()
			if k == 1 then
				ilen = 13
			elseif k == 2 then
				ilen = 13 + 2 + 8 + 16
			elseif k == 3 then
				if not need(tree, p, off, 17, "item " .. i .. " clen") then complete = false; break end
				ilen = 17 + p(off + 13, 4):uint()
			elseif k == 4 then
				ilen = 13 + QPAGE_SIZE
			else
				tree:add_proto_expert_info(ex.malformed, string.format("item %d: page kind %d unknown", i, k))
				complete = false
				break
			end
		else
			tree:add_proto_expert_info(ex.malformed, string.format("item %d: type %d unknown", i, t))
			complete = false
			break
		end
		if not need(tree, p, off, ilen, "item " .. i) then complete = false; break end
		n[t] = n[t] + 1
		local it = tree:add(ferry, p(off, ilen), string.format("Item %d: %s (%d bytes)", i, qitem_types[t], ilen))
		it:add(f.qi_type, p(off, 1))
		if t == 1 then
			it:add(f.qi_len, p(off + 1, 4))
			if ilen > 5 then it:add(f.qi_data, p(off + 5, ilen - 5)) end
		elseif t == 2 then
			local nb = p(off + 1, 2):uint()
			local bi = it:add(f.qb_n, p(off + 1, 2))
			if nb < 1 or nb > QBLOCKS_MAX then
				bi:add_proto_expert_info(ex.malformed, string.format("%d blocks outside 1..%d", nb, QBLOCKS_MAX))
			end
			local bo, ids = off + 3, {}
			for j = 1, nb do
				local il = p(bo, 1):uint()
				local bt = it:add(ferry, p(bo, 9 + il), string.format("Block %d: %s, %s bytes", j - 1,
					il > 0 and p(bo + 1, il):string() or "", tostring(p(bo + 1 + il, 8):uint64())))
				bt:add(f.qb_id_len, p(bo, 1))
				if il > 0 then bt:add(f.qb_id, p(bo + 1, il)) end
				bt:add(f.qb_len, p(bo + 1 + il, 8))
				ids[j - 1] = il
				bo = bo + 9 + il
			end
			c.qblocks = ids
			if c.session ~= nil then qsessions[c.session] = ids end
		else
			local rec, blk, k = p(off + 1, 1):uint(), p(off + 2, 2):uint(), p(off + 12, 1):uint()
			it:append_text(string.format(": %s%s block %d offset %s %s", rec % 2 == 1 and "DATA" or "zero record",
				rec >= 2 and "+CONT" or "", blk, tostring(p(off + 4, 8):uint64()), page_kinds[k]))
			local ri = it:add(f.qp_rec, p(off + 1, 1))
			if rec > 3 then ri:add_proto_expert_info(ex.malformed, "unknown rec bits") end
			it:add(f.qp_block, p(off + 2, 2))
			it:add(f.qp_offset, p(off + 4, 8))
			it:add(f.qp_kind, p(off + 12, 1))
			if k == 2 then
				it:add(f.qp_src_block, p(off + 13, 2))
				it:add(f.qp_src_offset, p(off + 15, 8))
				it:add(f.qp_hash, p(off + 23, 16))
			elseif k == 3 then
				it:add(f.qp_clen, p(off + 13, 4))
				if ilen > 17 then it:add(f.qp_data, p(off + 17, ilen - 17)) end
			elseif k == 4 then
				it:add(f.qp_data, p(off + 13, QPAGE_SIZE))
			end
			if rec % 2 == 0 and k ~= 1 then
				it:add_proto_expert_info(ex.malformed, "a zero record must be kind ZERO")
			end
			local idl = c.qblocks and c.qblocks[blk]
			if idl ~= nil then
				local rl = 8 + (rec >= 2 and 0 or 1 + idl) + (rec % 2 == 1 and QPAGE_SIZE or 1)
				it:add(f.qp_record_len, p(off, 0), rl):set_generated()
			end
		end
		off = off + ilen
	end
	if complete then trailing(tree, p, off) end
	return string.format("QSTREAM seq=%s off=%s items=%d (%d opaque, %d blocks, %d pages)",
		tostring(p(0, 8):uint64()), tostring(p(8, 8):uint64()), count, n[1], n[2], n[3])
end

-- QRETURN (4.18): u64 offset, then the return-path bytes.
local function parse_qreturn(p, tree)
	tree:add(f.qr_offset, p(0, 8))
	tree:add(f.qr_data, p(8, p:len() - 8))
	return string.format("QRETURN offset=%s (%d bytes)", tostring(p(0, 8):uint64()), p:len() - 8)
end

-- HAVE (4.19): u32 device, u32 first, u32 count, count x 16-byte hashes of
-- units first.. of the receiver's copy.
local function parse_have(p, tree, c)
	local devid, first, count = p(0, 4):uint(), p(4, 4):uint(), p(8, 4):uint()
	tree:add(f.h_device, p(0, 4))
	tree:add(f.h_first, p(4, 4))
	tree:add(f.h_count, p(8, 4))
	if devid == 0 or count == 0 then
		tree:add_proto_expert_info(ex.malformed, "HAVE: device and count must not be 0")
	elseif 12 + 16 * count ~= p:len() then
		tree:add_proto_expert_info(ex.malformed, string.format(
			"HAVE: count %d needs %d bytes, the payload has %d", count, 12 + 16 * count, p:len()))
	elseif first + count > 0xFFFFFFFF then
		tree:add_proto_expert_info(ex.malformed, "HAVE: past unit 2^32 - 2")
	else
		local dev = c.devices and c.devices[devid]
		if dev ~= nil and first + count > math.ceil(dev.size / dev.unit) then
			tree:add_proto_expert_info(ex.malformed, string.format(
				"HAVE: units %d..%d past the device's %d", first, first + count - 1,
				math.ceil(dev.size / dev.unit)))
		end
		for i = 0, count - 1 do
			tree:add(f.h_hash, p(12 + 16 * i, 16)):append_text(" (unit " .. (first + i) .. ")")
		end
	end
	return string.format("HAVE dev=%d units %d..%d", devid, first, first + count - 1)
end

-- Dissect one whole frame (header + payload) held in range r.
local function dissect_frame(r, pinfo, root, c)
	local t, flags, rsv, len = r(0, 1):uint(), r(1, 1):uint(), r(2, 2):uint(), r(4, 4):uint()
	local ti = TYPES[t]
	local tname = ti and ti[1] or ("type " .. t)
	local tree = root:add(ferry, r, "ferry " .. tname)
	tree:add(f.type, r(0, 1))
	zero_check(tree, tree:add(f.flags, r(1, 1)), flags)
	zero_check(tree, tree:add(f.reserved, r(2, 2)), rsv)
	tree:add(f.len, r(4, 4))

	local src = endpoint(pinfo.src, pinfo.src_port)
	if c.sender ~= nil then
		local from_sender = (src == c.sender)
		tree:add(f.direction, r(0, 0), from_sender and "sender->receiver" or "receiver->sender")
			:set_generated()
		if ti and ti[4] ~= "B" and (ti[4] == "S") ~= from_sender then
			tree:add_proto_expert_info(ex.direction)
		end
	end

	if ti == nil then
		tree:add_proto_expert_info(ex.malformed, "unknown frame type " .. t)
		add_info(pinfo, "type " .. t .. " (unknown)")
		return
	end
	if len < ti[2] or (ti[3] ~= nil and len > ti[3]) then
		tree:add_proto_expert_info(ex.malformed, string.format("%s: length %d outside %d..%s",
			tname, len, ti[2], ti[3] and tostring(ti[3]) or "max"))
		add_info(pinfo, tname .. " (bad length)")
		return
	end
	local p = r(8, len)
	tree:append_text(string.format(", %d bytes", len))
	local s
	if t == 1 or t == 2 or t == 12 then
		s = parse_handshake(p, tree, c, pinfo, t)
	elseif t == 3 then
		s = parse_manifest(p, tree, c)
	elseif t == 4 then
		tree:add(f.next_seq, p(0, 8))
		s = "ACCEPT next_seq=" .. tostring(p(0, 8):uint64())
	elseif t == 5 then
		s = parse_code_text(p, tree, pinfo, true)
	elseif t == 6 then
		s = parse_pages(p, tree, c)
	elseif t == 7 then
		add_seq(tree, f.ack_seq, p(0, 8))
		s = "ACK " .. tostring(p(0, 8):uint64())
	elseif t == 8 then
		tree:add(f.s_offset, p(0, 8))
		if len > 8 then tree:add(f.s_data, p(8, len - 8)) end
		s = string.format("STATE offset=%s (%d bytes)", tostring(p(0, 8):uint64()), len - 8)
	elseif t == 9 then
		s = parse_commit(p, tree)
	elseif t == 10 then
		add_seq(tree, f.committed_seq, p(0, 8))
		s = "COMMITTED seq=" .. tostring(p(0, 8):uint64())
	elseif t == 11 then
		s = parse_code_text(p, tree, pinfo, false)
	elseif t == 16 then
		s = parse_domain(p, tree)
	elseif t == 17 then
		s = parse_checks(p, tree)
	elseif t == 18 then
		s = parse_qstream(p, tree, c)
	elseif t == 19 then
		s = parse_qreturn(p, tree)
	elseif t == 20 then
		s = parse_have(p, tree, c)
	elseif t == 13 then
		tree:add(f.r_status, p(0, 4))
		tree:add(f.next_seq, p(4, 8))
		tree:add(f.r_state_offset, p(12, 8))
		s = string.format("RESUMED %s next_seq=%s", resumed_status[p(0, 4):uint()] or "status?",
			tostring(p(4, 8):uint64()))
	else -- PING, PONG
		tree:add(f.nonce, p(0, 8))
		s = tname
	end
	tree:append_text(": " .. s)
	add_info(pinfo, s)
end

-- A frame header that could start a ferry frame: known type, length in its
-- bounds (or at least not beyond the largest max_frame).
local function header_plausible(tvb, off)
	local t = tvb(off, 1):uint()
	local ti = TYPES[t]
	if ti == nil then return false end
	local len = tvb(off + 4, 4):uint()
	if len < ti[2] then return false end
	if len > (ti[3] or MAX_FRAME_LIMIT) then return false end
	return true
end

-- The dissector proper: called by TLS with decrypted application data (or
-- a reassembly of it).  Walks the frames; when the last one is incomplete,
-- asks TLS for more (desegment_offset/len) and returns.
function ferry.dissector(tvb, pinfo, root)
	local total = tvb:len()
	if total == 0 then return 0 end
	pinfo.cols.protocol = "FERRY"
	local c = conn_of(pinfo)
	if c.sender == nil then
		-- Came through tls.port: the receiver is on the registered port.
		if pinfo.src_port == pref_port or learned[pinfo.src_port] then
			c.sender = endpoint(pinfo.dst, pinfo.dst_port)
		elseif pinfo.dst_port == pref_port or learned[pinfo.dst_port] then
			c.sender = endpoint(pinfo.src, pinfo.src_port)
		end
	end
	local off = 0
	while off < total do
		local rest = total - off
		if rest < HDR_LEN then
			if pinfo.can_desegment > 0 then
				pinfo.desegment_offset = off
				pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
				return total
			end
			root:add(ferry, tvb(off)):add_proto_expert_info(ex.undecoded,
				"partial frame header (TLS reassembly is off)")
			return total
		end
		if not header_plausible(tvb, off) then
			-- Out of step (capture started mid-frame, or not ferry at all):
			-- show the rest as undecoded; the next record may start a frame.
			local u = root:add(ferry, tvb(off), "ferry: data not at a frame boundary")
			u:add_proto_expert_info(ex.undecoded, string.format(
				"%d bytes: not a ferry frame header (type %d, length %d)", rest,
				tvb(off, 1):uint(), tvb(off + 4, 4):uint()))
			if off == 0 then add_info(pinfo, "[ferry continuation or unknown data]") end
			return total
		end
		local flen = HDR_LEN + tvb(off + 4, 4):uint()
		if flen > rest then
			if pinfo.can_desegment > 0 then
				pinfo.desegment_offset = off
				pinfo.desegment_len = flen - rest
				return total
			end
			local t = tvb(off, 1):uint()
			local pt = root:add(ferry, tvb(off), string.format("ferry %s, partial (%d of %d bytes)",
				type_names[t], rest, flen))
			pt:add(f.type, tvb(off, 1))
			pt:add(f.len, tvb(off + 4, 4))
			pt:add_proto_expert_info(ex.undecoded, string.format(
				"frame of %d bytes, %d here (TLS reassembly is off)", flen, rest))
			add_info(pinfo, type_names[t] .. " (partial)")
			return total
		end
		dissect_frame(tvb(off, flen), pinfo, root, c)
		off = off + flen
	end
	return total
end

-- Registration.  TLS hands decrypted application data to (1) heuristics,
-- while its connection has no application protocol yet, then (2) the
-- dissector registered for the port in the "tls.port" table, which it then
-- keeps for the connection.  Only (2) lets a Lua dissector ask TLS to
-- reassemble (in Wireshark 4.0 a heuristic is called with can_desegment 0),
-- so the heuristic only recognises a connection's first frame, dissects it,
-- and registers the receiver's port in "tls.port"; every later record of
-- the connection then comes through (2).
local tls_port_table = DissectorTable.get("tls.port")
local tls_handle = Dissector.get("tls")

forget_learned = function()
	for port in pairs(learned) do
		if port ~= pref_port then tls_port_table:remove(port, ferry) end
	end
	learned = {}
end

-- First frame of a connection: HELLO (24 bytes), WELCOME (32) or RESUME
-- (60), flags and reserved 0, then the magic.  A PING or PONG alone in a
-- record is shown too, but does not claim the connection.
local FIRST = { [1] = 24, [2] = 32, [12] = 60 }
local function heuristic(tvb, pinfo, root)
	local c = conns[conn_key(pinfo)]
	if c ~= nil and c.sender ~= nil then
		-- A later record of a known connection: decline, so that TLS
		-- falls back to the port registered below and keeps it.
		return false
	end
	if tvb:len() < HDR_LEN + 8 then return false end
	local t = tvb(0, 1):uint()
	if (t == 14 or t == 15) and tvb:len() == HDR_LEN + 8 and tvb(1, 3):uint() == 0
		and tvb(4, 4):uint() == 8 then
		-- A receiver may PING before the sender's first frame (section
		-- 4.14): a record of exactly one PING or PONG.  Too little to
		-- claim the connection; HELLO or WELCOME will.
		ferry.dissector(tvb, pinfo, root)
		return true
	end
	if FIRST[t] == nil or tvb(1, 3):uint() ~= 0 or tvb(4, 4):uint() ~= FIRST[t]
		or tvb(8, 4):uint() ~= MAGIC then
		return false
	end
	c = conn_of(pinfo)
	-- HELLO and RESUME come from the sender, WELCOME from the receiver.
	local rport
	if t == 2 then
		c.sender = endpoint(pinfo.dst, pinfo.dst_port)
		rport = pinfo.src_port
	else
		c.sender = endpoint(pinfo.src, pinfo.src_port)
		rport = pinfo.dst_port
	end
	if rport ~= pref_port and not learned[rport] then
		learned[rport] = true
		tls_port_table:add(rport, ferry)
	end
	ferry.dissector(tvb, pinfo, root)
	return true
end
ferry:register_heuristic("tls", heuristic)

-- ferry.tls_port: TLS on that TCP port is ferry (and the port is TLS).
local function apply_port()
	local want = ferry.prefs.tls_port
	if want == pref_port then return end
	if pref_port ~= 0 then
		tls_port_table:remove(pref_port, ferry)
		DissectorTable.get("tcp.port"):remove(pref_port, tls_handle)
	end
	pref_port = want
	if want ~= 0 then
		tls_port_table:add(want, ferry)
		DissectorTable.get("tcp.port"):add(want, tls_handle)
	end
end
function ferry.prefs_changed() apply_port() end
apply_port()
