package rings

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The NAPI side of busy polling: which NAPI instance serves a queue, and
// its napi_defer_hard_irqs and gro_flush_timeout, read and set per
// instance over the netdev generic netlink family (Linux ≥ 6.13 for
// NAPI_SET; the family itself is 6.5+). Unlike the sysfs files of the
// same names, NAPI_SET needs only CAP_NET_ADMIN in the interface's
// network namespace.

// NAPI is one NAPI instance as NETDEV_CMD_NAPI_GET reports it.
type NAPI struct {
	ID      uint32
	Ifindex int
	// IRQ is the instance's interrupt, -1 when it has none (a veth).
	IRQ int
	// PID is its kernel thread when the instance is threaded, else 0.
	PID int
	// DeferHardIRQs and GROFlushTimeout (ns) are the instance's own
	// napi_defer_hard_irqs and gro_flush_timeout.
	DeferHardIRQs   uint32
	GROFlushTimeout uint64
}

// ErrNoNetdevFamily is returned when the kernel has no netdev netlink
// family (before Linux 6.5) or no NAPI_SET in it (before 6.13).
var ErrNoNetdevFamily = errors.New("rings: the kernel's netdev netlink family has no NAPI commands (Linux ≥ 6.13 needed)")

// include/uapi/linux/netdev.h
const (
	netdevCmdQueueGet = 10
	netdevCmdNAPIGet  = 11
	netdevCmdNAPISet  = 14

	netdevANAPIIfindex       = 1
	netdevANAPIID            = 2
	netdevANAPIIRQ           = 3
	netdevANAPIPID           = 4
	netdevANAPIDeferHardIRQs = 5
	netdevANAPIGROFlush      = 6

	netdevAQueueID      = 1
	netdevAQueueIfindex = 2
	netdevAQueueType    = 3
	netdevAQueueNAPIID  = 4
	netdevQueueTypeRx   = 0

	ctrlAttrFamilyName = 2
	nlmsgerrAttrMsg    = 1
	netlinkExtAck      = 11
	netlinkCapAck      = 10
)

// netdevFamily caches the family id (0: not resolved yet).
var netdevFamily atomic.Uint32

type genl struct {
	fd  int
	seq uint32
	buf []byte
}

func openGenl() (*genl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("rings: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rings: netlink bind: %w", err)
	}
	// Extended acks carry the kernel's reason with an error; not fatal
	// when unsupported.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, netlinkExtAck, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, netlinkCapAck, 1)
	return &genl{fd: fd, buf: make([]byte, 1<<16)}, nil
}

func (g *genl) close() { unix.Close(g.fd) }

type nlAttr struct {
	typ  uint16
	data []byte
}

func attrU32(t uint16, v uint32) nlAttr {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return nlAttr{t, b}
}

func attrU64(t uint16, v uint64) nlAttr {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint64(b, v)
	return nlAttr{t, b}
}

func align4(n int) int { return (n + 3) &^ 3 }

// request sends one generic netlink message and collects the payloads
// (after the genl header) of every reply until the ack or NLMSG_DONE.
func (g *genl) request(family uint16, cmd uint8, flags uint16, attrs ...nlAttr) ([][]byte, error) {
	n := unix.NLMSG_HDRLEN + 4
	for _, a := range attrs {
		n += align4(4 + len(a.data))
	}
	msg := make([]byte, n)
	g.seq++
	binary.NativeEndian.PutUint32(msg[0:], uint32(n))
	binary.NativeEndian.PutUint16(msg[4:], family)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags)
	binary.NativeEndian.PutUint32(msg[8:], g.seq)
	msg[16], msg[17] = cmd, 1 // genlmsghdr: cmd, version
	off := unix.NLMSG_HDRLEN + 4
	for _, a := range attrs {
		binary.NativeEndian.PutUint16(msg[off:], uint16(4+len(a.data)))
		binary.NativeEndian.PutUint16(msg[off+2:], a.typ)
		copy(msg[off+4:], a.data)
		off += align4(4 + len(a.data))
	}
	if err := unix.Sendto(g.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("rings: netlink send: %w", err)
	}
	var out [][]byte
	for {
		r, _, err := unix.Recvfrom(g.fd, g.buf, 0)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return nil, fmt.Errorf("rings: netlink receive: %w", err)
		}
		b := g.buf[:r]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			typ := binary.NativeEndian.Uint16(b[4:])
			seq := binary.NativeEndian.Uint32(b[8:])
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return nil, errors.New("rings: netlink: truncated message")
			}
			m := b[unix.NLMSG_HDRLEN:l]
			b = b[min(align4(l), len(b)):]
			if seq != g.seq {
				continue
			}
			switch typ {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m) < 4 {
					return nil, errors.New("rings: netlink: short error message")
				}
				code := int32(binary.NativeEndian.Uint32(m))
				if code == 0 {
					return out, nil
				}
				err := error(unix.Errno(-code))
				if s := extAckMsg(m); s != "" {
					err = fmt.Errorf("%w (%s)", err, s)
				}
				return nil, err
			default:
				if len(m) >= 4 {
					out = append(out, append([]byte(nil), m[4:]...))
				}
			}
		}
	}
}

// extAckMsg finds NLMSGERR_ATTR_MSG in an error message: the error code,
// the request's header (we asked for capped acks), then attributes.
func extAckMsg(m []byte) string {
	if len(m) < 4+unix.NLMSG_HDRLEN {
		return ""
	}
	for _, a := range parseAttrs(m[4+unix.NLMSG_HDRLEN:]) {
		if a.typ == nlmsgerrAttrMsg {
			return strings.TrimRight(string(a.data), "\x00")
		}
	}
	return ""
}

func parseAttrs(b []byte) []nlAttr {
	var out []nlAttr
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			break
		}
		out = append(out, nlAttr{binary.NativeEndian.Uint16(b[2:]) &^ unix.NLA_F_NESTED, b[4:l]})
		b = b[min(align4(l), len(b)):]
	}
	return out
}

func attrUint(a nlAttr) uint64 {
	switch len(a.data) {
	case 4:
		return uint64(binary.NativeEndian.Uint32(a.data))
	case 8:
		return binary.NativeEndian.Uint64(a.data)
	}
	return 0
}

func (g *genl) netdev() (uint16, error) {
	if id := netdevFamily.Load(); id != 0 {
		return uint16(id), nil
	}
	name := append([]byte("netdev"), 0)
	msgs, err := g.request(unix.GENL_ID_CTRL, unix.CTRL_CMD_GETFAMILY, 0, nlAttr{ctrlAttrFamilyName, name})
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, ErrNoNetdevFamily
		}
		return 0, fmt.Errorf("rings: netlink: resolve the netdev family: %w", err)
	}
	for _, m := range msgs {
		for _, a := range parseAttrs(m) {
			if a.typ == unix.CTRL_ATTR_FAMILY_ID && len(a.data) >= 2 {
				id := binary.NativeEndian.Uint16(a.data)
				netdevFamily.Store(uint32(id))
				return id, nil
			}
		}
	}
	return 0, ErrNoNetdevFamily
}

func parseNAPI(m []byte) NAPI {
	n := NAPI{IRQ: -1}
	for _, a := range parseAttrs(m) {
		switch a.typ {
		case netdevANAPIID:
			n.ID = uint32(attrUint(a))
		case netdevANAPIIfindex:
			n.Ifindex = int(attrUint(a))
		case netdevANAPIIRQ:
			n.IRQ = int(attrUint(a))
		case netdevANAPIPID:
			n.PID = int(attrUint(a))
		case netdevANAPIDeferHardIRQs:
			n.DeferHardIRQs = uint32(attrUint(a))
		case netdevANAPIGROFlush:
			n.GROFlushTimeout = attrUint(a)
		}
	}
	return n
}

// NAPIs lists the NAPI instances of the interface ifindex in the calling
// thread's network namespace (a veth has them only while an XDP program
// is attached or GRO is on; a down interface has none).
func NAPIs(ifindex int) ([]NAPI, error) {
	g, err := openGenl()
	if err != nil {
		return nil, err
	}
	defer g.close()
	fam, err := g.netdev()
	if err != nil {
		return nil, err
	}
	msgs, err := g.request(fam, netdevCmdNAPIGet, unix.NLM_F_DUMP, attrU32(netdevANAPIIfindex, uint32(ifindex)))
	if err != nil {
		return nil, fmt.Errorf("rings: NAPI_GET ifindex %d: %w", ifindex, err)
	}
	var out []NAPI
	for _, m := range msgs {
		if n := parseNAPI(m); n.ID != 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

// GetNAPI reads one NAPI instance by id.
func GetNAPI(id uint32) (NAPI, error) {
	g, err := openGenl()
	if err != nil {
		return NAPI{}, err
	}
	defer g.close()
	fam, err := g.netdev()
	if err != nil {
		return NAPI{}, err
	}
	msgs, err := g.request(fam, netdevCmdNAPIGet, 0, attrU32(netdevANAPIID, id))
	if err != nil {
		return NAPI{}, fmt.Errorf("rings: NAPI_GET id %d: %w", id, err)
	}
	for _, m := range msgs {
		if n := parseNAPI(m); n.ID == id {
			return n, nil
		}
	}
	return NAPI{}, fmt.Errorf("rings: NAPI_GET id %d: %w", id, unix.ENOENT)
}

// SetNAPI sets napi_defer_hard_irqs and gro_flush_timeout (ns) of one
// NAPI instance (NETDEV_CMD_NAPI_SET, Linux ≥ 6.13, CAP_NET_ADMIN).
func SetNAPI(id uint32, deferHardIRQs uint32, groFlushTimeout uint64) error {
	g, err := openGenl()
	if err != nil {
		return err
	}
	defer g.close()
	fam, err := g.netdev()
	if err != nil {
		return err
	}
	_, err = g.request(fam, netdevCmdNAPISet, 0, attrU32(netdevANAPIID, id),
		attrU32(netdevANAPIDeferHardIRQs, deferHardIRQs), attrU64(netdevANAPIGROFlush, groFlushTimeout))
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("rings: NAPI_SET id %d: %w (%w)", id, err, ErrNoNetdevFamily)
		}
		return fmt.Errorf("rings: NAPI_SET id %d: %w", id, err)
	}
	return nil
}

// QueueNAPI is the id of the NAPI instance the kernel links to rx queue
// queue of ifindex (NETDEV_CMD_QUEUE_GET's napi-id: the driver called
// netif_queue_set_napi), 0 when it links none. An AF_XDP socket takes
// its NAPI id from this link when it is bound (Linux ≥ 6.13), so a queue
// without one cannot be busy polled from its socket.
func QueueNAPI(ifindex, queue int) (uint32, error) {
	g, err := openGenl()
	if err != nil {
		return 0, err
	}
	defer g.close()
	fam, err := g.netdev()
	if err != nil {
		return 0, err
	}
	msgs, err := g.request(fam, netdevCmdQueueGet, 0, attrU32(netdevAQueueIfindex, uint32(ifindex)),
		attrU32(netdevAQueueID, uint32(queue)), attrU32(netdevAQueueType, netdevQueueTypeRx))
	if err != nil {
		return 0, fmt.Errorf("rings: QUEUE_GET ifindex %d rx queue %d: %w", ifindex, queue, err)
	}
	for _, m := range msgs {
		for _, a := range parseAttrs(m) {
			if a.typ == netdevAQueueNAPIID {
				return uint32(attrUint(a)), nil
			}
		}
	}
	return 0, nil
}
