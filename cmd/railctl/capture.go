package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/rail-lb/rail/control"
)

// captureCmd is `railctl capture`: GET /v1/capture into a file or stdout.
func captureCmd(c *cli) *cobra.Command {
	var file string
	var count, snaplen int
	var duration time.Duration
	filters := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "capture -w FILE|- [filters]",
		Short: "Capture what the workers see as pcapng: each packet as received and as transmitted, with verdict, reason, service, backend, queue and CPU",
		Example: "  railctl capture --service web --count 100 -w web.pcapng\n" +
			"  railctl capture --verdict drop --duration 10s -w - | tshark -r - -T fields -e frame.comment\n" +
			"  railctl capture --src 198.51.100.7 --dport 443 -w - | tcpdump -nr -",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("-w FILE is required (-w - writes to stdout, e.g. | tshark -r -)")
			}
			q := url.Values{}
			for k, v := range filters {
				if *v != "" {
					q.Set(k, *v)
				}
			}
			if cmd.Flags().Changed("count") {
				q.Set("count", strconv.Itoa(count))
			}
			if cmd.Flags().Changed("duration") {
				q.Set("duration", duration.String())
			}
			if cmd.Flags().Changed("snaplen") {
				q.Set("snaplen", strconv.Itoa(snaplen))
			}
			return c.capture(q, file)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "write", "w", "", "write the pcapng to FILE (- for stdout)")
	for _, fl := range []struct{ name, help string }{
		{"service", "only packets of this service"},
		{"backend", "only packets forwarded to this backend address"},
		{"verdict", "only these verdicts: tx, pass, drop (comma-separated)"},
		{"reason", "only these reasons, e.g. no_backend,malformed (comma-separated; none: forwarded)"},
		{"src", "only this client (inner source) address"},
		{"dst", "only this inner destination address (a VIP)"},
		{"sport", "only this inner source port"},
		{"dport", "only this inner destination port"},
		{"proto", "only this inner protocol: tcp, udp, icmp, icmpv6 or a number"},
	} {
		filters[fl.name] = f.String(fl.name, "", fl.help)
	}
	f.IntVar(&count, "count", 0, "stop after this many packets (as received; 0: no limit)")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	f.IntVar(&snaplen, "snaplen", 4096, "keep at most this many bytes of each frame")
	return cmd
}

// capture streams GET /v1/capture?q into file until raild ends it or
// Ctrl-C, then says on stderr how many packets it got and lost.
func (c *cli) capture(q url.Values, file string) error {
	client, base, token, err := c.client()
	if err != nil {
		return err
	}
	client.Timeout = 0 // a capture lasts as long as it lasts
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	path := "/v1/capture?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(resp.Body)
		return apiError("GET", path, resp, data)
	}
	out := c.stdout
	if file != "-" {
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	_, err = io.Copy(out, resp.Body)
	interrupted := ctx.Err() != nil
	if err != nil && !interrupted {
		return fmt.Errorf("capture cut: %v", err)
	}
	got, lost := resp.Trailer.Get(control.CapturePacketsTrailer), resp.Trailer.Get(control.CaptureDroppedTrailer)
	switch {
	case got != "":
		fmt.Fprintf(c.stderr, "%s packets captured, %s lost because the reader was slow\n", got, lost)
	case interrupted:
		fmt.Fprintln(c.stderr, "capture stopped")
	}
	return nil
}
