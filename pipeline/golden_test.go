package pipeline

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

var update = flag.Bool("update", false, "rewrite the golden pcaps under testdata/golden")

// TestGolden runs every verdict case (built with gopacket) through Process
// and compares the egress frame with testdata/golden/NAME.out.pcap; the
// input frame is kept beside it as NAME.in.pcap, so each case can be
// replayed or opened in Wireshark. `go test -run TestGolden -update`
// rewrites them after a deliberate change — review the diff.
func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	if *update {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bad := regexp.MustCompile(`[^a-z0-9]+`)
	c := testConfig()
	c.MTU = 1500
	cases := verdictCases(t)
	for _, tc := range mtuCases(t) {
		cases = append(cases, tc)
	}
	for _, tc := range cases {
		name := bad.ReplaceAllString(tc.name, "-")
		w := newTestWorker(t, c)
		p := packetFor(tc.frame)
		r := w.Process(p)
		var out []byte
		if r.Verdict == Tx {
			out = p.Buf[p.Off : p.Off+p.Len]
		}
		checkGolden(t, dir, name, tc.frame, out, r)
	}
}

// checkGolden compares a case's input frame and egress (nil: none) with
// dir/NAME.in.pcap and dir/NAME.out.pcap, or with -update writes them.
func checkGolden(t *testing.T, dir, name string, frame, out []byte, r Result) {
	t.Helper()
	in, outFile := filepath.Join(dir, name+".in.pcap"), filepath.Join(dir, name+".out.pcap")
	if *update {
		writePcap(t, in, frame)
		writePcap(t, outFile, out)
		return
	}
	if got := readPcap(t, in); !bytes.Equal(got, frame) {
		t.Errorf("%s: the input frame changed; run with -update and review", name)
	}
	if want := readPcap(t, outFile); !bytes.Equal(out, want) {
		t.Errorf("%s: egress differs from %s (%v/%v)\n got %x\nwant %x", name, outFile, r.Verdict, r.Reason, out, want)
	}
}

// mtuCases are frames too big for a 1500-byte MTU once encapsulated.
func mtuCases(t testing.TB) []verdictCase {
	big := make([]byte, 1460)
	df := defaultInner()
	df.payload = big
	nodf := df
	nodf.df = false
	v6 := v6Inner()
	v6.payload = big[:1440]
	return []verdictCase{
		{"mtu ipv4 DF answered", plainFrame(t, df), Tx, ICMPTooBig},
		{"mtu ipv4 no DF dropped", plainFrame(t, nodf), Drop, TooBig},
		{"mtu ipv6 answered", plainFrame(t, v6), Tx, ICMPTooBig},
	}
}

func writePcap(t *testing.T, path string, frame []byte) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	if frame != nil {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(0, 0), CaptureLength: len(frame), Length: len(frame)}, frame)
	}
}

// readPcap returns the file's one frame, or nil if it has none.
func readPcap(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update)", err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := r.ReadPacketData()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}
