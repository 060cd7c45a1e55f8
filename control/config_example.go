package control

// Example returns a commented configuration that parses with no errors and
// no warnings. The README quotes it and testdata/example.yaml is a copy
// (kept in sync by TestExampleFile; run `go test -update` to rewrite it).
func Example() string { return example }

const example = `# Rail configuration (docs/reference.md lists every key).

# The NIC to attach to. Only ` + "`raild run`" + ` needs it.
interface: eth1
# Which NIC queues to serve: all, or a list such as [0, 1].
queues: all
# Optional: the CPU for each queue's worker, one per queue when queues is a
# list. Left out, the pin package plans it.
# cpus: [2, 3]
xdp_mode: auto          # auto | native | generic
zero_copy: auto         # auto | on | off

# This node's own IPv4 address on the interface. GRE from the router arrives
# addressed to it, and it is the outer source of every forwarded packet.
local_address: 10.0.0.2
# This node's own IPv6 address: required when any backend is IPv6 (VIPs may
# be IPv6 either way).
# local_address6: 2001:db8::2
# Where forwarded frames go at layer 2: ingress (back to the router that sent
# them), kernel (the kernel's neighbour table) or a fixed MAC address.
next_hop: ingress
# Seeds the flow hash. Every node of a fleet must use the same value so that
# they all pick the same backend for a flow.
hash_seed: 0
metrics_address: 127.0.0.1:9700

conntrack:
  entries_per_core: 1048576   # a power of two
  tcp_timeout: 1h
  udp_timeout: 30s

# The admin API (railctl): always on a unix socket (mode 0600); optionally
# on TCP too, where requests need the bearer token held in token_file.
api:
  socket: /run/rail/raild.sock
  # address: 127.0.0.1:9701
  # token_file: /etc/rail/api.token

# Limits of every HTTP listener (the API's socket and TCP port, metrics): a
# client flooding one listener with idle or slow connections holds at most
# max_connections of it, and never the descriptors the rest of raild needs.
http:
  max_connections: 64       # per listener
  read_header_timeout: 5s
  read_timeout: 10s         # the whole request, body included
  write_timeout: 30s
  idle_timeout: 30s         # a keep-alive connection with no next request

# When the Go garbage collector runs (docs/DEPLOY.md, Memory). The data path
# allocates nothing once started; the control plane (health checks, metrics,
# API, reloads) does, and the collector takes that back.
memory:
  policy: gc          # gc (the collector runs, GOGC below) | limit (collector off until the heap reaches limit) | off (never collect; for benchmarks)
  gc_percent: 100     # with policy gc
  limit: 512MiB       # soft limit (debug.SetMemoryLimit) with gc and limit: above the data path's heap (DEPLOY.md §4)

# Optional: announce the VIPs to the routers over BGP (docs/FLEET.md).
# bgp:
#   asn: 65010
#   drain_time: 5s
#   peers:
#     - {address: 10.0.0.1, asn: 65000, hold_time: 9s}

services:
  - name: web
    vip: 192.0.2.10
    port: 80              # 0 means every port
    protocol: tcp         # tcp | udp | any
    table_size: 65537     # a prime, at least 100 × the number of backends
    health:               # optional; without it every backend is always up
      type: http          # tcp | http | udp
      port: 80            # defaults to the service's port
      path: /healthz      # http only
      status: 200-399     # http only: the statuses that mean up
      interval: 2s
      timeout: 1s
      rise: 2             # consecutive successes to come up
      fall: 3             # consecutive failures to go down
    backends:
      - address: 10.1.0.11
        weight: 1         # 0 drains: no new flows, existing flows stay
      - address: 10.1.0.12
        name: b2          # the Maglev key; defaults to the address
  - name: dns
    vip: 192.0.2.53
    port: 53
    protocol: udp
    backends:
      - address: 10.1.0.21
      - address: 10.1.0.22
        weight: 2
`
