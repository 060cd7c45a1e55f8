package flaghelp

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestPrint(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("config", "", "the configuration to read")
	fs.Int("packets", 1000, "packets to send")
	fs.Duration("wait", time.Second, "how long")
	fs.Bool("ipv6", false, "IPv6 flows")
	fs.String("out", "", "write the `CSV` here")
	var b strings.Builder
	Print(&b, "x run [flags]", fs)
	want := `usage: x run [flags]

flags:
  --config FILE
        the configuration to read
  --ipv6
        IPv6 flows
  --out CSV
        write the CSV here
  --packets N
        packets to send (default 1000)
  --wait D
        how long (default 1s)
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
