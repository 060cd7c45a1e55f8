#!/usr/bin/env bash
# demo.sh — Rail with real clients and servers: what `make demo` runs, as root.
#
#   1. builds bin/raild (unless --no-build) and installs missing Debian tools
#      (nginx, curl, wrk, ethtool, iproute2);
#   2. tools/dsr-lab.sh up: a client, a router, the Rail node and three
#      backends running nginx on the VIP, each with `raild decap` (tc BPF)
#      taking the GRE apart;
#   3. starts `raild run --config examples/dsr.yaml` in the node and waits
#      until its health checks see every backend;
#   4. curl through the VIP: a few requests one by one (who answered), then
#      --requests more, counted per backend; a download whose bytes never
#      cross the node (direct server return: the router's counters);
#   5. stops one backend's nginx, shows the node taking it out and no request
#      failing after that, starts it again;
#   6. with wrk installed: requests per second through the VIP and straight
#      to one backend, same client, same run;
#   7. stops raild (SIGTERM), checks lb0 has no XDP program, removes the lab.
#
# --gre adds the older demo as a second stage: tools/gre-demo.sh, raild on
# synthetic GRE from trafgen (the router → node form, packets per second).
# A trap stops raild and removes the lab on exit, error and Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly root
readonly lab="$root/tools/dsr-lab.sh"
readonly VIP=192.0.2.10

prefix=rd-
config="$root/examples/dsr.yaml"
requests=300
build=true
keep=false
gre=false
dry_run=false

usage() {
	cat <<EOF
usage: tools/demo.sh [--requests N] [--prefix NAME] [--no-build] [--keep] [--gre]
                     [--dry-run] [--help]

Real clients through Rail: curl and wrk in a client namespace, a router,
raild, three nginx backends that take the GRE apart with 'raild decap' and
answer the client directly. Needs root; installs nginx, curl, wrk, ethtool
and iproute2 with apt-get when missing.

  --requests N   requests counted per backend (default: $requests)
  --prefix NAME  namespace prefix (default: $prefix)
  --no-build     use the existing bin/raild
  --keep         leave the lab, raild stopped, and the work files afterwards
  --gre          then run the GRE/trafgen stage (tools/gre-demo.sh)
  --dry-run      print the plan, change nothing
  --help         this text
EOF
}

say() { printf '\n==> %s\n' "$*"; }
die() {
	echo "demo.sh: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--requests | --prefix)
		(($# >= 2)) || die "$1 needs a value"
		case $1 in
		--requests) requests=$2 ;;
		--prefix) prefix=$2 ;;
		esac
		shift
		;;
	--no-build) build=false ;;
	--keep) keep=true ;;
	--gre) gre=true ;;
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
[[ $requests =~ ^[1-9][0-9]{0,4}$ ]] || die "--requests: '$requests' is not a number in 1..99999"

readonly client=${prefix}client lb=${prefix}lb
work=/tmp/rail-dsr-${prefix%-}

if $dry_run; then
	cat <<EOF
would: $($build && echo "go build -o bin/raild ./cmd/raild; ")install missing tools with apt-get
would: $lab up --prefix $prefix --raild $root/bin/raild
would: ip netns exec $lb $root/bin/raild run --config ${config#"$root"/}
would: ip netns exec $client curl http://$VIP/ (one by one, then $requests counted per backend)
would: $lab nginx stop 2; $requests requests; $lab nginx start 2
would: ip netns exec $client wrk -d2s http://$VIP/ and http://10.1.0.11/
would: SIGTERM raild, check lb0 has no XDP program, $lab down --prefix $prefix$($gre && echo "; then tools/gre-demo.sh --no-build")
EOF
	exit 0
fi
((EUID == 0)) || die "needs root (network namespaces, XDP, BPF)"

install_missing() {
	local -A pkg_of=([ip]=iproute2 [ethtool]=ethtool [nginx]=nginx [curl]=curl [wrk]=wrk)
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

raild_pid=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $raild_pid ]] && kill -0 "$raild_pid" 2>/dev/null; then
		kill -TERM "$raild_pid" 2>/dev/null || true
		wait "$raild_pid" 2>/dev/null || true
	fi
	if $keep; then
		echo "kept: the lab ($lab down --prefix $prefix removes it) and $work"
	else
		"$lab" down --prefix "$prefix" >/dev/null 2>&1 || echo "demo.sh: dsr-lab.sh down failed" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo.sh: interrupted" >&2; exit 130' INT TERM

in_client() { ip netns exec "$client" "$@"; }
api() { ip netns exec "$lb" curl -fsS --max-time 2 --unix-socket "$sock" "http://raild$1"; }
healthy() { api /v1/services/web | tr -d " \n" | grep -o "\"address\":\"$1\"[^}]*\"healthy\":true" >/dev/null; }
# count N: N requests through the VIP, one connection each; prints "beN count" lines and "failed K".
count() {
	in_client curl -s --connect-timeout 1 -m 2 -H 'Connection: close' -w '%{http_code}\n' "http://$VIP/?r=[1-$1]" |
		awk '/^be/ { who = $1; next } $1 == 200 { n[who]++; next } { f++ } END { for (b in n) print b, n[b]; print "failed", f + 0 }' | sort
}
counts_line() { count "$1" | paste -sd' ' - | sed 's/\(be[0-9]\) \([0-9]*\)/\1: \2,/g; s/, failed/; failed:/'; }

# --- lab and raild ---------------------------------------------------------

say "lab: $lab up --prefix $prefix"
"$lab" down --prefix "$prefix" >/dev/null
"$lab" up --prefix "$prefix" --raild "$root/bin/raild"
sock=$(awk '$1 == "socket:" {print $2}' "$config")

say "raild run --config ${config#"$root"/} (in $lb)"
ip netns exec "$lb" "$root/bin/raild" run --config "$config" >"$work/raild.log" 2>&1 &
raild_pid=$!
for ((i = 0; i < 100; i++)); do
	grep -q 'msg=metrics' "$work/raild.log" && break
	kill -0 "$raild_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q 'msg=metrics' "$work/raild.log" || {
	sed 's/^/    raild | /' "$work/raild.log"
	die "raild did not start (log above)"
}
sed 's/^/    raild | /' "$work/raild.log"
for ((i = 0; i < 50; i++)); do
	healthy 10.1.0.11 && healthy 10.1.0.12 && healthy 10.1.0.13 && break
	sleep 0.2
done
echo "    health checks: every backend up"

# --- requests ----------------------------------------------------------------

say "curl http://$VIP/ from $client, one request at a time"
for ((i = 1; i <= 9; i++)); do
	printf '    request %d answered by %s\n' "$i" "$(in_client curl -s -m 2 "http://$VIP/")"
done

say "$requests more requests, a new connection each, counted per backend"
echo "    $(counts_line "$requests")"
say "a 4.8 MB download through the VIP: the bytes go around the node"
rstat() { ip netns exec "${prefix}router" cat "/sys/class/net/$1/statistics/tx_bytes"; }
to_lb0=$(rstat tolb) to_client0=$(rstat toc)
in_client curl -s -o /dev/null "http://$VIP/files/big"
to_lb=$(($(rstat tolb) - to_lb0)) to_client=$(($(rstat toc) - to_client0))
echo "    the router sent the client $to_client bytes and the node $to_lb: the node sees the client's"
echo "    requests and ACKs; the backend's answer goes from the backend to the router to the client"

say "be2's nginx stops (health: every 500ms, down after 2 failures)"
t0=$(date +%s%N)
"$lab" nginx stop 2 --prefix "$prefix"
for ((i = 0; i < 50; i++)); do
	healthy 10.1.0.12 || break
	sleep 0.05
done
echo "    raild took be2 out after $((($(date +%s%N) - t0) / 1000000)) ms"
echo "    $requests requests: $(counts_line "$requests")"
"$lab" nginx start 2 --prefix "$prefix"
for ((i = 0; i < 50; i++)); do
	healthy 10.1.0.12 && break
	sleep 0.1
done
echo "    be2 is back: $(counts_line "$requests")"

if command -v wrk >/dev/null; then
	say "requests per second, wrk -t1 -c16 -d2s, a new connection per request"
	rate() { in_client wrk -t1 -c16 -d2s -H 'Connection: close' "$1" | awk '/Requests\/sec/ {printf "%.0f", $2}'; }
	via=$(rate "http://$VIP/")
	direct=$(rate "http://10.1.0.11/")
	echo "    through the VIP: $via req/s; straight to be1: $direct req/s; ratio $(awk -v a="$via" -v b="$direct" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
fi

# --- stop --------------------------------------------------------------------

say "stopping raild (SIGTERM)"
kill -TERM "$raild_pid"
rc=0
wait "$raild_pid" || rc=$?
raild_pid=""
sed -n '/msg=stopping/,$p' "$work/raild.log" | sed 's/^/    raild | /'
xdp_left=$(ip netns exec "$lb" ip -d link show dev lb0 | grep -o 'prog/xdp[a-z]* id [0-9]*' || true)
if ((rc != 0)) || [[ -n $xdp_left ]]; then
	die "raild exit $rc; lb0 shows '${xdp_left:-no xdp}'"
fi
echo "    raild exited 0; lb0 has no XDP program left"
echo "demo ok"

if $gre; then
	"$lab" down --prefix "$prefix" >/dev/null
	say "second stage: raild on synthetic GRE (tools/gre-demo.sh)"
	"$root/tools/gre-demo.sh" --no-build
fi
