package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/internal/privtest"
)

// TestLabMultiQueue runs raild on 2 and 4 rx queues of the lab's veth
// with one worker per queue: on the two CPUs of the config's cpus: for 2,
// as raild plans them for 4 (on two CPUs, workers share them). The generator sends many flows; the veth spreads them over its
// queues by their hash, as a NIC's RSS does. Every worker must forward,
// the per-queue metrics must add up to what was sent, and each flow must
// stay on one worker: the workers' connection tables hold exactly one
// entry per flow between them.
func TestLabMultiQueue(t *testing.T) {
	privtest.Require(t, "ip", "trafgen")
	for _, n := range []int{2, 4} {
		t.Run(strconv.Itoa(n)+" queues", func(t *testing.T) { multiQueue(t, n) })
	}
}

func multiQueue(t *testing.T, n int) {
	labUpQueues(t, n)
	var queues []string
	for q := range n {
		queues = append(queues, strconv.Itoa(q))
	}
	extra := fmt.Sprintf("queues: [%s]\n", strings.Join(queues, ", "))
	if n == 2 {
		extra += "cpus: [0, 1]\n"
	}
	cfg := writeLabConfig(t, extra, "web", labVIP.String(), 65537, labBackends)
	d := startRaild(t, cfg)
	defer d.stop(t, 15)
	sock := strings.TrimSuffix(cfg, "rail.yaml") + "raild.sock"

	const flows, reps = 400, 3
	sendTrafgen(t, greFrames(t, flows, reps))

	// Wait for the last batch to be published.
	var m map[string]float64
	var rx, tx float64
	deadline := time.Now().Add(5 * time.Second)
	for {
		m = scrape(t)
		rx, tx = 0, 0
		for q := range n {
			rx += queueMetric(m, "rail_rx_packets_total", q)
			tx += queueMetric(m, "rail_tx_packets_total", q)
		}
		if tx >= flows*reps || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	per := make([]float64, n)
	for q := range n {
		per[q] = queueMetric(m, "rail_tx_packets_total", q)
	}
	var cores []control.CoreConntrack
	apiGet(t, sock, "/v1/conntrack", &cores)
	entries := uint64(0)
	for _, c := range cores {
		entries += c.Entries
	}
	t.Logf("%d queues: %d flows × %d sent; forwarded per queue %v (rx %.0f, tx %.0f); connection entries %d over %d workers",
		n, flows, reps, per, rx, tx, entries, len(cores))
	if rx != flows*reps || tx != flows*reps {
		t.Errorf("the queues' metrics add up to rx %.0f, tx %.0f; %d were sent", rx, tx, flows*reps)
	}
	for q, v := range per {
		if v == 0 {
			t.Errorf("the worker of queue %d forwarded nothing: the traffic did not reach every queue", q)
		}
	}
	if len(cores) != n {
		t.Errorf("%d workers report a connection table, want %d", len(cores), n)
	}
	if entries != flows {
		t.Errorf("%d connection entries for %d flows: a flow was seen by more than one worker (or not recorded)", entries, flows)
	}
}

// queueMetric is the value of the series name of queue q, whatever its
// other labels (the cpu its worker runs on).
func queueMetric(m map[string]float64, name string, q int) float64 {
	prefix := fmt.Sprintf(`%s{queue="%d",`, name, q)
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			return v
		}
	}
	return 0
}
