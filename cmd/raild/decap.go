package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rail-lb/rail/decap"
)

func init() {
	commands["decap"] = command{
		"--interface IF [--address ADDR]... [--mode auto|tcx|tc] [--pin PATH] [--detach] [--stats-interval D]\n" +
			"        on a backend: strip the GRE a Rail node sends (tc BPF, no ip_gre) until SIGINT/SIGTERM",
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
		ifname, modeName, pin string
		addrs                 addrList
		detach                bool
		every                 time.Duration
	)
	if !flags("decap", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&ifname, "interface", "", "the backend's interface `IF` the GRE arrives on (required)")
		fs.Var(&addrs, "address", "outer destination `ADDR` to decapsulate for (repeatable or comma-separated; default: the interface's addresses)")
		fs.StringVar(&modeName, "mode", "auto", "`MODE` of the tc ingress hook: auto (tcx, else tc), tcx (Linux 6.6+), tc (clsact + cls_bpf)")
		fs.StringVar(&pin, "pin", "", "pin the tcx link at `PATH` on a bpffs and exit: decapsulation stays after raild exits (undo: --detach --pin PATH)")
		fs.BoolVar(&detach, "detach", false, "remove what an earlier --pin left: the link pinned at --pin PATH, or without --pin the tc filter on --interface")
		fs.DurationVar(&every, "stats-interval", 0, "log the counters every `D` (0: only when stopping)")
	}) {
		return 2
	}
	if ifname == "" {
		fmt.Fprintln(stderr, "raild decap: --interface IF is required")
		return 2
	}
	mode, err := decap.ParseMode(modeName)
	if err != nil {
		fmt.Fprintf(stderr, "raild decap: --mode: %v\n", err)
		return 2
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		fmt.Fprintf(stderr, "raild decap: interface %s: %v\n", ifname, err)
		return 1
	}
	if detach {
		if pin != "" {
			err = decap.Unpin(pin)
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
	if err := serveDecap(ifi, addrs, mode, pin, every, log); err != nil {
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

func serveDecap(ifi *net.Interface, addrs []netip.Addr, mode decap.Mode, pin string, every time.Duration, log *slog.Logger) error {
	p, err := decap.Load()
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.SetAddrs(addrs); err != nil {
		return err
	}
	got, err := p.Attach(ifi.Index, mode)
	if err != nil {
		return err
	}
	log.Info("attached", "interface", ifi.Name, "mode", got, "addresses", fmt.Sprint(addrs))
	if pin != "" {
		if err := p.Pin(pin); err != nil {
			return err
		}
		log.Info("pinned: decapsulation stays after exit", "path", pin, "undo", "raild decap --interface "+ifi.Name+" --detach --pin "+pin)
		return nil
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	logCounts := func(msg string) {
		c, err := p.Counts()
		if err != nil {
			log.Error("counters", "err", err)
			return
		}
		log.Info(msg, "decapsulated", c.Decapsulated, "passed", c.Passed, "unsupported", c.Unsupported, "errors", c.Errors)
	}
	for {
		select {
		case <-tick:
			logCounts("counters")
		case s := <-sigs:
			log.Info("stopping", "signal", s.String())
			logCounts("counters")
			if err := p.Close(); err != nil {
				return err
			}
			log.Info("detached", "interface", ifi.Name)
			return nil
		}
	}
}
