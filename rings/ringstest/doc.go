// Package ringstest plays the kernel's side of a rings.Socket in ordinary
// memory, so that the socket's frame accounting and the loops that drive
// it (pipeline.Loop) are tested without a NIC, a veth or privileges.
//
// New opens a socket over rings.Memory and returns the Kernel beside it.
// The test moves frames as the kernel would, one step at a time: Take
// frames from the fill ring, Deliver (or DeliverFrame) them on the rx
// ring, Send descriptors from the tx ring, Complete sent frames onto the
// completion ring. Between the steps the socket is driven as in
// production. Frames taken or sent but not yet delivered or completed are
// the kernel's ("in flight"), counted by the socket on the side they came
// from.
//
// A Kernel allocates nothing after New, so allocation tests can measure a
// loop that really moves frames through it.
package ringstest
