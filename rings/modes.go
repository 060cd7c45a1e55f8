package rings

import "fmt"

// ZeroCopy selects how Open binds the socket to the NIC queue.
type ZeroCopy int

const (
	// ZeroCopyAuto tries XDP_ZEROCOPY and falls back to XDP_COPY.
	ZeroCopyAuto ZeroCopy = iota
	// ZeroCopyOn requires XDP_ZEROCOPY; Open fails if the driver can't.
	ZeroCopyOn
	// ZeroCopyOff always binds with XDP_COPY.
	ZeroCopyOff
)

func (z ZeroCopy) String() string {
	switch z {
	case ZeroCopyAuto:
		return "auto"
	case ZeroCopyOn:
		return "on"
	case ZeroCopyOff:
		return "off"
	}
	return fmt.Sprintf("ZeroCopy(%d)", int(z))
}

// ParseZeroCopy parses the configuration spelling "auto", "on" or "off".
func ParseZeroCopy(s string) (ZeroCopy, error) {
	switch s {
	case "auto":
		return ZeroCopyAuto, nil
	case "on":
		return ZeroCopyOn, nil
	case "off":
		return ZeroCopyOff, nil
	}
	return 0, fmt.Errorf("rings: zero_copy %q: want auto, on or off", s)
}

// XDPMode selects how Steer.Attach hooks the program into the NIC.
type XDPMode int

const (
	// XDPAuto tries native (driver) mode, then generic (SKB) mode.
	XDPAuto XDPMode = iota
	// XDPNative attaches in the driver's receive path (XDP_FLAGS_DRV_MODE).
	XDPNative
	// XDPGeneric attaches after SKB allocation (XDP_FLAGS_SKB_MODE); works on any NIC, slowly.
	XDPGeneric
)

func (m XDPMode) String() string {
	switch m {
	case XDPAuto:
		return "auto"
	case XDPNative:
		return "native"
	case XDPGeneric:
		return "generic"
	}
	return fmt.Sprintf("XDPMode(%d)", int(m))
}

// ParseXDPMode parses the configuration spelling "auto", "native" or "generic".
func ParseXDPMode(s string) (XDPMode, error) {
	switch s {
	case "auto":
		return XDPAuto, nil
	case "native":
		return XDPNative, nil
	case "generic":
		return XDPGeneric, nil
	}
	return 0, fmt.Errorf("rings: xdp_mode %q: want auto, native or generic", s)
}
