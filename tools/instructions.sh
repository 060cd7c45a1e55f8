#!/usr/bin/env bash
# tools/instructions.sh — instructions per packet of the data path, counted
# by callgrind (no hardware counters needed): runs `railbench pipeline` with
# N and 2N packets and divides the difference of the instructions executed
# in the pipeline package's own code (inlined code included) by N, so that
# start-up and warm-up cancel out.
# Usage: tools/instructions.sh [--packets N] [-- railbench pipeline flags…]
#   e.g. tools/instructions.sh -- --flows 1000 --ipv6
set -euo pipefail

packets=200000
case ${1:-} in
-h | --help)
	sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
--packets)
	packets=$2
	shift 2
	;;
esac
[[ ${1:-} == -- ]] && shift
command -v valgrind >/dev/null || {
	echo "tools/instructions.sh: valgrind is not installed (apt-get install -y valgrind)" >&2
	exit 1
}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/railbench" ./cmd/railbench

# count N: the pipeline's instructions over a run of N packets.
count() {
	local n=$1
	shift
	# No collector (GOGC=off) and no asynchronous preemption: nothing but
	# the benchmark runs in the counted code.
	GOGC=off GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$dir/out.$n" \
		"$dir/railbench" pipeline "$@" --packets "$n" >/dev/null 2>"$dir/err.$n" ||
		{
			cat "$dir/err.$n" >&2
			exit 1
		}
	callgrind_annotate --auto=no --inclusive=no --threshold=100 "$dir/out.$n" |
		awk '/:github.com\/rail-lb\/rail\/pipeline\./ { gsub(",", "", $1); s += $1 } END { print s }'
}
a=$(count "$packets" "$@")
b=$(count $((2 * packets)) "$@")
echo "railbench pipeline $*: $(((b - a) / packets)) instructions/packet in the pipeline package"
