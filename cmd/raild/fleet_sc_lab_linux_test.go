package main

import (
	"fmt"

	"github.com/rail-lb/rail/control"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFleetSecondChance is the case the Maglev paper says consistent
// hashing alone cannot save: ECMP moves flows to nodes that have no
// connection entry for them while the backend set changes. 100 paced
// downloads run over three nodes and three backends; in one step every
// node's configuration adds two backends (filling) and drains one, the
// nodes reload, and one node is killed with SIGKILL. The flows it carried
// (and, with hash-threshold ECMP, some of the survivors' too) reach a node
// that picks from the new table. With second_chance: true the packet
// carries the backend of the table before the transition as its second
// hop, and the new backend's raild decap hands it on when it has no socket
// for it: every download completes byte-exact. The same scenario with
// second_chance: false breaks some — which shows the test can fail and
// that second chance is what saves them.
func TestFleetSecondChance(t *testing.T) {
	kept, broken, moved := fleetSecondChanceRun(t, true)
	t.Logf("second_chance true: %d of %d downloads byte-exact, %d broken; decap handed on %d packets", kept, kept+len(broken), len(broken), moved)
	if len(broken) > 0 {
		t.Errorf("second_chance true: %d connections broke:\n%s", len(broken), strings.Join(broken, "\n"))
	}
	if moved == 0 {
		t.Errorf("no packet was handed on: the scenario did not exercise second chance")
	}
	kept0, broken0, _ := fleetSecondChanceRun(t, false)
	t.Logf("second_chance false: %d of %d downloads byte-exact, %d broken", kept0, kept0+len(broken0), len(broken0))
	if len(broken0) == 0 {
		t.Errorf("second_chance false: no connection broke: the test proves nothing")
	}
}

const fleetSCConns = 100

func fleetSecondChanceRun(t *testing.T, second bool) (kept int, broken []string, handedOn int) {
	t.Helper()
	l := fleetUp(t, 3, "--backends", "5", "--start-raild")
	sc := strconv.FormatBool(second)
	// Three backends serve; be4 and be5 exist (nginx, decap) but are not
	// in the configuration yet.
	for i := 1; i <= 3; i++ {
		l.editConfig(t, i, "      - {address: 10.1.0.14, name: be4}\n      - {address: 10.1.0.15, name: be5}\n", "")
		l.editConfig(t, i, "    table_size: 65537\n", "    table_size: 65537\n    second_chance: "+sc+"\n")
		l.hup(t, i)
	}
	for i := 1; i <= 3; i++ {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d: be3 healthy, be4 gone", i), func() bool {
			var v []control.ServiceView
			apiGet(t, l.sock(i), "/v1/services", &v)
			return len(v) == 1 && len(v[0].Backends) == 3 && v[0].Backends[2].Healthy
		})
	}
	l.waitHops(t, 3, 10*time.Second)

	dls := l.startDownloads(t, fleetSCConns, 21000)
	deadline := time.Now().Add(30 * time.Second)
	for {
		slow := 0
		var failed []string
		for _, dl := range dls {
			select {
			case <-dl.done:
				if dl.err != nil {
					failed = append(failed, fmt.Sprintf("port %d: %v %s", dl.port, dl.err, dl.errb.String()))
				}
				continue
			default:
			}
			if dl.received() < 200<<10 {
				slow++
			}
		}
		if len(failed) > 0 {
			t.Fatalf("before any change, %d downloads failed:\n%s", len(failed), strings.Join(failed, "\n"))
		}
		if slow == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, %d of %d downloads have less than 200 KiB", slow, len(dls))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// One step: two backends filling, one draining, on every node; then a
	// node dies.
	for i := 1; i <= 3; i++ {
		l.editConfig(t, i, "      - {address: 10.1.0.13, name: be3}\n",
			"      - {address: 10.1.0.13, name: be3, state: draining}\n"+
				"      - {address: 10.1.0.14, name: be4, state: filling}\n"+
				"      - {address: 10.1.0.15, name: be5, state: filling}\n")
		l.hup(t, i)
	}
	time.Sleep(200 * time.Millisecond)
	l.run(t, "node-kill", "2")
	l.waitHops(t, 2, 10*time.Second)

	kept, broken, took := l.finish(t, dls)
	t.Logf("second_chance %s: downloads finished %v after the kill", sc, took.Round(time.Millisecond))
	for b := 1; b <= 5; b++ {
		pin := fmt.Sprintf("%s/bpffs/be%d-decap", l.dir, b)
		out, _ := exec.Command("ip", "netns", "exec", l.ns("be"+strconv.Itoa(b)), l.raild, "decap", "--stats", "--pin", pin).CombinedOutput()
		n := handedOnFrom(string(out))
		handedOn += n
		if n > 0 {
			t.Logf("be%d handed on %d packets", b, n)
		}
	}
	if !t.Failed() {
		l.run(t, "down") // before the next lab: the two must not overlap
	}
	return kept, broken, handedOn
}

// handedOnFrom reads the handed_on count from `raild decap --stats` output.
func handedOnFrom(out string) int {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(strings.ReplaceAll(line, ":", " "))
		for i, w := range f {
			if (w == "handed_on" || w == "handed-on") && i+1 < len(f) {
				var n int
				fmt.Sscan(f[i+1], &n)
				return n
			}
		}
	}
	return 0
}
