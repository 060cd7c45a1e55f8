// Command railctl is the admin CLI of a running raild: it talks to the
// admin API (docs/API.md) over raild's unix socket, or over TCP with a
// bearer token.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rail-lb/rail/control"
)

// note is printed after every change made through the API.
const note = "note: API changes last until the next reload or restart of raild; write them to the config file to keep them"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// cli holds the global flags.
type cli struct {
	socket, address, tokenFile, output string
	stdout, stderr                     io.Writer
}

func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	markUsage(root)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "railctl: %v\n", err)
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError is a mistake on the command line (an unknown command or
// flag, a missing or extra argument, a value that does not parse):
// railctl exits 2 for it, and 1 for everything else (raild unreachable,
// the API refused).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// markUsage makes every argument-count error under cmd a usageError, and
// gives each command that only groups others (railctl, railctl backend)
// a usage error for a missing or unknown subcommand, where cobra would
// print the help and exit 0.
func markUsage(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	if !cmd.Runnable() && cmd.HasSubCommands() {
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(c *cobra.Command, args []string) error {
			path := c.CommandPath()
			if len(args) == 0 {
				return usageError{fmt.Errorf("%s needs a command (%s --help lists them)", path, path)}
			}
			hint := ""
			if c.SuggestionsMinimumDistance <= 0 {
				c.SuggestionsMinimumDistance = 2 // cobra's default, set only where it suggests itself
			}
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				hint = fmt.Sprintf(": did you mean %s?", strings.Join(s, " or "))
			}
			return usageError{fmt.Errorf("unknown command %q for %q%s (%s --help lists the commands)", args[0], path, hint, path)}
		}
	}
	for _, sub := range cmd.Commands() {
		markUsage(sub)
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	c := &cli{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "railctl",
		Short:         "Control a running raild through its admin API",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if c.output != "text" && c.output != "json" {
				return usageError{fmt.Errorf("--output %q: use text or json", c.output)}
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&c.socket, "socket", control.DefaultAPISocket, "raild's admin API socket")
	pf.StringVar(&c.address, "address", "", "use the API over TCP at host:port instead of the socket")
	pf.StringVar(&c.tokenFile, "token-file", "", "file holding the bearer token (with --address)")
	pf.StringVarP(&c.output, "output", "o", "text", "output format: text or json")

	root.AddCommand(&cobra.Command{
		Use:   "services",
		Short: "List services with their backends, weights, health and packet counts",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var v []control.ServiceView
			if err := c.call("GET", "/v1/services", nil, &v); err != nil {
				return err
			}
			return c.print(v, func(w io.Writer) { printServices(w, v) })
		},
	})

	backend := &cobra.Command{Use: "backend", Short: "Change a service's backends (until the next reload or restart)"}
	var weight uint32
	var name string
	add := &cobra.Command{
		Use:   "add SERVICE ADDRESS",
		Short: "Add a backend",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			req := control.BackendRequest{Address: a[1], Name: name}
			if cmd.Flags().Changed("weight") {
				req.Weight = &weight
			}
			var v control.BackendView
			if err := c.call("POST", "/v1/services/"+url.PathEscape(a[0])+"/backends", req, &v); err != nil {
				return err
			}
			return c.changed(v, "added %s to %s (weight %d)", v.Address, a[0], v.Weight)
		},
	}
	add.Flags().Uint32Var(&weight, "weight", control.DefaultWeight, "the backend's weight")
	add.Flags().StringVar(&name, "name", "", "the backend's Maglev key (default: its address)")
	remove := &cobra.Command{
		Use:   "remove SERVICE ADDRESS",
		Short: "Remove a backend (its flows move to the others)",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, a []string) error {
			if err := c.call("DELETE", backendPath(a[0], a[1]), nil, nil); err != nil {
				return err
			}
			return c.changed(map[string]string{"removed": a[1], "service": a[0]}, "removed %s from %s", a[1], a[0])
		},
	}
	setWeight := &cobra.Command{
		Use:   "weight SERVICE ADDRESS WEIGHT",
		Short: "Set a backend's weight (0 drains it)",
		Args:  cobra.ExactArgs(3),
		RunE: func(_ *cobra.Command, a []string) error {
			w, err := strconv.ParseUint(a[2], 10, 32)
			if err != nil {
				return usageError{fmt.Errorf("weight %q: a whole number from 0 to 4294967295", a[2])}
			}
			return c.setWeight(a[0], a[1], uint32(w))
		},
	}
	drain := &cobra.Command{
		Use:   "drain SERVICE ADDRESS",
		Short: "Drain a backend: weight 0, no new flows, existing flows stay",
		Args:  cobra.ExactArgs(2),
		RunE:  func(_ *cobra.Command, a []string) error { return c.setWeight(a[0], a[1], 0) },
	}
	backend.AddCommand(add, remove, setWeight, drain)
	root.AddCommand(backend)

	root.AddCommand(&cobra.Command{
		Use:   "conntrack",
		Short: "Summarize each core's connection table",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var v []control.CoreConntrack
			if err := c.call("GET", "/v1/conntrack", nil, &v); err != nil {
				return err
			}
			return c.print(v, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "QUEUE\tCPU\tENTRIES\tSLOTS\tHITS\tMISSES")
				for _, q := range v {
					fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\n", q.Queue, q.CPU, q.Entries, q.Slots, q.Hits, q.Misses)
				}
				tw.Flush()
			})
		},
	})

	var dcid string
	trace := &cobra.Command{
		Use:   "trace SRC:PORT DST:PORT PROTO",
		Short: "Show what this node does with a flow now: service, Maglev pick, connection entries, verdicts",
		Example: "  railctl trace 198.51.100.7:40000 192.0.2.10:80 tcp\n" +
			"  railctl trace [2001:db8:c::7]:40000 [2001:db8:100::10]:443 tcp -o json\n" +
			"  railctl trace 198.51.100.7:40000 192.0.2.10:443 udp --dcid 2a0a01c4605e4504cc4f0badc0ffee01",
		Args: cobra.ExactArgs(3),
		RunE: func(_ *cobra.Command, a []string) error {
			q := url.Values{"src": {a[0]}, "dst": {a[1]}, "proto": {strings.ToLower(a[2])}}
			if dcid != "" {
				q.Set("dcid", dcid)
			}
			var v control.TraceView
			if err := c.call("GET", "/v1/trace?"+q.Encode(), nil, &v); err != nil {
				return err
			}
			return c.print(v, func(w io.Writer) { printTrace(w, v) })
		},
	}
	trace.Flags().StringVar(&dcid, "dcid", "", "a QUIC destination connection ID (hex): decode its QUIC-LB server id for the service (docs/QUIC.md)")
	root.AddCommand(trace)

	root.AddCommand(captureCmd(c))

	root.AddCommand(&cobra.Command{
		Use:   "bgp",
		Short: "Show the BGP sessions and what is announced, with which communities and why",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var v control.BGPView
			if err := c.call("GET", "/v1/bgp", nil, &v); err != nil {
				return err
			}
			return c.print(v, func(w io.Writer) { printBGP(w, v) })
		},
	})
	var undrain bool
	nodeDrain := &cobra.Command{
		Use:   "drain",
		Short: "Drain this node: announce its routes with GRACEFUL_SHUTDOWN, then withdraw them after drain_time (it keeps forwarding)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			method, what := "POST", "draining: routes carry GRACEFUL_SHUTDOWN, withdrawn after drain_time"
			if undrain {
				method, what = "DELETE", "drain ended: routes announced as before"
			}
			if err := c.call(method, "/v1/drain", nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), what)
			return nil
		},
	}
	nodeDrain.Flags().BoolVar(&undrain, "undo", false, "end a drain: announce again")
	root.AddCommand(nodeDrain)

	var watch bool
	var interval time.Duration
	var count int
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Packets per second per core and per backend (--watch: live, until Ctrl-C)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if interval <= 0 {
				return usageError{fmt.Errorf("--interval %v: must be positive", interval)}
			}
			if !watch {
				count = 1
			}
			return c.stats(interval, count, watch)
		},
	}
	stats.Flags().BoolVarP(&watch, "watch", "w", false, "redraw every interval until Ctrl-C")
	stats.Flags().DurationVar(&interval, "interval", time.Second, "the time the rates are measured over")
	stats.Flags().IntVar(&count, "count", 0, "with --watch: stop after this many screens (0: never)")
	root.AddCommand(stats)

	root.AddCommand(&cobra.Command{
		Use:   "reload",
		Short: "Re-read the config file and apply it (API changes are replaced by the file)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var v control.ReloadResult
			if err := c.call("POST", "/v1/reload", nil, &v); err != nil {
				return err
			}
			return c.print(v, func(w io.Writer) {
				fmt.Fprintf(w, "reloaded: generation %d, tables rebuilt: %s\n", v.Generation, listOr(v.Rebuilt, "none"))
				for _, d := range v.Discarded {
					fmt.Fprintf(w, "replaced by the file: %s\n", d)
				}
				if len(v.Restart) > 0 {
					fmt.Fprintf(w, "changed, applied at the next start only: %s\n", strings.Join(v.Restart, ", "))
				}
				for _, x := range v.Warnings {
					fmt.Fprintln(w, x)
				}
			})
		},
	})
	return root
}

func listOr(l []string, empty string) string {
	if len(l) == 0 {
		return empty
	}
	return strings.Join(l, ", ")
}

func backendPath(service, addr string) string {
	return "/v1/services/" + url.PathEscape(service) + "/backends/" + url.PathEscape(addr)
}

func (c *cli) setWeight(service, addr string, w uint32) error {
	var v control.BackendView
	if err := c.call("PUT", backendPath(service, addr), map[string]uint32{"weight": w}, &v); err != nil {
		return err
	}
	what := fmt.Sprintf("weight of %s in %s is %d", v.Address, service, v.Weight)
	if w == 0 {
		what = fmt.Sprintf("drained %s in %s: no new flows, existing flows stay", v.Address, service)
	}
	return c.changed(v, "%s", what)
}

// changed reports a change, with the note on how long it lasts.
func (c *cli) changed(v any, format string, args ...any) error {
	return c.print(v, func(w io.Writer) {
		fmt.Fprintf(w, format+"\n", args...)
		fmt.Fprintln(c.stderr, note)
	})
}

func (c *cli) print(v any, text func(io.Writer)) error {
	if c.output == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(c.stdout)
	return nil
}

func printServices(w io.Writer, v []control.ServiceView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tVIP\tPORT\tPROTO\tBACKEND\tWEIGHT\tHEALTHY\tPACKETS\tSOURCE")
	for _, s := range v {
		if len(s.Backends) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t-\t\t\t\t\n", s.Name, s.VIP, s.Port, s.Protocol)
		}
		for _, b := range s.Backends {
			weight := strconv.FormatUint(uint64(b.Weight), 10)
			if b.ConfigWeight != nil {
				weight += fmt.Sprintf(" (file: %d)", *b.ConfigWeight)
			}
			health := "yes"
			if !b.Healthy {
				health = "DOWN"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.VIP, s.Port, s.Protocol, b.Address, weight, health, b.Packets, b.Source)
		}
		if !s.Available {
			fmt.Fprintf(tw, "%s\t\t\t\t(no usable backend: new flows are dropped)\t\t\t\t\n", s.Name)
		}
	}
	tw.Flush()
}

// stats reads the counters every interval and prints the rates.
func (c *cli) stats(interval time.Duration, count int, watch bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var prev control.Stats
	if err := c.call("GET", "/v1/stats", nil, &prev); err != nil {
		return err
	}
	for n := 0; count == 0 || n < count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
		var cur control.Stats
		if err := c.call("GET", "/v1/stats", nil, &cur); err != nil {
			return err
		}
		r := rates(prev, cur)
		if c.output == "json" {
			if err := c.print(r, nil); err != nil {
				return err
			}
		} else {
			if watch {
				fmt.Fprint(c.stdout, "\x1b[H\x1b[2J") // home, clear
			}
			printRates(c.stdout, r)
		}
		prev = cur
	}
	return nil
}

// Rates are packets per second between two reads of /v1/stats.
type Rates struct {
	Seconds    float64       `json:"seconds"`
	Generation uint64        `json:"generation"`
	Cores      []CoreRate    `json:"cores"`
	Backends   []BackendRate `json:"backends"`
}

type CoreRate struct {
	Queue int                `json:"queue"`
	CPU   int                `json:"cpu"`
	RX    float64            `json:"rx_pps"`
	TX    float64            `json:"tx_pps"`
	Drops map[string]float64 `json:"drops_pps"`
}

type BackendRate struct {
	Service string  `json:"service"`
	Address string  `json:"address"`
	PPS     float64 `json:"pps"`
	Share   float64 `json:"share"` // of the service's packets
}

func rates(a, b control.Stats) Rates {
	dt := b.Time.Sub(a.Time).Seconds()
	if dt <= 0 {
		dt = 1
	}
	per := func(x, y uint64) float64 {
		if y < x {
			return 0
		}
		return float64(y-x) / dt
	}
	r := Rates{Seconds: dt, Generation: b.Generation}
	old := map[int]control.CoreStats{}
	for _, c := range a.Cores {
		old[c.Queue] = c
	}
	for _, c := range b.Cores {
		o := old[c.Queue]
		cr := CoreRate{Queue: c.Queue, CPU: c.CPU, RX: per(o.RX, c.RX), TX: per(o.TX, c.TX), Drops: map[string]float64{}}
		for k, v := range c.Drops {
			if d := per(o.Drops[k], v); d > 0 {
				cr.Drops[k] = d
			}
		}
		r.Cores = append(r.Cores, cr)
	}
	type key struct{ s, a string }
	oldB := map[key]uint64{}
	for _, x := range a.Backends {
		oldB[key{x.Service, x.Address}] = x.Packets
	}
	total := map[string]float64{}
	for _, x := range b.Backends {
		p := per(oldB[key{x.Service, x.Address}], x.Packets)
		r.Backends = append(r.Backends, BackendRate{Service: x.Service, Address: x.Address, PPS: p})
		total[x.Service] += p
	}
	for i := range r.Backends {
		if t := total[r.Backends[i].Service]; t > 0 {
			r.Backends[i].Share = r.Backends[i].PPS / t
		}
	}
	return r
}

func printRates(w io.Writer, r Rates) {
	fmt.Fprintf(w, "rail: packets/s over %.1fs (snapshot generation %d)\n\n", r.Seconds, r.Generation)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "QUEUE\tCPU\tRX/s\tTX/s\tDROPS/s\t")
	var rx, tx float64
	for _, c := range r.Cores {
		var names []string
		for k, v := range c.Drops {
			names = append(names, fmt.Sprintf("%s %.0f", k, v))
		}
		sort.Strings(names)
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%s\t\n", c.Queue, c.CPU, c.RX, c.TX, listOr(names, "0"))
		rx, tx = rx+c.RX, tx+c.TX
	}
	fmt.Fprintf(tw, "all\t\t%.0f\t%.0f\t\t\n", rx, tx)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tBACKEND\tPKTS/s\tSHARE\t")
	for _, b := range r.Backends {
		bar := strings.Repeat("#", int(b.Share*30+0.5))
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%5.1f%% %s\t\n", b.Service, b.Address, b.PPS, 100*b.Share, bar)
	}
	tw.Flush()
}

// call sends one request to the API and decodes the JSON answer into out
// (when not nil). A 4xx or 5xx answer is returned as its one-line reason.
func (c *cli) call(method, path string, body, out any) error {
	client, base, token, err := c.client()
	if err != nil {
		return err
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return apiError(method, path, resp, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %v", method, path, err)
	}
	return nil
}

// unreachable is the error for a request that got no answer.
func (c *cli) unreachable(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	where := c.socket
	if c.address != "" {
		where = c.address
	}
	return fmt.Errorf("cannot reach raild at %s: %v", where, err)
}

// apiError is the API's one-line error from a 4xx or 5xx answer.
func apiError(method, path string, resp *http.Response, data []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return fmt.Errorf("%s %s: %s", method, path, resp.Status)
}

func (c *cli) client() (*http.Client, string, string, error) {
	if c.address != "" {
		if c.tokenFile == "" {
			return nil, "", "", errors.New("--address needs --token-file")
		}
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, "", "", fmt.Errorf("--token-file: %w", err)
		}
		return &http.Client{Timeout: 30 * time.Second}, "http://" + c.address, strings.TrimSpace(string(b)), nil
	}
	sock := c.socket
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, "http://raild", "", nil
}

func printBGP(w io.Writer, v control.BGPView) {
	state := "forwarding"
	if !v.Forwarding {
		state = "not forwarding (nothing is announced)"
	}
	if v.Draining {
		state += ", draining"
	}
	fmt.Fprintf(w, "AS %d, router id %s, %s\n\n", v.ASN, v.RouterID, state)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tAS\tSTATE\tUPTIME\tPREFIXES SENT\tUPDATES SENT\tLAST ERROR")
	for _, p := range v.Peers {
		up := p.Uptime
		if up == "" {
			up = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%s\n", p.Address, p.ASN, p.State, up, p.PrefixesOut, p.UpdatesOut, p.LastError)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tANNOUNCED\tNEXT HOP\tCOMMUNITIES\tSERVICES\tWHY")
	for _, a := range v.Announcements {
		yes := "no"
		if a.Announced {
			yes = "yes"
		}
		comms := strings.Join(a.Communities, " ")
		if comms == "" {
			comms = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Prefix, yes, a.NextHop, comms, strings.Join(a.Services, ","), a.Why)
	}
	tw.Flush()
}

// printTrace prints a trace as a summary.
func printTrace(w io.Writer, v control.TraceView) {
	fmt.Fprintf(w, "flow     %s -> %s %s (snapshot generation %d)\n", v.Src, v.Dst, v.Protocol, v.Generation)
	if v.Service == nil {
		fmt.Fprintf(w, "service  none\nverdict  %s\n", v.Verdict)
		return
	}
	sv := v.Service
	tr := ""
	if sv.Transition {
		tr = ", second chance: backends in transition"
	}
	fmt.Fprintf(w, "service  %s (%s port %d %s)%s\n", sv.Name, sv.VIP, sv.Port, sv.Protocol, tr)
	fmt.Fprintf(w, "hash     %s\n", v.Hash)
	fmt.Fprintf(w, "maglev   %s\n", traceBackend(v.Maglev))
	if v.Previous != nil {
		fmt.Fprintf(w, "before   %s (the table before the transition)\n", traceBackend(v.Previous))
	}
	if len(v.Connections) == 0 {
		fmt.Fprintln(w, "entries  none on any worker")
	}
	for i, c := range v.Connections {
		label := "entries "
		if i > 0 {
			label = "        "
		}
		to := "(backend gone)"
		if c.Backend != nil {
			to = c.Backend.Address
		}
		when := fmt.Sprintf("expires in %ds", c.DeadlineSeconds)
		if c.Expired {
			when = "expired (ignored)"
		}
		fmt.Fprintf(w, "%s queue %d (cpu %d): %s, %s, idle %ds, %s\n", label, c.Queue, c.CPU, to, c.State, c.IdleSeconds, when)
	}
	if q := v.QUIC; q != nil {
		switch {
		case !q.Configured:
			fmt.Fprintf(w, "quic     dcid %s: the service has no quic option (routed by the 5-tuple)\n", q.DCID)
		case q.ServerID == "":
			fmt.Fprintf(w, "quic     dcid %s (config id %d): %s\n", q.DCID, q.ConfigID, q.Why)
		case q.Routed:
			fmt.Fprintf(w, "quic     dcid %s: config id %d, server id %s -> %s\n", q.DCID, q.ConfigID, q.ServerID, traceBackend(q.Backend))
		default:
			fmt.Fprintf(w, "quic     dcid %s: config id %d, server id %s: %s (routed by the 5-tuple)\n", q.DCID, q.ConfigID, q.ServerID, q.Why)
		}
	}
	fmt.Fprintf(w, "SYN      %s\n", traceVerdict(v.SYN))
	fmt.Fprintf(w, "mid-flow %s\n", traceVerdict(v.Mid))
}

func traceBackend(b *control.TraceBackend) string {
	if b == nil {
		return "no backend (the table is empty: new flows are dropped)"
	}
	s := b.Address
	if b.Name != "" {
		s += " (" + b.Name + ")"
	}
	health := "healthy"
	if !b.Healthy {
		health = "DOWN"
	}
	s += fmt.Sprintf(": %s, weight %d, %s", health, b.Weight, b.State)
	if b.Remote {
		s += ", another Rail node"
	}
	if b.NextHop != "" {
		s += ", next hop " + b.NextHop
	}
	return s
}

func traceVerdict(t control.TraceVerdict) string {
	s := t.Verdict
	if t.Reason != "" {
		s += " (" + t.Reason + ")"
	}
	if t.Backend != nil {
		s += " to " + t.Backend.Address + ", by " + t.By
	}
	if t.SecondHop != nil {
		s += ", second hop " + t.SecondHop.Address
	}
	return s
}
