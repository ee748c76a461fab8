# SPDX-License-Identifier: Apache-2.0
# bash completion for syctl: commands, their options, and migration names asked of the
# daemon (the same --server / $SYCTL_SERVER as the command line being completed).
# Installed as /usr/share/bash-completion/completions/syctl.

_syctl_migrations()
{
	local server=() i
	for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
		case ${COMP_WORDS[i]} in
		--server) server+=(--server "${COMP_WORDS[i + 1]}") ;;
		--server=*) server+=("${COMP_WORDS[i]}") ;;
		--tls-ca | --tls-cert | --tls-key) server+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}") ;;
		esac
	done
	syctl "${server[@]}" --timeout 1s list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_syctl()
{
	local cur prev cmd i
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local commands="status apply diff get list nodes delete cutover pin unpin watch events health backfill verify version help"
	local global="--server --tls-ca --tls-cert --tls-key --timeout -o --help --version"

	# the command: the first word that is neither a global option nor its value
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--server | --tls-ca | --tls-cert | --tls-key | --timeout | -o) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done

	case $prev in
	-o) COMPREPLY=($(compgen -W "table json" -- "$cur")); return ;;
	--server | --timeout | --reason | --rate | --bytes-rate | --interval | --count | --since) return ;;
	--kind)
		COMPREPLY=($(compgen -W "migration.created migration.updated migration.deleted migration.ratio_changed
			migration.pinned migration.unpinned target.health_changed daemon.started daemon.reloaded
			cutover.phase cutover.evaluated cutover.drained cutover. migration. events.gap" -- "$cur"))
		return
		;;
	--tls-ca | --tls-cert | --tls-key)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-f)
		if [ "$cmd" = apply ] || [ "$cmd" = diff ]; then
			COMPREPLY=($(compgen -f -X '!*.@(yaml|yml)' -- "$cur") $(compgen -d -- "$cur"))
			return
		fi
		;;
	--cgroup) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--side) COMPREPLY=($(compgen -W "target legacy" -- "$cur")); return ;;
	esac

	if [ -z "$cmd" ]; then
		COMPREPLY=($(compgen -W "$commands $global" -- "$cur"))
		return
	fi

	# the command's positional words after it
	local args=0
	for ((i = i + 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-f | --cgroup | --side | --reason | --rate | --bytes-rate | --interval | --count | --since | --kind | --timeout) ((i++)) ;;
		-*) ;;
		*) ((args++)) ;;
		esac
	done

	local opts="" names=0
	case $cmd in
	status | get | delete | watch | events | backfill | verify | pin | unpin | cutover) names=1 ;;
	help) [ "$args" = 0 ] && COMPREPLY=($(compgen -W "$commands" -- "$cur")); return ;;
	esac
	case $cmd in
	apply) opts="-f --dry-run" ;;
	diff) opts="-f" ;;
	delete) opts="--force" ;;
	cutover)
		# --drain only rolls back; --wait only waits for a plan going forward
		case " ${COMP_WORDS[*]} " in
		*" start "* | *" promote "* | *" resume "*) opts="--reason --wait --timeout" ;;
		*) opts="--drain --reason" ;;
		esac
		;;
	pin) opts="--cgroup --side --reason" ;;
	unpin) opts="--cgroup --reason" ;;
	watch) opts="--interval --count" ;;
	events) opts="-f --follow --since --kind -v --verbose" ;;
	backfill) opts="--rate --bytes-rate -f --follow --status" ;;
	verify) opts="--repair --rate --no-wait --report" ;;
	health) [ "$args" = 0 ] && COMPREPLY=($(compgen -W "switchyard.v1.Control grpc.health.v1.Health" -- "$cur")) ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	elif [ "$names" = 1 ] && [ "$args" = 0 ]; then
		COMPREPLY=($(compgen -W "$(_syctl_migrations)" -- "$cur"))
	elif [ "$cmd" = cutover ] && [ "$args" = 1 ]; then
		COMPREPLY=($(compgen -W "start promote pause resume rollback finish 1% 5% 25% 50% 100%" -- "$cur"))
	fi
}
complete -F _syctl syctl
