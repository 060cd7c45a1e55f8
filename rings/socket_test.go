package rings

import (
	"errors"
	"strings"
	"testing"
)

func TestOptsValidate(t *testing.T) {
	if err := DefaultOpts().Validate(); err != nil {
		t.Fatalf("DefaultOpts: %v", err)
	}
	cases := []struct {
		name string
		edit func(*Opts)
		want string
	}{
		{"frame size 3000", func(o *Opts) { o.FrameSize = 3000 }, "FrameSize 3000: must be 2048 or 4096"},
		{"frame size 8192", func(o *Opts) { o.FrameSize = 8192 }, "FrameSize 8192"},
		{"no frames", func(o *Opts) { o.FrameCount = 0 }, "FrameCount 0"},
		{"too many frames", func(o *Opts) { o.FrameCount = 1<<20 + 1 }, "FrameCount 1048577"},
		{"headroom too big", func(o *Opts) { o.FrameSize = 2048; o.Headroom = 512 }, "Headroom 512: leaves 1280 bytes"},
		{"fill not power of two", func(o *Opts) { o.FillSize = 1000 }, "FillSize 1000: must be a power of two between 1 and 1048576 (try 1024)"},
		{"completion zero", func(o *Opts) { o.CompletionSize = 0 }, "CompletionSize 0"},
		{"rx too big", func(o *Opts) { o.RxSize = 1 << 21 }, "RxSize 2097152"},
		{"tx not power of two", func(o *Opts) { o.TxSize = 3 }, "TxSize 3"},
		{"zero copy 7", func(o *Opts) { o.ZeroCopy = 7 }, "ZeroCopy 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := DefaultOpts()
			c.edit(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalidOpts) {
				t.Errorf("Validate() = %v, want an ErrInvalidOpts containing %q", err, c.want)
			}
		})
	}
	o := DefaultOpts()
	o.FrameSize, o.Headroom = 2048, 2048-256-1518
	if err := o.Validate(); err != nil {
		t.Errorf("largest headroom for 2048-byte frames: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, z := range []ZeroCopy{ZeroCopyAuto, ZeroCopyOn, ZeroCopyOff} {
		if got, err := ParseZeroCopy(z.String()); err != nil || got != z {
			t.Errorf("ParseZeroCopy(%q) = %v, %v", z.String(), got, err)
		}
	}
	for _, m := range []XDPMode{XDPAuto, XDPNative, XDPGeneric} {
		if got, err := ParseXDPMode(m.String()); err != nil || got != m {
			t.Errorf("ParseXDPMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseZeroCopy("yes"); err == nil {
		t.Error("ParseZeroCopy(yes) succeeded")
	}
	if _, err := ParseXDPMode("offload"); err == nil {
		t.Error("ParseXDPMode(offload) succeeded")
	}
	if ZeroCopy(9).String() != "ZeroCopy(9)" || XDPMode(9).String() != "XDPMode(9)" {
		t.Error("String of unknown values")
	}
}

func TestRingWrap(t *testing.T) {
	var p, c, f uint32 = 0xfffffffe, 0xfffffffe, 0
	r := newRing(&p, &c, &f, 4)
	if n := r.reserve(8); n != 4 {
		t.Fatalf("reserve on empty 4-ring = %d", n)
	}
	r.submit(3) // producer wraps to 1
	if p != 1 {
		t.Fatalf("producer = %#x", p)
	}
	if n := r.reserve(4); n != 1 {
		t.Fatalf("reserve with 3 used = %d", n)
	}
	var q = r // consumer view of the same indices
	if n := q.peek(8); n != 3 {
		t.Fatalf("peek = %d", n)
	}
	q.release(2)
	if n := r.reserve(4); n != 3 {
		t.Fatalf("reserve after release = %d", n)
	}
	if r.pending() != 1 {
		t.Fatalf("pending = %d", r.pending())
	}
	f = ringNeedWakeup
	if !r.needWakeup() {
		t.Fatal("needWakeup")
	}
}

func TestFreeStack(t *testing.T) {
	s := newFreeStack(2)
	if _, ok := s.pop(); ok {
		t.Fatal("pop from empty")
	}
	if !s.push(1) || !s.push(2) || s.push(3) {
		t.Fatal("push beyond capacity must fail, not grow")
	}
	if a, _ := s.pop(); a != 2 {
		t.Fatal("LIFO")
	}
}
