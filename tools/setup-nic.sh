#!/usr/bin/env bash
# setup-nic.sh — prepare a NIC for raild: queue count, offloads, rings, RSS,
# ntuple steering, IRQ affinity, NAPI busy-poll settings.
# Usage: tools/setup-nic.sh [options] IFACE QUEUES   (--help for the options)
#
# Every value it changes is saved first (once: re-running keeps the original),
# and --undo puts them back in reverse order. What is already right is left
# alone and said so; what the driver or kernel refuses is reported as
# "refused" (and with --strict makes the exit status 1); what a device does
# not have at all (a veth has no IRQs, no RSS table, no ring sizes) is "n/a".
set -euo pipefail

readonly DEFAULT_OFFLOADS=gro,lro,rx-gro-hw,rx-gro-list,rx-udp-gro-forwarding,rxvlan

usage() {
	cat <<EOF
usage: tools/setup-nic.sh [options] IFACE QUEUES
       tools/setup-nic.sh --undo [--dry-run] [--state-dir DIR] IFACE

Sets IFACE up for raild with QUEUES serving queues:
  channels   ethtool -L: QUEUES combined channels, or QUEUES rx and tx
             channels on devices with separate ones (veth)
  offloads   ethtool -K ... off for what breaks or slows XDP:
             $DEFAULT_OFFLOADS
             (LRO and hardware GRO merge frames, so most drivers refuse XDP
             while they are on; GRO hands generic-mode XDP merged
             super-frames; VLAN stripping hides the tag from the XDP
             program, so a frame sent back would leave untagged)
  rings      ethtool -G, with --rings
  rss        ethtool -X equal QUEUES: hash flows over the serving queues only
  ntuple     ethtool -N rules, with --steer-gre, --steer-vip or --ntuple
  irq        each queue's interrupt to the CPU raild gives that queue
             (/proc/irq/N/smp_affinity_list), with --config or --cpus
  napi       napi_defer_hard_irqs and gro_flush_timeout, with --busy-poll or
             --napi-defer / --gro-flush-timeout (device-wide, in sysfs).
             raild run sets the same values itself while it runs (busy_poll:
             true, the default), per NAPI instance over netdev netlink on
             Linux >= 6.13, and puts the old ones back when it stops: this is
             for kernels without NAPI_SET, where raild runs without root

options:
  --dry-run            print every command that would change something; change nothing
  --undo               restore everything a previous run changed, newest first
  --config FILE        raild config: IRQ affinity from 'raild plan --config FILE --json'
                       (raild from \$RAILD, else PATH, else bin/raild of this checkout)
  --cpus LIST          IRQ affinity without raild: queue i's IRQ to the i-th CPU (e.g. 2,3,4,5)
  --offloads LIST      features to turn off (default: $DEFAULT_OFFLOADS);
                       ethtool -k names or the short ones (gro, lro, rxvlan, tso, gso, rx, tx)
  --rings N|max        rx and tx descriptor ring sizes (default: leave them)
  --no-rss             leave the RSS indirection table alone
  --steer-gre Q        ntuple rule: GRE (IP protocol 47) to queue Q
  --steer-vip ADDR=Q   ntuple rule: IPv4 destination ADDR to queue Q (repeatable)
  --ntuple 'SPEC'      any ethtool -N rule, e.g. 'flow-type udp4 dst-port 4789 action 2' (repeatable)
  --stop-irqbalance    stop irqbalance, which would move the IRQs again (--undo restarts it)
  --busy-poll          napi_defer_hard_irqs 2, gro_flush_timeout 200000 (ns): for
                       AF_XDP sockets with preferred busy polling; the values
                       raild run sets itself (cmd/raild/busypoll_linux.go), so
                       usually not needed: see docs/DEPLOY.md, Busy polling
  --napi-defer N       napi_defer_hard_irqs
  --gro-flush-timeout NS  gro_flush_timeout
  --state-dir DIR      where the saved values live (default: \$RAIL_STATE_DIR or /run/rail);
                       the file is DIR/setup-nic/IFACE.state
  --strict             exit 1 when the hardware refused anything
  --help               this text

Run as root (--dry-run need not be). Idempotent: a second run changes nothing.
Example: tools/setup-nic.sh --config /etc/rail/raild.yaml --stop-irqbalance eth1 8
EOF
}

die() {
	echo "setup-nic: $*" >&2
	exit 1
}

dry_run=false
undo=false
strict=false
config=""
cpus=""
offloads=$DEFAULT_OFFLOADS
rings=""
rss=true
stop_irqbalance=false
napi_defer=""
gro_flush=""
state_dir=${RAIL_STATE_DIR:-/run/rail}
ntuple_rules=()
iface=""
queues=""

changed=0 kept=0 na=0 refused=0

# Report lines: "<what>: <status> <details>", one per setting.
done_() {
	changed=$((changed + 1))
	if $dry_run; then
		echo "$1: would change: $2"
	else
		echo "$1: changed: $2"
	fi
}
ok() {
	kept=$((kept + 1))
	echo "$1: ok: $2"
}
restored() {
	changed=$((changed + 1))
	if $dry_run; then
		echo "$1: would restore: $2"
	else
		echo "$1: restored: $2"
	fi
}
not_applicable() {
	na=$((na + 1))
	echo "$1: n/a: $2"
}
refuse() {
	refused=$((refused + 1))
	echo "$1: refused by the hardware/kernel: $2"
}

err="" # stderr of the last failed try
# try CMD... prints the command and runs it unless --dry-run; on failure
# keeps its first error line in $err and returns 1.
try() {
	printf '+'
	printf ' %q' "$@"
	printf '\n'
	$dry_run && return 0
	local out
	if out=$("$@" 2>&1); then
		[[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/  /'
		return 0
	fi
	err=$(printf '%s\n' "$out" | grep -v '^\s*$' | tail -n 1)
	err=${err:-failed}
	return 1
}

# put PATH VALUE writes a sysfs/procfs file the way try runs a command.
put() {
	echo "+ echo $2 > $1"
	$dry_run && return 0
	if ! err=$( (printf '%s\n' "$2" >"$1") 2>&1); then
		err=${err##*: }
		return 1
	fi
}

state_file() { echo "$state_dir/setup-nic/$iface.state"; }

# save KIND KEY VALUE records an original value, unless already recorded:
# a second run must not overwrite the original with our own setting.
save() {
	$dry_run && return 0
	local f
	f=$(state_file)
	mkdir -p "$(dirname "$f")"
	touch "$f"
	if ! awk -F'\t' -v k="$1" -v n="$2" '$1 == k && $2 == n { found = 1 } END { exit !found }' "$f"; then
		printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$f"
	fi
}

# ---------------------------------------------------------------- channels

# channels prints "max_rx max_tx max_combined cur_rx cur_tx cur_combined"
# (n/a as 0) from ethtool -l, or fails.
channels() {
	ethtool -l "$iface" 2>/dev/null | awk '
		/Pre-set maximums/ { s = "max" } /Current hardware settings/ { s = "cur" }
		/^(RX|TX|Combined):/ { v = ($2 ~ /^[0-9]+$/) ? $2 : 0; a[s, $1] = v }
		END { printf "%d %d %d %d %d %d\n", a["max","RX:"], a["max","TX:"], a["max","Combined:"], a["cur","RX:"], a["cur","TX:"], a["cur","Combined:"] }'
}

set_channels() {
	local line max_rx max_tx max_c cur_rx cur_tx cur_c
	if ! line=$(channels) || [[ $line == "0 0 0 0 0 0" ]]; then
		local have
		have=$(find "/sys/class/net/$iface/queues" -maxdepth 1 -name 'rx-*' 2>/dev/null | wc -l)
		not_applicable channels "$iface cannot report or set channels (ethtool -l); it has $have rx queues"
		return
	fi
	read -r max_rx max_tx max_c cur_rx cur_tx cur_c <<<"$line"
	if ((max_c > 0)); then
		((queues <= max_c)) || die "$iface has at most $max_c combined channels, not $queues"
		if ((cur_c == queues)); then
			ok channels "combined $queues"
			return
		fi
		save channels - "combined $cur_c"
		if try ethtool -L "$iface" combined "$queues"; then
			done_ channels "combined $queues (was $cur_c)"
		else
			refuse channels "combined $queues: $err"
		fi
		return
	fi
	((queues <= max_rx)) || die "$iface has at most $max_rx rx channels, not $queues"
	local tx=$queues
	((max_tx == 0 || tx <= max_tx)) || tx=$max_tx
	if ((cur_rx == queues && (max_tx == 0 || cur_tx == tx))); then
		ok channels "rx $queues tx $tx"
		return
	fi
	local args=(rx "$queues")
	((max_tx == 0)) || args+=(tx "$tx")
	save channels - "rx $cur_rx$( ((max_tx == 0)) || echo " tx $cur_tx")"
	if try ethtool -L "$iface" "${args[@]}"; then
		done_ channels "${args[*]} (was rx $cur_rx tx $cur_tx)"
	else
		refuse channels "${args[*]}: $err"
	fi
}

# ---------------------------------------------------------------- offloads

feature_name() {
	case $1 in
	gro) echo generic-receive-offload ;;
	lro) echo large-receive-offload ;;
	gso) echo generic-segmentation-offload ;;
	tso) echo tcp-segmentation-offload ;;
	rx) echo rx-checksumming ;;
	tx) echo tx-checksumming ;;
	rxvlan) echo rx-vlan-offload ;;
	txvlan) echo tx-vlan-offload ;;
	ntuple) echo ntuple-filters ;;
	rxhash) echo receive-hashing ;;
	sg) echo scatter-gather ;;
	*) echo "$1" ;;
	esac
}

# feature NAME prints "on", "off", "on fixed", "off fixed" or "absent".
feature() {
	ethtool -k "$iface" 2>/dev/null | awk -v f="$1" -F': ' '
		$1 == f { split($2, w, " "); st = w[1]; if ($2 ~ /\[fixed\]/) st = st " fixed"; print st; found = 1 }
		END { if (!found) print "absent" }'
}

# set_feature NAME on|off [LABEL]
set_feature() {
	local name=$1 want=$2 label=${3:-offload $1} state
	state=$(feature "$name")
	case $state in
	absent) not_applicable "$label" "$iface has no feature $name" ;;
	"$want" | "$want fixed") ok "$label" "$want" ;;
	*fixed) refuse "$label" "$name is fixed ${state% fixed} by the driver" ;;
	*)
		save feature "$name" "$state"
		if try ethtool -K "$iface" "$name" "$want" && { $dry_run || [[ $(feature "$name") == "$want" ]]; }; then
			done_ "$label" "$want (was $state)"
		else
			refuse "$label" "$name stays $(feature "$name")${err:+: $err}"
		fi
		;;
	esac
}

set_offloads() {
	local f
	[[ -n $offloads ]] || return 0
	for f in ${offloads//,/ }; do
		set_feature "$(feature_name "$f")" off "offload $f"
	done
}

# ---------------------------------------------------------------- rings

set_rings() {
	[[ -n $rings ]] || return 0
	local line max_rx max_tx cur_rx cur_tx
	if ! line=$(ethtool -g "$iface" 2>/dev/null | awk '
		/Pre-set maximums/ { s = "max" } /Current hardware settings/ { s = "cur" }
		/^(RX|TX):/ { a[s, $1] = ($2 ~ /^[0-9]+$/) ? $2 : 0 }
		END { printf "%d %d %d %d\n", a["max","RX:"], a["max","TX:"], a["cur","RX:"], a["cur","TX:"] }') || [[ $line == "0 0 0 0" ]]; then
		not_applicable rings "$iface cannot report ring sizes (ethtool -g)"
		return
	fi
	read -r max_rx max_tx cur_rx cur_tx <<<"$line"
	local rx=$rings tx=$rings
	if [[ $rings == max ]]; then rx=$max_rx tx=$max_tx; fi
	((rx <= max_rx)) || die "--rings $rings: $iface's rx ring holds at most $max_rx"
	((tx <= max_tx)) || die "--rings $rings: $iface's tx ring holds at most $max_tx"
	if ((cur_rx == rx && cur_tx == tx)); then
		ok rings "rx $rx tx $tx"
		return
	fi
	save rings - "rx $cur_rx tx $cur_tx"
	if try ethtool -G "$iface" rx "$rx" tx "$tx"; then
		done_ rings "rx $rx tx $tx (was rx $cur_rx tx $cur_tx)"
	else
		refuse rings "rx $rx tx $tx: $err"
	fi
}

# ---------------------------------------------------------------- RSS

set_rss() {
	$rss || return 0
	local table
	if ! table=$(ethtool -x "$iface" 2>/dev/null); then
		not_applicable rss "$iface has no RSS indirection table (ethtool -x)"
		return
	fi
	# Entry i of "equal N" is i mod N: compare the table with that.
	local entries
	entries=$(printf '%s\n' "$table" | awk '/^ *[0-9]+: / { for (i = 2; i <= NF; i++) print $i }')
	if [[ -z $entries ]]; then
		not_applicable rss "$iface reports no indirection table entries"
		return
	fi
	if printf '%s\n' "$entries" | awk -v n="$queues" '$1 != (NR - 1) % n { bad = 1 } END { exit bad }'; then
		ok rss "equal $queues ($(printf '%s\n' "$entries" | wc -l) entries)"
		return
	fi
	save rss - default
	if try ethtool -X "$iface" equal "$queues"; then
		done_ rss "equal $queues"
	else
		refuse rss "equal $queues: $err"
	fi
}

# ---------------------------------------------------------------- ntuple

set_ntuple() {
	((${#ntuple_rules[@]})) || return 0
	local state
	state=$(feature ntuple-filters)
	case $state in
	absent | "off fixed")
		refuse ntuple "$iface has no ntuple filters ($state): ${#ntuple_rules[@]} rule(s) not installed"
		return
		;;
	esac
	set_feature ntuple-filters on "ntuple filters"
	[[ $(feature ntuple-filters) == on* ]] || $dry_run || return 0
	local spec id out f
	f=$(state_file)
	for spec in "${ntuple_rules[@]}"; do
		id=$(awk -F'\t' -v s="$spec" '$1 == "ntuple" && $3 == s { print $2 }' "$f" 2>/dev/null | tail -n 1)
		if [[ -n $id ]] && ethtool -n "$iface" rule "$id" >/dev/null 2>&1; then
			ok "ntuple rule $id" "$spec"
			continue
		fi
		# shellcheck disable=SC2086 # the spec is ethtool words
		if try ethtool -N "$iface" $spec; then
			if $dry_run; then
				done_ ntuple "$spec"
				continue
			fi
			# ethtool says "Added rule with ID N".
			out=$(ethtool -n "$iface" 2>/dev/null | awk '/^Filter:/ { print $2 }' | sort -n)
			id=$(comm -13 <(awk -F'\t' '$1 == "ntuple" { print $2 }' "$f" 2>/dev/null | sort -n) <(printf '%s\n' "$out") | tail -n 1)
			save ntuple "${id:-unknown}" "$spec"
			done_ "ntuple rule ${id:-?}" "$spec"
		else
			refuse ntuple "$spec: $err"
		fi
	done
}

# ---------------------------------------------------------------- IRQs

# device_irqs prints "IRQ NAME" for each interrupt of the device.
device_irqs() {
	local dir=/sys/class/net/$iface/device/msi_irqs irq name
	if [[ -d $dir ]]; then
		for irq in "$dir"/*; do
			irq=${irq##*/}
			[[ $irq =~ ^[0-9]+$ ]] || continue
			name=$(awk -v i="$irq:" '$1 == i { print $NF }' /proc/interrupts)
			echo "$irq ${name:-?}"
		done
		return
	fi
	# No MSI list (legacy or virtual device): IRQs named after the interface.
	awk -v dev="$iface" '$NF ~ ("^" dev "[-@]") || $NF ~ ("-" dev "-") { sub(":", "", $1); print $1, $NF }' /proc/interrupts
}

# irq_queue NAME prints the queue an IRQ name serves, or nothing: the
# number after TxRx-, rx-, comp, input., fp- and the like (i40e, ice,
# ixgbe, igb, bnxt, mlx5, ena, virtio, qede).
irq_queue() {
	local n=${1%%@*}
	[[ $n =~ (TxRx|Tx-Rx|txrx|rx|comp|input|fp|queue)[-_.]?([0-9]+)$ ]] || return 0
	echo $((10#${BASH_REMATCH[2]}))
}

# plan_cpus fills cpu_of[queue] from --cpus or raild plan.
declare -A cpu_of=()
plan_cpus() {
	local i=0 c pair
	if [[ -n $cpus ]]; then
		for c in ${cpus//,/ }; do
			cpu_of[$i]=$c
			i=$((i + 1))
		done
		return 0
	fi
	[[ -n $config ]] || return 1
	local raild=${RAILD:-}
	if [[ -z $raild ]]; then
		raild=$(command -v raild || echo "$(dirname "${BASH_SOURCE[0]}")/../bin/raild")
	fi
	[[ -x $raild ]] || die "--config: no raild binary (set RAILD=, put raild in PATH or run 'make build')"
	local json
	json=$("$raild" plan --config "$config" --json) || die "raild plan --config $config failed"
	json=$(printf '%s' "$json" | tr -d ' \t\n')
	[[ $json == *"\"interface\":\"$iface\""* ]] || die "$config is for another interface, not $iface"
	for pair in $(grep -o '"queue":[0-9]*,"cpu":[0-9]*' <<<"$json" | tr -d '"' | sed 's/queue://; s/cpu://'); do
		cpu_of[${pair%,*}]=${pair#*,}
	done
}

irqbalance_active() {
	if command -v systemctl >/dev/null && systemctl is-active --quiet irqbalance 2>/dev/null; then
		return 0
	fi
	pgrep -x irqbalance >/dev/null 2>&1
}

set_irqs() {
	local irqs
	irqs=$(device_irqs)
	if [[ -z $irqs ]]; then
		not_applicable irq "$iface has no interrupts of its own (virtual device): nothing to steer"
		return
	fi
	if ! plan_cpus; then
		not_applicable irq "no plan: give --config FILE (raild plan) or --cpus LIST to steer IRQs"
		return
	fi
	if irqbalance_active; then
		if $stop_irqbalance; then
			save service irqbalance active
			if try systemctl stop irqbalance; then
				done_ irqbalance "stopped"
			else
				refuse irqbalance "cannot stop it: $err"
			fi
		else
			echo "irqbalance: warning: running: it will move these IRQs again (--stop-irqbalance, or ban the worker CPUs with IRQBALANCE_BANNED_CPULIST)"
		fi
	fi
	local irq name q cpu cur found=0
	while read -r irq name; do
		q=$(irq_queue "$name")
		[[ -n $q && -n ${cpu_of[$q]:-} ]] || continue
		found=$((found + 1))
		cpu=${cpu_of[$q]}
		cur=$(cat "/proc/irq/$irq/smp_affinity_list" 2>/dev/null || echo "?")
		if [[ $cur == "$cpu" ]]; then
			ok "irq $irq ($name)" "queue $q on cpu $cpu"
			continue
		fi
		save irq "$irq" "$cur"
		if put "/proc/irq/$irq/smp_affinity_list" "$cpu"; then
			done_ "irq $irq ($name)" "queue $q on cpu $cpu (was $cur)"
		else
			refuse "irq $irq ($name)" "queue $q on cpu $cpu: $err (a managed IRQ: the driver places it itself)"
		fi
	done <<<"$irqs"
	if ((found == 0)); then
		refuse irq "none of $iface's IRQs ($(awk '{print $2}' <<<"$irqs" | paste -sd, -)) is named after a queue: set /proc/irq/N/smp_affinity_list by hand"
	fi
}

# ---------------------------------------------------------------- NAPI

set_napi() {
	local name want cur path
	for name in napi_defer_hard_irqs gro_flush_timeout; do
		want=$napi_defer
		[[ $name == gro_flush_timeout ]] && want=$gro_flush
		[[ -n $want ]] || continue
		path=/sys/class/net/$iface/$name
		if [[ ! -e $path ]]; then
			not_applicable "napi $name" "this kernel has no $path"
			continue
		fi
		cur=$(cat "$path")
		if [[ $cur == "$want" ]]; then
			ok "napi $name" "$want"
			continue
		fi
		save sysfs "$name" "$cur"
		if put "$path" "$want"; then
			done_ "napi $name" "$want (was $cur)"
		else
			refuse "napi $name" "$want: $err"
		fi
	done
}

# ---------------------------------------------------------------- undo

undo_all() {
	local f
	f=$(state_file)
	if [[ ! -s $f ]]; then
		echo "setup-nic: $iface: nothing to undo (no $f)"
		return 0
	fi
	local failed=() kind key value line
	while IFS= read -r line; do
		IFS=$'\t' read -r kind key value <<<"$line"
		case $kind in
		channels | rings)
			local opt=-L
			[[ $kind == rings ]] && opt=-G
			# shellcheck disable=SC2086 # "rx 4 tx 4" are ethtool words
			if try ethtool "$opt" "$iface" $value; then restored "$kind" "$value"; else failed+=("$line"); refuse "$kind" "restore $value: $err"; fi
			;;
		feature)
			if try ethtool -K "$iface" "$key" "${value%% *}"; then restored "feature $key" "${value%% *}"; else failed+=("$line"); refuse "feature $key" "$err"; fi
			;;
		rss)
			if try ethtool -X "$iface" default; then restored rss "the default table"; else failed+=("$line"); refuse rss "$err"; fi
			;;
		ntuple)
			if [[ $key == unknown ]] || try ethtool -N "$iface" delete "$key"; then restored "ntuple rule $key" "deleted"; else failed+=("$line"); refuse "ntuple rule $key" "$err"; fi
			;;
		irq)
			if put "/proc/irq/$key/smp_affinity_list" "$value"; then restored "irq $key" "cpus $value"; else failed+=("$line"); refuse "irq $key" "$err"; fi
			;;
		sysfs)
			if put "/sys/class/net/$iface/$key" "$value"; then restored "napi $key" "$value"; else failed+=("$line"); refuse "napi $key" "$err"; fi
			;;
		service)
			if try systemctl start "$key"; then restored "$key" "started again"; else failed+=("$line"); refuse "$key" "$err"; fi
			;;
		*) echo "setup-nic: $f: skipping unknown line: $line" >&2 ;;
		esac
	done < <(tac "$f")
	$dry_run && return 0
	if ((${#failed[@]})); then
		printf '%s\n' "${failed[@]}" | tac >"$f"
		echo "setup-nic: $iface: ${#failed[@]} value(s) could not be restored; kept in $f"
		return 1
	fi
	rm -f "$f"
}

# ---------------------------------------------------------------- main

main() {
	local args=()
	while (($#)); do
		case $1 in
		--dry-run) dry_run=true ;;
		--undo) undo=true ;;
		--strict) strict=true ;;
		--no-rss) rss=false ;;
		--stop-irqbalance) stop_irqbalance=true ;;
		--busy-poll)
			# The same values as raild's (busyPollDeferHardIRQs,
			# busyPollGROFlush in cmd/raild/busypoll_linux.go; a test
			# there checks that they agree).
			napi_defer=${napi_defer:-2}
			gro_flush=${gro_flush:-200000}
			;;
		--config | --cpus | --offloads | --rings | --steer-gre | --steer-vip | --ntuple | --napi-defer | --gro-flush-timeout | --state-dir)
			(($# >= 2)) || die "$1 needs a value"
			case $1 in
			--config) config=$2 ;;
			--cpus) cpus=$2 ;;
			--offloads) offloads=$2 ;;
			--rings) rings=$2 ;;
			--steer-gre)
				[[ $2 =~ ^[0-9]+$ ]] || die "--steer-gre: '$2' is not a queue number"
				ntuple_rules+=("flow-type ip4 l4proto 47 action $2")
				;;
			--steer-vip)
				[[ $2 =~ ^[0-9.]+=[0-9]+$ ]] || die "--steer-vip: '$2' is not ADDR=QUEUE (e.g. 192.0.2.10=3)"
				ntuple_rules+=("flow-type ip4 dst-ip ${2%=*} action ${2#*=}")
				;;
			--ntuple) ntuple_rules+=("$2") ;;
			--napi-defer) napi_defer=$2 ;;
			--gro-flush-timeout) gro_flush=$2 ;;
			--state-dir) state_dir=$2 ;;
			esac
			shift
			;;
		-h | --help)
			usage
			return 0
			;;
		-*)
			usage >&2
			die "unknown option '$1'"
			;;
		*) args+=("$1") ;;
		esac
		shift
	done
	if $undo; then
		((${#args[@]} == 1 || ${#args[@]} == 2)) || die "--undo takes IFACE (try --help)"
	else
		((${#args[@]} == 2)) || {
			usage >&2
			exit 2
		}
		queues=${args[1]}
		[[ $queues =~ ^[1-9][0-9]*$ ]] || die "QUEUES: '$queues' is not a positive number"
	fi
	iface=${args[0]}
	[[ $iface =~ ^[A-Za-z0-9._@-]+$ && $iface != . && $iface != .. ]] || die "IFACE: '$iface' is not an interface name"
	[[ -z $rings || $rings == max || $rings =~ ^[1-9][0-9]*$ ]] || die "--rings: '$rings' is not a number or max"
	[[ -z $cpus || $cpus =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--cpus: '$cpus' is not a comma-separated CPU list"
	[[ -z $napi_defer || $napi_defer =~ ^[0-9]+$ ]] || die "--napi-defer: '$napi_defer' is not a number"
	[[ -z $gro_flush || $gro_flush =~ ^[0-9]+$ ]] || die "--gro-flush-timeout: '$gro_flush' is not a number of nanoseconds"
	command -v ethtool >/dev/null || die "ethtool is not installed (apt-get install ethtool)"
	if ! $dry_run && ((EUID != 0)); then
		die "needs root (or try --dry-run)"
	fi

	if $undo; then
		echo "setup-nic: $iface: undo$($dry_run && echo " (dry run: nothing changes)")"
		undo_all
		echo "summary: $iface: $changed restored, $refused refused"
		return
	fi
	[[ -e /sys/class/net/$iface ]] || die "no interface $iface in this network namespace (ip link)"
	local driver
	driver=$(ethtool -i "$iface" 2>/dev/null | awk '/^driver:/ { print $2 }')
	echo "setup-nic: $iface (driver ${driver:-unknown}), $queues queue(s)$($dry_run && echo "; dry run: nothing changes")"
	set_channels
	set_offloads
	set_rings
	set_rss
	set_ntuple
	set_irqs
	set_napi
	echo "summary: $iface: $changed $($dry_run && echo "to change" || echo changed), $kept already set, $na not applicable, $refused refused$($dry_run || echo "; saved in $(state_file)")"
	if $strict && ((refused > 0)); then
		return 1
	fi
}

main "$@"
