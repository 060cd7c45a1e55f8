package control

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rail-lb/rail/internal/netnstest"
	"github.com/rail-lb/rail/internal/privtest"
	"github.com/rail-lb/rail/pipeline"
	"github.com/rail-lb/rail/rings"
)

// TestMetricsXSKBusyPoll: the socket's own system-call counters and its
// busy-poll state reach the metrics page, from a real AF_XDP socket on a
// veth. A veth links no NAPI to its queues, so a socket asked to busy poll
// falls back: rail_xsk_busy_poll 0 and no busy polls, while each Wait of
// an idle worker is counted in rail_xsk_waits_total.
func TestMetricsXSKBusyPoll(t *testing.T) {
	privtest.Require(t, "ip")
	ns := fmt.Sprintf("rmx%d", os.Getpid())
	exec.Command("ip", "netns", "del", ns).Run()
	for _, c := range [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "-n", ns, "link", "add", "rmxa", "type", "veth", "peer", "name", "rmxb"},
		{"ip", "-n", ns, "link", "set", "rmxa", "up"},
		{"ip", "-n", ns, "link", "set", "rmxb", "up"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })

	var sock *rings.Socket
	var err error
	if nerr := netnstest.Do(ns, func() {
		ifi, ierr := net.InterfaceByName("rmxa")
		if ierr != nil {
			err = ierr
			return
		}
		o := rings.DefaultOpts()
		o.BusyPoll = true
		sock, err = rings.Open(ifi.Index, 0, o)
	}); nerr != nil {
		t.Fatal(nerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if sock.BusyPoll().Enabled {
		t.Fatalf("a veth socket busy polls (NAPI id %d): the test expects the fallback", sock.BusyPoll().NAPIID)
	}
	const waits = 3
	for range waits {
		if err := sock.Wait(time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	sock.Service() // an idle socket's service makes no call: nothing to busy poll for

	m := &Metrics{Queues: []QueueStats{{Queue: 0, CPU: 0, Pipeline: &pipeline.Stats{}, Sock: sock}}}
	var b bytes.Buffer
	m.WritePrometheus(&b)
	page := b.String()
	for _, want := range []string{
		`rail_xsk_busy_poll{queue="0"} 0`,
		fmt.Sprintf(`rail_xsk_waits_total{queue="0"} %d`, waits),
		`rail_xsk_busy_polls_total{queue="0"} 0`,
	} {
		if !strings.Contains(page, want+"\n") {
			t.Errorf("the metrics lack %q:\n%s", want, grepXSK(page))
		}
	}
}

func grepXSK(page string) string {
	var out []string
	for _, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, "rail_xsk_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
