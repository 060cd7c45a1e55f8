#!/usr/bin/env bash
# dsr-lab.sh — real clients through Rail: the direct-server-return lab.
#
#   ${prefix}client          ${prefix}router                    ${prefix}lb
#   c0 10.9.0.2/24 ──── toc 10.9.0.1/24                         lb0 10.0.0.2/24
#   (curl, wrk)               tolb 10.0.0.1/24 ──────────────── (raild run: XDP + AF_XDP)
#                             br0 10.1.0.1/24
#                              ├── be1 ── ${prefix}be1  eth0 10.1.0.11/24, lo 192.0.2.10/32
#                              ├── be2 ── ${prefix}be2  eth0 10.1.0.12/24, lo 192.0.2.10/32
#                              └── …      (raild decap on eth0, nginx on the VIP and eth0)
#
# The router routes plainly: the VIP 192.0.2.10/32 to the Rail node
# (10.0.0.2), the backends' subnet on its bridge, the client's on toc. The
# node is one-armed: plain packets to the VIP come in on lb0, leave it as
# GRE to a backend, back to the router's MAC (next_hop: ingress), and the
# router forwards them to the backend. There `raild decap` (a tc BPF
# program, pinned so that it stays after the command exits) strips the GRE,
# nginx answers from the VIP, and the reply goes straight to the client
# through the router — never through the node. Health checks go from the
# node to each backend's own address through the router (lb's route to
# 10.1.0.0/24); the node's kernel answers them, raild's XDP program passes
# them.
#
# What the data path needs, set here (docs/DSR.md explains each):
#   - the router does not filter by reverse path (the replies' source is
#     the VIP, which it routes to the node, but they come from the
#     backends): rp_filter 0 there;
#   - backends: the VIP on lo, loose rp_filter, arp_ignore/arp_announce;
#   - no transmit checksum offload on the client's and the router's ports:
#     a veth hands a CHECKSUM_PARTIAL packet on as it is, forwarding keeps
#     it partial, and raild, which sees the bytes through AF_XDP in copy
#     mode, would forward a TCP segment whose checksum nobody ever computes
#     (the backend drops it: every connection through the VIP fails).
#     Measured here: offload on both c0 and tolb breaks every request; off
#     on either is enough (the first port without it computes the sum in
#     software). A real NIC computes it on the wire;
#   - lb0's offloads off, as in tools/lab.sh.
#
# The work directory (--dir, default /tmp/rail-dsr-${prefix%-}) holds each
# backend's nginx.conf, pid, logs and content: GET / answers the backend's
# name (be1, be2, …; every answer also says it in an X-Backend header),
# /healthz 200, /files/big and /slow/big the same
# 4.7 MB file (`seq 1 700000`), /slow/ rate-limited to --slow-rate.
set -euo pipefail

readonly VIP=192.0.2.10
readonly LB_ADDR=10.0.0.2
readonly CLIENT_ADDR=10.9.0.2

prefix=rd-
backends=3
raild=""
dir=""
slow_rate=256k
nginx=true
dry_run=false

usage() {
	cat <<EOF
usage: tools/dsr-lab.sh up [--backends N] [--raild BIN] [--no-nginx] [--slow-rate R]
       tools/dsr-lab.sh down|status
       tools/dsr-lab.sh nginx start|stop|reload N
       common: [--prefix NAME] [--dir DIR] [--dry-run] [--help]

  up        build the lab: namespaces \${prefix}client, \${prefix}router, \${prefix}lb and
            \${prefix}be1..N; load the decap program on every backend (raild decap
            --pin) and start nginx there. Idempotent: run it again to repair.
            raild itself is not started: run it in \${prefix}lb with a config
            like examples/dsr.yaml.
  down      stop nginx, unpin the decap programs, delete the namespaces and the
            work directory; idempotent
  status    what exists (exit 0 when the whole lab is up)
  nginx start|stop|reload N
            backend N's nginx (stop is a fast shutdown: SIGTERM)

  --prefix NAME   namespace prefix (default: $prefix)
  --backends N    backends (default: $backends; addresses 10.1.0.11 … 10.1.0.1N, N ≤ 9)
  --raild BIN     the raild binary for 'raild decap' (default: bin/raild)
  --dir DIR       work directory (default: /tmp/rail-dsr-\${prefix%-})
  --slow-rate R   nginx limit_rate for /slow/ (default: $slow_rate)
  --no-nginx      do not start nginx
  --dry-run       print the commands that would change something
  --help          this text

Needs root, iproute2, ethtool and nginx (Debian: apt-get install nginx).
Example:
  tools/dsr-lab.sh up && ip netns exec ${prefix}lb bin/raild run --config examples/dsr.yaml &
  ip netns exec ${prefix}client curl -s http://$VIP/
EOF
}

# The functions the labs share (namespaces, links, the client, the router's
# backend side, the backends with raild decap and nginx): tools/lib/netlab.sh.
# shellcheck source=lib/netlab.sh disable=SC1091
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/netlab.sh"

network_up() {
	local r=${prefix}router l=${prefix}lb
	client_router_up
	ensure_ns "$l"
	veth "$r" tolb "$l" lb0
	addr "$r" 10.0.0.1/24 tolb
	up_link "$r" tolb
	no_offloads "$r" tolb tx tso gso
	run ip -n "$r" route replace "$VIP/32" via "$LB_ADDR" dev tolb
	node_up "$l" "$LB_ADDR"
	backends_up
}

cmd_up() {
	[[ $backends =~ ^[1-9]$ ]] || die "--backends: '$backends' is not a number in 1..9"
	[[ -n $raild ]] || raild=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin/raild
	[[ -x $raild ]] || $dry_run || die "no raild binary at $raild (make build, or --raild BIN)"
	$dry_run || mkdir -p "$dir"
	network_up
	decap_up rail-dsr
	if $nginx; then
		local i
		for ((i = 1; i <= backends; i++)); do nginx_ctl start "$i"; done
	fi
	$dry_run || echo "dsr lab up: ${prefix}client $CLIENT_ADDR -> ${prefix}router -> ${prefix}lb $LB_ADDR (lb0), $backends backends 10.1.0.11..$(be_addr "$backends"), VIP $VIP; work dir $dir"
}

cmd_down() {
	local ns
	backends_down
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		case $ns in
		"${prefix}client" | "${prefix}router" | "${prefix}lb" | "${prefix}"be[1-9]) run ip netns del "$ns" ;;
		esac
	done
	bpffs_down
	if [[ -d $dir ]]; then run rm -rf "$dir"; fi
	$dry_run || echo "dsr lab down: ${prefix}* removed"
}

cmd_status() {
	local ok=0 ns
	for ns in client router lb; do
		if ns_exists "$prefix$ns"; then echo "$prefix$ns: present"; else
			echo "$prefix$ns: absent"
			ok=1
		fi
	done
	backends_status
	return $ok
}

main() {
	local cmd="" args=()
	while (($#)); do
		case $1 in
		up | down | status | nginx)
			[[ -z $cmd ]] || die "one command at a time ('$cmd' and '$1')"
			cmd=$1
			;;
		--prefix | --backends | --raild | --dir | --slow-rate)
			(($# >= 2)) || die "$1 needs a value"
			case $1 in
			--prefix) prefix=$2 ;;
			--backends) backends=$2 ;;
			--raild) raild=$2 ;;
			--dir) dir=$2 ;;
			--slow-rate) slow_rate=$2 ;;
			esac
			shift
			;;
		--no-nginx) nginx=false ;;
		--dry-run) dry_run=true ;;
		-h | --help)
			usage
			return 0
			;;
		-*)
			usage >&2
			die "unknown argument '$1'"
			;;
		*)
			[[ $cmd == nginx ]] || die "unexpected argument '$1'"
			args+=("$1")
			;;
		esac
		shift
	done
	[[ -n $cmd ]] || {
		usage >&2
		exit 2
	}
	[[ $prefix =~ ^[A-Za-z0-9._-]{1,8}$ ]] || die "--prefix: '$prefix': 1 to 8 letters, digits, '.', '_' or '-'"
	[[ $slow_rate =~ ^[0-9]+[kKmM]?$ ]] || die "--slow-rate: '$slow_rate' is not an nginx rate (e.g. 256k)"
	dir=${dir:-/tmp/rail-dsr-${prefix%-}}
	if ! $dry_run && [[ $cmd != status ]] && ((EUID != 0)); then
		die "$cmd needs root (network namespaces, BPF)"
	fi
	case $cmd in
	nginx)
		((${#args[@]} == 2)) || die "usage: nginx start|stop|reload N"
		nginx_ctl "${args[0]}" "${args[1]}"
		;;
	*)
		((${#args[@]} == 0)) || die "unexpected argument '${args[0]}'"
		"cmd_$cmd"
		;;
	esac
}

main "$@"
