#!/usr/bin/env bash
# Bash completion (tools/completion/ferry.bash): flags, subcommands and
# flag values of ferry-send, ferry-recv, ferry-guest and ferry-inspect,
# driven the way bash drives it (COMP_WORDS, COMP_CWORD, COMPREPLY).  The
# flags offered after "--" must be exactly the flags of each --help.
source "$(dirname "$0")/lib.sh"
F=$REPO/tools/completion/ferry.bash
check "ferry.bash parses (bash -n)" bash -n "$F"
export PATH="$FERRY_BIN:$PATH"
# shellcheck disable=SC1090
source "$F"

# comp WORD...: the completions of the last word, sorted, space-separated.
comp() {
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_ferry "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
# expect DESCRIPTION WANT WORD...
expect() {
	local d=$1 want=$2 got; shift 2
	got=$(comp "$@")
	if [ "$got" = "$want" ]; then ok "$d: $*|<TAB> -> $got"; else
		not_ok "$d: '$*' gave '$got', want '$want'"; fi
}

expect "a flag by prefix" "--dest-dir" ferry-recv --dest
expect "flags by prefix" "--check-config --check-only" ferry-send --check
expect "config flags" "--config" ferry-recv --conf
expect "ferry-guest commands" "check create mark run stats" ferry-guest ""
expect "ferry-guest run flags" "--dirty-log --dirty-rate --disk --disk-rate --duration" ferry-guest run --d
expect "ferry-send ctl" "abort bandwidth status" ferry-send ctl /run/x.sock ""
expect "ferry-recv ctl" "abort status" ferry-recv ctl /run/x.sock ""
expect "ctl --json" "--json" ferry-recv ctl /run/x.sock status --
expect "the first word of a daemon" "ctl" ferry-send c
expect "ferry-inspect flags" "--keylog" ferry-inspect --k

mkdir -p "$T/dirA" && : >"$T/fileA"
expect "--dest-dir completes directories only" "$T/dirA" ferry-recv --dest-dir "$T/"
expect "--mem completes files" "$T/dirA $T/fileA" ferry-send --mem "$T/"
expect "--config completes files" "$T/fileA" ferry-send --config "$T/f"
expect "--interface completes interfaces" "lo" ferry-recv --interface l
expect "no file names for a duration" "" ferry-send --downtime ""
expect "--log-level completes the levels" "debug error info warn" ferry-recv --log-level ""
expect "--log-level by prefix" "warn" ferry-send --log-level w

# Every flag of --help is offered after "--", and nothing else.
for p in ferry-send ferry-recv ferry-inspect; do
	want=$("$p" --help | awk '{ s = $0; sub(/^[ \t]+/, "", s)
		if (s ~ /^(usage:|\[)/) print s
		else if (s ~ /^-/) { sub(/  .*/, "", s); print s } }' |
		grep -oE -- '--[a-z][a-z0-9-]+' | sort -u | tr '\n' ' ' | sed 's/ $//')
	got=$(comp "$p" --)
	if [ -n "$want" ] && [ "$got" = "$want" ]; then
		ok "$p --<TAB> offers every flag of --help ($(wc -w <<<"$got"))"
	else
		not_ok "$p --<TAB>: got '$got', want '$want'"
	fi
done
t_done
