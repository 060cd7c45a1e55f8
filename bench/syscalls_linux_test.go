package bench

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rail-lb/rail/internal/privtest"
)

// TestCountSyscalls: the counter sees this process's own calls, by number.
func TestCountSyscalls(t *testing.T) {
	privtest.Require(t)
	c, err := CountSyscalls(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		unix.Syscall(unix.SYS_GETPPID, 0, 0, 0)
	}
	after, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	d := after.Sub(before)
	if n := d[unix.SYS_GETPPID]; n != 1000 {
		t.Errorf("counted %d getppid calls, want 1000 (all: %v)", n, d)
	}
	t.Logf("mix per 1000: %s", d.Mix(1000, 4))
}
