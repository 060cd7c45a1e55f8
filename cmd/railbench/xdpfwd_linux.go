package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/rail-lb/rail/bench"
)

func init() {
	commands["xdpfwd"] = command{
		summary: "attach compare's in-kernel forwarder to an interface until Ctrl-C: GRE re-targeted to one backend with XDP_TX, (--pass) an XDP_PASS program for kernel forwarding, or (--bounce) every frame straight back",
		run:     runXDPFwd,
	}
}

func runXDPFwd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("railbench xdpfwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.String("dev", "lb0", "interface")
	local := fs.String("local", "10.0.0.2", "the node's local address (GRE destination)")
	backend := fs.String("backend", "10.1.0.11", "the one backend every frame goes to")
	pass := fs.Bool("pass", false, "attach the XDP_PASS program instead (the kernel forwards)")
	bounce := fs.Bool("bounce", false, "attach the bounce program instead (every IPv4 frame back with XDP_TX: the lab's ceiling)")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	l, err1 := netip.ParseAddr(*local)
	b, err2 := netip.ParseAddr(*backend)
	if err1 != nil || err2 != nil || !l.Is4() || !b.Is4() {
		return fail(stderr, "--local and --backend must be IPv4 addresses")
	}
	which := bench.Retarget
	switch {
	case *pass && *bounce:
		return fail(stderr, "--pass and --bounce: choose one")
	case *pass:
		which = bench.Pass
	case *bounce:
		which = bench.Bounce
	}
	c, err := bench.AttachXDPTX(*dev, l, b, which)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	fmt.Fprintf(stdout, "attached %s pass=%v bounce=%v\n", *dev, *pass, *bounce)
	<-sig
	if err := c.Close(); err != nil {
		return fail(stderr, "%v", err)
	}
	return 0
}
