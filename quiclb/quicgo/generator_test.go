package quicgo

import (
	"testing"

	"github.com/rail-lb/rail/quiclb"
)

func TestGeneratorIssuesDecodableIDs(t *testing.T) {
	for _, key := range [][]byte{nil, make([]byte, quiclb.KeyLen)} {
		c := quiclb.Config{ID: 2, ServerIDLen: 2, NonceLen: 14, Key: key}
		sid, _ := quiclb.ParseServerID("0a0b")
		g, err := NewGenerator(c, sid)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := quiclb.NewCodec(c)
		seen := map[string]bool{}
		var s quiclb.Scratch
		for range 100 {
			id, err := g.GenerateConnectionID()
			if err != nil {
				t.Fatal(err)
			}
			if id.Len() != g.ConnectionIDLen() {
				t.Fatalf("length %d, want %d", id.Len(), g.ConnectionIDLen())
			}
			if seen[id.String()] {
				t.Fatal("an ID twice")
			}
			seen[id.String()] = true
			if got, ok := k.Decode(id.Bytes(), &s); !ok || got != sid {
				t.Fatalf("decoded %v %v", got, ok)
			}
		}
	}
	if _, err := NewGenerator(quiclb.Config{ServerIDLen: 3, NonceLen: 8}, quiclb.ServerID{}); err == nil {
		t.Fatal("a server id of the wrong length was taken")
	}
}
