package main

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rail-lb/rail/bench"
	"github.com/rail-lb/rail/internal/privtest"
)

var (
	lbAddr6       = netip.MustParseAddr("2001:db8::2")
	labVIP6       = netip.MustParseAddr("2001:db8:100::10")
	labBackends6  = []string{"2001:db8:1::11", "2001:db8:1::12"}
	labBackendSet = map[string]bool{"2001:db8:1::11": true, "2001:db8:1::12": true}
)

func labConfig6(t *testing.T) string {
	return writeLabConfig(t, "local_address6: "+lbAddr6.String()+"\n", "web6", labVIP6.String(), 251, labBackends6)
}

// TestLabForwardsIPv6: IPv6 client flows, tunnelled in GRE over IPv4 and
// sent plain to the IPv6 VIP, leave raild in GRE over IPv6 to IPv6
// backends, byte for byte, each flow on one backend — and `raild replay`
// produces exactly the frames the live path sent.
func TestLabForwardsIPv6(t *testing.T) {
	privtest.Require(t, "ip", "tcpdump", "trafgen")
	labUp(t)
	cfg := labConfig6(t)
	d := startRaild(t, cfg)

	const flows = 40
	var sent [][]byte
	inner := map[string]bool{}
	for rep := 0; rep < 2; rep++ {
		for i := 0; i < flows; i++ {
			flow := bench.FlowN6(i*31, labVIP6, 80)
			f, err := bench.AppendGRE6(nil, bench.GRESpec{
				RouterMAC: genMAC, NodeMAC: lbMAC, Router: genAddr, Local: lbAddr, Flow: flow, Payload: 10 + rep,
			})
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, f)
			inner[string(f[38:])] = true
			// The same client packet sent plain to the VIP (the router-less form).
			plain := append(append([]byte(nil), f[:12]...), 0x86, 0xdd)
			plain = append(plain, f[38:]...)
			sent = append(sent, plain)
		}
	}
	capt := startCapture(t, "ip proto 47 or ip6 proto 47")
	sendTrafgen(t, sent)
	frames := capt.stop(t)

	var out [][]byte
	for _, f := range frames {
		if binary.BigEndian.Uint16(f[12:]) == 0x86dd && f[20] == 47 {
			out = append(out, f)
		}
	}
	if len(out) != len(sent) {
		for k, v := range scrape(t) {
			if v != 0 && strings.HasPrefix(k, "rail_") {
				t.Logf("%s %v", k, v)
			}
		}
		t.Fatalf("%d frames sent, %d came back in GRE over IPv6 (%d frames captured; tcpdump: %s)\n%s", len(sent), len(out), len(frames), capt.errb, d.log)
	}
	flowBackend := map[string]netip.Addr{}
	perBackend := map[netip.Addr]int{}
	for i, f := range out {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		gre, _ := p.Layer(layers.LayerTypeGRE).(*layers.GRE)
		if ip == nil || gre == nil {
			t.Fatalf("frame %d does not decode as IPv6/GRE: %x", i, f)
		}
		src, _ := netip.AddrFromSlice(ip.SrcIP)
		dst, _ := netip.AddrFromSlice(ip.DstIP)
		if src != lbAddr6 || !labBackendSet[dst.String()] || ip.HopLimit != 64 || gre.Protocol != layers.EthernetTypeIPv6 {
			t.Errorf("frame %d: outer %v → %v hop limit %d, GRE protocol %v", i, src, dst, ip.HopLimit, gre.Protocol)
		}
		if !bytes.Equal(f[0:6], genMAC[:]) || !bytes.Equal(f[6:12], lbMAC[:]) {
			t.Errorf("frame %d: MACs %x → %x", i, f[6:12], f[0:6])
		}
		body := f[58:]
		if !inner[string(body)] {
			t.Fatalf("frame %d: inner packet is not one that was sent", i)
		}
		flow := string(body[8:40]) + string(body[40:44])
		if b, ok := flowBackend[flow]; ok && b != dst {
			t.Errorf("frame %d: flow moved from %v to %v", i, b, dst)
		}
		flowBackend[flow] = dst
		perBackend[dst]++
	}
	if len(perBackend) != len(labBackends6) {
		t.Errorf("backends used: %v, want both", perBackend)
	}
	t.Logf("per backend: %v", perBackend)

	// Replay the frames that went in, in the order trafgen sent them.
	replayed := replayFramesWith(t, cfg, sent)
	if len(replayed) != len(out) {
		t.Fatalf("replay forwarded %d frames, live %d", len(replayed), len(out))
	}
	for i := range out {
		if !bytes.Equal(replayed[i], out[i]) {
			t.Fatalf("frame %d: replay and live differ:\nreplay %x\nlive   %x", i, replayed[i], out[i])
		}
	}
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("raild exited %d:\n%s", code, d.log)
	}
}
