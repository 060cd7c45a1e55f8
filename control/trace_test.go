package control

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rail-lb/rail/pipeline"
)

// tcpFrame is Ethernet | IPv4 (router → local, GRE) | GRE | IPv4 | TCP
// with flags, in a buffer with headroom.
func tcpFrame(local netip.Addr, src, dst netip.AddrPort, flags uint8) *pipeline.Packet {
	const head = 256
	b := make([]byte, head+14+20+4+20+20)
	f := b[head:]
	copy(f[0:12], []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := func(h []byte, total int, proto uint8, s, d netip.Addr) {
		h[0], h[8], h[9] = 0x45, 64, proto
		binary.BigEndian.PutUint16(h[2:], uint16(total))
		s4, d4 := s.As4(), d.As4()
		copy(h[12:], s4[:])
		copy(h[16:], d4[:])
		var sum uint32
		for i := 0; i < 20; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(h[i:]))
		}
		sum = sum&0xffff + sum>>16
		sum = sum&0xffff + sum>>16
		binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
	}
	ip(f[14:], 20+4+40, 47, netip.MustParseAddr("10.0.0.1"), local)
	binary.BigEndian.PutUint16(f[36:], 0x0800)
	ip(f[38:], 40, 6, src.Addr(), dst.Addr())
	tcp := f[58:]
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	tcp[12], tcp[13] = 0x50, flags
	return &pipeline.Packet{Buf: b, Off: head, Len: len(f)}
}

func TestAPITrace(t *testing.T) {
	l := newAPILab(t, apiConfig)
	ct, err := pipeline.NewConntrack(1024, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w := pipeline.NewWorker(ct)
	l.state.SetQueues([]QueueStats{{Queue: 0, CPU: 3, Pipeline: w.Stats(), Worker: w}, {Queue: 1, CPU: 4, Pipeline: new(pipeline.Stats)}})
	get := func(query string) (int, TraceView, string) {
		t.Helper()
		code, body := l.do(t, "GET", "/v1/trace?"+query, "")
		var v TraceView
		if code == 200 {
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
		}
		return code, v, body
	}

	// No service: a VIP port nobody serves, and an address that is no VIP.
	for _, q := range []string{"src=198.51.100.7:40000&dst=192.0.2.10:443&proto=tcp", "src=198.51.100.7:40000&dst=203.0.113.9:80&proto=udp"} {
		code, v, body := get(q)
		if code != 200 || v.Service != nil || v.Verdict != NoServiceVerdict || v.SYN.Verdict != "pass" || len(v.Connections) != 0 {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}

	// A flow of web before and after the worker saw it.
	src, dst := netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("192.0.2.10:80")
	q := "src=" + src.String() + "&dst=" + dst.String() + "&proto=tcp"
	code, v, body := get(q)
	if code != 200 || v.Service == nil || v.Service.Name != "web" || v.Maglev == nil || v.SYN.Verdict != "tx" ||
		v.SYN.Backend == nil || v.SYN.Backend.Address != v.Maglev.Address || v.SYN.By != "maglev" || len(v.Connections) != 0 || v.Mid.By != "maglev" {
		t.Fatalf("before: %d %s", code, body)
	}
	snap := l.state.Snap.Load()
	w.Begin(snap, time.Now())
	r := w.Process(tcpFrame(netip.MustParseAddr("10.0.0.2"), src, dst, 0x02))
	if r.Verdict != pipeline.Tx || snap.BackendAddr(r.Service, r.Backend).String() != v.Maglev.Address {
		t.Fatalf("Process: %+v, trace picked %s", r, v.Maglev.Address)
	}
	w.Process(tcpFrame(netip.MustParseAddr("10.0.0.2"), src, dst, 0x10))
	picked := v.Maglev.Address
	// Drain the picked backend: SYNs go to the other one, the connection stays.
	if code, body := l.do(t, "PUT", "/v1/services/web/backends/"+picked, `{"weight": 0}`); code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	code, v, body = get(q)
	if code != 200 || len(v.Connections) != 1 {
		t.Fatalf("after: %d %s", code, body)
	}
	c := v.Connections[0]
	if c.Queue != 0 || c.CPU != 3 || c.Backend == nil || c.Backend.Address != picked || c.Backend.Weight != 0 || c.State != "established" ||
		c.DeadlineSeconds < 3590 || c.IdleSeconds != 0 || c.Expired {
		t.Errorf("entry: %s", body)
	}
	if v.Mid.Verdict != "tx" || v.Mid.Backend == nil || v.Mid.Backend.Address != picked || v.Mid.By != "connection entry on queue 0" {
		t.Errorf("mid-connection: %s", body)
	}
	if v.SYN.Backend == nil || v.SYN.Backend.Address == picked || v.Maglev.Address == picked {
		t.Errorf("SYN after the drain: %s", body)
	}

	// Bad input: one line, 400.
	for q, want := range map[string]string{
		"src=x&dst=192.0.2.10:80&proto=tcp":                  `src: \"x\" is not IP:PORT`,
		"src=198.51.100.7:1&dst=192.0.2.10&proto=tcp":        `dst: \"192.0.2.10\" is not IP:PORT`,
		"src=198.51.100.7:1&dst=192.0.2.10:80&proto=icmp":    `proto: \"icmp\" is not tcp or udp`,
		"src=198.51.100.7:1&dst=192.0.2.10:80":               `proto: \"\" is not tcp or udp`,
		"src=[2001:db8::7]:1&dst=192.0.2.10:80&proto=tcp":    "different address families",
		"dst=192.0.2.10:80&proto=tcp":                        `src: \"\" is not IP:PORT`,
		"src=198.51.100.7:1&dst=[2001:db8::10]:80&proto=udp": "different address families",
		"src=198.51.100.7:99999&dst=192.0.2.10:80&proto=tcp": "is not IP:PORT",
		"src=198.51.100.7:1&dst=192.0.2.10:80&proto=tcp&x=1": "", // unknown parameters are ignored
	} {
		code, body := l.do(t, "GET", "/v1/trace?"+q, "")
		if want == "" {
			if code != 200 {
				t.Errorf("%s: %d %s", q, code, body)
			}
			continue
		}
		if code != 400 || !strings.Contains(body, want) || strings.Count(strings.TrimSpace(body), "\n") != 2 {
			t.Errorf("%s: %d %s, want 400 %s", q, code, body, want)
		}
	}
	if code, body := l.do(t, "POST", "/v1/trace", "{}"); code != 405 {
		t.Errorf("POST /v1/trace: %d %s", code, body)
	}
}
