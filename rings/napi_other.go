//go:build !linux

package rings

// NAPI is one NAPI instance (Linux only).
type NAPI struct {
	ID              uint32
	Ifindex, IRQ    int
	PID             int
	DeferHardIRQs   uint32
	GROFlushTimeout uint64
}

// NAPIs fails with ErrNotSupported.
func NAPIs(ifindex int) ([]NAPI, error) { return nil, ErrNotSupported }

// GetNAPI fails with ErrNotSupported.
func GetNAPI(id uint32) (NAPI, error) { return NAPI{}, ErrNotSupported }

// SetNAPI fails with ErrNotSupported.
func SetNAPI(id uint32, deferHardIRQs uint32, groFlushTimeout uint64) error { return ErrNotSupported }

// QueueNAPI fails with ErrNotSupported.
func QueueNAPI(ifindex, queue int) (uint32, error) { return 0, ErrNotSupported }
