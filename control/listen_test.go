package control

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func limitedServer(t *testing.T, lim HTTPLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }), lim)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// get sends one keep-alive request on c and reads the answer.
func get(c net.Conn) error {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// TestLimitIdleConnectionsMakeRoom: a listener full of idle keep-alive
// connections still serves a new client (the longest-idle one is closed).
func TestLimitIdleConnectionsMakeRoom(t *testing.T) {
	lim := DefaultHTTPLimits
	lim.MaxConnections = 8
	addr := limitedServer(t, lim)
	var idle []net.Conn
	for range 3 * lim.MaxConnections {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := get(c); err != nil {
			t.Fatalf("request %d: %v", len(idle), err)
		}
		idle = append(idle, c)
	}
	// The first ones were closed to make room for the last.
	idle[0].SetReadDeadline(time.Now().Add(time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the oldest idle connection is still open (read: %v)", err)
	}
	if err := get(idle[len(idle)-1]); err != nil {
		t.Errorf("the newest connection: %v", err)
	}
}

// TestLimitSlowClients: connections that never finish a request hold at
// most MaxConnections slots, and give them up to a newcomer once they are
// slowRequest old; a slow body is cut at ReadTimeout.
func TestLimitSlowClients(t *testing.T) {
	lim := HTTPLimits{MaxConnections: 4, ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond,
		WriteTimeout: time.Second, IdleTimeout: time.Second}
	addr := limitedServer(t, lim)
	for i := range lim.MaxConnections {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: slow%d\r\n", i) // never ends the headers
	}
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := get(c); err != nil {
		t.Fatalf("a client behind %d slow ones: %v", lim.MaxConnections, err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("answered after %v: the slow clients held no slot", waited)
	} else {
		t.Logf("answered after %v (a slow client gives up its slot after %v)", waited, slowRequest)
	}
	// A body that trickles in is cut at ReadTimeout.
	s, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	io.WriteString(s, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	start = time.Now()
	cut := false
	for time.Since(start) < 3*time.Second {
		if _, err := io.WriteString(s, "a"); err != nil {
			cut = true
			break
		}
		s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := s.Read(make([]byte, 512)); err != nil && !strings.Contains(err.Error(), "timeout") {
			cut = true
			break
		}
	}
	if !cut {
		t.Errorf("a slow body was not cut within 3 s (read_timeout %v)", lim.ReadTimeout)
	}
}
