package main

import (
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/rail-lb/rail/control"
)

// TestTakeoverHelloRefused: the running raild refuses, at the hello and
// before it offers anything (or pauses a worker), a new process that
// speaks another protocol, one that cannot adopt its connection-table
// files (an older raild: no table layout in its hello), and any while it
// speaks BGP.
func TestTakeoverHelloRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hello tkHello
		bgp   bool
		want  string
	}{
		{"another protocol", tkHello{Protocol: "99", Version: "x", Tables: tableLayout}, false, "speaks takeover protocol"},
		{"an older table layout", tkHello{Protocol: takeoverProtocol, Version: "v0.old"}, false, "cannot adopt the running one's (" + buildVersion() + ") connection tables"},
		{"BGP", tkHello{Protocol: takeoverProtocol, Version: "x", Tables: tableLayout}, true, "speaks BGP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &control.Config{}
			if tc.bgp {
				cfg.BGP = &control.BGP{}
			}
			srv := &takeoverServer{cfg: cfg, log: slog.New(slog.DiscardHandler)}
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			conn := func(fd int) *net.UnixConn {
				f := os.NewFile(uintptr(fd), "takeover")
				c, err := net.FileConn(f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				return c.(*net.UnixConn)
			}
			old, nw := conn(fds[0]), conn(fds[1])
			defer nw.Close()
			done := make(chan struct{})
			go func() { srv.handle(old); close(done) }()
			if err := sendMsg(nw, tc.hello, nil); err != nil {
				t.Fatal(err)
			}
			var offer tkOffer
			got, err := recvMsg(nw, &offer)
			if err != nil {
				t.Fatal(err)
			}
			<-done
			if len(got) != 0 || len(offer.Queues) != 0 || !strings.Contains(offer.Error, tc.want) {
				t.Errorf("offer %+v with %d descriptors, want a refusal saying %q", offer, len(got), tc.want)
			}
		})
	}
}
