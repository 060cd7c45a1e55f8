package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rail-lb/rail/decap"
)

func init() {
	commands["decap"] = command{
		"--interface IF [--address ADDR]... [--mode auto|tcx|tc] [--pin PATH] [--detach] [--stats] [--stats-interval D]\n" +
			"        [--metrics-address HOST:PORT] [--lookup-unkeyed]\n" +
			"        on a backend: strip the GRE a Rail node sends (tc BPF, no ip_gre) and hand on a second chance until SIGINT/SIGTERM",
		cmdDecap,
	}
}

// addrList is a repeatable --address flag that also takes a comma list.
type addrList []netip.Addr

func (l *addrList) String() string { return fmt.Sprint(*l) }

func (l *addrList) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("not an IP address: %q", f)
		}
		*l = append(*l, a.Unmap())
	}
	return nil
}

func cmdDecap(args []string, stdout, stderr io.Writer) int {
	var (
		ifname, modeName, pin, metricsAddr string
		addrs                              addrList
		detach, stats, lookupUnkeyed       bool
		every                              time.Duration
	)
	if !flags("decap", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&ifname, "interface", "", "the backend's interface `IF` the GRE arrives on (required)")
		fs.Var(&addrs, "address", "outer destination `ADDR` to decapsulate for (repeatable or comma-separated; default: the interface's addresses)")
		fs.StringVar(&modeName, "mode", "auto", "`MODE` of the tc ingress hook: auto (tcx, else tc), tcx (Linux 6.6+), tc (clsact + cls_bpf)")
		fs.StringVar(&pin, "pin", "", "pin the tcx link (with --mode tc: the program) at `PATH` on a bpffs, the counters at PATH_counts, and exit: decapsulation stays after raild exits (undo: --detach --pin PATH)")
		fs.BoolVar(&detach, "detach", false, "remove what an earlier --pin left: the link or program pinned at --pin PATH (and its tc filter), or without --pin the tc filter on --interface")
		fs.DurationVar(&every, "stats-interval", 0, "log the counters every `D` (0: only when stopping)")
		fs.BoolVar(&stats, "stats", false, "print the counters of the decap program on --interface and exit: with --pin PATH those pinned there (no --interface needed), else the attached program's (needs root)")
		fs.StringVar(&metricsAddr, "metrics-address", "", "serve the counters as Prometheus text at http://`HOST:PORT`/metrics while running")
		fs.BoolVar(&lookupUnkeyed, "lookup-unkeyed", false, "look up the socket of TCP segments without a second hop too, to count no_socket_no_second_hop for them (one socket lookup each)")
	}) {
		return 2
	}
	if ifname == "" && !(stats && pin != "") { // pinned counters need no interface
		fmt.Fprintln(stderr, "raild decap: --interface IF is required")
		return 2
	}
	mode, err := decap.ParseMode(modeName)
	if err != nil {
		fmt.Fprintf(stderr, "raild decap: --mode: %v\n", err)
		return 2
	}
	if stats && (detach || metricsAddr != "") || detach && metricsAddr != "" {
		fmt.Fprintln(stderr, "raild decap: --stats, --detach and --metrics-address exclude each other")
		return 2
	}
	if pin != "" && metricsAddr != "" && !stats {
		fmt.Fprintln(stderr, "raild decap: --pin exits at once: nothing would serve --metrics-address (read a pinned program's counters with --stats --pin PATH)")
		return 2
	}
	if metricsAddr != "" {
		if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
			fmt.Fprintf(stderr, "raild decap: --metrics-address: %v\n", err)
			return 2
		}
	}
	var ifi *net.Interface
	if ifname != "" {
		if ifi, err = net.InterfaceByName(ifname); err != nil {
			fmt.Fprintf(stderr, "raild decap: interface %s: %v\n", ifname, err)
			return 1
		}
	}
	if stats {
		var c decap.Counts
		if pin != "" {
			c, err = decap.ReadPinnedCounts(pin)
		} else {
			c, err = decap.ReadAttachedCounts(ifi.Index)
		}
		if err != nil {
			fmt.Fprintf(stderr, "raild decap: --stats: %v\n", err)
			return 1
		}
		for _, d := range c.Decisions() {
			fmt.Fprintf(stdout, "%-24s %d\n", d.Name, d.Packets)
		}
		return 0
	}
	if detach {
		if pin != "" {
			var mode decap.Mode
			if mode, err = decap.Unpin(pin); err == nil && mode == decap.ModeTC {
				err = decap.DetachTC(ifi.Index)
			}
		} else {
			err = decap.DetachTC(ifi.Index)
		}
		if err != nil {
			fmt.Fprintf(stderr, "raild decap: --detach: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "raild decap: detached from %s\n", ifname)
		return 0
	}
	if len(addrs) == 0 {
		if addrs, err = interfaceAddrs(ifi); err != nil {
			fmt.Fprintf(stderr, "raild decap: %v\n", err)
			return 1
		}
		if len(addrs) == 0 {
			fmt.Fprintf(stderr, "raild decap: %s has no address to decapsulate for: give --address\n", ifname)
			return 1
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	o := decapOptions{mode: mode, pin: pin, every: every, metrics: metricsAddr, load: decap.Options{LookupUnkeyed: lookupUnkeyed}}
	if err := serveDecap(ifi, addrs, o, log); err != nil {
		fmt.Fprintf(stderr, "raild decap: %v\n", err)
		return 1
	}
	return 0
}

// interfaceAddrs lists ifi's addresses a node may send GRE to: every
// IPv4 address and every IPv6 one that is not link-local.
func interfaceAddrs(ifi *net.Interface) ([]netip.Addr, error) {
	as, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
	}
	var out []netip.Addr
	for _, a := range as {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		if ad := p.Addr().Unmap(); !ad.IsLinkLocalUnicast() {
			out = append(out, ad)
		}
	}
	return out, nil
}

// decapOptions are serveDecap's settings from the command line.
type decapOptions struct {
	mode    decap.Mode
	pin     string
	every   time.Duration
	metrics string // HOST:PORT, or none
	load    decap.Options
}

func serveDecap(ifi *net.Interface, addrs []netip.Addr, o decapOptions, log *slog.Logger) error {
	p, err := decap.LoadWith(o.load)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.SetAddrs(addrs); err != nil {
		return err
	}
	// Listen before attaching: a port in use fails the command cleanly.
	var srv *http.Server
	if o.metrics != "" {
		ln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		srv = serveDecapMetrics(ln, p, log)
		defer srv.Close()
	}
	got, err := p.Attach(ifi.Index, o.mode)
	if err != nil {
		return err
	}
	log.Info("attached", "interface", ifi.Name, "mode", got, "addresses", fmt.Sprint(addrs), "lookup_unkeyed", o.load.LookupUnkeyed)
	if srv != nil {
		log.Info("metrics", "address", "http://"+o.metrics+"/metrics")
	}
	if o.pin != "" {
		if err := p.Pin(o.pin); err != nil {
			return err
		}
		log.Info("pinned: decapsulation stays after exit", "path", o.pin, "counters", o.pin+decap.CountsPin,
			"stats", "raild decap --interface "+ifi.Name+" --stats --pin "+o.pin,
			"undo", "raild decap --interface "+ifi.Name+" --detach --pin "+o.pin)
		return nil
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var tick <-chan time.Time
	if o.every > 0 {
		t := time.NewTicker(o.every)
		defer t.Stop()
		tick = t.C
	}
	logCounts := func(msg string) {
		c, err := p.Counts()
		if err != nil {
			log.Error("counters", "err", err)
			return
		}
		log.Info(msg, "decapsulated", c.Decapsulated, "delivered", c.Delivered, "handed_on", c.HandedOn,
			"no_socket_no_second_hop", c.NoSocketNoSecondHop, "no_route", c.NoRoute, "hand_on_failed", c.HandOnFailed,
			"passed", c.Passed, "unsupported", c.Unsupported, "errors", c.Errors)
	}
	for {
		select {
		case <-tick:
			logCounts("counters")
		case s := <-sigs:
			log.Info("stopping", "signal", s.String())
			logCounts("counters")
			if srv != nil {
				srv.Close()
			}
			if err := p.Close(); err != nil {
				return err
			}
			log.Info("detached", "interface", ifi.Name)
			return nil
		}
	}
}

// decapMetricsConns bounds the metrics endpoint's open connections: a
// scraper needs one, a flood of idle ones costs no more than this.
const decapMetricsConns = 8

// serveDecapMetrics serves GET /metrics on ln: the counters as
// rail_decap_packets_total{decision="…"}, one series per decision.
func serveDecapMetrics(ln net.Listener, p *decap.Program, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		c, err := p.Counts()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		var b bytes.Buffer
		writeDecapMetrics(&b, c)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write(b.Bytes())
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go srv.Serve(&limitedListener{Listener: ln, slots: make(chan struct{}, decapMetricsConns)})
	return srv
}

// writeDecapMetrics renders c in the Prometheus text format.
func writeDecapMetrics(w io.Writer, c decap.Counts) {
	fmt.Fprintln(w, "# HELP rail_decap_packets_total Frames the decap program decided on, by decision.")
	fmt.Fprintln(w, "# TYPE rail_decap_packets_total counter")
	for _, d := range c.Decisions() {
		fmt.Fprintf(w, "rail_decap_packets_total{decision=%q} %d\n", d.Name, d.Packets)
	}
}

// limitedListener holds at most cap(slots) connections open; Accept waits
// for one to close beyond that (the kernel's backlog holds the newcomer).
type limitedListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
