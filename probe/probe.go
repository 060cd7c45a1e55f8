package probe

// Constants of the tunnel: the socket marks, the routing table and rule,
// and the dummy interface.
const (
	// MarkBase | a backend's probe id is the SO_MARK of its probes;
	// MarkMask selects the base.
	MarkBase = 0x52430000
	MarkMask = 0xffff0000
	// Table is the routing table of marked probes (one default route
	// through DummyName); RulePriority the rule's place before the main
	// table.
	Table        = 0x5243
	RulePriority = 1000
	// DummyName is the link the probes are routed to (one end of a veth
	// pair, ARP off; its peer is DummyName + "-x").
	DummyName = "rail-probe"
)

// Counts are the program's decisions: probes wrapped and sent, and
// packets dropped because they had no known mark, were not IPv4, or a
// helper failed.
type Counts struct {
	Sent, NoTarget, NotIPv4, Failed uint64
}
