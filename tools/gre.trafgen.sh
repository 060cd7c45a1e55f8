#!/usr/bin/env bash
# gre.trafgen.sh — writes a trafgen(8) configuration for the Rail lab: GRE-in
# IPv4/TCP frames from the router (gen0) to the Rail node (lb0), as a router
# doing ECMP-over-GRE would send them.
#
#   Ethernet 02:00:00:00:00:01 -> 02:00:00:00:00:02
#   IPv4 10.0.0.1 -> 10.0.0.2, proto 47 (GRE), DF, TTL 64, checksum (csumip)
#   GRE flags 0, version 0, protocol 0x0800
#   IPv4 198.18.X.Y -> VIP 192.0.2.10, proto 6, DF, TTL 64, checksum (csumip)
#   TCP sport 39936+Z -> 80, ACK, checksum (csumtcp)
#
# Flows: X, Y and Z are trafgen run-time byte counters, dinc(), each cycling
# over its own range. Ranges that are pairwise coprime make the triple go
# through every combination, so the number of distinct inner 5-tuples is
# the product of the three range sizes. --flows F picks ranges whose
# product is F when F factors that way, else the nearest product; the
# header of the written file says how many flows it really has.
#
# --not-ours K adds, after every K GRE frames, one plain UDP frame to
# 10.0.0.2:9 — traffic that Rail must leave to the kernel (pass not_ours).
# The K GRE frames are K copies of the same template; trafgen sends the
# packets of a configuration round-robin and keeps counters per packet, so
# the copies run through the same flows in step.
set -euo pipefail

flows=1000
payload=0
not_ours=0
out=-
dry_run=false
src_mac=02:00:00:00:00:01
dst_mac=02:00:00:00:00:02
outer_src=10.0.0.1
outer_dst=10.0.0.2
vip=192.0.2.10
vport=80
readonly max_flows=$((256 * 255 * 253)) # the largest product of pairwise coprime byte ranges

usage() {
	cat <<EOF
usage: tools/gre.trafgen.sh [--flows F] [--payload BYTES] [--not-ours K]
                            [--vip ADDR] [--port N] [--out FILE] [--dry-run] [--help]

Writes a trafgen configuration of GRE-in IPv4/TCP frames $outer_src -> $outer_dst
(inner 198.18.x.y:sport -> VIP:port) to FILE (default: standard output).

  --flows F        distinct inner flows, 1..$max_flows (default: $flows)
  --payload BYTES  TCP payload bytes per frame (default: $payload; frame = 78 + BYTES)
  --not-ours K     one plain UDP frame to $outer_dst:9 after every K GRE frames
                   (default: 0, none)
  --vip ADDR       inner destination (default: $vip)
  --port N         inner destination port (default: $vport)
  --out FILE       where to write (default: -, standard output)
  --dry-run        print the flow plan only, write nothing
  --help           this text

Example:
  tools/gre.trafgen.sh --flows 10000 --out /tmp/gre.cfg
  ip netns exec rail-gen trafgen --dev gen0 --conf /tmp/gre.cfg --cpus 1 -n 1000
EOF
}

die() {
	echo "gre.trafgen.sh: $*" >&2
	exit 1
}

# plan F prints "A B C": pairwise coprime range sizes in 1..256 whose
# product is F, or the closest product to F (ties: the most balanced).
plan() {
	awk -v f="$1" '
	function gcd(a, b,   t) { while (b) { t = b; b = a % b; a = t } return a }
	function abs(x) { return x < 0 ? -x : x }
	BEGIN {
		best = -1
		for (a = 1; a <= 256; a++) {
			if (a > f) break
			for (b = a; b <= 256; b++) {
				if (a * b > f * 2) break
				if (gcd(a, b) != 1) continue
				c = int(f / (a * b) + 0.5)
				if (c < 1) c = 1
				if (c > 256) c = 256
				for (d = c - 1; d <= c + 1; d++) {
					if (d < 1 || d > 256) continue
					if (gcd(a, d) != 1 || gcd(b, d) != 1) continue
					err = abs(a * b * d - f)
					spread = (a > d ? a : d) - (a < d ? a : d)
					if (best < 0 || err < best || (err == best && spread < bspread)) {
						best = err; bspread = spread; ba = a; bb = b; bc = d
					}
				}
			}
		}
		print ba, bb, bc
	}'
}

is_ipv4() {
	local IFS=. o
	# shellcheck disable=SC2206 # splitting on dots is the point
	local -a p=($1)
	((${#p[@]} == 4)) || return 1
	for o in "${p[@]}"; do
		[[ $o =~ ^[0-9]{1,3}$ ]] && ((o <= 255)) || return 1
	done
}

# bytes ADDR prints an IPv4 address as trafgen bytes: 192, 0, 2, 10
bytes() { echo "${1//./, }"; }

# counter SIZE BASE prints a dinc() byte counter over BASE..BASE+SIZE-1, or
# the constant BASE when SIZE is 1.
counter() {
	if (($1 == 1)); then
		echo "$2"
	else
		echo "dinc($2, $(($2 + $1 - 1)))"
	fi
}

gre_frame() {
	local x=$1 y=$2 z=$3
	local inner_len=$((20 + 20 + payload))
	local outer_len=$((20 + 4 + inner_len))
	cat <<EOF
{
  # Ethernet: router -> Rail node
  $(mac_bytes "$dst_mac"), $(mac_bytes "$src_mac"), c16(0x0800),
  # outer IPv4 (offset 14): GRE to local_address, DF
  0x45, 0x00, c16($outer_len), drnd(2), c16(0x4000), 64, 47, csumip(14, 33),
  $(bytes "$outer_src"), $(bytes "$outer_dst"),
  # GRE (offset 34): no flags, version 0, IPv4 payload
  c16(0x0000), c16(0x0800),
  # inner IPv4 (offset 38): 198.18.X.Y -> VIP, TCP, DF
  0x45, 0x00, c16($inner_len), drnd(2), c16(0x4000), 64, 6, csumip(38, 57),
  198, 18, $x, $y, $(bytes "$vip"),
  # TCP (offset 58): sport 39936+Z -> port, ACK
  0x9c, $z, c16($vport), drnd(4), c32(1), c16((5 << 12) | 0x10), c16(65535), csumtcp(38, 58), c16(0),
EOF
	if ((payload > 0)); then
		echo "  fill('r', $payload),"
	fi
	echo "}"
}

not_ours_frame() {
	cat <<EOF
{
  # not ours: plain UDP to the node itself (discard port), left to the kernel
  $(mac_bytes "$dst_mac"), $(mac_bytes "$src_mac"), c16(0x0800),
  0x45, 0x00, c16(32), drnd(2), c16(0x4000), 64, 17, csumip(14, 33),
  $(bytes "$outer_src"), $(bytes "$outer_dst"),
  c16(40000), c16(9), c16(12), c16(0),
  "rail",
}
EOF
}

# mac_bytes 02:00:00:00:00:01 prints 0x02, 0x00, 0x00, 0x00, 0x00, 0x01
mac_bytes() { echo "0x${1//:/, 0x}"; }

main() {
	local args=("$@")
	while (($#)); do
		case $1 in
		--flows | --payload | --not-ours | --vip | --port | --out)
			(($# >= 2)) || die "$1 needs a value"
			case $1 in
			--flows) flows=$2 ;;
			--payload) payload=$2 ;;
			--not-ours) not_ours=$2 ;;
			--vip) vip=$2 ;;
			--port) vport=$2 ;;
			--out) out=$2 ;;
			esac
			shift
			;;
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
	if ! [[ $flows =~ ^[0-9]{1,9}$ ]] || ((flows < 1 || flows > max_flows)); then
		die "--flows: '$flows' is not a number in 1..$max_flows"
	fi
	if ! [[ $payload =~ ^[0-9]{1,4}$ ]] || ((payload > 1422)); then
		die "--payload: '$payload' is not a number in 0..1422 (a 1500-byte MTU)"
	fi
	[[ $not_ours =~ ^[0-9]{1,4}$ ]] || die "--not-ours: '$not_ours' is not a number in 0..9999"
	if ! [[ $vport =~ ^[0-9]{1,5}$ ]] || ((vport > 65535)); then
		die "--port: '$vport' is not a port"
	fi
	is_ipv4 "$vip" || die "--vip: '$vip' is not an IPv4 address"

	local a b c real
	read -r a b c <<<"$(plan "$flows")"
	real=$((a * b * c))
	local note="$real flows (198.18.X.Y: X over $a values, Y over $b, sport over $c)"
	if ((real != flows)); then
		note="$note; asked for $flows, the nearest product of coprime byte ranges"
	fi
	if $dry_run; then
		echo "gre.trafgen.sh: would write $note to $out"
		return 0
	fi

	local x y z i
	x=$(counter "$a" 0)
	y=$(counter "$b" 0)
	z=$(counter "$c" 0) # sport 0x9c00 + Z = 39936 + Z
	{
		echo "# trafgen configuration written by tools/gre.trafgen.sh ${args[*]}"
		echo "# GRE-in IPv4/TCP $outer_src -> $outer_dst, inner -> $vip:$vport, $note"
		if ((not_ours > 0)); then
			echo "# plus one not-ours UDP frame after every $not_ours GRE frames"
			for ((i = 0; i < not_ours; i++)); do gre_frame "$x" "$y" "$z"; done
			not_ours_frame
		else
			gre_frame "$x" "$y" "$z"
		fi
	} >"$([[ $out == - ]] && echo /dev/stdout || echo "$out")"
	echo "gre.trafgen.sh: $note${out:+ -> $out}" >&2
}

main "$@"
