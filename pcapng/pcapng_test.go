package pcapng

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"
)

// sample writes a two-interface capture: three packets (odd lengths, so
// padding is exercised, one cut by the snap length) and statistics.
func sample(t *testing.T) ([]byte, []Packet) {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, "rail test")
	if err != nil {
		t.Fatal(err)
	}
	rx, err := w.AddInterface(Interface{Name: "rx", Description: "as received", LinkType: LinkTypeEthernet, SnapLen: 128})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.AddInterface(Interface{Name: "tx", LinkType: LinkTypeEthernet, SnapLen: 128})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 123_456_789)
	frame := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i)
		}
		return b
	}
	pkts := []Packet{
		{Interface: rx, Time: t0, Data: frame(61, 1), Direction: Inbound, Comment: "verdict=tx reason=- service=web backend=10.1.0.1 queue=0 cpu=1"},
		{Interface: tx, Time: t0.Add(time.Microsecond), Data: frame(85, 2), Direction: Outbound, Comment: "verdict=tx"},
		{Interface: rx, Time: t0.Add(time.Second), Data: frame(128, 3), Length: 1500, Direction: Inbound},
	}
	for i := range pkts {
		if err := w.WritePacket(&pkts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteStats(rx, Stats{Time: t0.Add(2 * time.Second), Start: t0, End: t0.Add(2 * time.Second), Received: 2, Dropped: 7, Comment: "7 lost"}); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(&Packet{Interface: 2}); err != ErrInterface {
		t.Errorf("a packet of an undescribed interface: %v, want ErrInterface", err)
	}
	return out.Bytes(), pkts
}

func TestGopacketReadsIt(t *testing.T) {
	data, pkts := sample(t)
	var stats []pcapgo.NgInterfaceStatistics
	r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.NgReaderOptions{
		StatisticsCallback: func(_ int, s pcapgo.NgInterfaceStatistics) { stats = append(stats, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range pkts {
		got, ci, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		wantLen := want.Length
		if wantLen == 0 {
			wantLen = len(want.Data)
		}
		if !bytes.Equal(got, want.Data) || ci.InterfaceIndex != want.Interface || !ci.Timestamp.Equal(want.Time) || ci.Length != wantLen {
			t.Errorf("packet %d: interface %d, %v, length %d, %d bytes; want %d, %v, %d, %d bytes", i,
				ci.InterfaceIndex, ci.Timestamp, ci.Length, len(got), want.Interface, want.Time, wantLen, len(want.Data))
		}
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Errorf("after the packets: %v, want EOF", err)
	}
	if n := r.NInterfaces(); n != 2 {
		t.Errorf("%d interfaces, want 2", n)
	}
	if i, _ := r.Interface(0); i.Name != "rx" || i.Description != "as received" || i.SnapLength != 128 {
		t.Errorf("interface 0: %+v", i)
	}
	if len(stats) != 1 || stats[0].PacketsReceived != 2 || stats[0].PacketsDropped != 7 {
		t.Errorf("statistics: %+v", stats)
	}
}

// TestTsharkReadsIt checks the file with tshark, which validates every
// block: no error, the comments and directions read back.
func TestTsharkReadsIt(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is not installed, and CI=true: .ci/run installs it")
		}
		t.Skip("tshark is not installed (apt-get install tshark)")
	}
	data, _ := sample(t)
	f := filepath.Join(t.TempDir(), "s.pcapng")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", "-r", f, "-T", "fields", "-E", "separator=|",
		"-e", "frame.interface_name", "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.comment", "-e", "frame.time_epoch")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(stderr.String()) != "" && !strings.Contains(stderr.String(), "Running as user") {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	want := "rx|61|61|verdict=tx reason=- service=web backend=10.1.0.1 queue=0 cpu=1|1700000000.123456789\n" +
		"tx|85|85|verdict=tx|1700000000.123457789\n" +
		"rx|1500|128||1700000001.123456789\n"
	if string(out) != want {
		t.Errorf("tshark read:\n%s\nwant:\n%s", out, want)
	}
}

func TestWritePacketNoAllocs(t *testing.T) {
	w, err := NewWriter(io.Discard, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(Interface{LinkType: LinkTypeEthernet}); err != nil {
		t.Fatal(err)
	}
	p := Packet{Time: time.Now(), Data: make([]byte, 1514), Direction: Outbound,
		Comment: "verdict=drop reason=no_backend service=web backend=- queue=3 cpu=5"}
	if n := testing.AllocsPerRun(100, func() { w.WritePacket(&p) }); n != 0 {
		t.Errorf("WritePacket allocates %v times", n)
	}
}
