package header

// ICMP message types Rail handles (RFC 792, RFC 4443).
const (
	ICMPEchoReply      = 0
	ICMPDestUnreach    = 3
	ICMPEchoRequest    = 8
	ICMPTimeExceeded   = 11
	ICMPFragNeeded     = 4 // code of ICMPDestUnreach
	ICMPv6DestUnreach  = 1
	ICMPv6PacketTooBig = 2
	ICMPv6TimeExceeded = 3
	ICMPv6EchoRequest  = 128

	// ICMPHeaderLen is the fixed part of an ICMP or ICMPv6 message: type,
	// code, checksum and four bytes that depend on the type.
	ICMPHeaderLen = 8
)

// IsICMPError reports whether an ICMP (v6 false) or ICMPv6 (v6 true)
// message type carries an offending packet that Rail routes by its flow.
func IsICMPError(v6 bool, typ uint8) bool {
	if v6 {
		return typ == ICMPv6DestUnreach || typ == ICMPv6PacketTooBig || typ == ICMPv6TimeExceeded
	}
	return typ == ICMPDestUnreach || typ == ICMPTimeExceeded
}

// IsEchoRequest reports whether typ is an echo request.
func IsEchoRequest(v6 bool, typ uint8) bool {
	if v6 {
		return typ == ICMPv6EchoRequest
	}
	return typ == ICMPEchoRequest
}
