// Package control is Rail's control plane: everything that decides what the
// data path should do, as opposed to doing it per packet.
//
// It holds the configuration file (docs/reference.md lists every key), the
// state and the snapshots it hands to the data path, the health checks,
// next-hop resolution, the admin API (docs/API.md), the metrics endpoint and
// the BGP speaker.
//
// # Configuration
//
// [Parse] and [Load] read the YAML file into a [Config]. The file is first
// parsed into a yaml.Node tree and then walked by hand, so that every
// [Problem] carries the line and column it comes from and a path such as
// services[1].table_size. Parsing does not stop at the first mistake: it
// reports every error and warning it can find, sorted by position, which is
// what `raild check` prints. A Config is returned only when there are no
// errors; warnings alone (a small Maglev table, a service whose backends are
// all drained, no services at all) do not prevent it.
//
// The parser is strict on purpose. Unknown keys, duplicate keys, values of
// the wrong type, bad addresses, non-prime table sizes and conflicting
// services are errors, because a typo in a load balancer's
// configuration silently sends traffic to the wrong place. Checks that depend
// on the host (does the interface exist, how many queues does it have, are
// the CPUs online) are left to `raild run`; only [Config.RequireInterface]
// is offered here, since `check` and `replay` work without an interface.
//
// [Example] returns a commented configuration that parses without problems;
// the README and the tests use it.
package control
