# SPDX-License-Identifier: BSD-2-Clause
# bash completion for baton: subcommands, each one's options (read from its
# own --help, so they never drift), option values, and the names of running
# supervisors (the control sockets in baton's runtime directory).

_baton_commands="run reload promote rollback status stop upgrade demo ls steer"

# Names of the supervisors whose control socket is in the runtime directory.
_baton_names()
{
	local dir
	if [[ -n ${BATON_RUNTIME_DIR-} ]]; then
		dir=$BATON_RUNTIME_DIR
	elif [[ $EUID -eq 0 ]]; then
		dir=/run/baton
	elif [[ -n ${XDG_RUNTIME_DIR-} ]]; then
		dir=$XDG_RUNTIME_DIR/baton
	else
		return
	fi
	local f
	for f in "$dir"/*.sock; do
		[[ -S $f ]] || continue
		f=${f##*/}
		printf '%s\n' "${f%.sock}"
	done
}

# The long options that `baton CMD --help` lists (what users are offered).
_baton_options()
{
	local bin=$1 cmd=$2
	"$bin" "$cmd" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u
}

_baton()
{
	local cur prev cmd i bin
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	bin=${COMP_WORDS[0]}
	COMPREPLY=()

	# the subcommand: the first word after baton that is not an option
	cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		if [[ ${COMP_WORDS[i]} != -* ]]; then
			cmd=${COMP_WORDS[i]}
			break
		fi
	done
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_baton_commands" -- "$cur"))
		fi
		return 0
	fi

	# after "--" in baton run or reload: the command to run
	for ((i = 2; i < COMP_CWORD; i++)); do
		if [[ ${COMP_WORDS[i]} == -- ]]; then
			if ((i == COMP_CWORD - 1)); then
				COMPREPLY=($(compgen -c -- "$cur"))
			else
				COMPREPLY=($(compgen -f -- "$cur"))
			fi
			return 0
		fi
	done

	case $prev in
	--stop-signal | --takeover-signal)
		COMPREPLY=($(compgen -W "TERM INT QUIT HUP USR1 USR2 WINCH KILL" -- "$cur"))
		return 0 ;;
	--ready | -r)
		COMPREPLY=($(compgen -W "auto notify listen delay:" -- "$cur"))
		return 0 ;;
	--bind-mode)
		COMPREPLY=($(compgen -W "shim cgroup auto" -- "$cur"))
		return 0 ;;
	--log-format)
		COMPREPLY=($(compgen -W "plain level journal" -- "$cur"))
		return 0 ;;
	--policy)
		COMPREPLY=($(compgen -W "standby spread weights:" -- "$cur"))
		return 0 ;;
	--takeover | --primary)
		COMPREPLY=($(compgen -W "$(ps -eo pid= 2>/dev/null)" -- "$cur"))
		return 0 ;;
	--pin | --check-cmd)
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0 ;;
	--listen | -l | --name | -n | --grace | --ready-timeout | --hang-threshold | --timeout | --env | \
	--unset-env | --canary | --step | --probation | --check | --check-interval | --interval | --max-draining)
		return 0 ;;	# free text: nothing to offer
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_baton_options "$bin" "$cmd")" -- "$cur"))
		return 0
	fi
	case $cmd in
	reload | promote | rollback | status | stop | upgrade)
		# one NAME, before any option value
		local n=0
		for ((i = 2; i < COMP_CWORD; i++)); do
			[[ ${COMP_WORDS[i]} != -* ]] && n=$((n + 1))
		done
		((n == 0)) && COMPREPLY=($(compgen -W "$(_baton_names)" -- "$cur"))
		;;
	esac
	return 0
}

complete -F _baton baton
