package control

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rail-lb/rail/quiclb"
	"github.com/rail-lb/rail/rings"
)

// Defaults for keys the file may leave out (docs/reference.md, Configuration).
const (
	DefaultXDPMode        = rings.XDPAuto
	DefaultZeroCopy       = rings.ZeroCopyAuto
	DefaultMetricsAddress = "127.0.0.1:9700"
	DefaultEntriesPerCore = 1 << 20 // 1048576
	DefaultTCPTimeout     = time.Hour
	DefaultUDPTimeout     = 30 * time.Second
	DefaultTableSize      = 65537 // prime
	DefaultWeight         = 1
	DefaultAPISocket      = "/run/rail/raild.sock"
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = time.Second
	DefaultHealthRise     = 2
	DefaultHealthFall     = 3
	DefaultHealthPath     = "/"
	DefaultStatusMin      = 200
	DefaultStatusMax      = 399
)

// Limits on values that are syntactically fine but would not work.
const (
	// MaxTableSize bounds a service's Maglev table (16 Mi entries).
	MaxTableSize = 1 << 24
	// MaxEntriesPerCore bounds the per-core connection table: what
	// pipeline.NewConntrack accepts (2^28 IPv4 entries, 8 GiB per core).
	MaxEntriesPerCore = 1 << 28
	// MinTimeout is the smallest conntrack timeout: entries are aged with
	// one-second granularity.
	MinTimeout = time.Second
	// MaxQueue and MaxCPU bound queue and CPU numbers.
	MaxQueue = 65535
	MaxCPU   = 65535
	// maxNameLen bounds service and backend names (they become metric
	// labels and CSV fields).
	maxNameLen = 63
	// MaxBackends bounds the number of backends in all services together.
	MaxBackends = 1 << 20
	// MinHealthInterval bounds how often a backend is checked.
	MinHealthInterval = 50 * time.Millisecond
	// MaxRiseFall bounds rise and fall.
	MaxRiseFall = 100
)

// NextHopMode says where transmitted frames are sent at layer 2.
type NextHopMode int

const (
	// NextHopIngress sends a frame back to the ingress frame's source MAC
	// (the router that delivered it). The default.
	NextHopIngress NextHopMode = iota
	// NextHopKernel asks the kernel's neighbour table for the backend's MAC.
	NextHopKernel
	// NextHopMAC sends every frame to Config.NextHopMAC.
	NextHopMAC
)

func (m NextHopMode) String() string {
	switch m {
	case NextHopIngress:
		return "ingress"
	case NextHopKernel:
		return "kernel"
	case NextHopMAC:
		return "mac"
	}
	return "NextHopMode(" + strconv.Itoa(int(m)) + ")"
}

// Protocol is a service's IP protocol number; Any matches every protocol.
type Protocol uint8

const (
	Any Protocol = 0
	TCP Protocol = 6
	UDP Protocol = 17
)

func (p Protocol) String() string {
	switch p {
	case Any:
		return "any"
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// Config is a parsed, validated configuration file. Parse fills in every
// default, so the zero value of a field never means "unset".
type Config struct {
	// Interface is the NIC to attach to. Required by `raild run` only (see
	// RequireInterface); empty otherwise allowed.
	Interface string
	// Queues lists the NIC queues to serve; nil means all of them.
	Queues []int
	// CPUs pins the worker of Queues[i] to CPUs[i]; nil means the default
	// plan. When Queues is nil (all), the length is checked at run time.
	CPUs []int
	// XDPMode is xdp_mode: auto, native or generic.
	XDPMode rings.XDPMode
	// ZeroCopy is zero_copy: auto, on (or true) or off (or false).
	ZeroCopy rings.ZeroCopy
	// LocalAddress is this node's own IPv4 address on Interface.
	LocalAddress netip.Addr
	// LocalAddress6 is this node's own IPv6 address on Interface: the
	// outer source towards IPv6 backends and a GRE destination that is
	// ours. Invalid (unset) unless given; required when any backend is
	// IPv6.
	LocalAddress6 netip.Addr
	// NextHop picks the egress destination MAC; NextHopMAC is used only
	// when NextHop == NextHopMAC.
	NextHop    NextHopMode
	NextHopMAC [6]byte
	// HashSeed seeds the 5-tuple hash; identical on every node of a fleet.
	HashSeed uint64
	// MetricsAddress is the host:port of the Prometheus endpoint.
	MetricsAddress string
	// MTU is the interface's MTU, the largest IP packet it sends: not a key
	// of the file. `raild run` sets it from the interface; 0 (replay,
	// check) means no limit. Encapsulated packets that would exceed it get
	// an ICMP too-big reply or are dropped (docs/verdicts.md §3.8).
	MTU       int
	Conntrack Conntrack
	// API is the admin API's listeners.
	API API
	// HTTP limits every HTTP listener (API socket, API TCP, metrics).
	HTTP HTTPLimits
	// BGP is the embedded speaker; nil when the file has no bgp block.
	BGP *BGP
	// Memory is when the garbage collector runs (read at start only).
	Memory Memory
	// BusyPoll asks for preferred busy polling on the AF_XDP sockets
	// (read at start only; config_busypoll.go).
	BusyPoll bool
	// Services in file order. May be empty (a warning).
	Services []Service

	file string // for problems found after parsing
}

// Conntrack sizes and ages the per-core connection table.
type Conntrack struct {
	// EntriesPerCore is a power of two (an error otherwise, with the next
	// power of two suggested), at most MaxEntriesPerCore.
	EntriesPerCore uint32
	// Timeouts after which an idle flow is forgotten; at least MinTimeout.
	TCPTimeout time.Duration
	UDPTimeout time.Duration
}

// API says where the admin API listens: always on a unix socket, and
// optionally on TCP with a bearer token.
type API struct {
	// Socket is the unix socket's path (mode 0600).
	Socket string
	// Address, when set, is a TCP host:port that also serves the API;
	// TokenFile is then required: requests must carry its content as a
	// bearer token.
	Address   string
	TokenFile string
}

// HealthType is the kind of a health check.
type HealthType string

const (
	HealthTCP  HealthType = "tcp"
	HealthHTTP HealthType = "http"
	HealthUDP  HealthType = "udp"
)

// Health is a service's health check, sent to each backend's own address.
type Health struct {
	Type HealthType
	// Port is the port checked; the service's port when the file leaves
	// it out (required when the service port is 0).
	Port uint16
	// Path and the expected status range (inclusive) are for http.
	Path                 string
	StatusMin, StatusMax int
	// Interval between checks; Timeout of one check (≤ Interval).
	Interval, Timeout time.Duration
	// Rise consecutive successes bring a backend up, Fall consecutive
	// failures take it down.
	Rise, Fall int
	// Via is how the check reaches the backend: ViaDirect to its own
	// address, or ViaGRE to the VIP through the tunnel, as clients do
	// (package probe).
	Via string
}

// Ways a health check reaches a backend.
const (
	ViaDirect = "direct"
	ViaGRE    = "gre"
)

// Service is a VIP, port and protocol with its pool of backends.
type Service struct {
	Name string
	VIP  netip.Addr // IPv4 or IPv6
	// Port 0 means every port.
	Port     uint16
	Protocol Protocol
	// TableSize is the Maglev table size: a prime ≥ len(Backends).
	TableSize uint32
	Backends  []Backend
	// Health is the service's health check; nil means none (every backend
	// is always up).
	Health *Health
	// WhenDown says what happens while no backend is usable; ForwardTo
	// are the Rail nodes used by DownForward.
	WhenDown  WhenDown
	ForwardTo []netip.Addr
	// SecondChance: flows whose backend is in transition (a backend
	// filling or draining) carry the other backend as a second hop
	// (docs/DSR.md); backends run raild decap.
	SecondChance bool
	// QUIC, when set, routes the service's QUIC packets by the server id
	// in their destination connection ID (QUIC-LB, docs/QUIC.md): one
	// configuration, or several of distinct config ids (rotation).
	QUIC []quiclb.Config
	// Line is where the service starts in the file.
	Line int
}

// Backend is one member of a service's pool.
type Backend struct {
	Address netip.Addr // IPv4, or IPv6 (then Config.LocalAddress6 is set)
	// Weight 0 drains the backend: no new flows, existing flows stay.
	Weight uint32
	// Name, when set, replaces the address as the Maglev key, so that a
	// backend can change address without moving its flows.
	Name string
	// State is the backend's lifecycle: active, filling (new: not in the
	// table before the transition) or draining (no new flows, still the
	// second hop of its old flows). Every node derives the same tables
	// from it.
	State BackendState
	// QUICServerID is the backend's QUIC-LB server id (length 0: none).
	QUICServerID quiclb.ServerID
	// Line is where the backend starts in the file.
	Line int
}

// Key is the backend's Maglev key: its name, else its address.
func (b Backend) Key() string {
	if b.Name != "" {
		return b.Name
	}
	return b.Address.String()
}

// Problem is one error or warning found in a configuration file.
type Problem struct {
	File   string
	Line   int    // 1-based; 0 when the problem is about the whole file
	Column int    // 1-based; 0 when unknown
	Path   string // e.g. services[1].table_size; empty for the whole file
	Msg    string
	// Warning problems do not make the file invalid.
	Warning bool
}

// String formats the problem the way compilers do, e.g.
//
//	rail.yaml:14:17: services[1].table_size: 65536 is not prime (try 65537)
//	rail.yaml:9:3: warning: services: no services: every packet will be passed to the kernel
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
	} else {
		b.WriteString("config")
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error makes a Problem usable as an error.
func (p Problem) Error() string { return p.String() }

// HasError reports whether any of ps is an error rather than a warning.
func HasError(ps []Problem) bool {
	for _, p := range ps {
		if !p.Warning {
			return true
		}
	}
	return false
}

// Parse parses and validates a configuration file; file names it in
// problems. It reports every problem it finds, sorted by position (past
// the first 1000, only a count is reported, as a last problem). The
// Config is nil if any problem is an error; warnings alone do not stop it.
func Parse(data []byte, file string) (*Config, []Problem) {
	p := &parser{file: file, backendsLeft: MaxBackends}
	c := p.parse(data)
	sort.SliceStable(p.probs, func(i, j int) bool {
		a, b := p.probs[i], p.probs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	if p.dropped > 0 {
		p.probs = append(p.probs, Problem{File: file, Warning: p.droppedErrors == 0,
			Msg: fmt.Sprintf("%d more problems not shown", p.dropped)})
	}
	if HasError(p.probs) {
		return nil, p.probs
	}
	c.file = file
	return c, p.probs
}

// Load reads and parses the file. A file that cannot be read is reported
// as a single problem.
//
// Only a regular file of at most MaxConfigBytes is read: a FIFO or a device
// would block a reload forever, and a file of many megabytes is a mistake.
func Load(file string) (*Config, []Problem) {
	data, err := readConfig(file)
	if err != nil {
		return nil, []Problem{{File: file, Msg: err.Error()}}
	}
	return Parse(data, file)
}

// MaxConfigBytes bounds the size of a configuration file (1 MiB holds
// thousands of services).
const MaxConfigBytes = 1 << 20

func readConfig(file string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer; it does not change reads of a regular file.
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			return nil, fmt.Errorf("cannot open: this process is out of file descriptors (%v), the file itself may be fine", err)
		}
		if pe, ok := err.(*os.PathError); ok {
			return nil, fmt.Errorf("cannot open: %v", pe.Err)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot stat: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s): give the path of the configuration file itself", fileKind(fi.Mode()))
	}
	if fi.Size() > MaxConfigBytes {
		return nil, fmt.Errorf("%d bytes: larger than the %d bytes a configuration may have", fi.Size(), MaxConfigBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %v", err)
	}
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("larger than the %d bytes a configuration may have", MaxConfigBytes)
	}
	return data, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

// RequireInterface returns an error problem when the configuration names no
// interface. `raild run` calls it; `check` and `replay` do not need one.
func (c *Config) RequireInterface() []Problem {
	if c.Interface != "" {
		return nil
	}
	return []Problem{{File: c.file, Path: "interface", Msg: "required by `raild run` (e.g. interface: eth1)"}}
}
