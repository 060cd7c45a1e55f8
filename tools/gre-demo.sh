#!/usr/bin/env bash
# gre-demo.sh — raild on synthetic GRE from trafgen in the two-namespace veth
# lab (the second stage of `tools/demo.sh --gre`; tools/demo.sh alone is the
# direct-server-return demo with real clients and servers). Run as root.
#
#   1. builds bin/raild (unless --no-build) and installs missing Debian tools;
#   2. tools/lab.sh up: namespaces ${prefix}gen (the router) and ${prefix}lb (the node);
#   3. starts `raild run --config examples/lab.yaml` inside ${prefix}lb and waits
#      until it logs that it is attached;
#   4. captures, on gen0, the GRE frames raild sends back (outer source 10.0.0.2);
#   5. sends GRE traffic written by tools/gre.trafgen.sh with trafgen for
#      --duration seconds, plus a little not-ours UDP, while pinging 10.0.0.2;
#   6. scrapes the metrics, stops raild with SIGTERM, checks that no XDP
#      program is left on lb0;
#   7. prints a summary in plain words.
#
# A trap stops raild, tcpdump, trafgen and ping and removes the lab on exit,
# on error and on Ctrl-C. Exit status 0 means: frames were forwarded, the
# kernel still answered ping, raild stopped cleanly and lb0 has no XDP program.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly root
readonly lab="$root/tools/lab.sh"
readonly writer="$root/tools/gre.trafgen.sh"

prefix=rail-
config="$root/examples/lab.yaml"
duration=10
flows=1000
not_ours=9
build=true
keep=false
dry_run=false

usage() {
	cat <<EOF
usage: tools/gre-demo.sh [--duration S] [--flows F] [--not-ours K] [--config FILE]
                         [--prefix NAME] [--no-build] [--keep] [--dry-run] [--help]

Runs raild in the veth lab of tools/lab.sh, sends it GRE traffic with trafgen
and prints what happened. Needs root; installs iproute2, ethtool, tcpdump,
netsniff-ng (trafgen), iputils-ping and curl with apt-get when missing.

  --duration S   seconds of traffic (default: $duration)
  --flows F      inner flows (default: $flows; see tools/gre.trafgen.sh)
  --not-ours K   one not-ours UDP frame after every K GRE frames (default: $not_ours; 0: none)
  --config FILE  raild configuration (default: examples/lab.yaml; interface must be lb0)
  --prefix NAME  lab namespace prefix (default: $prefix)
  --no-build     use the existing bin/raild
  --keep         keep the lab and the work directory (pcap, logs, metrics) afterwards
  --dry-run      print the plan, change nothing
  --help         this text
EOF
}

say() { printf '==> %s\n' "$*"; }
die() {
	echo "gre-demo.sh: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--duration | --flows | --not-ours | --config | --prefix)
		(($# >= 2)) || die "$1 needs a value"
		case $1 in
		--duration) duration=$2 ;;
		--flows) flows=$2 ;;
		--not-ours) not_ours=$2 ;;
		--config) config=$2 ;;
		--prefix) prefix=$2 ;;
		esac
		shift
		;;
	--no-build) build=false ;;
	--keep) keep=true ;;
	--dry-run) dry_run=true ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument '$1'"
		;;
	esac
	shift
done
[[ $duration =~ ^[1-9][0-9]{0,3}$ ]] || die "--duration: '$duration' is not a number of seconds in 1..9999"
[[ -r $config ]] || die "--config: cannot read '$config'"

readonly gen_ns=${prefix}gen lb_ns=${prefix}lb

if $dry_run; then
	cat <<EOF
would: $($build && echo "go build -o bin/raild ./cmd/raild; ")install missing tools with apt-get
would: $lab up --prefix $prefix
would: ip netns exec $lb_ns $root/bin/raild run --config $config
would: ip netns exec $gen_ns tcpdump -i gen0 'ip proto 47 and src host 10.0.0.2'
would: $writer --flows $flows --not-ours $not_ours
would: ip netns exec $gen_ns trafgen --dev gen0 --cpus 1 for ${duration}s, ping 10.0.0.2 alongside
would: scrape metrics, SIGTERM raild, check lb0 has no XDP program, $lab down --prefix $prefix
EOF
	exit 0
fi
((EUID == 0)) || die "needs root (network namespaces, XDP)"

# --- tools -----------------------------------------------------------------

install_missing() {
	local -A pkg_of=([ip]=iproute2 [ethtool]=ethtool [tcpdump]=tcpdump [trafgen]=netsniff-ng
		[ping]=iputils-ping [curl]=curl [taskset]=util-linux)
	local cmd pkgs=()
	for cmd in "${!pkg_of[@]}"; do
		command -v "$cmd" >/dev/null || pkgs+=("${pkg_of[$cmd]}")
	done
	((${#pkgs[@]})) || return 0
	command -v apt-get >/dev/null || die "missing ${pkgs[*]} and no apt-get to install them"
	say "installing ${pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

if $build; then
	[[ -d /usr/local/go/bin ]] && PATH=$PATH:/usr/local/go/bin
	command -v go >/dev/null || die "no go toolchain on PATH (or use --no-build)"
	say "building bin/raild"
	(cd "$root" && go build -o bin/raild ./cmd/raild)
fi
[[ -x $root/bin/raild ]] || die "no $root/bin/raild: build it first (make build)"
install_missing

# --- cleanup -----------------------------------------------------------------

work=$(mktemp -d /tmp/rail-demo.XXXXXX)
raild_pid="" tcpdump_pid="" ping_pid="" trafgen_pid=""
wmem_was="" # net.core.wmem_default before this run raised it

stop_pid() { # stop_pid PID SIGNAL: signal it, wait up to 5 s, then SIGKILL
	local pid=$1 sig=$2 i
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$trafgen_pid" INT
	stop_pid "$ping_pid" INT
	stop_pid "$tcpdump_pid" INT
	stop_pid "$raild_pid" TERM
	[[ -n $wmem_was ]] && echo "$wmem_was" >/proc/sys/net/core/wmem_default
	if $keep; then
		echo "kept: the lab (tools/lab.sh down --prefix $prefix removes it) and $work"
	else
		"$lab" down --prefix "$prefix" >/dev/null 2>&1 || echo "gre-demo.sh: lab.sh down failed" >&2
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "gre-demo.sh: interrupted" >&2; exit 130' INT TERM

# --- lab and raild -------------------------------------------------------------

say "lab: $lab up --prefix $prefix"
"$lab" down --prefix "$prefix" >/dev/null
"$lab" up --prefix "$prefix"

say "raild run --config ${config#"$root"/} (in $lb_ns)"
ip netns exec "$lb_ns" "$root/bin/raild" run --config "$config" >"$work/raild.log" 2>&1 &
raild_pid=$!
for ((i = 0; i < 150; i++)); do
	grep -q 'msg=attached' "$work/raild.log" && break
	if ! kill -0 "$raild_pid" 2>/dev/null; then
		sed 's/^/    raild | /' "$work/raild.log"
		raild_pid=""
		die "raild exited before attaching (log above)"
	fi
	sleep 0.1
done
grep -q 'msg=attached' "$work/raild.log" || {
	sed 's/^/    raild | /' "$work/raild.log"
	die "raild did not say it was attached within 15 s"
}
sed 's/^/    raild | /' "$work/raild.log"
xdp_prog=$(ip netns exec "$lb_ns" ip -d link show dev lb0 | grep -o 'prog/xdp[a-z]* id [0-9]*' || true)
say "lb0 now has ${xdp_prog:-NO XDP PROGRAM}"
worker_cpus=$(grep -o 'msg="queue open".* cpu=[0-9]*' "$work/raild.log" | grep -o 'cpu=[0-9]*' | cut -d= -f2 | paste -sd, -)
metrics_addr=$(grep -o '^metrics_address: *[^ #]*' "$config" | awk '{print $2}')
metrics_addr=${metrics_addr:-127.0.0.1:9700}

# --- traffic -----------------------------------------------------------------------

"$writer" --flows "$flows" --not-ours "$not_ours" --out "$work/gre.cfg" 2>"$work/writer.out"
flows_note=$(sed 's/^gre.trafgen.sh: //; s/ -> .*//' "$work/writer.out")

ip netns exec "$gen_ns" tcpdump -i gen0 -nn -s 38 -B 32768 -w "$work/back.pcap" \
	'ip proto 47 and src host 10.0.0.2' 2>"$work/tcpdump.err" &
tcpdump_pid=$!
for ((i = 0; i < 50; i++)); do
	grep -qs 'listening on' "$work/tcpdump.err" && break
	sleep 0.1
done

snmp() { # snmp NS PROTO FIELD: a counter of /proc/net/snmp inside NS
	# shellcheck disable=SC2016 # an awk program
	ip netns exec "$1" awk -v p="$2:" -v f="$3" '$1 == p && !h { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next }
		$1 == p && h { print $c[f]; exit }' /proc/net/snmp
}
link_stat() { # link_stat NS DEV STAT: a statistics counter of DEV inside NS
	ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"
}
noports0=$(snmp "$lb_ns" Udp NoPorts)
lb_rx_dropped0=$(link_stat "$lb_ns" lb0 rx_dropped)

ping_count=$((duration * 2))
ip netns exec "$gen_ns" ping -n -i 0.5 -W 1 -c "$ping_count" 10.0.0.2 >"$work/ping.out" 2>&1 &
ping_pid=$!

# trafgen pins its i-th process to CPU i: with --cpus 1 it sends from CPU 0,
# and raild's pin plan leaves CPU 0 to the system whenever it has two CPUs.
say "trafgen: ${duration}s of GRE from gen0 on CPU 0 (raild worker on CPU ${worker_cpus:-?}): $flows_note"
if [[ ,$worker_cpus, == *,0,* ]] && (($(nproc) > 1)); then
	echo "    note: a raild worker shares CPU 0 with trafgen; set cpus: in the config to move it"
fi
# In the background, waited for: timeout runs trafgen in a process group
# of its own, which a Ctrl-C does not reach, and bash runs the INT trap
# only once a foreground command ends; `wait` returns at once instead, and
# the cleanup stops trafgen (timeout passes the SIGINT on).
#
# trafgen's socket gets net.core.wmem_default as its send buffer (the gen
# namespace sees the host's value and cannot change it: "Cannot set system
# socket memory"). The skbs of the frames the veth has not yet delivered
# count against it, and with the default 208 KiB a TX_RING flush often
# fails at once with EAGAIN ("Flushing TX_RING failed: Resource
# temporarily unavailable", and trafgen exits without totals): raise it to
# 4 MiB for the run (put back on exit), and try again should it still.
wmem=$(cat /proc/sys/net/core/wmem_default)
if ((wmem < 4194304)) && echo 4194304 >/proc/sys/net/core/wmem_default 2>/dev/null; then
	wmem_was=$wmem
fi
for attempt in 1 2 3; do
	rc=0
	t0=$(date +%s.%N)
	timeout -s INT "$duration" ip netns exec "$gen_ns" trafgen --dev gen0 --conf "$work/gre.cfg" \
		--cpus 1 --notouch-irq >"$work/trafgen.out" 2>&1 &
	trafgen_pid=$!
	wait "$trafgen_pid" || rc=$?
	trafgen_pid=""
	if grep -q 'packets outgoing' "$work/trafgen.out" || ! grep -q 'Flushing TX_RING failed' "$work/trafgen.out"; then
		break
	fi
	((attempt < 3)) && echo "    trafgen gave up at its first flush (EAGAIN); trying again"
done
t1=$(date +%s.%N)
# timeout's SIGINT makes trafgen print its totals and exit 124 (via
# timeout); an EAGAIN while it flushes its TX_RING at that moment makes it
# exit 1 after the totals, which is fine too.
grep -q 'packets outgoing' "$work/trafgen.out" || {
	grep -v 'Cannot set system socket memory' "$work/trafgen.out" >&2
	die "trafgen failed (exit $rc)"
}
sleep 1 # let raild drain its rings
wait "$ping_pid" || true
ping_pid=""
stop_pid "$tcpdump_pid" INT
tcpdump_pid=""

# --- results -----------------------------------------------------------------------

metrics=$(ip netns exec "$lb_ns" curl -fsS --max-time 5 "http://$metrics_addr/metrics" || echo "# scrape failed")
printf '%s\n' "$metrics" >"$work/metrics.txt"
metric_sum() { # metric_sum NAME [LABEL-REGEX]: the sum of a metric's series
	printf '%s\n' "$metrics" | awk -v n="$1" -v l="${2:-}" \
		'index($0, n) == 1 && substr($0, length(n) + 1, 1) ~ /[{ ]/ && $0 ~ l { s += $NF } END { printf "%d\n", s }'
}
noports1=$(snmp "$lb_ns" Udp NoPorts)
lb_rx_dropped1=$(link_stat "$lb_ns" lb0 rx_dropped)

say "stopping raild (SIGTERM)"
kill -TERM "$raild_pid"
raild_rc=0
for ((i = 0; i < 100; i++)); do
	kill -0 "$raild_pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$raild_pid" 2>/dev/null; then
	raild_rc=timeout
	stop_pid "$raild_pid" KILL
else
	wait "$raild_pid" || raild_rc=$?
fi
raild_pid=""
sed -n '/msg=stopping/,$p' "$work/raild.log" | sed 's/^/    raild | /'
xdp_left=$(ip netns exec "$lb_ns" ip -d link show dev lb0 | grep -o 'prog/xdp[a-z]* id [0-9]*' || true)

sent=$(tr '\r' '\n' <"$work/trafgen.out" | awk '/packets outgoing/ {print $1; exit}')
sent=${sent:-0}
if ((not_ours > 0)); then
	sent_not_ours=$((sent / (not_ours + 1)))
else
	sent_not_ours=0
fi
sent_gre=$((sent - sent_not_ours))
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')

declare -A per_backend=()
captured=0
while read -r n dst; do
	per_backend[$dst]=$n
	captured=$((captured + n))
done < <(tcpdump -nn -r "$work/back.pcap" 2>/dev/null | awk '$2 == "IP" { sub(/:$/, "", $5); c[$5]++ } END { for (d in c) print c[d], d }' | sort -k2)
capture_drops=$(grep -o '[0-9]* packets dropped by kernel' "$work/tcpdump.err" | awk '{print $1}')

rx=$(metric_sum rail_rx_packets_total)
tx=$(metric_sum rail_tx_packets_total)
xsk_dropped=$(metric_sum rail_xsk_rx_dropped_total)
pps() { awk -v n="$1" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
ping_line=$(grep 'packets transmitted' "$work/ping.out" || echo "no ping statistics")
ping_rx=$(echo "$ping_line" | awk '{print $4}')

echo
echo "================ Rail demo summary ================"
echo "traffic      trafgen sent $sent frames in ${secs}s ($(pps "$sent") pps): $sent_gre GRE to 10.0.0.2 over $flows_note, $sent_not_ours not-ours UDP"
echo "raild        received $rx frames on its AF_XDP socket(s), transmitted $tx ($(pps "$tx") pps forwarded)"
lost=$((lb_rx_dropped1 - lb_rx_dropped0))
echo "lost         $lost frames never reached raild (lb0 rx_dropped): the AF_XDP socket dropped $xsk_dropped (rx ring full or fill ring empty), veth's own rx ring the other $((lost - xsk_dropped))"
echo "forwarded    captured on gen0: $captured GRE frames from 10.0.0.2 (tcpdump lost ${capture_drops:-?})"
for dst in "${!per_backend[@]}"; do
	echo "$dst ${per_backend[$dst]}"
done | sort | while read -r dst n; do
	printf '               -> %-15s %9d  (raild counted %d)\n' "$dst" "$n" \
		"$(metric_sum rail_service_backend_packets_total "backend=\"$dst\"")"
done
printf '%s\n' "$metrics" | awk '/^rail_(pass|drop)_packets_total/ && $NF != 0' | sed 's/{[^}]*reason="\([^"]*\)"}/ \1/' |
	awk '{ s[$1 " " $2] += $3 } END { for (k in s) print k, s[k] }' | sort >"$work/verdicts.txt"
if [[ -s $work/verdicts.txt ]]; then
	echo "pass/drop    $(sed 's/rail_\(pass\|drop\)_packets_total/\1/' "$work/verdicts.txt" | paste -sd, - | sed 's/,/, /g')"
else
	echo "pass/drop    none in raild's counters: every frame that reached raild was forwarded"
fi
echo "not ours     the kernel got $((noports1 - noports0)) of the $sent_not_ours not-ours UDP frames (Udp NoPorts in $lb_ns): XDP_PASS, never seen by raild"
echo "ping         $ping_line"
if [[ $raild_rc == 0 ]] && grep -q 'msg="detached' "$work/raild.log" && [[ -z $xdp_left ]]; then
	detached=true
	echo "detached     raild exited 0 on SIGTERM; lb0 has no XDP program left"
else
	detached=false
	echo "detached     NO: raild exit $raild_rc; lb0 shows '${xdp_left:-no xdp}'"
fi
echo "==================================================="
$keep && echo "files: $work (raild.log, metrics.txt, back.pcap, gre.cfg, trafgen.out, ping.out)"

fail=()
((tx > 0 && captured > 0)) || fail+=("nothing was forwarded")
[[ $ping_rx =~ ^[1-9] ]] || fail+=("the kernel did not answer ping")
$detached || fail+=("raild did not detach cleanly")
if ((${#fail[@]})); then
	echo "DEMO FAILED: ${fail[*]}" >&2
	exit 1
fi
echo "demo ok"
