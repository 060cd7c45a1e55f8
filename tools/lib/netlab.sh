# shellcheck shell=bash
# netlab.sh — what Rail's namespace labs share: sourced by tools/dsr-lab.sh
# (one Rail node) and tools/fleet-lab.sh (N Rail nodes behind a BGP router).
# It defines functions only; running it does nothing.
#
# The part every lab has, all of it built here:
#
#   ${prefix}client          ${prefix}router
#   c0 10.9.0.2/24 ──── toc 10.9.0.1/24       (ip_forward 1, rp_filter 0)
#   (curl, wrk)               br0 10.1.0.1/24
#                              ├── be1 ── ${prefix}be1  eth0 10.1.0.11/24, lo VIP/32
#                              ├── be2 ── ${prefix}be2  eth0 10.1.0.12/24, lo VIP/32
#                              └── …      (raild decap on eth0, nginx on the VIP and eth0)
#
# plus, for each Rail node, node_up: its lb0 at an address of 10.0.0.0/24
# with the router (10.0.0.1) as the way to the backends and the client, and
# lb0's offloads off. How the router reaches the nodes (one veth, a bridge)
# and routes the VIP to them is the lab's own business.
#
# The sourcing script sets, before calling anything:
#   prefix     namespace prefix (e.g. rd-)
#   dir        work directory (nginx configurations and logs, the bpffs)
#   raild      the raild binary ('raild decap' on the backends)
#   backends   number of backends, 1..9
#   slow_rate  nginx limit_rate of /slow/
#   dry_run    true: print the commands that would change something
#   VIP, CLIENT_ADDR
# Error messages carry the sourcing script's name.
#
# shellcheck disable=SC2154 # prefix, dir, raild, … belong to the sourcing script

die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# run prints (--dry-run) or runs a command that changes the system.
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

# alive PID: running, and not a zombie waiting for a parent to reap it (a
# daemon's parent is init, which may be slow to reap, or, in a container,
# may never do it).
alive() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z ]]
}

# pid_of FILE: the live process whose pid FILE holds, or nothing.
pid_of() {
	local pid
	[[ -s $1 ]] || return 0
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	if alive "$pid"; then echo "$pid"; fi
}

# client_router_up: the client and the router namespaces and the link
# between them. The client's offloads are off: a veth hands a
# CHECKSUM_PARTIAL packet (or a GSO super-frame) on as it is, forwarding
# keeps it so, and raild, which reads the bytes through AF_XDP, would
# forward a TCP segment whose checksum nobody ever computes. The router
# forwards and does not filter by reverse path (the backends answer from
# the VIP, which it routes to the Rail nodes).
client_router_up() {
	local c=${prefix}client r=${prefix}router
	ensure_ns "$c"
	ensure_ns "$r"
	veth "$c" c0 "$r" toc
	addr "$c" "$CLIENT_ADDR/24" c0
	up_link "$c" c0
	run ip -n "$c" route replace default via 10.9.0.1
	no_offloads "$c" c0 tx tso gso

	sysctls "$r" net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	addr "$r" 10.9.0.1/24 toc
	up_link "$r" toc
	no_offloads "$r" toc tx tso gso
}

# node_up NS ADDR: a Rail node's side of its link to the router, lb0
# (already made): ADDR/24 on 10.0.0.0/24, offloads off (as in
# tools/lab.sh), the backends and the client by way of the router. Health
# checks go from here to each backend's own address; the node's kernel
# answers them, raild's XDP program passes them.
node_up() {
	local l=$1 a=$2
	addr "$l" "$a/24" lb0
	up_link "$l" lb0
	no_offloads "$l" lb0 gro gso tso lro rx tx
	run ip -n "$l" route replace 10.1.0.0/24 via 10.0.0.1 dev lb0
	run ip -n "$l" route replace 10.9.0.0/24 via 10.0.0.1 dev lb0
}

be_addr() { echo "10.1.0.1$1"; }

# backends_up: the router's backend bridge br0 and backends 1..$backends on
# it, each with the VIP on lo, loose rp_filter and arp_ignore/arp_announce
# (docs/DSR.md).
backends_up() {
	local r=${prefix}router i b
	link_exists "$r" br0 || run ip -n "$r" link add br0 type bridge
	addr "$r" 10.1.0.1/24 br0
	up_link "$r" br0
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

# The pinned decap links live on a bpffs of the lab's own under the work
# directory: `ip netns exec` remounts /sys, so /sys/fs/bpf is not there
# inside a namespace, and the lab leaves nothing in the host's bpffs.
pin_path() { echo "$dir/bpffs/be$1-decap"; }

bpffs_up() { # bpffs_up NAME: mount it (NAME shows in mount(8)) unless there
	if ! mountpoint -q "$dir/bpffs" 2>/dev/null; then
		run mkdir -p "$dir/bpffs"
		run mount -t bpf "$1" "$dir/bpffs"
	fi
}

bpffs_down() {
	if mountpoint -q "$dir/bpffs" 2>/dev/null; then run umount "$dir/bpffs"; fi
}

# decap_up NAME: `raild decap --pin` on every backend's eth0 (the program
# stays after the command exits); NAME names the bpffs.
decap_up() {
	local i b pin
	bpffs_up "$1"
	for ((i = 1; i <= backends; i++)); do
		b=${prefix}be$i
		pin=$(pin_path "$i")
		if [[ -e $pin ]]; then continue; fi
		if $dry_run; then # (the work directory may not exist)
			run ip netns exec "$b" "$raild" decap --interface eth0 --address "$(be_addr "$i")" --pin "$pin"
		else
			ip netns exec "$b" "$raild" decap --interface eth0 --address "$(be_addr "$i")" --pin "$pin" >"$dir/decap-be$i.log" 2>&1
		fi
	done
}

# nginx_conf N: write backend N's configuration and content. GET / answers
# the backend's name (be1, …; every answer also says it in an X-Backend
# header), /healthz 200, /files/big and /slow/big the same 4.7 MB file
# (`seq 1 700000`), /slow/ rate-limited to $slow_rate.
nginx_conf() {
	local i=$1 d=$dir/be$1
	mkdir -p "$d/www" "$d/tmp"
	[[ -s $dir/big ]] || seq 1 700000 >"$dir/big"
	ln -sf "$dir/big" "$d/www/big"
	cat >"$d/nginx.conf" <<EOF
# backend be$i of tools/${0##*/} (prefix $prefix)
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

nginx_pid() { pid_of "$dir/be$1/nginx.pid"; } # the running nginx master of backend N, or nothing

nginx_ctl() { # nginx_ctl start|stop|reload N
	local what=$1 i=$2 pid
	[[ $i =~ ^[1-9]$ ]] || die "nginx: backend '$i' is not a number in 1..9"
	ns_exists "${prefix}be$i" || $dry_run || die "nginx: no namespace ${prefix}be$i (run up first)"
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

# backends_down: stop every backend's nginx and remove the decap pins (1..9,
# whatever --backends said). Deleting a namespace detaches the program; the
# pin would stay.
backends_down() {
	local i pin
	for ((i = 1; i <= 9; i++)); do
		if ns_exists "${prefix}be$i"; then
			if [[ -n $(nginx_pid "$i") ]]; then nginx_ctl stop "$i"; fi
		fi
		pin=$(pin_path "$i")
		if [[ -e $pin ]]; then run rm -f "$pin"; fi
	done
}

backends_status() { # one line per backend namespace
	local i tc pid
	for ((i = 1; i <= 9; i++)); do
		ns_exists "${prefix}be$i" || continue
		tc=$([[ -e $(pin_path "$i") ]] && echo "decap pinned at $(pin_path "$i")" || echo "NO decap pin")
		pid=$(nginx_pid "$i")
		echo "${prefix}be$i: $(be_addr "$i"), $tc, nginx ${pid:+pid }${pid:-not running}"
	done
}
