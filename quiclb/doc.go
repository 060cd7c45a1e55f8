// Package quiclb reads and writes routable QUIC connection IDs in the
// format of the IETF's QUIC-LB draft (draft-ietf-quic-load-balancers,
// "Generating Routable QUIC Connection IDs"): a server hides its server id
// in every connection ID it issues, and a load balancer that shares the
// configuration reads the id back from the destination connection ID of
// any packet, whatever address the client sends it from.
//
// # Format
//
// A connection ID is one first octet followed by a block of server id and
// nonce:
//
//	first octet: config id (3 bits) | length of the block (5 bits)
//	block:       server id (ServerIDLen octets) | nonce (NonceLen octets)
//
// The three most significant bits of the first octet name the
// configuration (0 to 6; 7 marks a connection ID no load balancer can
// route). Encode writes the length of the block into the other five bits
// (the draft's optional length self-description); Decode ignores them.
//
// Without a key the block is sent as it is (the plaintext algorithm): an
// observer can read the server id. With a 16-octet key the block is
// encrypted with AES-128:
//
//   - single pass, when ServerIDLen + NonceLen is 16: the block is one AES
//     block, encrypted once (decoding is one AES decryption);
//   - four passes, for any other length (5 to 19 octets): a four-round
//     Feistel network whose round function is AES-128 on the half block,
//     padded with the block length and the pass number. Decoding needs
//     three rounds when the server id fits in the left half, four when it
//     is longer than the nonce.
//
// # Cost
//
// NewCodec expands the AES key once (crypto/aes); Decode then allocates
// nothing. Its working buffers live in a Scratch the caller owns (one per
// goroutine), because a buffer handed to cipher.Block, an interface, would
// otherwise escape to the heap on every call.
//
// # Issuing connection IDs
//
// Generator plugs into quic-go's ConnectionIDGenerator (quic.Transport's
// ConnectionIDGenerator field), so a Go server issues connection IDs a
// Rail service with the same configuration routes to it.
package quiclb
