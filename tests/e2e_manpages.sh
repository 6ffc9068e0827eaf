#!/usr/bin/env bash
# Manual pages (issue 8, acceptance 3): every page in man/ renders with
# `man -l` without a warning (man-db's --warnings, and groff -ww), has the
# title its file name says, and names every flag of its program's --help
# (for ferry-guest, of every command's --help).  A page with a bad macro
# must produce a warning, so the check can fail.
source "$(dirname "$0")/lib.sh"
cd "$REPO" || exit 1

if ! command -v man >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
	ok "man pages # SKIP man-db or groff not installed (tools/install-deps installs them)"
	t_done
fi

# render FILE: plain text, wide enough that no flag is broken across lines.
render() { LC_ALL=C MANWIDTH=250 man -l "$1" 2>/dev/null | col -bx; }

pages=(man/*.[18])
check "man/ holds the four pages (${pages[*]})" [ ${#pages[@]} -ge 4 ]
for p in "${pages[@]}"; do
	w=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
	if [ -z "$w" ]; then ok "$p: man --warnings -l prints no warning"; else
		not_ok "$p: man --warnings -l warns"; echo "$w" | diag; fi
	w=$(groff -mandoc -ww -z "$p" 2>&1)
	if [ -z "$w" ]; then ok "$p: groff -mandoc -ww -z prints no warning"; else
		not_ok "$p: groff -ww warns"; echo "$w" | diag; fi
	name=$(basename "$p"); sec=${name##*.}; name=${name%.*}
	title=$(echo "$name" | tr a-z A-Z)
	check "$p: renders with the title $title($sec), NAME and SEE ALSO" \
		bash -c 'out=$(LC_ALL=C MANWIDTH=80 man -l "$1" 2>/dev/null); [[ $out == "$2($3)"* ]] &&
			grep -q "^NAME" <<<"$out" && grep -q "^SEE ALSO" <<<"$out"' _ "$p" "$title" "$sec"
done

# The check bites: an undefined macro and an unclosed list warn.
cp man/ferry-inspect.1 "$T/bad.1"
printf '.Bl -tag -width Ds\n.It Fl x\n.Xyzzy\n' >>"$T/bad.1"
w=$(MANWIDTH=80 man --warnings -l "$T/bad.1" 2>&1 >/dev/null)
check "a page with an undefined macro makes man --warnings warn" [ -n "$w" ]

# flags_of CMD...: the flags of a --help text (usage lines and the option
# column of the lines that start with a flag).
flags_of() {
	"$@" 2>&1 | awk '{ s = $0; sub(/^[ \t]+/, "", s)
		if (s ~ /^(usage:|\[)/) print s
		else if (s ~ /^-/) { sub(/  .*/, "", s); print s } }' |
		grep -oE -- '(^|[^a-zA-Z-])--?[a-z][a-z0-9-]*' | sed -E 's/^[^-]+//' | sort -u
}

# page_has_flags PAGE CMD...: every flag of CMD's help is in PAGE.
page_has_flags() {
	local page=$1 text missing="" f n=0; shift
	text=$(render "$page")
	for f in $(flags_of "$@"); do
		n=$((n + 1))
		grep -qE -- "(^|[^a-zA-Z0-9-])$f([^a-zA-Z0-9-]|\$)" <<<"$text" || missing="$missing $f"
	done
	if [ -z "$missing" ] && [ "$n" -gt 0 ]; then
		ok "$page names all $n flags of '${*##*/}'"
	else
		not_ok "$page lacks flags of '$*':${missing:- none found}"
	fi
}

page_has_flags man/ferry-send.1 "$FERRY_BIN/ferry-send" --help
page_has_flags man/ferry-recv.8 "$FERRY_BIN/ferry-recv" --help
page_has_flags man/ferry-inspect.1 "$FERRY_BIN/ferry-inspect" --help
page_has_flags man/ferry-guest.1 "$FERRY_BIN/ferry-guest" --help
for c in create run check mark stats; do
	page_has_flags man/ferry-guest.1 "$FERRY_BIN/ferry-guest" "$c" --help
	check "man/ferry-guest.1 describes the command '$c'" \
		bash -c 'LC_ALL=C MANWIDTH=250 man -l man/ferry-guest.1 2>/dev/null | col -bx | grep -qE "^ +$1( |\$)"' _ "$c"
done
# The daemons' subcommands.
check "man/ferry-send.1 describes ctl status, abort and bandwidth" \
	bash -c 't=$(LC_ALL=C MANWIDTH=250 man -l man/ferry-send.1 2>/dev/null | col -bx); for w in status abort bandwidth; do grep -qE "^ +$w( |\$)" <<<"$t" || exit 1; done'
check "man/ferry-recv.8 describes ctl status and abort" \
	bash -c 't=$(LC_ALL=C MANWIDTH=250 man -l man/ferry-recv.8 2>/dev/null | col -bx); for w in status abort; do grep -qE "^ +$w( |\$)" <<<"$t" || exit 1; done'
t_done
