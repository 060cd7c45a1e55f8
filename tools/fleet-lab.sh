#!/usr/bin/env bash
# fleet-lab.sh — a Rail fleet in network namespaces: N raild nodes that each
# announce the VIP over BGP to one router (bird2), which installs one
# multipath route with a next hop per node and hashes client flows over them
# (ECMP); three nginx backends behind `raild decap` answer the client
# directly (direct server return).
#
#   ${prefix}client        ${prefix}router  (bird2, AS 65000: one passive
#   c0 10.9.0.2/24 ───── toc 10.9.0.1/24       `protocol bgp` per node)
#   (curl, wrk)            brn 10.0.0.1/24  (bridge: the nodes' subnet)
#                           ├── n1 ── ${prefix}node1  lb0 10.0.0.2/24 ┐
#                           ├── n2 ── ${prefix}node2  lb0 10.0.0.3/24 ├ raild run, AS 65010,
#                           └── …     ${prefix}nodeI  lb0 10.0.0.(I+1)┘ BGP to 10.0.0.1:179
#                          br0 10.1.0.1/24  (bridge)
#                           ├── be1 ── ${prefix}be1  eth0 10.1.0.11/24, lo 192.0.2.10/32
#                           ├── be2 ── ${prefix}be2  eth0 10.1.0.12/24, lo 192.0.2.10/32
#                           └── be3 ── ${prefix}be3  (raild decap on eth0, nginx on the VIP and eth0)
#
# A packet from the client to the VIP 192.0.2.10: the router's route for it
# (learnt by bird from every node that announces it, merged into one kernel
# route) picks a node by the flow's 5-tuple (fib_multipath_hash_policy=1);
# that node's raild picks the backend by Maglev — the same on every node:
# same hash_seed, same services and backends — and sends it as GRE back to
# the router's MAC (next_hop: ingress), which forwards it to the backend on
# br0; there `raild decap` takes the GRE off, nginx answers from the VIP,
# and the reply goes to the client through the router, never through a node.
#
# The nodes share one subnet on a bridge in the router (brn) rather than a
# veth each with a subnet of its own: one router address (10.0.0.1) is every
# node's BGP peer and gateway, the node addresses are next hops on one
# interface, and the nodes reach each other directly (when_down: forward).
#
# What the data path needs is what tools/dsr-lab.sh sets (docs/DSR.md; the
# shared parts are tools/lib/netlab.sh): no transmit checksum offload, TSO
# or GSO on the client's c0 and on the router's ports into the nodes (n1…,
# brn), lb0's offloads off, rp_filter 0 on the router, the VIP on the
# backends' lo with loose rp_filter and arp_ignore/arp_announce.
#
# The work directory (--dir, default /tmp/${prefix%-}-lab) holds:
#   bird.conf bird.ctl bird.pid bird.log   the router's bird: `bird -c bird.conf
#                                          -s bird.ctl -P bird.pid`, never the
#                                          system's socket; birdc -s DIR/bird.ctl
#   nodeI/raild.yaml                       node I's configuration (written by up)
#   nodeI/raild.log raild.pid raild.sock   node I's raild: log (the previous run's
#                                          in raild.log.1), pid, admin socket;
#                                          metrics on 127.0.0.1:971I in ${prefix}nodeI
#   beI/ big bpffs/ decap-beI.log          the backends (as in tools/dsr-lab.sh)
set -euo pipefail

readonly VIP=192.0.2.10
readonly CLIENT_ADDR=10.9.0.2
readonly ROUTER_ADDR=10.0.0.1
readonly ROUTER_ASN=65000
readonly NODE_ASN=65010
readonly HASH_SEED=7
readonly MARKER=.fleet-lab # in the work directory: down removes only a directory that has it

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly root

prefix=fl-
nodes=3
backends=3
raild=""
dir=""
start_raild=false
hold_time=9s
drain_time=5s
when_down=withdraw
slow_rate=256k
timeout=30
wait=true
dry_run=false
signalled=" " # pids down has sent SIGTERM (its sweep skips them)

usage() {
	cat <<EOF
usage: tools/fleet-lab.sh up [--nodes N] [--start-raild] [--raild BIN] [--backends N]
                             [--hold-time D] [--drain-time D] [--when-down W] [--slow-rate R]
       tools/fleet-lab.sh down|status
       tools/fleet-lab.sh node-start|node-stop|node-kill I
       tools/fleet-lab.sh wait-route K
       tools/fleet-lab.sh nginx start|stop|reload N
       common: [--prefix NAME] [--dir DIR] [--timeout S] [--no-wait] [--dry-run] [--help]

  up        build the lab: namespaces \${prefix}client, \${prefix}router (bird2),
            \${prefix}node1..N and \${prefix}be1..3 (raild decap, nginx); write each
            node's raild configuration to DIR/nodeI/raild.yaml. raild itself
            is started only with --start-raild. Idempotent: run it again to
            repair (surplus nodes are removed, bird reconfigured). A failed up
            removes the whole lab.
  down      stop raild, bird and nginx, unpin the decap programs, delete the
            namespaces and the work directory; idempotent
  status    bird's protocols, the router's route to $VIP, whether each
            node's raild runs, the backends (exit 0 when the lab is up)
  node-start I  start node I's raild in the background (log, pid file and
            admin socket in DIR/nodeI); waits until it has attached
  node-stop I   SIGTERM: raild drains (GRACEFUL_SHUTDOWN, withdraw), detaches
            and exits; waits up to --timeout unless --no-wait
  node-kill I   SIGKILL: the node is lost without a word (bird sees the
            session close)
  wait-route K  wait until the router's route to $VIP has K next hops
            (0: no route), up to --timeout
  nginx start|stop|reload N   backend N's nginx

  --nodes N       Rail nodes (default: $nodes; node I at 10.0.0.(I+1), N ≤ 9)
  --start-raild   up also starts raild on every node (node-start 1..N)
  --raild BIN     the raild binary (default: the one up was given, else bin/raild)
  --backends N    backends (default: $backends; 10.1.0.11 … 10.1.0.1N, N ≤ 9)
  --hold-time D   BGP hold time each node proposes (default: $hold_time)
  --drain-time D  bgp.drain_time of every node (default: $drain_time)
  --when-down W   when_down of the service: withdraw, keep or forward (to the
                  other nodes) (default: $when_down)
  --slow-rate R   nginx limit_rate for /slow/ (default: $slow_rate)
  --prefix NAME   namespace prefix (default: $prefix)
  --dir DIR       work directory (default: /tmp/\${prefix%-}-lab)
  --timeout S     seconds node-start, node-stop, node-kill and wait-route
                  wait (default: $timeout)
  --no-wait       node-stop returns once the signal is sent
  --dry-run       print the commands that would change something
  --help          this text

Needs root, iproute2, ethtool, bird2 and nginx (Debian: apt-get install bird2 nginx).
Example:
  tools/fleet-lab.sh up --start-raild && tools/fleet-lab.sh wait-route 3
  ip netns exec ${prefix}client curl -s http://$VIP/
  tools/fleet-lab.sh node-kill 2 && tools/fleet-lab.sh wait-route 2
EOF
}

# The functions the labs share (namespaces, links, the client, the router's
# backend side, the backends with raild decap and nginx): tools/lib/netlab.sh.
# shellcheck source=lib/netlab.sh disable=SC1091
source "$root/tools/lib/netlab.sh"

node_addr() { echo "10.0.0.$(($1 + 1))"; }
metrics_port() { echo $((9710 + $1)); }

# lab_namespaces: this lab's namespaces that exist, whatever --nodes and
# --backends said when they were made.
lab_namespaces() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		case $ns in
		"${prefix}client" | "${prefix}router" | "${prefix}"node[1-9] | "${prefix}"be[1-9]) echo "$ns" ;;
		esac
	done
}

# lab_pid FILE NS: the pid in FILE if that process lives and runs in
# namespace NS (a pid file outlives its process; a pid may be reused).
# Only root can tell a process's namespace: for others, alive is enough.
lab_pid() {
	local pid
	pid=$(pid_of "$1")
	[[ -n $pid ]] || return 0
	if ((EUID != 0)) || [[ $(ip netns identify "$pid" 2>/dev/null) == "$2" ]]; then echo "$pid"; fi
}

raild_pid() { lab_pid "$dir/node$1/raild.pid" "${prefix}node$1"; }
bird_pid() { lab_pid "$dir/bird.pid" "${prefix}router"; }

# wait_gone PID SECONDS: 0 once PID has exited, 1 if it still runs then.
wait_gone() {
	local n
	for ((n = 0; n < $2 * 10; n++)); do
		alive "$1" || return 0
		sleep 0.1
	done
	! alive "$1"
}

network_up() {
	local r=${prefix}router i n
	client_router_up
	sysctls "$r" net.ipv4.fib_multipath_hash_policy=1
	link_exists "$r" brn || run ip -n "$r" link add brn type bridge
	addr "$r" "$ROUTER_ADDR/24" brn
	up_link "$r" brn
	no_offloads "$r" brn tx tso gso
	for ((i = 1; i <= nodes; i++)); do
		n=${prefix}node$i
		ensure_ns "$n"
		veth "$r" "n$i" "$n" lb0
		run ip -n "$r" link set dev "n$i" master brn
		up_link "$r" "n$i"
		no_offloads "$r" "n$i" tx tso gso
		node_up "$n" "$(node_addr "$i")"
	done
	backends_up
}

# Where `merge paths` goes: a kernel protocol option in BIRD 2.0, a channel
# option in later versions; bird itself says which it takes.
merge_in_channel() {
	printf 'protocol device {}\nprotocol kernel { ipv4 { export all; merge paths yes; }; }\n' |
		bird -p -c /dev/stdin >/dev/null 2>&1
}

bird_conf() { # the router's bird configuration, on stdout
	local i merge_ch="" merge_proto="merge paths yes;"
	if merge_in_channel; then merge_ch=" merge paths yes;" merge_proto=""; fi
	cat <<EOF
# bird2 in ${prefix}router, written by tools/fleet-lab.sh up: the BGP peer of
# the $nodes Rail nodes of the fleet lab.
log "$dir/bird.log" all;
router id $ROUTER_ADDR;

# Interfaces: the nodes' next hops are directly connected, on brn.
protocol device {
	scan time 10;
}

# What a node may announce: host routes (its VIPs). A node that drains sends
# them with GRACEFUL_SHUTDOWN (RFC 8326, 65535:0): least preferred, so its
# next hop leaves the multipath route before its routes are withdrawn.
filter fl_vips {
	if net.type != NET_IP4 || net.len != 32 then reject;
	if (65535, 0) ~ bgp_community then bgp_local_pref = 0;
	accept;
}

# The best routes of equal preference (one per node) become ONE kernel route
# with a next hop per node; the kernel hashes flows over them by their
# 5-tuple (net.ipv4.fib_multipath_hash_policy=1 in ${prefix}router).
protocol kernel {
	ipv4 { import none; export all;$merge_ch };
	$merge_proto
}

template bgp fl_node {
	local $ROUTER_ADDR as $ROUTER_ASN;
	passive on;            # the nodes connect (raild: listen_port 0)
	error wait time 1, 5;  # a node killed and restarted is taken back at once (default 60, 300)
	ipv4 { import filter fl_vips; export none; };
}

EOF
	for ((i = 1; i <= nodes; i++)); do
		echo "protocol bgp node$i from fl_node { neighbor $(node_addr "$i") as $NODE_ASN; description \"${prefix}node$i\"; }"
	done
}

# put FILE: stdin into FILE when it differs (a running daemon's file is
# replaced, not rewritten in place), 1 when it did not; with --dry-run
# only says so.
put() {
	local new
	if $dry_run; then
		cat >/dev/null
		echo "# write $1"
		return
	fi
	new=$(mktemp "$1.XXXXXX")
	cat >"$new"
	chmod 644 "$new"
	if cmp -s "$new" "$1"; then
		rm -f "$new"
		return 1
	fi
	mv -f "$new" "$1"
}

bird_up() {
	local r=${prefix}router conf=$dir/bird.conf sock=$dir/bird.ctl pid n other
	command -v bird >/dev/null || die "bird is not installed (apt-get install bird2)"
	local changed=true
	bird_conf | put "$conf" || changed=false
	$dry_run || bird -p -c "$conf" || die "bird does not take $conf"
	pid=$(bird_pid)
	if [[ -n $pid ]]; then
		if $changed; then
			run birdc -s "$sock" configure >/dev/null || die "birdc configure failed (see $dir/bird.log)"
		fi
		return
	fi
	other=$(ip netns pids "$r" 2>/dev/null | while read -r p; do [[ $(cat "/proc/$p/comm" 2>/dev/null) == bird ]] && echo "$p"; done || true)
	[[ -z $other ]] || die "a bird of another work directory runs in $r (pid $other): tools/fleet-lab.sh down --prefix $prefix --dir THAT_DIR first"
	$dry_run || rm -f "$sock" "$dir/bird.pid"
	run ip netns exec "$r" bird -c "$conf" -s "$sock" -P "$dir/bird.pid"
	$dry_run && return
	for ((n = 0; n < 50; n++)); do
		if birdc -s "$sock" show status >/dev/null 2>&1 && [[ -n $(bird_pid) ]]; then return; fi
		sleep 0.1
	done
	die "bird did not come up (see $dir/bird.log)"
}

bird_down() {
	local pid
	pid=$(bird_pid)
	[[ -n $pid ]] || return 0
	run kill -TERM "$pid"
	signalled+="$pid "
	$dry_run && return 0
	wait_gone "$pid" 5 || run kill -KILL "$pid"
}

node_conf() { # node_conf I: node I's raild configuration, on stdout
	local i=$1 j b fwd=""
	for ((j = 1; j <= nodes; j++)); do
		((j == i)) || fwd+="${fwd:+, }$(node_addr "$j")"
	done
	cat <<EOF
# Rail node $i of $nodes of tools/fleet-lab.sh (prefix $prefix), in ${prefix}node$i;
# written by 'fleet-lab.sh up'. Every node has the same hash_seed, services
# and backends: a flow gets the same backend whichever node the router picks.
interface: lb0
local_address: $(node_addr "$i")  # the GRE's outer source; the next hop this node announces
next_hop: ingress          # back to the router that delivered the packet
hash_seed: $HASH_SEED
metrics_address: 127.0.0.1:$(metrics_port "$i")
api:
  socket: $dir/node$i/raild.sock

conntrack:
  entries_per_core: 65536
  tcp_timeout: 1h
  udp_timeout: 30s

services:
  - name: web
    vip: $VIP
    port: 80
    protocol: tcp
    table_size: 65537
    when_down: $when_down
EOF
	if [[ $when_down == forward ]]; then echo "    forward_to: [$fwd]"; fi
	cat <<EOF
    health: {type: http, path: /healthz, interval: 500ms, timeout: 400ms, rise: 2, fall: 2}
    backends:
EOF
	for ((b = 1; b <= backends; b++)); do
		echo "      - {address: $(be_addr "$b"), name: be$b}"
	done
	cat <<EOF

bgp:
  asn: $NODE_ASN
  router_id: $(node_addr "$i")
  listen_port: 0           # no listener: raild connects to the router
  drain_time: $drain_time
  peers:
    - address: $ROUTER_ADDR
      asn: $ROUTER_ASN
      hold_time: $hold_time
EOF
}

# node_confs: write every node's configuration; ask raild whether it takes
# them (an error with --start-raild, a warning otherwise).
node_confs() {
	local i cfg out
	for ((i = 1; i <= nodes; i++)); do
		cfg=$dir/node$i/raild.yaml
		$dry_run || mkdir -p "$dir/node$i"
		if node_conf "$i" | put "$cfg" && ! $dry_run && [[ -n $(raild_pid "$i") ]]; then
			echo "${0##*/}: node$i's configuration changed; its raild runs the old one until node-stop $i && node-start $i" >&2
		fi
		if ! $dry_run && [[ -x $raild ]] && ! out=$("$raild" check --config "$cfg" 2>&1); then
			$start_raild && die "$raild check rejects $cfg:"$'\n'"$out"
			echo "${0##*/}: warning: $raild check rejects $cfg (node-start $i will fail):"$'\n'"$out" >&2
		fi
	done
}

node_ns() { # node_ns I: node I's namespace, checked
	[[ $1 =~ ^[1-9]$ ]] || die "node '$1' is not a number in 1..9"
	ns_exists "${prefix}node$1" || $dry_run || die "no namespace ${prefix}node$1 (run up first)"
	echo "${prefix}node$1"
}

node_start() {
	local i=$1 n d cfg pid t
	n=$(node_ns "$i")
	d=$dir/node$i
	cfg=$d/raild.yaml
	pid=$(raild_pid "$i")
	if [[ -n $pid ]]; then
		echo "node$i: raild already runs (pid $pid)"
		return 0
	fi
	[[ -x $raild ]] || $dry_run || die "no raild binary at $raild (make build, or --raild BIN)"
	[[ -s $cfg ]] || $dry_run || die "no configuration $cfg (run up first)"
	if $dry_run; then
		echo "# in the background, log $d/raild.log, pid $d/raild.pid:"
		run ip netns exec "$n" "$raild" run --config "$cfg"
		return
	fi
	rm -f "$d/raild.pid"
	if [[ -S $d/raild.sock ]]; then rm -f "$d/raild.sock"; fi # left by a killed raild
	if [[ -e $d/raild.log ]]; then mv -f "$d/raild.log" "$d/raild.log.1"; fi
	# A session of its own, no terminal; `ip netns exec` and setsid (not a
	# process group leader here) exec, so $! is raild's pid.
	setsid ip netns exec "$n" "$raild" run --config "$cfg" </dev/null >"$d/raild.log" 2>&1 &
	pid=$!
	echo "$pid" >"$d/raild.pid"
	for ((t = 0; t < timeout * 10; t++)); do
		if ! alive "$pid"; then
			rm -f "$d/raild.pid"
			die "node$i: raild exited at start; the end of $d/raild.log:"$'\n'"$(tail -n 15 "$d/raild.log")"
		fi
		if grep -q 'msg=metrics' "$d/raild.log" 2>/dev/null; then
			echo "node$i: raild runs (pid $pid, log $d/raild.log, admin $d/raild.sock, metrics 127.0.0.1:$(metrics_port "$i") in $n)"
			return 0
		fi
		sleep 0.1
	done
	die "node$i: raild (pid $pid) not up after $timeout s; see $d/raild.log"
}

node_stop() { # node_stop I TERM|KILL
	local i=$1 sig=$2 pid
	node_ns "$i" >/dev/null
	pid=$(raild_pid "$i")
	if [[ -z $pid ]]; then
		echo "node$i: raild is not running"
		$dry_run || rm -f "$dir/node$i/raild.pid"
		return 0
	fi
	run kill "-$sig" "$pid"
	$dry_run && return 0
	if [[ $sig == TERM ]] && ! $wait; then
		echo "node$i: SIGTERM sent to raild (pid $pid)"
		return 0
	fi
	wait_gone "$pid" "$timeout" || die "node$i: raild (pid $pid) still runs $timeout s after SIG$sig (node-kill $i ends it)"
	rm -f "$dir/node$i/raild.pid"
	echo "node$i: raild (pid $pid) ended by SIG$sig"
}

# nodes_down: raild on every node at once: SIGTERM, 2 s to detach, then
# SIGKILL. down does not wait for the BGP drains (drain_time and more): the
# router goes too, and a killed raild leaves nothing on lb0 (the kernel
# drops its XDP link and sockets with the process).
nodes_down() {
	local i pid t left pids=()
	for ((i = 1; i <= 9; i++)); do
		pid=$(raild_pid "$i")
		[[ -n $pid ]] || continue
		run kill -TERM "$pid"
		signalled+="$pid "
		pids+=("$pid")
	done
	$dry_run && return 0
	((${#pids[@]})) || return 0
	for ((t = 0; t < 20; t++)); do
		left=0
		for pid in "${pids[@]}"; do
			if alive "$pid"; then left=1; fi
		done
		((left)) || break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do
		if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
	done
	for pid in "${pids[@]}"; do wait_gone "$pid" 5 || true; done
	rm -f "$dir"/node[1-9]/raild.pid
}

route_paths() { # how many next hops the router's route to the VIP has
	local out
	out=$(ip -n "${prefix}router" route show "$VIP" 2>/dev/null) || true
	if [[ -z $out ]]; then
		echo 0
	elif [[ $out == *nexthop* ]]; then
		grep -c nexthop <<<"$out"
	else
		echo 1
	fi
}

cmd_up() {
	[[ $nodes =~ ^[1-9]$ ]] || die "--nodes: '$nodes' is not a number in 1..9"
	[[ $backends =~ ^[1-9]$ ]] || die "--backends: '$backends' is not a number in 1..9"
	[[ $when_down != forward ]] || ((nodes > 1)) || die "--when-down forward needs two nodes or more"
	[[ -x $raild ]] || $dry_run || die "no raild binary at $raild (make build, or --raild BIN)"
	command -v bird >/dev/null || $dry_run || die "bird is not installed (apt-get install bird2)"
	if [[ -d $dir && ! -e $dir/$MARKER && -n $(ls -A "$dir") ]]; then
		die "--dir $dir is not empty and not a fleet lab's (no $MARKER): choose another"
	fi
	if ! $dry_run; then
		trap 'up_failed $?' EXIT
		trap 'exit 130' INT TERM
		mkdir -p "$dir"
		echo "tools/fleet-lab.sh work directory, prefix $prefix" >"$dir/$MARKER"
		# node-start without --raild uses the binary up was given.
		echo "$raild" >"$dir/raild.path"
	fi
	local ns i
	# Fewer nodes than last time: the others go.
	for ns in $(lab_namespaces); do
		case $ns in
		"${prefix}"node[1-9])
			i=${ns#"${prefix}"node}
			if ((i > nodes)); then
				node_stop "$i" KILL
				run ip netns del "$ns"
				$dry_run || rm -rf "$dir/node$i"
			fi
			;;
		esac
	done
	network_up
	decap_up rail-fleet
	for ((i = 1; i <= backends; i++)); do nginx_ctl start "$i"; done
	node_confs
	bird_up
	if $start_raild; then
		for ((i = 1; i <= nodes; i++)); do node_start "$i"; done
	fi
	trap - EXIT INT TERM
	$dry_run && return 0
	local running=0
	for ((i = 1; i <= nodes; i++)); do
		if [[ -n $(raild_pid "$i") ]]; then running=$((running + 1)); fi
	done
	echo "fleet lab up: ${prefix}client $CLIENT_ADDR -> ${prefix}router (bird AS $ROUTER_ASN at $ROUTER_ADDR, birdc -s $dir/bird.ctl)" \
		"-> $nodes nodes ${prefix}node1..$nodes $(node_addr 1)..$(node_addr "$nodes") (AS $NODE_ASN, $dir/nodeI/raild.yaml;" \
		"raild runs on $running of them$( ((running == nodes)) || echo ": node-start I"))" \
		"-> $backends backends 10.1.0.11..$(be_addr "$backends"), VIP $VIP; work dir $dir"
}

up_failed() { # the EXIT trap of up: a failed up leaves nothing behind
	local rc=$1
	trap - EXIT INT TERM
	((rc != 0)) || return 0
	echo "${0##*/}: up failed: removing the lab" >&2
	(cmd_down >/dev/null) || echo "${0##*/}: down after the failed up failed too" >&2
	exit "$rc"
}

cmd_down() {
	local ns pid pids
	nodes_down
	bird_down
	backends_down
	# Whatever else still runs in the lab's namespaces (a raild whose pid
	# file is gone, a client's curl) would keep a deleted namespace alive.
	for ns in $(lab_namespaces); do
		pids=""
		for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
			[[ $signalled == *" $pid "* ]] || pids+=" $pid"
		done
		[[ -n $pids ]] || continue
		for pid in $pids; do run kill -TERM "$pid"; done
		$dry_run && continue
		for pid in $pids; do wait_gone "$pid" 3 || kill -KILL "$pid" 2>/dev/null || true; done
	done
	for ns in $(lab_namespaces); do run ip netns del "$ns"; done
	bpffs_down
	if [[ -e $dir/$MARKER ]]; then
		run rm -rf "$dir"
	elif [[ -d $dir ]]; then
		echo "${0##*/}: $dir has no $MARKER: left as it is" >&2
	fi
	$dry_run || echo "fleet lab down: ${prefix}* removed"
}

indent() { # stdin to stdout, two spaces in
	local line
	while IFS= read -r line; do echo "  $line"; done
}

cmd_status() {
	local ok=0 ns i pid r=${prefix}router sock=$dir/bird.ctl out found=0
	echo "fleet lab ${prefix}: work directory $dir"
	for ns in client router; do
		if ns_exists "$prefix$ns"; then echo "$prefix$ns: present"; else
			echo "$prefix$ns: absent"
			ok=1
		fi
	done
	pid=$(bird_pid)
	if [[ -n $pid ]]; then echo "bird: pid $pid, birdc -s $sock"; else
		echo "bird: not running"
		ok=1
	fi
	for ((i = 1; i <= 9; i++)); do
		ns_exists "${prefix}node$i" || continue
		found=$((found + 1))
		pid=$(raild_pid "$i")
		if [[ -n $pid ]]; then
			echo "${prefix}node$i: $(node_addr "$i"), raild runs, pid $pid (log $dir/node$i/raild.log)"
		else
			echo "${prefix}node$i: $(node_addr "$i"), raild not running"
		fi
	done
	((found > 0)) || {
		echo "${prefix}node*: absent"
		ok=1
	}
	backends_status
	echo
	echo "bird's protocols (birdc -s $sock show protocols):"
	if [[ -S $sock ]] && out=$(birdc -s "$sock" show protocols 2>&1); then
		indent <<<"$out"
	else
		echo "  (no answer)"
	fi
	echo
	echo "the router's route to $VIP (ip -n $r route show $VIP): $(route_paths) next hop(s)"
	out=$(ip -n "$r" route show "$VIP" 2>&1 || true)
	indent <<<"${out:-(none)}"
	return $ok
}

cmd_wait_route() {
	local want=$1 got t
	[[ $want =~ ^[0-9]$ ]] || die "wait-route: '$want' is not a number of next hops in 0..9"
	for ((t = 0; ; t++)); do
		got=$(route_paths)
		if [[ $got == "$want" ]]; then
			echo "$VIP: $got next hop(s) after $((t / 10)).$((t % 10)) s"
			return 0
		fi
		((t < timeout * 10)) || die "wait-route: the route to $VIP has $got next hop(s) after $timeout s, not $want"
		sleep 0.1
	done
}

main() {
	local cmd="" args=()
	while (($#)); do
		case $1 in
		up | down | status | node-start | node-stop | node-kill | wait-route | nginx)
			[[ -z $cmd ]] || die "one command at a time ('$cmd' and '$1')"
			cmd=$1
			;;
		--nodes | --backends | --raild | --dir | --prefix | --hold-time | --drain-time | --when-down | --slow-rate | --timeout)
			(($# >= 2)) || die "$1 needs a value"
			case $1 in
			--nodes) nodes=$2 ;;
			--backends) backends=$2 ;;
			--raild) raild=$2 ;;
			--dir) dir=$2 ;;
			--prefix) prefix=$2 ;;
			--hold-time) hold_time=$2 ;;
			--drain-time) drain_time=$2 ;;
			--when-down) when_down=$2 ;;
			--slow-rate) slow_rate=$2 ;;
			--timeout) timeout=$2 ;;
			esac
			shift
			;;
		--start-raild) start_raild=true ;;
		--no-wait) wait=false ;;
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
			[[ -n $cmd && $cmd != up && $cmd != down && $cmd != status ]] || die "unexpected argument '$1'"
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
	[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout: '$timeout' is not a number of seconds"
	[[ $hold_time =~ ^([0-9]+(ms|s|m|h))+$|^0$ ]] || die "--hold-time: '$hold_time' is not a duration (e.g. 9s)"
	[[ $drain_time =~ ^([0-9]+(ms|s|m|h))+$|^0$ ]] || die "--drain-time: '$drain_time' is not a duration (e.g. 5s)"
	case $when_down in withdraw | keep | forward) ;; *) die "--when-down: '$when_down' is not withdraw, keep or forward" ;; esac
	dir=${dir:-/tmp/${prefix%-}-lab}
	[[ $dir == /* ]] || dir=$PWD/$dir
	if [[ -z $raild && -s $dir/raild.path ]]; then raild=$(<"$dir/raild.path"); fi
	[[ -n $raild ]] || raild=$root/bin/raild
	[[ $raild == */* ]] || raild=$(command -v "$raild" || echo "$raild")
	[[ $raild == /* ]] || raild=$PWD/$raild
	if ! $dry_run && [[ $cmd != status ]] && ((EUID != 0)); then
		die "$cmd needs root (network namespaces, BPF)"
	fi
	local want=0
	case $cmd in
	node-start | node-stop | node-kill | wait-route) want=1 ;;
	nginx) want=2 ;;
	esac
	if ((${#args[@]} != want)); then
		case $cmd in
		nginx) die "usage: nginx start|stop|reload N" ;;
		wait-route) die "usage: wait-route K (the number of next hops)" ;;
		node-*) die "usage: $cmd I (the node, 1..9)" ;;
		*) die "unexpected argument '${args[0]}'" ;;
		esac
	fi
	case $cmd in
	node-start) node_start "${args[0]}" ;;
	node-stop) node_stop "${args[0]}" TERM ;;
	node-kill) node_stop "${args[0]}" KILL ;;
	wait-route) cmd_wait_route "${args[0]}" ;;
	nginx) nginx_ctl "${args[0]}" "${args[1]}" ;;
	*) "cmd_$cmd" ;;
	esac
}

main "$@"
