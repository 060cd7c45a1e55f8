package control

import (
	"fmt"
	"net/netip"
)

// addrProblem says why a is no usable address for any key (vip, backend,
// local address, peer), or "" if it is.
func addrProblem(a netip.Addr) string {
	switch {
	case a.Zone() != "":
		return fmt.Sprintf("%s: an address with a zone cannot be used", a)
	case a.Is4In6():
		return fmt.Sprintf("%s is an IPv4-mapped IPv6 address: write it as %s", a, a.Unmap())
	case a.IsUnspecified():
		return fmt.Sprintf("%s is the unspecified address", a)
	case a.IsMulticast():
		return fmt.Sprintf("%s is a multicast address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Sprintf("%s is the broadcast address", a)
	}
	return ""
}

// backendProblem says why a cannot be a backend beyond addrProblem: a
// backend is another host, reached over the network with GRE, so neither
// a loopback nor a link-local address can be one.
func backendProblem(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return fmt.Sprintf("%s is a loopback address: a backend must be another host", a)
	case a.IsLinkLocalUnicast():
		return fmt.Sprintf("%s is a link-local address: a backend needs an address routable from this node", a)
	}
	return ""
}
