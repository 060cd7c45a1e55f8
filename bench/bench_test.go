package bench

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rail-lb/rail/pipeline"
)

func TestAppendGREDecodes(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.10")
	f, err := AppendGRE(nil, GRESpec{
		RouterMAC: [6]byte{2, 0, 0, 0, 0, 1}, NodeMAC: [6]byte{2, 0, 0, 0, 0, 2},
		Router: netip.MustParseAddr("10.0.0.1"), Local: netip.MustParseAddr("10.0.0.2"),
		Flow: FlowN(7, vip, 80), Payload: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != GREFrameLen(100) {
		t.Fatalf("len %d, want %d", len(f), GREFrameLen(100))
	}
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if p.ErrorLayer() != nil {
		t.Fatal(p.ErrorLayer().Error())
	}
	var ips []*layers.IPv4
	for _, l := range p.Layers() {
		if ip, ok := l.(*layers.IPv4); ok {
			ips = append(ips, ip)
		}
	}
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if len(ips) != 2 || tcp == nil || p.Layer(layers.LayerTypeGRE) == nil {
		t.Fatalf("layers: %v", p.Layers())
	}
	if !ips[1].DstIP.Equal(vip.AsSlice()) || tcp.DstPort != 80 || len(tcp.Payload) != 100 {
		t.Fatalf("inner %v:%d payload %d", ips[1].DstIP, tcp.DstPort, len(tcp.Payload))
	}
	for i, ip := range ips {
		c := ip.Checksum
		buf := gopacket.NewSerializeBuffer()
		ip.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true})
		if ip.Checksum != c {
			t.Errorf("IPv4 header %d: checksum %#x, want %#x", i, c, ip.Checksum)
		}
	}
}

func TestFlowNDistinct(t *testing.T) {
	seen := map[Flow]bool{}
	vip := netip.MustParseAddr("192.0.2.10")
	for i := range 100000 {
		f := FlowN(i, vip, 80)
		if seen[f] {
			t.Fatalf("flow %d repeats %+v", i, f)
		}
		seen[f] = true
	}
}

func TestRunPipelineForwardsEverything(t *testing.T) {
	snap, err := pipeline.NewSnapshot(BenchConfig(4))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := pipeline.NewConntrack(4096, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wl, err := NewWorkload(100, 18)
	if err != nil {
		t.Fatal(err)
	}
	w := pipeline.NewWorker(ct)
	r := RunPipeline(w, snap, wl, 1000, 64)
	if r.Tx != 1000 {
		t.Fatalf("forwarded %d of 1000", r.Tx)
	}
	st := w.Stats()
	if hits, miss := st.ConntrackHits.Load(), st.ConntrackMiss.Load(); miss != 100 || hits != 900 {
		t.Fatalf("conntrack hits %d misses %d, want 900/100", hits, miss)
	}
}

func TestWriteTrafgen(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTrafgen(&b, [][]byte{{1, 2, 3}, make([]byte, 17)}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Count(out, "{") != 2 || !strings.Contains(out, "0x01, 0x02, 0x03") || strings.Count(out, "0x00") != 17 {
		t.Fatalf("trafgen config:\n%s", out)
	}
	if strings.Contains(out, "0x00\n  0x00") {
		t.Fatalf("missing comma at a line break:\n%s", out)
	}
}

func BenchmarkProcess(b *testing.B) {
	snap, _ := pipeline.NewSnapshot(BenchConfig(10))
	ct, _ := pipeline.NewConntrack(1<<20, time.Hour, time.Minute)
	wl, _ := NewWorkload(10000, 18)
	w := pipeline.NewWorker(ct)
	b.ReportAllocs()
	b.ResetTimer()
	r := RunPipeline(w, snap, wl, b.N, 64)
	b.ReportMetric(r.PacketsPerSecond(), "pkts/s")
}
