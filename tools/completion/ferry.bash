# bash completion for ferry-send, ferry-recv, ferry-guest and ferry-inspect.
#
# Flags are read from the program's own --help (for ferry-guest, from
# `ferry-guest COMMAND --help`), so they never fall out of step with the
# binary; a flag's value is completed from the word after it in the help:
# FILE, SOCKET, CAPTURE, DUMP, KEYLOG, PATH -> file names, DIR -> directories,
# IFNAME -> network interfaces, LEVEL -> the log levels.  Subcommands: `ctl SOCKET status|abort|...`
# of the two daemons, the commands of ferry-guest.
#
# Install as $(PREFIX)/share/bash-completion/completions/ferry-send (and the
# same file, or a link, for the other three names), or source it.

# _ferry_help_flags PROG [SUBCOMMAND]: print "--flag METAVAR" or "--flag"
# lines from the help text (cached per program and subcommand): from the
# usage lines and the option column of the lines that start with a flag.
declare -gA _ferry_flag_cache 2>/dev/null || true
_ferry_help_flags() {
	local key="$1|${2:-}"
	if [[ -z ${_ferry_flag_cache[$key]+x} ]]; then
		_ferry_flag_cache[$key]=$(
			{ if [[ -n ${2:-} ]]; then "$1" "$2" --help; else "$1" --help; fi; } 2>&1 </dev/null |
				awk '{ s = $0; sub(/^[ \t]+/, "", s)
					if (s ~ /^(usage:|\[)/) print s
					else if (s ~ /^-/) { sub(/  .*/, "", s); print s } }' |
				grep -oE -- '(^|[^a-z-])--[a-z][a-z0-9-]+( [A-Z][A-Z0-9_:]*| sha256:HEX)?' |
				sed -E 's/^[^-]+//' | sort -u)
	fi
	printf '%s\n' "${_ferry_flag_cache[$key]}"
}

_ferry_value() {   # complete the value of a flag whose metavar is $1
	local cur=$2
	case $1 in
	DIR)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
	FILE | SOCKET | CAPTURE | DUMP | KEYLOG | PATH)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
	IFNAME)
		mapfile -t COMPREPLY < <(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur") ;;
	LEVEL)
		mapfile -t COMPREPLY < <(compgen -W "error warn info debug" -- "$cur") ;;
	*) COMPREPLY=() ;;
	esac
}

_ferry() {
	local prog=$1 cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local sub="" flags line
	COMPREPLY=()

	# The subcommand: ferry-guest COMMAND, or the daemons' ctl.
	case ${prog##*/} in
	ferry-guest)
		if [[ $COMP_CWORD -eq 1 ]]; then
			if [[ $cur == -* ]]; then
				mapfile -t COMPREPLY < <(compgen -W "--help" -- "$cur")
			else
				mapfile -t COMPREPLY < <(compgen -W "create run check mark stats" -- "$cur")
			fi
			return 0
		fi
		sub=${COMP_WORDS[1]} ;;
	ferry-send | ferry-recv)
		if [[ ${COMP_WORDS[1]:-} == ctl ]]; then
			case $COMP_CWORD in
			2) _ferry_value SOCKET "$cur" ;;
			3)
				if [[ ${prog##*/} == ferry-send ]]; then
					mapfile -t COMPREPLY < <(compgen -W "status abort bandwidth" -- "$cur")
				else
					mapfile -t COMPREPLY < <(compgen -W "status abort" -- "$cur")
				fi ;;
			*) mapfile -t COMPREPLY < <(compgen -W "--json" -- "$cur") ;;
			esac
			return 0
		fi ;;
	esac

	flags=$(_ferry_help_flags "$prog" "$sub")
	# The value of the flag before the cursor.
	if [[ $prev == --* && $cur != -* ]]; then
		while IFS= read -r line; do
			if [[ ${line%% *} == "$prev" && $line == *" "* ]]; then
				_ferry_value "${line#* }" "$cur"
				return 0
			fi
		done <<<"$flags"
	fi
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(cut -d' ' -f1 <<<"$flags" | sort -u)" -- "$cur")
		return 0
	fi
	case ${prog##*/} in
	ferry-send | ferry-recv)
		if [[ $COMP_CWORD -eq 1 ]]; then
			mapfile -t COMPREPLY < <(compgen -W "ctl" -- "$cur")
		fi ;;
	ferry-inspect)
		_ferry_value FILE "$cur" ;;
	esac
	return 0
}

complete -F _ferry ferry-send ferry-recv ferry-guest ferry-inspect
