// Package tools holds Rail's operator scripts and their tests; there is no
// Go API here.
//
//	lab.sh        the veth/netns lab the GRE demo and privileged tests use
//	dsr-lab.sh    client → router → raild → nginx backends (raild decap),
//	              replies straight back: the direct-server-return lab
//	demo.sh       `make demo`: real curl and wrk through the VIP in dsr-lab.sh
//	gre-demo.sh   raild on synthetic GRE from trafgen in lab.sh (demo.sh --gre)
//	setup-nic.sh  a NIC for raild: channels, offloads, rings, RSS, ntuple
//	              rules, IRQ affinity from `raild plan`, NAPI busy-poll
//	tune-host.sh  host sysctls and CPU governor for a load-balancer node
//	raild.service the systemd unit: raild with CAP_NET_ADMIN, CAP_NET_RAW
//	              and CAP_BPF and nothing more
//
// The scripts follow the house rules for tools: set -euo pipefail,
// --help, --dry-run, shellcheck-clean (make lint), idempotent. The two
// that change a machine save every value they change — under /run/rail
// unless RAIL_STATE_DIR or --state-dir says otherwise — and --undo puts
// the values back.
//
// The tests run the scripts as a user would: against a veth pair in a
// network namespace they create and delete (veth supports channel counts,
// offload toggles and the NAPI sysfs knobs, and has no IRQs, RSS table or
// ring sizes, which exercises the "not applicable" paths), and
// tune-host.sh only with --dry-run on the host or inside a namespace,
// where the net.ipv4 settings it changes are the namespace's own. They
// need root; when CI=true they fail instead of skipping.
package tools
