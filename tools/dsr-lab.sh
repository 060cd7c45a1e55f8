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

die() {
	echo "dsr-lab.sh: $*" >&2
	exit 1
}

run() {
	if $dry_run; then
		printf '+'
		printf ' %q' "$@"
		printf '\n'
	else
		"$@"
	fi
}

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }
in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}
link_exists() { ns_exists "$1" && in_ns "$1" ip link show dev "$2" >/dev/null 2>&1; }
sysctls() {
	local ns=$1
	shift
	run ip netns exec "$ns" sysctl -q -w "$@"
}

ensure_ns() {
	local ns=$1
	ns_exists "$ns" || run ip netns add "$ns"
	sysctls "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	run ip netns exec "$ns" ip link set dev lo up
}

# veth NS1 DEV1 NS2 DEV2: a veth pair between two namespaces (remade if half there).
veth() {
	local ns1=$1 d1=$2 ns2=$3 d2=$4
	if link_exists "$ns1" "$d1" && link_exists "$ns2" "$d2"; then return; fi
	if link_exists "$ns1" "$d1"; then run ip -n "$ns1" link del "$d1"; fi
	if link_exists "$ns2" "$d2"; then run ip -n "$ns2" link del "$d2"; fi
	run ip link add "$d1" netns "$ns1" type veth peer name "$d2" netns "$ns2"
}

# no_offloads NS DEV FEATURES...: turn features off one by one (a veth may refuse some).
no_offloads() {
	local ns=$1 dev=$2 f
	shift 2
	command -v ethtool >/dev/null || die "ethtool is not installed (apt-get install ethtool)"
	for f in "$@"; do
		if $dry_run; then
			run ip netns exec "$ns" ethtool -K "$dev" "$f" off
		else
			in_ns "$ns" ethtool -K "$dev" "$f" off >/dev/null 2>&1 || true
		fi
	done
}

addr() { run ip -n "$1" addr replace "$2" dev "$3"; }
up_link() { run ip -n "$1" link set dev "$2" up; }

be_addr() { echo "10.1.0.1$1"; }
# The pinned decap links live on a bpffs of the lab's own under the work
# directory: `ip netns exec` remounts /sys, so /sys/fs/bpf is not there
# inside a namespace, and the lab leaves nothing in the host's bpffs.
pin_path() { echo "$dir/bpffs/be$1-decap"; }

bpffs_up() {
	if ! mountpoint -q "$dir/bpffs" 2>/dev/null; then
		run mkdir -p "$dir/bpffs"
		run mount -t bpf rail-dsr "$dir/bpffs"
	fi
}

network_up() {
	local c=${prefix}client r=${prefix}router l=${prefix}lb i b
	ensure_ns "$c"
	ensure_ns "$r"
	ensure_ns "$l"
	veth "$c" c0 "$r" toc
	veth "$r" tolb "$l" lb0
	addr "$c" "$CLIENT_ADDR/24" c0
	up_link "$c" c0
	run ip -n "$c" route replace default via 10.9.0.1
	no_offloads "$c" c0 tx tso gso

	sysctls "$r" net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	addr "$r" 10.9.0.1/24 toc
	addr "$r" 10.0.0.1/24 tolb
	link_exists "$r" br0 || run ip -n "$r" link add br0 type bridge
	addr "$r" 10.1.0.1/24 br0
	for dev in toc tolb br0; do up_link "$r" "$dev"; done
	no_offloads "$r" toc tx tso gso
	no_offloads "$r" tolb tx tso gso
	run ip -n "$r" route replace "$VIP/32" via "$LB_ADDR" dev tolb

	addr "$l" "$LB_ADDR/24" lb0
	up_link "$l" lb0
	no_offloads "$l" lb0 gro gso tso lro rx tx
	run ip -n "$l" route replace 10.1.0.0/24 via 10.0.0.1 dev lb0
	run ip -n "$l" route replace 10.9.0.0/24 via 10.0.0.1 dev lb0

	for ((i = 1; i <= backends; i++)); do
		b=${prefix}be$i
		ensure_ns "$b"
		veth "$r" "be$i" "$b" eth0
		run ip -n "$r" link set dev "be$i" master br0
		up_link "$r" "be$i"
		no_offloads "$r" "be$i" tx tso gso
		addr "$b" "$(be_addr "$i")/24" eth0
		up_link "$b" eth0
		run ip -n "$b" route replace default via 10.1.0.1
		addr "$b" "$VIP/32" lo
		sysctls "$b" net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2 net.ipv4.conf.eth0.rp_filter=2 \
			net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
	done
}

decap_up() {
	local i b pin
	bpffs_up
	for ((i = 1; i <= backends; i++)); do
		b=${prefix}be$i
		pin=$(pin_path "$i")
		if [[ -e $pin ]]; then continue; fi
		run ip netns exec "$b" "$raild" decap --interface eth0 --address "$(be_addr "$i")" --pin "$pin" >"$dir/decap-be$i.log" 2>&1
	done
}

nginx_conf() { # nginx_conf N: write backend N's configuration and content
	local i=$1 d=$dir/be$1
	mkdir -p "$d/www" "$d/tmp"
	[[ -s $dir/big ]] || seq 1 700000 >"$dir/big"
	ln -sf "$dir/big" "$d/www/big"
	cat >"$d/nginx.conf" <<EOF
# backend be$i of tools/dsr-lab.sh (prefix $prefix)
user root;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	keepalive_requests 100000;
	server {
		add_header X-Backend be$i always;
		listen $VIP:80;
		listen $(be_addr "$i"):80;
		location = / { default_type text/plain; return 200 "be$i\n"; }
		location = /healthz { default_type text/plain; return 200 "ok\n"; }
		location /files/ { alias $d/www/; }
		location /slow/ { alias $d/www/; limit_rate $slow_rate; }
	}
}
EOF
}

# alive PID: running, and not a zombie waiting for a parent to reap it (the
# daemonised nginx master's parent is init, which may be slow to reap, or,
# in a container, may never do it).
alive() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z ]]
}

nginx_pid() { # the running nginx master of backend N, or nothing
	local f=$dir/be$1/nginx.pid pid
	[[ -s $f ]] || return 0
	pid=$(<"$f")
	if alive "$pid"; then echo "$pid"; fi
}

nginx_ctl() { # nginx_ctl start|stop|reload N
	local what=$1 i=$2 pid
	[[ $i =~ ^[1-9]$ ]] || die "nginx: backend '$i' is not a number in 1..9"
	ns_exists "${prefix}be$i" || die "nginx: no namespace ${prefix}be$i (run up first)"
	pid=$(nginx_pid "$i")
	case $what in
	start)
		[[ -z $pid ]] || return 0
		command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx)"
		$dry_run || nginx_conf "$i"
		run ip netns exec "${prefix}be$i" nginx -q -e "$dir/be$i/error.log" -p "$dir/be$i" -c "$dir/be$i/nginx.conf"
		;;
	stop)
		[[ -n $pid ]] || return 0
		run kill -TERM "$pid"
		$dry_run && return 0
		local n
		for ((n = 0; n < 200; n++)); do
			alive "$pid" || return 0
			sleep 0.02
		done
		die "nginx of be$i (pid $pid) did not stop"
		;;
	reload)
		[[ -n $pid ]] || die "nginx of be$i is not running"
		run kill -HUP "$pid"
		;;
	*) die "nginx: '$what' is not start, stop or reload" ;;
	esac
}

cmd_up() {
	[[ $backends =~ ^[1-9]$ ]] || die "--backends: '$backends' is not a number in 1..9"
	[[ -n $raild ]] || raild=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin/raild
	[[ -x $raild ]] || $dry_run || die "no raild binary at $raild (make build, or --raild BIN)"
	$dry_run || mkdir -p "$dir"
	network_up
	decap_up
	if $nginx; then
		local i
		for ((i = 1; i <= backends; i++)); do nginx_ctl start "$i"; done
	fi
	$dry_run || echo "dsr lab up: ${prefix}client $CLIENT_ADDR -> ${prefix}router -> ${prefix}lb $LB_ADDR (lb0), $backends backends 10.1.0.11..$(be_addr "$backends"), VIP $VIP; work dir $dir"
}

cmd_down() {
	local ns i pin
	for ((i = 1; i <= 9; i++)); do
		if ns_exists "${prefix}be$i"; then
			if [[ -n $(nginx_pid "$i") ]]; then nginx_ctl stop "$i"; fi
		fi
		pin=$(pin_path "$i")
		# Deleting the namespace detaches the program; the pin would stay.
		if [[ -e $pin ]]; then run rm -f "$pin"; fi
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		case $ns in
		"${prefix}client" | "${prefix}router" | "${prefix}lb" | "${prefix}"be[1-9]) run ip netns del "$ns" ;;
		esac
	done
	if mountpoint -q "$dir/bpffs" 2>/dev/null; then run umount "$dir/bpffs"; fi
	if [[ -d $dir ]]; then run rm -rf "$dir"; fi
	$dry_run || echo "dsr lab down: ${prefix}* removed"
}

cmd_status() {
	local ok=0 ns i
	for ns in client router lb; do
		if ns_exists "$prefix$ns"; then echo "$prefix$ns: present"; else
			echo "$prefix$ns: absent"
			ok=1
		fi
	done
	for ((i = 1; i <= 9; i++)); do
		ns_exists "${prefix}be$i" || continue
		local tc pid
		tc=$([[ -e $(pin_path "$i") ]] && echo "decap pinned at $(pin_path "$i")" || echo "NO decap pin")
		pid=$(nginx_pid "$i")
		echo "${prefix}be$i: $(be_addr "$i"), $tc, nginx ${pid:+pid }${pid:-not running}"
	done
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
