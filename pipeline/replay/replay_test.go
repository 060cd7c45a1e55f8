package replay

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rail-lb/rail/bench"
	"github.com/rail-lb/rail/pipeline"
)

func setup(t *testing.T) (*pipeline.Worker, *pipeline.Snapshot) {
	snap, err := pipeline.NewSnapshot(bench.BenchConfig(3))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := pipeline.NewConntrack(1024, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.NewWorker(ct), snap
}

func greFrame(t *testing.T, i int) []byte {
	f, err := bench.AppendGRE(nil, bench.GRESpec{
		RouterMAC: [6]byte{2, 0, 0, 0, 0, 1}, NodeMAC: [6]byte{2, 0, 0, 0, 0, 2},
		Router: netip.MustParseAddr("10.0.0.1"), Local: netip.MustParseAddr("10.0.0.2"),
		Flow: bench.FlowN(i, netip.MustParseAddr("192.0.2.10"), 80), Payload: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRunPcapAndPcapng(t *testing.T) {
	for _, ng := range []bool{false, true} {
		var in bytes.Buffer
		frames := [][]byte{greFrame(t, 1), {1, 2, 3}, greFrame(t, 2)}
		if ng {
			w, err := pcapgo.NewNgWriter(&in, layers.LinkTypeEthernet)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range frames {
				w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(f), Length: len(f)}, f)
			}
			w.Flush()
		} else {
			w := pcapgo.NewWriter(&in)
			w.WriteFileHeader(65535, layers.LinkTypeEthernet)
			for _, f := range frames {
				w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(f), Length: len(f)}, f)
			}
		}
		w, snap := setup(t)
		var out, csv bytes.Buffer
		sum, err := Run(w, snap, &in, &out, &csv)
		if err != nil {
			t.Fatalf("pcapng=%v: %v", ng, err)
		}
		if sum.Packets != 3 || sum.Reasons[pipeline.ReasonNone] != 2 || sum.Reasons[pipeline.NotIP] != 1 {
			t.Fatalf("pcapng=%v: summary %+v", ng, sum)
		}
		if lines := strings.Split(strings.TrimSpace(csv.String()), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[2], "1,pass,not_ip,,") {
			t.Fatalf("pcapng=%v: csv %q", ng, csv.String())
		}
		r, err := pcapgo.NewReader(&out)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			if _, _, err := r.ReadPacketData(); err != nil {
				break
			}
			n++
		}
		if n != 2 {
			t.Fatalf("pcapng=%v: %d output frames", ng, n)
		}
	}
}

func TestRunBadInput(t *testing.T) {
	var linux bytes.Buffer
	lw := pcapgo.NewWriter(&linux)
	lw.WriteFileHeader(65535, layers.LinkTypeRaw)
	for name, in := range map[string][]byte{
		"empty":        nil,
		"garbage":      []byte("definitely not a capture file"),
		"raw linktype": linux.Bytes(),
	} {
		w, snap := setup(t)
		_, err := Run(w, snap, bytes.NewReader(in), &bytes.Buffer{}, nil)
		if !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", name, err)
		}
	}
}
