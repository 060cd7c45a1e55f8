//go:build unix

package control

import "syscall"

// umask sets the process's file mode mask and returns a function that puts
// the old one back.
func umask(mask int) func() {
	old := syscall.Umask(mask)
	return func() { syscall.Umask(old) }
}
