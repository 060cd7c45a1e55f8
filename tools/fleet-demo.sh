#!/usr/bin/env bash
# fleet-demo.sh — a Rail fleet losing a node, as root: what the README shows.
#
#   1. builds bin/raild (unless --no-build);
#   2. tools/fleet-lab.sh up --start-raild: a client, a bird2 router, three
#      raild nodes announcing the VIP over BGP (one multipath route), three
#      nginx backends behind raild decap;
#   3. starts a paced download through the VIP and a stream of requests (a
#      new connection each);
#   4. finds the node that carries the download and kills it with SIGKILL
#      mid-transfer: the router drops its next hop, ECMP moves its flows to
#      the survivors, which pick the same backends (same Maglev tables);
#   5. shows: requests answered and failed, the download's sha256 against
#      the file's, which node carried it before and after, the route;
#   6. removes the lab (a trap does it on error and Ctrl-C too).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly root
readonly lab="$root/tools/fleet-lab.sh"
readonly VIP=192.0.2.10
prefix=fd-
dir=/tmp/rail-fleet-demo
build=true
dry_run=false
requests=400

usage() {
	cat <<EOF
usage: tools/fleet-demo.sh [--requests N] [--prefix NAME] [--dir DIR] [--no-build]
                           [--dry-run] [--help]

Three Rail nodes behind a bird2 router with ECMP; one is killed (SIGKILL) in
the middle of a download and of a stream of requests: nothing breaks.
Needs root, bird2, nginx and curl (apt-get install bird2 nginx curl).

  --requests N   requests sent meanwhile, a new connection each (default: $requests)
  --prefix NAME  namespace prefix (default: $prefix)
  --dir DIR      work directory (default: $dir)
  --no-build     use the existing bin/raild
  --dry-run      print the plan, change nothing
  --help         this text
EOF
}

say() { printf '\n==> %s\n' "$*"; }
die() {
	echo "fleet-demo.sh: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--requests) requests=${2:?--requests needs a number} && shift ;;
	--prefix) prefix=${2:?--prefix needs a name} && shift ;;
	--dir) dir=${2:?--dir needs a directory} && shift ;;
	--no-build) build=false ;;
	--dry-run) dry_run=true ;;
	-h | --help) usage && exit 0 ;;
	*) echo "fleet-demo.sh: unknown argument '$1' (try --help)" >&2 && exit 2 ;;
	esac
	shift
done
[[ $requests =~ ^[0-9]+$ ]] || die "--requests $requests: want a number"

labargs=(--prefix "$prefix" --dir "$dir" --raild "$root/bin/raild")
if $dry_run; then
	echo "would: make build; $lab up --start-raild --nodes 3 ${labargs[*]}; $lab wait-route 3"
	echo "would: start a paced download of /slow/big and $requests requests from ${prefix}client"
	echo "would: SIGKILL the node carrying the download; report requests, sha256, nodes; $lab down"
	exit 0
fi
((EUID == 0)) || die "needs root (network namespaces, XDP)"
for t in bird birdc nginx curl ip sha256sum; do
	command -v "$t" >/dev/null || die "needs $t (apt-get install bird2 nginx curl iproute2)"
done

work=$(mktemp -d /tmp/rail-fleet-demo-out.XXXXXX)
cleanup() {
	"$lab" down "${labargs[@]}" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if $build; then
	say "building raild"
	make -C "$root" -s build
fi
say "the fleet: 3 nodes, a bird2 router, 3 backends"
if ! "$lab" up --start-raild --nodes 3 --slow-rate 1m "${labargs[@]}" >"$work/up.log" 2>&1; then
	tail -20 "$work/up.log"
	die "fleet-lab.sh up failed"
fi
"$lab" wait-route 3 "${labargs[@]}" >/dev/null
ip -n "${prefix}router" route show "$VIP"

client() { ip netns exec "${prefix}client" "$@"; }
# rx I: packets node I's workers received (its metrics), 0 when it is gone.
rx() {
	local port
	port=$(awk '/^metrics_address:/ {split($2, a, ":"); print a[2]}' "$dir/node$1/raild.yaml")
	ip netns exec "${prefix}node$1" curl -s --max-time 1 "http://127.0.0.1:$port/metrics" 2>/dev/null |
		awk '/^rail_rx_packets_total/ {s += $2} END {print s + 0}'
}
# busiest SKIP: the node (not SKIP) whose counter moved most in a second.
busiest() {
	local i best=0 most=-1
	local -a a b
	for i in 1 2 3; do a[i]=$(rx "$i"); done
	sleep 1
	for i in 1 2 3; do b[i]=$(rx "$i"); done
	for i in 1 2 3; do
		if ((i != $1 && b[i] - a[i] > most)); then best=$i most=$((b[i] - a[i])); fi
	done
	echo "$best"
}

say "a paced download (4.7 MB at 1 MB/s) and $requests requests through the VIP"
client curl -s -o "$work/download" "http://$VIP/slow/big" &
dl=$!
(
	ok=0 failed=0
	for ((i = 0; i < requests; i++)); do
		if client curl -s -o /dev/null --max-time 5 "http://$VIP/"; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
		sleep 0.01
	done
	echo "$ok $failed" >"$work/requests"
) &
req=$!
sleep 1
# The download's packets dominate: the node whose counter moves most carries it.
victim=$(busiest 0)
say "node $victim carries the download: kill -9"
start=$(date +%s%N)
"$lab" node-kill "$victim" "${labargs[@]}" >/dev/null
"$lab" wait-route 2 "${labargs[@]}" >/dev/null
echo "the router has 2 next hops $((($(date +%s%N) - start) / 1000000)) ms later:"
ip -n "${prefix}router" route show "$VIP"
now=$(busiest "$victim")
echo "the download now goes through node $now"

wait "$dl" || die "the download failed"
wait "$req"
read -r ok failed <"$work/requests"
want=$(sha256sum <"$dir/big" | cut -d' ' -f1)
got=$(sha256sum <"$work/download" | cut -d' ' -f1)
say "what happened"
echo "requests: $ok answered, $failed failed (of $requests)"
if [[ $got != "$want" ]]; then
	die "download: sha256 $got, want $want"
fi
echo "download: $(stat -c %s "$work/download") bytes, sha256 identical to the file's: it crossed from node $victim to node $now intact"
((failed == 0)) || die "$failed requests failed"
echo "fleet demo ok"
