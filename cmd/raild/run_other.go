//go:build !linux

package main

import (
	"fmt"
	"io"
)

func cmdRun(args []string, stderr io.Writer) int {
	fmt.Fprintln(stderr, "raild run: AF_XDP needs Linux; replay and check work here")
	return 1
}
