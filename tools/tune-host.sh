#!/usr/bin/env bash
# tune-host.sh — the host settings worth having on a Rail load-balancer node,
# each with its reason. Saves what it changes; --undo restores it.
# Usage: tools/tune-host.sh [--dry-run] [--undo] [--netns-only] [--list] [--help]
#
# Rail's forwarding never touches the kernel's stack (XDP and AF_XDP take the
# packets first), so these settings are for what is left to the kernel: the
# control plane (BGP, health checks, the admin API and metrics) and the CPUs
# the busy-polling workers run on. NIC settings are tools/setup-nic.sh's.
set -euo pipefail

# name | scope | mode | value | reason
#   scope: netns = per network namespace (net.ipv4.*); host = whole machine
#   mode:  set = exactly this; min = at least this (a larger value is kept)
readonly SETTINGS='
net.ipv4.conf.all.rp_filter|netns|set|2|loose reverse-path filter: behind ECMP and anycast, BGP and health-check replies can arrive on a link other than the route back, and strict mode (1) drops them; 0 would accept spoofed sources
net.ipv4.conf.default.rp_filter|netns|set|2|the same for interfaces created later (GRE tunnels, VLANs)
net.ipv4.tcp_syncookies|netns|set|1|the node is a target: keep answering SYN floods against its own control-plane ports (seed: distributions sometimes turn it off)
net.ipv4.tcp_sack|netns|set|1|selective acks: BGP sessions recover from a loss without resending the whole window (seed: turn it back on where a distribution disabled it)
net.ipv4.tcp_timestamps|netns|set|1|RTT measurement and PAWS for long-lived BGP sessions (seed)
net.ipv4.tcp_window_scaling|netns|set|1|windows above 64 KiB, for full-table BGP updates (seed)
net.ipv4.tcp_moderate_rcvbuf|netns|set|1|receive-buffer autotuning up to tcp_rmem max (seed)
net.ipv4.tcp_rmem|netns|min|4096 131072 16777216|control-plane TCP: autotuning may grow a BGP session to 16 MiB; the initial 128 KiB stays small because a large one is a memory DoS lever (seed)
net.ipv4.tcp_wmem|netns|min|4096 16384 16777216|the sender side of the same: BGP full tables and admin API dumps
net.ipv4.tcp_tw_reuse|netns|set|1|health checks open many short connections to the same backends: reuse TIME_WAIT ports for new outgoing ones instead of running out
net.core.rmem_max|host|min|16777216|cap for applications that set SO_RCVBUF (BGP daemons do); a larger value is kept
net.core.wmem_max|host|min|16777216|cap for SO_SNDBUF, likewise
kernel.numa_balancing|host|set|0|workers are pinned and their UMEM and connection tables allocated once: automatic NUMA balancing only adds page faults on the hot path
cpufreq|host|set|performance|scaling governor of every CPU: busy-polling cores run flat out anyway, and a governor that ramps up on load adds latency to the cores that wake up for control work
'

dry_run=false
undo=false
netns_only=false
state_dir=${RAIL_STATE_DIR:-/run/rail}
changed=0 kept=0 na=0 refused=0

usage() {
	cat <<EOF
usage: tools/tune-host.sh [--dry-run] [--undo] [--netns-only] [--list] [--state-dir DIR] [--help]

Applies these settings (--list prints them with their reasons):
$(settings | awk -F'|' '{ printf "  %-34s %-7s %s%s\n", $1, $2, ($3 == "min" ? ">= " : ""), $4 }')

  --dry-run        print every command that would change something; change nothing
  --undo           restore the values a previous run changed
  --netns-only     only the per-network-namespace settings (net.ipv4.*): for a
                   namespace, or when the host's own are managed elsewhere
  --list           print the settings and why, then exit
  --state-dir DIR  where the saved values live (default: \$RAIL_STATE_DIR or /run/rail);
                   the file is DIR/tune-host.state
  --help           this text

Run as root (--dry-run and --list need not be). Idempotent: a second run
changes nothing. Settings do not survive a reboot: put them in
/etc/sysctl.d/ (and a governor service) once you are happy with them.
EOF
}

die() {
	echo "tune-host: $*" >&2
	exit 1
}

settings() { printf '%s\n' "$SETTINGS" | grep -v '^$'; }

state_file() { echo "$state_dir/tune-host.state"; }

save() {
	$dry_run && return 0
	local f
	f=$(state_file)
	mkdir -p "$state_dir"
	touch "$f"
	awk -F'\t' -v k="$1" '$1 == k { found = 1 } END { exit !found }' "$f" || printf '%s\t%s\n' "$1" "$2" >>"$f"
}

# sysctl_path NAME: net.ipv4.tcp_rmem → /proc/sys/net/ipv4/tcp_rmem
sysctl_path() { echo "/proc/sys/${1//.//}"; }

# read_value NAME prints the current value, white space squeezed.
read_value() { tr -s ' \t' ' ' <"$1" | sed 's/ *$//'; }

# write PATH VALUE
write() {
	echo "+ echo $2 > $1"
	$dry_run && return 0
	printf '%s\n' "$2" >"$1"
}

# satisfied MODE CURRENT WANT: set = equal; min = every field >= want's.
satisfied() {
	[[ $2 == "$3" ]] && return 0
	[[ $1 == min ]] || return 1
	local -a cur_f want_f
	read -r -a cur_f <<<"$2"
	read -r -a want_f <<<"$3"
	((${#cur_f[@]} == ${#want_f[@]})) || return 1
	local i
	for i in "${!want_f[@]}"; do
		((cur_f[i] >= want_f[i])) || return 1
	done
}

# target MODE CURRENT WANT: for min, each field the larger of the two.
target() {
	[[ $1 == min ]] || {
		echo "$3"
		return
	}
	local -a cur_f want_f out=()
	read -r -a cur_f <<<"$2"
	read -r -a want_f <<<"$3"
	local i
	for i in "${!want_f[@]}"; do
		if ((${cur_f[i]:-0} > want_f[i])); then out+=("${cur_f[i]}"); else out+=("${want_f[i]}"); fi
	done
	echo "${out[*]}"
}

apply_sysctl() {
	local name=$1 mode=$2 want=$3 path cur new
	path=$(sysctl_path "$name")
	if [[ ! -e $path ]]; then
		na=$((na + 1))
		echo "$name: n/a: no $path here"
		return
	fi
	cur=$(read_value "$path")
	if satisfied "$mode" "$cur" "$want"; then
		kept=$((kept + 1))
		echo "$name: ok: $cur"
		return
	fi
	new=$(target "$mode" "$cur" "$want")
	save "$name" "$cur"
	if write "$path" "$new" 2>/dev/null; then
		changed=$((changed + 1))
		echo "$name: $($dry_run && echo "would change" || echo changed): $new (was $cur)"
	else
		refused=$((refused + 1))
		echo "$name: refused: cannot write $path"
	fi
}

apply_governor() {
	local want=$1 f cpu cur n=0
	for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor; do
		[[ -e $f ]] || continue
		n=$((n + 1))
		cpu=${f#/sys/devices/system/cpu/}
		cpu=${cpu%%/*}
		cur=$(<"$f")
		if [[ $cur == "$want" ]]; then
			kept=$((kept + 1))
			echo "cpufreq $cpu: ok: $cur"
			continue
		fi
		if ! grep -qw "$want" "${f%/*}/scaling_available_governors" 2>/dev/null; then
			refused=$((refused + 1))
			echo "cpufreq $cpu: refused: the driver offers no '$want' governor ($(cat "${f%/*}/scaling_available_governors" 2>/dev/null))"
			continue
		fi
		save "cpufreq:$cpu" "$cur"
		if write "$f" "$want" 2>/dev/null; then
			changed=$((changed + 1))
			echo "cpufreq $cpu: $($dry_run && echo "would change" || echo changed): $want (was $cur)"
		else
			refused=$((refused + 1))
			echo "cpufreq $cpu: refused: cannot write $f"
		fi
	done
	if ((n == 0)); then
		na=$((na + 1))
		echo "cpufreq: n/a: no cpufreq driver (a VM, or frequency set by firmware)"
	fi
}

apply_all() {
	local name scope mode value reason
	while IFS='|' read -r name scope mode value reason; do
		if $netns_only && [[ $scope != netns ]]; then
			continue
		fi
		echo "# $reason"
		if [[ $name == cpufreq ]]; then
			apply_governor "$value"
		else
			apply_sysctl "$name" "$mode" "$value"
		fi
	done < <(settings)
}

undo_all() {
	local f key value path
	f=$(state_file)
	if [[ ! -s $f ]]; then
		echo "tune-host: nothing to undo (no $f)"
		return 0
	fi
	local failed=()
	while IFS=$'\t' read -r key value; do
		if [[ $key == cpufreq:* ]]; then
			path=/sys/devices/system/cpu/${key#cpufreq:}/cpufreq/scaling_governor
		else
			path=$(sysctl_path "$key")
		fi
		if write "$path" "$value" 2>/dev/null; then
			changed=$((changed + 1))
			echo "$key: $($dry_run && echo "would restore" || echo restored): $value"
		else
			refused=$((refused + 1))
			failed+=("$key	$value")
			echo "$key: refused: cannot write $path"
		fi
	done < <(tac "$f")
	$dry_run && return 0
	if ((${#failed[@]})); then
		printf '%s\n' "${failed[@]}" | tac >"$f"
		return 1
	fi
	rm -f "$f"
}

main() {
	while (($#)); do
		case $1 in
		--dry-run) dry_run=true ;;
		--undo) undo=true ;;
		--netns-only) netns_only=true ;;
		--list)
			settings | awk -F'|' '{ printf "%s = %s%s  (%s)\n    %s\n", $1, ($3 == "min" ? ">= " : ""), $4, $2, $5 }'
			return 0
			;;
		--state-dir)
			(($# >= 2)) || die "--state-dir needs a value"
			state_dir=$2
			shift
			;;
		-h | --help)
			usage
			return 0
			;;
		*)
			usage >&2
			die "unknown argument '$1'"
			;;
		esac
		shift
	done
	if ! $dry_run && ((EUID != 0)); then
		die "needs root (or try --dry-run)"
	fi
	if $undo; then
		echo "tune-host: undo$($dry_run && echo " (dry run: nothing changes)")"
		undo_all
		echo "summary: $changed restored, $refused refused"
		return
	fi
	echo "tune-host: $($netns_only && echo "per-namespace settings only" || echo "host and namespace settings")$($dry_run && echo "; dry run: nothing changes")"
	apply_all
	echo "summary: $changed $($dry_run && echo "to change" || echo changed), $kept already set, $na not applicable, $refused refused$($dry_run || echo "; saved in $(state_file)")"
}

main "$@"
