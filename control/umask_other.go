//go:build !unix

package control

// umask does nothing where there is no umask.
func umask(int) func() { return func() {} }
