package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/rail-lb/rail/pin"
	"github.com/rail-lb/rail/pipeline"
)

func init() {
	commands["plan"] = command{"--config FILE [--json] [--allowed CPUS] [--sysfs DIR]\n" +
		"        print the queue → CPU plan raild run will use", cmdPlan}
}

// planJSON is raild plan --json. Field order matters to tools/setup-nic.sh,
// which reads "queue":N,"cpu":M pairs: keep Queue and CPU first.
type planJSON struct {
	Interface   string       `json:"interface"`
	Queues      int          `json:"rx_queues"`
	NICNode     int          `json:"nic_numa_node"` // -1: none (virtual device or single node)
	Allowed     string       `json:"allowed"`
	Isolated    string       `json:"isolated"`
	Assignments []assignJSON `json:"assignments"`
	Notes       []string     `json:"notes"`
	// The descriptor limit raild run would get and what it may need.
	NoFile     uint64 `json:"nofile_limit"`
	NoFileHard uint64 `json:"nofile_hard_limit"`
	NoFileNeed int    `json:"nofile_needed"`
	// The connection tables: entries per worker and their memory.
	ConntrackEntries uint32 `json:"conntrack_entries_per_core"`
	ConntrackBytes   int64  `json:"conntrack_bytes_per_core"`
	ConntrackTotal   int64  `json:"conntrack_bytes_total"`
	// What would back each worker's tables (pipeline.PlanPages).
	ConntrackPages []string `json:"conntrack_pages"`
}

type assignJSON struct {
	Queue    int    `json:"queue"`
	CPU      int    `json:"cpu"`
	Node     int    `json:"node"`     // -1: unknown
	Siblings string `json:"siblings"` // the CPU's SMT threads, itself included
	Isolated bool   `json:"isolated"`
}

// cmdPlan prints the plan pin.PlanFor makes for the configured interface,
// queues and cpus on this machine's topology (pin.Host), which is what
// raild run does. --sysfs and --allowed answer "what if": another sysfs
// tree (tests use synthetic ones) or another affinity mask (CPUAffinity=,
// taskset).
func cmdPlan(args []string, stdout, stderr io.Writer) int {
	var file, sysfs, allowed string
	var asJSON bool
	if !flags("plan", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "config", "", "the configuration `FILE` (it must name the interface)")
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
		fs.StringVar(&allowed, "allowed", "", "plan for these `CPUS` (e.g. 2-7) instead of the ones this process may use")
		fs.StringVar(&sysfs, "sysfs", "", "read the topology from `DIR`/sys instead of this machine's /sys")
	}) {
		return 2
	}
	cfg := loadConfig(file, stderr)
	if cfg == nil {
		return 1
	}
	if probs := cfg.RequireInterface(); len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(stderr, p)
		}
		return 1
	}
	var topo pin.Topology
	var err error
	if sysfs == "" {
		topo, err = pin.Host(cfg.Interface)
	} else {
		topo, err = pin.ReadTopology(sysfs, cfg.Interface)
	}
	if err != nil {
		fmt.Fprintf(stderr, "raild plan: %v\n", err)
		return 1
	}
	if allowed != "" {
		if topo.Allowed, err = pin.ParseCPUs(allowed); err != nil {
			fmt.Fprintf(stderr, "raild plan: --allowed: %v\n", err)
			return 2
		}
	}
	queues := cfg.Queues
	if queues == nil {
		if topo.Queues == 0 {
			fmt.Fprintf(stderr, "raild plan: interface %s: cannot count its rx queues in sysfs\n", cfg.Interface)
			return 1
		}
		for q := range topo.Queues {
			queues = append(queues, q)
		}
	}
	plan, err := pin.PlanFor(topo, queues, cfg.CPUs)
	if err != nil {
		fmt.Fprintf(stderr, "raild plan: cpus: %v\n", err)
		return 1
	}

	out := planJSON{
		Interface: topo.Interface, Queues: topo.Queues, NICNode: topo.NICNode,
		Allowed: pin.FormatCPUs(topo.Allowed), Isolated: pin.FormatCPUs(topo.Isolated),
		Assignments: []assignJSON{}, Notes: topo.Notes(plan),
	}
	out.ConntrackEntries = cfg.Conntrack.EntriesPerCore
	out.ConntrackBytes = pipeline.ConntrackBytes(cfg.Conntrack.EntriesPerCore)
	out.ConntrackTotal = out.ConntrackBytes * int64(len(plan))
	pages := pipeline.PlanPages(sysfs, cfg.Conntrack.EntriesPerCore, len(plan))
	for _, p := range pages {
		out.ConntrackPages = append(out.ConntrackPages, p.String())
	}
	if note := pagesNote(pages, out.ConntrackBytes, cfg.Conntrack.EntriesPerCore); note != "" {
		out.Notes = append(out.Notes, note)
	}
	out.NoFile, out.NoFileHard = raiseNoFile()
	out.NoFileNeed = fdBudget(cfg, len(plan))
	if note := fdNote(out.NoFile, out.NoFileHard, out.NoFileNeed); note != "" {
		out.Notes = append(out.Notes, note)
	}
	if out.Notes == nil {
		out.Notes = []string{}
	}
	for _, a := range plan {
		out.Assignments = append(out.Assignments, assignJSON{
			Queue: a.Queue, CPU: a.CPU, Node: topo.NodeOf(a.CPU),
			Siblings: pin.FormatCPUs(topo.SiblingsOf(a.CPU)), Isolated: topo.IsIsolated(a.CPU),
		})
	}
	if asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	printPlan(stdout, out, cfg.CPUs != nil)
	return 0
}

func printPlan(w io.Writer, p planJSON, requested bool) {
	nic := "none (virtual device or single-node machine: no NUMA preference)"
	if p.NICNode >= 0 {
		nic = strconv.Itoa(p.NICNode)
	}
	source := "planned by pin.PlanFor"
	if requested {
		source = "from the config's cpus:"
	}
	fmt.Fprintf(w, "interface %s: %s, NIC NUMA node %s\n", p.Interface, count(p.Queues, "rx queue"), nic)
	fmt.Fprintf(w, "allowed CPUs %s, isolated %s; CPUs %s\n\n", p.Allowed, p.Isolated, source)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tCPU\tNODE\tSMT SIBLINGS\tISOLATED")
	for _, a := range p.Assignments {
		node := "-"
		if a.Node >= 0 {
			node = strconv.Itoa(a.Node)
		}
		iso := "no"
		if a.Isolated {
			iso = "yes"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", a.Queue, a.CPU, node, a.Siblings, iso)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nfile descriptors: limit %d (hard %d), raild needs at most %d\n", p.NoFile, p.NoFileHard, p.NoFileNeed)
	fmt.Fprintf(w, "connection tables: %d entries per worker, %s each, %s for %s (allocated at start, never grown), on %s\n",
		p.ConntrackEntries, mib(p.ConntrackBytes), mib(p.ConntrackTotal), count(len(p.Assignments), "worker"), pagesSummary(p.ConntrackPages))
	if len(p.Notes) == 0 {
		fmt.Fprintln(w, "\nno notes: one worker per core, nothing shared")
		return
	}
	fmt.Fprintln(w, "\nnotes:")
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  - %s\n", strings.TrimSpace(n))
	}
}

// pagesSummary says what backs the workers' tables: "hugetlb 2MiB pages",
// or "hugetlb 2MiB pages (2 workers), base pages (2 workers)".
func pagesSummary(pages []string) string {
	var kinds []string
	n := map[string]int{}
	for _, p := range pages {
		if n[p] == 0 {
			kinds = append(kinds, p)
		}
		n[p]++
	}
	if len(kinds) == 1 {
		return kinds[0]
	}
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%s (%s)", k, count(n[k], "worker"))
	}
	return strings.Join(kinds, ", ")
}

// pagesNote is the plan's note when some worker's tables, larger than
// what a TLB of base pages reaches (a few MiB: tablesTLB), would be on
// base pages: a lookup then walks the page tables, and huge pages take
// 11–15 % off a packet at 1M and 4M flows (bench/README.md).
func pagesNote(pages []pipeline.Pages, perWorker int64, entries uint32) string {
	const tablesTLB = 16 << 20
	if perWorker < tablesTLB {
		return ""
	}
	small := 0
	for _, p := range pages {
		if p == pipeline.PagesSmall {
			small++
		}
	}
	if small == 0 {
		return ""
	}
	need := pipeline.HugePagesFor(entries)
	return fmt.Sprintf("%s would have connection tables on base pages: reserve 2 MiB pages before raild starts (sysctl vm.nr_hugepages=%d, %d a worker, on top of what else uses them) or let shared memory take transparent ones (echo advise > /sys/kernel/mm/transparent_hugepage/shmem_enabled); huge pages take 11-15%% off a packet's cost with millions of flows",
		count(small, "worker"), need*int64(len(pages)), need)
}
