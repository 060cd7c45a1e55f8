package control

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rail-lb/rail/internal/pow2"
	"github.com/rail-lb/rail/rings"
)

// parser walks the yaml.Node tree and collects problems.
type parser struct {
	file  string
	probs []Problem
	// backendsLeft bounds the work aliases can multiply: a list of
	// services that all alias one large pool is walked once per alias.
	backendsLeft int
	// Problems past maxProblems are only counted.
	dropped, droppedErrors int
}

// maxProblems is as many problems as anyone will read.
const maxProblems = 1000

func (p *parser) add(n *yaml.Node, path string, warn bool, format string, args ...any) {
	if len(p.probs) >= maxProblems {
		p.dropped++
		if !warn {
			p.droppedErrors++
		}
		return
	}
	pr := Problem{File: p.file, Path: path, Msg: fmt.Sprintf(format, args...), Warning: warn}
	if n != nil {
		pr.Line, pr.Column = n.Line, n.Column
	}
	p.probs = append(p.probs, pr)
}

func (p *parser) errf(n *yaml.Node, path, format string, args ...any) {
	p.add(n, path, false, format, args...)
}

func (p *parser) warnf(n *yaml.Node, path, format string, args ...any) {
	p.add(n, path, true, format, args...)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns an error from the YAML library into a problem.
func (p *parser) yamlError(err error) {
	msg := err.Error()
	pr := Problem{File: p.file}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		pr.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	pr.Msg = "invalid YAML: " + msg
	p.probs = append(p.probs, pr)
}

func (p *parser) parse(data []byte) *Config {
	c := &Config{
		XDPMode:        DefaultXDPMode,
		ZeroCopy:       DefaultZeroCopy,
		NextHop:        NextHopIngress,
		MetricsAddress: DefaultMetricsAddress,
		Conntrack: Conntrack{
			EntriesPerCore: DefaultEntriesPerCore,
			TCPTimeout:     DefaultTCPTimeout,
			UDPTimeout:     DefaultUDPTimeout,
		},
	}

	root := p.document(data)
	if root == nil {
		return c
	}
	f, ok := p.mapping(root, "", topKeys)
	if !ok {
		return c
	}

	p.nodeKeys(f, c)
	p.addressKeys(f, root, c)
	if n := f["conntrack"]; n != nil {
		p.conntrack(n, &c.Conntrack)
	}
	c.API.Socket = DefaultAPISocket
	if n := f["api"]; n != nil {
		p.api(n, &c.API)
	}
	c.HTTP = DefaultHTTPLimits
	if n := f["http"]; n != nil {
		p.httpLimits(n, &c.HTTP)
	}
	if n := f["bgp"]; n != nil {
		c.BGP = p.bgp(n, c)
	}
	c.Memory = DefaultMemory
	if n := f["memory"]; n != nil {
		p.memory(n, &c.Memory)
	}
	c.BusyPoll = DefaultBusyPoll
	if n := f["busy_poll"]; n != nil {
		p.busyPoll(n, c)
	}
	if n := f["services"]; n != nil {
		c.Services = p.services(n, locals{c.LocalAddress, c.LocalAddress6, f["local_address6"] != nil})
	} else {
		p.warnf(root, "services", "no services: every packet will be passed to the kernel")
	}
	return c
}

// document decodes data into the YAML node of its top-level mapping (an
// empty file or document is an empty mapping, so that the required keys
// are reported); nil after a YAML error, which it reports.
func (p *parser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			// An empty file: check it like an empty mapping, so that
			// the required keys are reported.
			doc = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}
		} else {
			p.yamlError(err)
			return nil
		}
	} else {
		var extra yaml.Node
		switch err := dec.Decode(&extra); {
		case errors.Is(err, io.EOF):
		case err != nil:
			p.yamlError(err)
			return nil
		default:
			p.errf(&extra, "", "a second YAML document: the file must hold exactly one")
		}
	}

	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}
		} else {
			root = root.Content[0]
		}
	}
	root = deref(root)
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: root.Line, Column: root.Column}
	}
	return root
}

// nodeKeys reads the keys about the node's NIC: interface, queues, cpus,
// xdp_mode and zero_copy.
func (p *parser) nodeKeys(f map[string]*yaml.Node, c *Config) {
	if n := f["interface"]; n != nil {
		if s, ok := p.str(n, "interface"); ok {
			if msg := checkInterfaceName(s); msg != "" {
				p.errf(n, "interface", "%s", msg)
			} else {
				c.Interface = s
			}
		}
	}
	if n := f["queues"]; n != nil {
		c.Queues = p.queues(n)
	}
	if n := f["cpus"]; n != nil {
		c.CPUs = p.intList(n, "cpus", "cpu", MaxCPU, "each queue needs a cpu of its own")
		if c.CPUs != nil && c.Queues != nil && len(c.CPUs) != len(c.Queues) {
			p.errf(n, "cpus", "%d cpus for %d queues: list one cpu per queue", len(c.CPUs), len(c.Queues))
		}
	}
	if n := f["xdp_mode"]; n != nil {
		if s, ok := p.enum(n, "xdp_mode", "auto", "native", "generic"); ok {
			c.XDPMode, _ = rings.ParseXDPMode(s) // one of its spellings
		}
	}
	if n := f["zero_copy"]; n != nil {
		if b := deref(n); b.Kind == yaml.ScalarNode && b.ShortTag() == "!!bool" {
			// "zero_copy: true" means what it says.
			if v, _ := strconv.ParseBool(strings.ToLower(b.Value)); v {
				c.ZeroCopy = rings.ZeroCopyOn
			} else {
				c.ZeroCopy = rings.ZeroCopyOff
			}
		} else if s, ok := p.enum(n, "zero_copy", "auto", "on", "off"); ok {
			c.ZeroCopy, _ = rings.ParseZeroCopy(s) // one of its spellings
		}
	}
}

// addressKeys reads the node's addresses: local_address (required),
// local_address6, next_hop, hash_seed and metrics_address.
func (p *parser) addressKeys(f map[string]*yaml.Node, root *yaml.Node, c *Config) {
	if n := f["local_address"]; n != nil {
		if a, ok := p.addr(n, "local_address"); ok {
			if a.Is6() {
				p.errf(n, "local_address", "%s is IPv6: local_address is this node's IPv4 address (put the IPv6 one in local_address6)", a)
			} else {
				c.LocalAddress = a
			}
		}
	} else {
		p.errf(root, "local_address", "required: this node's own IPv4 address (e.g. local_address: 10.0.0.2)")
	}
	if n := f["local_address6"]; n != nil {
		if a, ok := p.addr(n, "local_address6"); ok {
			if a.Is4() {
				p.errf(n, "local_address6", "%s is IPv4: local_address6 is this node's IPv6 address (e.g. local_address6: 2001:db8::2)", a)
			} else {
				c.LocalAddress6 = a
			}
		}
	}
	if n := f["next_hop"]; n != nil {
		p.nextHop(n, c)
	}
	if n := f["hash_seed"]; n != nil {
		c.HashSeed, _ = p.uint(n, "hash_seed", math.MaxUint64)
	}
	if n := f["metrics_address"]; n != nil {
		if s, ok := p.str(n, "metrics_address"); ok {
			if msg := checkHostPort(s); msg != "" {
				p.errf(n, "metrics_address", "%s", msg)
			} else {
				c.MetricsAddress = s
			}
		}
	}
}

var (
	topKeys = []string{"interface", "queues", "cpus", "xdp_mode", "zero_copy", "local_address", "local_address6",
		"next_hop", "hash_seed", "metrics_address", "conntrack", "api", "http", "bgp", "memory", "busy_poll", "services"}
	conntrackKeys = []string{"entries_per_core", "tcp_timeout", "udp_timeout"}
	apiKeys       = []string{"socket", "address", "token_file"}
	httpKeys      = []string{"max_connections", "read_header_timeout", "read_timeout", "write_timeout", "idle_timeout"}
	serviceKeys   = []string{"name", "vip", "port", "protocol", "table_size", "health", "when_down", "forward_to", "second_chance", "quic", "backends"}
	healthKeys    = []string{"type", "port", "path", "status", "interval", "timeout", "rise", "fall", "via"}
	backendKeys   = []string{"address", "weight", "name", "state", "quic_server_id"}
)

// deref follows YAML aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// describe names a node's type for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!str":
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "an unexpected node"
}

// missing reports a key that is present with an empty value.
func (p *parser) missing(n *yaml.Node, path string) bool {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		p.errf(n, path, "a value is required")
		return true
	}
	return false
}

// mapping checks that n is a mapping with only allowed, distinct keys and
// returns its values by key.
func (p *parser) mapping(n *yaml.Node, path string, allowed []string) (map[string]*yaml.Node, bool) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		if path == "" {
			p.errf(n, path, "the file must be a mapping of keys (key: value), got %s", describe(n))
		} else {
			p.errf(n, path, "expected a mapping of keys (key: value), got %s", describe(n))
		}
		return nil, false
	}
	f := make(map[string]*yaml.Node, len(n.Content)/2)
	first := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errf(k, path, "keys must be plain words, got %s", describe(k))
			continue
		}
		key := k.Value
		kp := join(path, key)
		if k.ShortTag() == "!!merge" {
			p.errf(k, kp, "merge keys (<<) are not supported")
			continue
		}
		if !slices.Contains(allowed, key) {
			if s := closest(key, allowed); s != "" {
				p.errf(k, kp, "unknown key (did you mean %s?)", s)
			} else {
				p.errf(k, kp, "unknown key (expected one of %s)", strings.Join(allowed, ", "))
			}
			continue
		}
		if line, dup := first[key]; dup {
			p.errf(k, kp, "duplicate key (first at line %d)", line)
			continue
		}
		first[key] = k.Line
		f[key] = deref(v)
	}
	return f, true
}

// closest returns the allowed key nearest to key, if it is near enough to
// be a typo.
func closest(key string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if d := editDistance(strings.ToLower(key), a); d < bestD {
			best, bestD = a, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// str accepts any non-empty scalar.
func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	if p.missing(n, path) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.errf(n, path, "expected a single value, got %s", describe(n))
		return "", false
	}
	if n.Value == "" {
		p.errf(n, path, "must not be empty")
		return "", false
	}
	return n.Value, true
}

// boolean accepts true/false, yes/no, on/off.
func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	s, ok := p.str(n, path)
	if !ok {
		return false, false
	}
	switch s {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	p.errf(n, path, "expected true or false, got %q", s)
	return false, false
}

func (p *parser) enum(n *yaml.Node, path string, values ...string) (string, bool) {
	s, ok := p.str(n, path)
	if !ok {
		return "", false
	}
	for _, v := range values {
		if s == v {
			return s, true
		}
	}
	p.errf(n, path, "unknown value %q (expected %s)", s, orList(values))
	return "", false
}

func orList(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

var plainInt = regexp.MustCompile(`^[-+]?[0-9_]+$`)

// uint accepts an integer in [0, max].
func (p *parser) uint(n *yaml.Node, path string, max uint64) (uint64, bool) {
	if p.missing(n, path) {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode {
		p.errf(n, path, "expected a number, got %s", describe(n))
		return 0, false
	}
	tag := n.ShortTag()
	if tag != "!!int" {
		switch {
		case tag == "!!str" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && plainInt.MatchString(n.Value):
			p.errf(n, path, "expected a number, got the string %q (remove the quotes)", n.Value)
		case tag == "!!float" && plainInt.MatchString(n.Value):
			p.errf(n, path, "%s is too large (at most %d)", n.Value, max)
		default:
			p.errf(n, path, "expected a whole number, got %s", describe(n))
		}
		return 0, false
	}
	var i int64
	if err := n.Decode(&i); err == nil {
		if i < 0 {
			p.errf(n, path, "%d is negative (expected 0 to %d)", i, max)
			return 0, false
		}
		if uint64(i) > max {
			p.errf(n, path, "%d is too large (at most %d)", i, max)
			return 0, false
		}
		return uint64(i), true
	}
	var u uint64
	if err := n.Decode(&u); err == nil {
		if u > max {
			p.errf(n, path, "%d is too large (at most %d)", u, max)
			return 0, false
		}
		return u, true
	}
	p.errf(n, path, "%s is out of range (expected 0 to %d)", n.Value, max)
	return 0, false
}

// addr accepts a unicast IPv4 or IPv6 address.
func (p *parser) addr(n *yaml.Node, path string) (netip.Addr, bool) {
	s, ok := p.str(n, path)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		if strings.Contains(s, "/") {
			p.errf(n, path, "%q is a prefix: give a single address", s)
		} else {
			p.errf(n, path, "%q is not an IP address", s)
		}
		return netip.Addr{}, false
	}
	if msg := addrProblem(a); msg != "" {
		p.errf(n, path, "%s", msg)
		return netip.Addr{}, false
	}
	return a, true
}

func (p *parser) duration(n *yaml.Node, path string) (time.Duration, bool) {
	return p.durationMin(n, path, MinTimeout)
}

// durationMin accepts a duration of at least min.
func (p *parser) durationMin(n *yaml.Node, path string, min time.Duration) (time.Duration, bool) {
	if p.missing(n, path) {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode {
		p.errf(n, path, "expected a duration such as 30s, got %s", describe(n))
		return 0, false
	}
	if n.ShortTag() == "!!int" {
		p.errf(n, path, "%s has no unit (e.g. %ss)", n.Value, n.Value)
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.errf(n, path, "%q is not a duration (e.g. 30s, 5m, 1h)", n.Value)
		return 0, false
	}
	if d < min {
		p.errf(n, path, "%s is too short (at least %s)", n.Value, min)
		return 0, false
	}
	return d, true
}

// queues accepts "all" or a list of distinct queue numbers.
func (p *parser) queues(n *yaml.Node) []int {
	if n.Kind == yaml.ScalarNode && n.Value == "all" && n.ShortTag() == "!!str" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		if !p.missing(n, "queues") {
			p.errf(n, "queues", "expected all or a list of queue numbers such as [0, 1], got %s", describe(n))
		}
		return nil
	}
	return p.intList(n, "queues", "queue", MaxQueue, "")
}

// intList accepts a non-empty list of distinct integers in [0, max].
func (p *parser) intList(n *yaml.Node, path, what string, max uint64, why string) []int {
	if p.missing(n, path) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, path, "expected a list of %s numbers such as [0, 1], got %s", what, describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.errf(n, path, "the list is empty")
		return nil
	}
	out := make([]int, 0, len(n.Content))
	seen := make(map[uint64]int)
	for i, e := range n.Content {
		e = deref(e)
		ep := index(path, i)
		v, ok := p.uint(e, ep, max)
		if !ok {
			continue
		}
		if j, dup := seen[v]; dup {
			msg := fmt.Sprintf("%s %d is listed twice (also %s)", what, v, index(path, j))
			if why != "" {
				msg += ": " + why
			}
			p.errf(e, ep, "%s", msg)
			continue
		}
		seen[v] = i
		out = append(out, int(v))
	}
	return out
}

func (p *parser) nextHop(n *yaml.Node, c *Config) {
	s, ok := p.str(n, "next_hop")
	if !ok {
		return
	}
	switch s {
	case "ingress":
		c.NextHop = NextHopIngress
		return
	case "kernel":
		c.NextHop = NextHopKernel
		return
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		p.errf(n, "next_hop", "%q is neither ingress, kernel nor a MAC address such as aa:bb:cc:dd:ee:ff", s)
		return
	}
	switch {
	case mac[0]&1 != 0:
		p.errf(n, "next_hop", "%s is a multicast or broadcast MAC address", s)
	case string(mac) == "\x00\x00\x00\x00\x00\x00":
		p.errf(n, "next_hop", "%s is the all-zero MAC address", s)
	default:
		c.NextHop = NextHopMAC
		copy(c.NextHopMAC[:], mac)
	}
}

func (p *parser) conntrack(n *yaml.Node, ct *Conntrack) {
	f, ok := p.mapping(n, "conntrack", conntrackKeys)
	if !ok {
		return
	}
	if v := f["entries_per_core"]; v != nil {
		const path = "conntrack.entries_per_core"
		if e, ok := p.uint(v, path, MaxEntriesPerCore); ok {
			switch {
			case e == 0:
				p.errf(v, path, "must be at least 1")
			case !pow2.Is(e):
				p.errf(v, path, "%d is not a power of two (try %d)", e, pow2.Ceil(e))
			default:
				ct.EntriesPerCore = uint32(e)
			}
		}
	}
	if v := f["tcp_timeout"]; v != nil {
		if d, ok := p.duration(v, "conntrack.tcp_timeout"); ok {
			ct.TCPTimeout = d
		}
	}
	if v := f["udp_timeout"]; v != nil {
		if d, ok := p.duration(v, "conntrack.udp_timeout"); ok {
			ct.UDPTimeout = d
		}
	}
}

// MaxHTTPConnections bounds http.max_connections per listener.
const MaxHTTPConnections = 65536

func (p *parser) httpLimits(n *yaml.Node, l *HTTPLimits) {
	f, ok := p.mapping(n, "http", httpKeys)
	if !ok {
		return
	}
	if v := f["max_connections"]; v != nil {
		if m, ok := p.uint(v, "http.max_connections", MaxHTTPConnections); ok {
			if m == 0 {
				p.errf(v, "http.max_connections", "must be at least 1 (the most connections each listener holds open)")
			} else {
				l.MaxConnections = int(m)
			}
		}
	}
	for _, d := range []struct {
		key string
		to  *time.Duration
	}{
		{"read_header_timeout", &l.ReadHeaderTimeout}, {"read_timeout", &l.ReadTimeout},
		{"write_timeout", &l.WriteTimeout}, {"idle_timeout", &l.IdleTimeout},
	} {
		if v := f[d.key]; v != nil {
			if t, ok := p.durationMin(v, "http."+d.key, 100*time.Millisecond); ok {
				*d.to = t
			}
		}
	}
}

// checkName allows the characters that are safe in metric labels, CSV
// fields and log lines.
func checkName(s string) string {
	if len(s) > maxNameLen {
		return fmt.Sprintf("%q is too long (at most %d characters)", s, maxNameLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Sprintf("%q may contain only letters, digits, '-', '_' and '.'", s)
		}
	}
	return ""
}

// checkInterfaceName applies Linux's rules for interface names.
func checkInterfaceName(s string) string {
	if len(s) > 15 {
		return fmt.Sprintf("%q is too long for an interface name (at most 15 bytes)", s)
	}
	if s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n") {
		return fmt.Sprintf("%q is not a valid interface name", s)
	}
	return ""
}

func checkHostPort(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (e.g. 127.0.0.1:9700)", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Sprintf("%q: port must be 1 to 65535", s)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Sprintf("%q: bad host %q", s, host)
	}
	return ""
}
