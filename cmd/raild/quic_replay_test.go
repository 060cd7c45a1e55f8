package main

import (
	"encoding/csv"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rail-lb/rail/bench"
	"github.com/rail-lb/rail/quiclb"
)

// quicReplayConfig is a QUIC-LB service (single pass) of three backends,
// or the same service without the option.
func quicReplayConfig(withLB bool) string {
	c := "local_address: 10.0.0.2\nservices:\n  - name: h3\n    vip: 192.0.2.10\n    port: 443\n    protocol: udp\n    table_size: 65537\n"
	if withLB {
		c += "    quic: {config_id: 1, server_id_length: 2, nonce_length: 14, key: 8f95f09245765f80256934e50c66207f}\n"
	}
	c += "    backends:\n"
	for i := 1; i <= 3; i++ {
		c += "      - {address: 10.1.0.1" + string(rune('0'+i))
		if withLB {
			c += ", quic_server_id: \"0a0" + string(rune('0'+i)) + "\""
		}
		c += "}\n"
	}
	return c
}

// TestReplayQUIC: raild replay of a capture in which each of three QUIC
// connections sends from five source ports in turn (a client moving),
// every short-header packet carrying the connection ID its server issued.
// With the quic option every packet of a connection goes to the backend
// its ID names; without it the moves scatter them.
func TestReplayQUIC(t *testing.T) {
	k, err := quiclb.NewCodec(quiclb.Config{ID: 1, ServerIDLen: 2, NonceLen: 14, Key: []byte{0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80, 0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pcap")
	f, _ := os.Create(in)
	pw := pcapgo.NewWriter(f)
	pw.WriteFileHeader(65535, layers.LinkTypeEthernet)
	for conn := 1; conn <= 3; conn++ {
		sid, _ := quiclb.ParseServerID("0a0" + string(rune('0'+conn)))
		pkt := make([]byte, 100)
		pkt[0] = 0x40
		if err := k.Encode(pkt[1:], sid, make([]byte, 14)); err != nil {
			t.Fatal(err)
		}
		for move := range 5 {
			fr, err := bench.AppendGREUDP(nil, bench.GRESpec{
				RouterMAC: [6]byte{2, 0, 0, 0, 0, 1}, NodeMAC: [6]byte{2, 0, 0, 0, 0, 2},
				Router: netip.MustParseAddr("10.0.0.1"), Local: netip.MustParseAddr("10.0.0.2"),
				Flow: bench.Flow{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("192.0.2.10"), Sport: uint16(40000 + 100*conn + move), Dport: 443},
			}, pkt)
			if err != nil {
				t.Fatal(err)
			}
			pw.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(fr), Length: len(fr)}, fr)
		}
	}
	f.Close()
	for _, withLB := range []bool{true, false} {
		cfg := writeFile(t, "rail-quic.yaml", quicReplayConfig(withLB))
		out, verdicts := filepath.Join(dir, "out.pcap"), filepath.Join(dir, "v.csv")
		if code, stdout, errs := runRaild("replay", "--config", cfg, "--in", in, "--out", out, "--verdicts", verdicts); code != 0 || stdout != "replayed 15 packets: tx 15\n" {
			t.Fatalf("replay: exit %d: %s%s", code, stdout, errs)
		}
		vf, err := os.Open(verdicts)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(vf).ReadAll()
		vf.Close()
		if err != nil || len(rows) != 16 {
			t.Fatalf("verdicts: %d rows, %v; want a header and 15", len(rows), err)
		}
		moved := 0
		for i, r := range rows[1:] {
			want := "10.1.0.1" + string(rune('0'+1+i/5))
			if withLB && r[4] != want {
				t.Errorf("with quic: packet %d went to %s, want %s (its connection ID's)", i, r[4], want)
			}
			if r[4] != want {
				moved++
			}
		}
		if !withLB && moved == 0 {
			t.Error("without quic every packet reached its connection's backend: the capture does not exercise the option")
		}
		if !withLB {
			t.Logf("without quic: %d of 15 packets reached another backend than their connection's", moved)
		}
	}
}
