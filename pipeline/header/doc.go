// Package header provides views over the wire headers Rail reads and writes:
// Ethernet, IPv4, GRE and the first bytes of TCP/UDP.
//
// A view is a byte slice type (type IPv4 []byte) with offset constants laid
// out under the RFC diagram and getters/setters that read and write the bytes
// in place. Views never copy and never allocate. They do not check bounds on
// their own: the caller validates the length once (for example with
// IPv4.Valid) and then uses the unchecked accessors, which is what the
// per-packet path in package pipeline does.
//
// All multi-byte fields are big-endian on the wire. Addresses are returned as
// uint32 in host order so that they can be compared and hashed cheaply; the
// same value is produced on every machine.
package header
