#!/usr/bin/env bash
# lab.sh — the Rail veth/netns lab.
#
# Two network namespaces joined by one veth pair:
#
#   ${prefix}gen                         ${prefix}lb
#   gen0 10.0.0.1/24  <---- veth ---->   lb0 10.0.0.2/24
#   02:00:00:00:00:01                    02:00:00:00:00:02
#   (the generator, standing in          (the Rail node: raild attaches
#    for the router)                      its XDP program and AF_XDP sockets here)
#
# Both ends get N rx/tx queues (--queues, default 1): native XDP on a veth
# needs at least as many rx queues on lb0 as gen0 has tx queues. Neighbour
# entries are static both ways (no ARP), IPv6 is off (no router
# solicitations), loopback is up in both (raild's metrics listen on
# 127.0.0.1 inside ${prefix}lb), GRO/GSO/TSO/checksum offloads are off on
# lb0 when ethtool is installed.
#
# gen0 needs no XDP program of its own: frames that raild transmits on lb0
# through its AF_XDP socket (copy mode on veth) travel as ordinary skbs to
# gen0, where tcpdump sees them; only XDP_TX/XDP_REDIRECT into a veth via
# ndo_xdp_xmit would need the peer's NAPI (an XDP program or GRO on gen0).
# tools/demo.sh verifies this on every run: it captures raild's output on
# gen0 with no program attached there.
#
# Traffic stays on this veth pair: neither namespace has a default route,
# and gen forwards nothing (ip_forward is 0 in a new namespace), so GRE
# frames addressed to backends end at gen0.
set -euo pipefail

readonly GEN_MAC=02:00:00:00:00:01
readonly LB_MAC=02:00:00:00:00:02
readonly GEN_ADDR=10.0.0.1
readonly LB_ADDR=10.0.0.2
readonly PREFIX_LEN=24

prefix=rail-
queues=1
dry_run=false

usage() {
	cat <<EOF
usage: tools/lab.sh up|down|status [--prefix NAME] [--queues N] [--dry-run] [--help]

  up        create namespaces \${prefix}gen and \${prefix}lb joined by veth
            gen0 ($GEN_ADDR/$PREFIX_LEN, $GEN_MAC) <-> lb0 ($LB_ADDR/$PREFIX_LEN, $LB_MAC);
            idempotent: what already exists is checked and kept
  down      remove both namespaces (and with them the veth pair); idempotent
  status    print what exists (exit 0 when the whole lab is up, 1 otherwise)

  --prefix NAME  namespace name prefix (default: rail-)
  --queues N     rx/tx queues on each veth end (default: 1)
  --dry-run      print the commands that would change something, change nothing
  --help         this text

Run as root. Example:
  tools/lab.sh up --queues 2 && ip netns exec rail-lb ip -d link show lb0
EOF
}

# die, run (--dry-run), ns_exists, in_ns, link_exists, ensure_ns: shared
# with the other labs.
# shellcheck source=lib/netlab.sh disable=SC1091
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/netlab.sh"

# link_queues NS DEV prints the number of rx queues of DEV in NS.
link_queues() {
	in_ns "$1" ip -d -j link show dev "$2" | grep -o '"num_rx_queues":[0-9]*' | cut -d: -f2
}

ensure_veth() {
	local gen=$1 lb=$2
	if link_exists "$gen" gen0 && link_exists "$lb" lb0; then
		local have
		have=$(link_queues "$lb" lb0)
		if [[ $have != "$queues" ]]; then
			die "lb0 exists with $have queues, not $queues: run 'tools/lab.sh down --prefix $prefix' first"
		fi
		return
	fi
	# A half-built pair (one end only) is removed and made again.
	if link_exists "$gen" gen0; then run ip netns exec "$gen" ip link del dev gen0; fi
	if link_exists "$lb" lb0; then run ip netns exec "$lb" ip link del dev lb0; fi
	run ip link add gen0 netns "$gen" address "$GEN_MAC" numrxqueues "$queues" numtxqueues "$queues" \
		type veth peer name lb0 netns "$lb" address "$LB_MAC" numrxqueues "$queues" numtxqueues "$queues"
}

configure_end() {
	local ns=$1 dev=$2 mac=$3 addr=$4 peer_addr=$5 peer_mac=$6
	run ip netns exec "$ns" ip link set dev "$dev" address "$mac"
	run ip netns exec "$ns" ip addr replace "$addr/$PREFIX_LEN" dev "$dev"
	run ip netns exec "$ns" ip link set dev "$dev" up
	run ip netns exec "$ns" ip neigh replace "$peer_addr" lladdr "$peer_mac" dev "$dev" nud permanent
}

offloads_off() {
	local ns=$1 dev=$2
	if ! command -v ethtool >/dev/null; then
		echo "lab.sh: ethtool not installed: leaving offloads on $dev as they are" >&2
		return
	fi
	# One feature at a time: a veth may refuse some, which is fine.
	local f
	for f in gro gso tso lro rx tx; do
		if $dry_run; then
			run ip netns exec "$ns" ethtool -K "$dev" "$f" off
		else
			in_ns "$ns" ethtool -K "$dev" "$f" off >/dev/null 2>&1 || true
		fi
	done
}

cmd_up() {
	[[ $queues =~ ^[1-9][0-9]*$ ]] || die "--queues: '$queues' is not a positive number"
	local gen=${prefix}gen lb=${prefix}lb
	ensure_ns "$gen"
	ensure_ns "$lb"
	ensure_veth "$gen" "$lb"
	configure_end "$gen" gen0 "$GEN_MAC" "$GEN_ADDR" "$LB_ADDR" "$LB_MAC"
	configure_end "$lb" lb0 "$LB_MAC" "$LB_ADDR" "$GEN_ADDR" "$GEN_MAC"
	offloads_off "$lb" lb0
	if ! $dry_run; then
		echo "lab up: ${gen}/gen0 $GEN_ADDR $GEN_MAC <-> ${lb}/lb0 $LB_ADDR $LB_MAC, $queues queue(s)"
	fi
}

cmd_down() {
	local ns
	for ns in "${prefix}lb" "${prefix}gen"; do
		if ns_exists "$ns"; then
			run ip netns del "$ns"
		fi
	done
	# Deleting either namespace destroys the veth pair; nothing else to do.
	if ! $dry_run; then
		echo "lab down: ${prefix}gen ${prefix}lb removed"
	fi
}

cmd_status() {
	local ok=0 ns dev
	for pair in "${prefix}gen:gen0" "${prefix}lb:lb0"; do
		ns=${pair%%:*} dev=${pair##*:}
		if ! ns_exists "$ns"; then
			echo "$ns: absent"
			ok=1
			continue
		fi
		if ! link_exists "$ns" "$dev"; then
			echo "$ns: present, $dev absent"
			ok=1
			continue
		fi
		local addr mac state q xdp
		addr=$(in_ns "$ns" ip -4 -o addr show dev "$dev" | awk '{print $4}' | paste -sd, -)
		mac=$(in_ns "$ns" cat "/sys/class/net/$dev/address")
		state=$(in_ns "$ns" cat "/sys/class/net/$dev/operstate")
		q=$(link_queues "$ns" "$dev")
		xdp=$(in_ns "$ns" ip -d link show dev "$dev" | grep -o 'prog/xdp[a-z]* id [0-9]*' || true)
		echo "$ns: $dev ${addr:-no-address} $mac $state queues=$q xdp=${xdp:-none}"
	done
	return $ok
}

main() {
	local cmd=""
	while (($#)); do
		case $1 in
		up | down | status)
			[[ -z $cmd ]] || die "one command at a time ('$cmd' and '$1')"
			cmd=$1
			;;
		--prefix)
			(($# >= 2)) || die "--prefix needs a value"
			prefix=$2
			shift
			;;
		--prefix=*) prefix=${1#*=} ;;
		--queues)
			(($# >= 2)) || die "--queues needs a value"
			queues=$2
			shift
			;;
		--queues=*) queues=${1#*=} ;;
		--dry-run) dry_run=true ;;
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
	[[ -n $cmd ]] || {
		usage >&2
		exit 2
	}
	[[ $prefix =~ ^[A-Za-z0-9._-]+$ ]] || die "--prefix: '$prefix' may hold only letters, digits, '.', '_' and '-'"
	if ! $dry_run && [[ $cmd != status ]] && ((EUID != 0)); then
		die "$cmd needs root (network namespaces)"
	fi
	"cmd_$cmd"
}

main "$@"
