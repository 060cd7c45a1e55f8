package main

import (
	"bytes"
	"encoding/csv"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rail-lb/rail/bench"
)

const testConfig = `local_address: 10.0.0.2
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    protocol: tcp
    table_size: 65537
    backends:
      - address: 10.1.0.11
      - address: 10.1.0.12
`

func writeFile(t *testing.T, name, data string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runRaild(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheck(t *testing.T) {
	good := writeFile(t, "good.yaml", testConfig)
	if code, out, errs := runRaild("check", "--config", good); code != 0 || out != good+": ok for replay and check: 1 service, 2 backends; raild run also needs interface: (e.g. interface: eth1)\n" {
		t.Fatalf("check good without interface: %d %q %q", code, out, errs)
	}
	withIf := writeFile(t, "if.yaml", "interface: eth1\n"+testConfig)
	if code, out, errs := runRaild("check", "--config", withIf); code != 0 || out != withIf+": ok: 1 service, 2 backends\n" {
		t.Fatalf("check good with interface: %d %q %q", code, out, errs)
	}
	bad := writeFile(t, "bad.yaml", strings.Replace(testConfig, "65537", "65536", 1)+"bogus: 1\n")
	code, _, errs := runRaild("check", "--config", bad)
	if code != 1 {
		t.Fatalf("check bad: exit %d", code)
	}
	for _, want := range []string{"bad.yaml:7:17: services[0].table_size: 65536 is not prime (try 65537)", "bad.yaml:11:1: bogus: unknown key"} {
		if !strings.Contains(errs, want) {
			t.Errorf("check output lacks %q:\n%s", want, errs)
		}
	}
	if code, _, errs := runRaild("check"); code != 2 || errs != "raild check: --config FILE is required\n" {
		t.Errorf("check without --config: %d %q", code, errs)
	}
	if code, _, errs := runRaild("check", "--config", "/nonexistent.yaml"); code != 1 || !strings.Contains(errs, "cannot open") {
		t.Errorf("check missing file: %d %q", code, errs)
	}
	if code, _, _ := runRaild("bogus"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}

func TestReplay(t *testing.T) {
	cfg := writeFile(t, "rail.yaml", testConfig)
	dir := t.TempDir()
	in, out, verdicts := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcap"), filepath.Join(dir, "v.csv")

	// Three GRE frames of two flows, an ARP request and a GRE frame to a VIP port with no service.
	gre := func(i int, port uint16) []byte {
		f, err := bench.AppendGRE(nil, bench.GRESpec{
			RouterMAC: [6]byte{2, 0, 0, 0, 0, 1}, NodeMAC: [6]byte{2, 0, 0, 0, 0, 2},
			Router: netip.MustParseAddr("10.0.0.1"), Local: netip.MustParseAddr("10.0.0.2"),
			Flow: bench.FlowN(i, netip.MustParseAddr("192.0.2.10"), port), Payload: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	buf := gopacket.NewSerializeBuffer()
	gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{255, 255, 255, 255, 255, 255}, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: []byte{2, 0, 0, 0, 0, 1}, SourceProtAddress: []byte{10, 0, 0, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 2}})
	frames := [][]byte{gre(1, 80), buf.Bytes(), gre(2, 80), gre(1, 80), gre(3, 8080)}
	f, _ := os.Create(in)
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	for _, fr := range frames {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(fr), Length: len(fr)}, fr)
	}
	f.Close()

	code, stdout, errs := runRaild("replay", "--config", cfg, "--in", in, "--out", out, "--verdicts", verdicts)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errs)
	}
	if stdout != "replayed 5 packets: tx 3, pass not_ip 1, pass no_service 1\n" {
		t.Errorf("summary: %q", stdout)
	}
	vf, _ := os.Open(verdicts)
	rows, err := csv.NewReader(vf).ReadAll()
	vf.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"index", "verdict", "reason", "service", "backend", "second_hop"},
		{"0", "tx", "-", "web", "", ""}, {"1", "pass", "not_ip", "", "", ""}, {"2", "tx", "-", "web", "", ""},
		{"3", "tx", "-", "web", "", ""}, {"4", "pass", "no_service", "", "", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("verdict rows: %v", rows)
	}
	for i := range want {
		got := append([]string(nil), rows[i]...)
		if i > 0 && got[1] == "tx" {
			if !strings.HasPrefix(got[4], "10.1.0.1") {
				t.Errorf("row %d backend %q", i, got[4])
			}
			got[4] = ""
		}
		if strings.Join(got, ",") != strings.Join(want[i], ",") {
			t.Errorf("row %d: %v, want %v", i, rows[i], want[i])
		}
	}
	if rows[1][4] != rows[4][4] {
		t.Errorf("the same flow went to %s and %s", rows[1][4], rows[4][4])
	}
	of, _ := os.Open(out)
	defer of.Close()
	r, err := pcapgo.NewReader(of)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if outer := netip.AddrFrom4([4]byte(data[30:34])); outer.String() != rows[[]int{1, 3, 4}[n]][4] {
			t.Errorf("output frame %d goes to %v, CSV says %s", n, outer, rows[[]int{1, 3, 4}[n]][4])
		}
		n++
	}
	if n != 3 {
		t.Errorf("output has %d frames, want 3", n)
	}
}

func TestReplayBadInput(t *testing.T) {
	cfg := writeFile(t, "rail.yaml", testConfig)
	out := filepath.Join(t.TempDir(), "out.pcap")
	for name, data := range map[string]string{
		"garbage.pcap": "this is not a capture",
		"empty.pcap":   "",
	} {
		in := writeFile(t, name, data)
		code, _, errs := runRaild("replay", "--config", cfg, "--in", in, "--out", out)
		if code != 1 || !strings.Contains(errs, name) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q (want 1 and one line naming the file)", name, code, errs)
		}
	}
	if code, _, errs := runRaild("replay", "--config", cfg, "--in", "/nonexistent.pcap", "--out", out); code != 1 || !strings.Contains(errs, "nonexistent") {
		t.Errorf("missing input: %d %q", code, errs)
	}
	if code, _, _ := runRaild("replay", "--config", cfg); code != 2 {
		t.Errorf("replay without --in/--out: exit %d", code)
	}
}

// TestCheckCounts: the ok line counts services and backends in words that
// agree with the numbers.
func TestCheckCounts(t *testing.T) {
	one := `local_address: 10.0.0.2
services:
  - {name: web, vip: 192.0.2.10, port: 80, protocol: tcp, backends: [{address: 10.1.0.11}]}
`
	two := one + "  - {name: dns, vip: 192.0.2.53, port: 53, protocol: udp, backends: [{address: 10.1.0.21}]}\n"
	for _, c := range []struct{ name, config, want string }{
		{"one of each", one, "1 service, 1 backend"},
		{"two of each", two, "2 services, 2 backends"},
		{"none", "local_address: 10.0.0.2\ninterface: eth1\n", "0 services, 0 backends"},
	} {
		f := writeFile(t, "rail.yaml", c.config)
		code, out, errs := runRaild("check", "--config", f)
		if code != 0 || !strings.Contains(out, ": "+c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", c.name, code, out, errs, c.want)
		}
	}
	for n, want := range map[int]string{0: "0 packets", 1: "1 packet", 2: "2 packets"} {
		if got := count(n, "packet"); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestHelp: raild --help and every raild SUB --help (or -h, or raild help
// SUB) print the usage on stdout, flags with two dashes, and exit 0.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errs := runRaild(args...)
		if code != 0 || !strings.HasPrefix(out, "usage: raild <command>") || errs != "" {
			t.Errorf("raild %v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	if len(commands) != 5 {
		t.Errorf("%d commands, want run, replay, check, plan and decap", len(commands))
	}
	for name := range commands {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}, {name, "--help", "--no-such-flag"}} {
			code, out, errs := runRaild(args...)
			if code != 0 || errs != "" {
				t.Errorf("raild %v: exit %d, stderr %q; want 0 and nothing", args, code, errs)
			}
			if !strings.HasPrefix(out, "usage: raild "+name+" ") || !strings.Contains(out, "\nflags:\n  --") {
				t.Errorf("raild %v: stdout %q", args, out)
			}
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), "-") && !strings.HasPrefix(strings.TrimSpace(l), "--") {
					t.Errorf("raild %v: a flag with one dash: %q", args, l)
				}
			}
		}
	}
	if code, _, errs := runRaild("help", "bogus"); code != 2 || !strings.Contains(errs, `unknown command "bogus"`) {
		t.Errorf("raild help bogus: %d %q", code, errs)
	}
}

// TestUsageErrors: a wrong command line exits 2 with one message that
// starts with the command's name.
func TestUsageErrors(t *testing.T) {
	cfg := writeFile(t, "rail.yaml", testConfig)
	cases := []struct {
		args []string
		want string // all of stderr
	}{
		{[]string{"check", "--confg", cfg}, "raild check: flag provided but not defined: -confg\n"},
		{[]string{"check", "--config"}, "raild check: flag needs an argument: -config\n"},
		{[]string{"check", "--config", cfg, "extra"}, `raild check: unexpected argument "extra" (raild check takes only flags)` + "\n"},
		{[]string{"replay"}, "raild replay: --config FILE is required\n"},
		{[]string{"replay", "--config", cfg}, "raild replay: --in and --out are required\n"},
		{[]string{"plan", "--json"}, "raild plan: --config FILE is required\n"},
		{[]string{"plan", "--jsn"}, "raild plan: flag provided but not defined: -jsn\n"},
		{[]string{"decap", "--iface", "lo"}, "raild decap: flag provided but not defined: -iface\n"},
		{[]string{"decap", "--stats-interval", "often", "--interface", "lo"}, `raild decap: invalid value "often" for flag -stats-interval: parse error` + "\n"},
	}
	if runtime.GOOS == "linux" { // elsewhere raild run only says it needs Linux
		cases = append(cases,
			struct {
				args []string
				want string
			}{[]string{"run"}, "raild run: --config FILE is required\n"},
			struct {
				args []string
				want string
			}{[]string{"run", "--config", cfg, "--idle-spin", "5"}, "raild run: flag provided but not defined: -idle-spin\n"},
		)
	}
	for _, c := range cases {
		code, out, errs := runRaild(c.args...)
		if code != 2 || errs != c.want || out != "" {
			t.Errorf("raild %v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, out, errs, c.want)
		}
	}
	for _, args := range [][]string{nil, {"bogus"}} {
		if code, _, errs := runRaild(args...); code != 2 || !strings.Contains(errs, "usage: raild <command>") {
			t.Errorf("raild %v: exit %d, stderr %q", args, code, errs)
		}
	}
}
