package quiclb

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
)

// Limits of a configuration, from the draft.
const (
	// MaxConfigID is the highest config id a configuration can have; 7
	// (0b111) marks unroutable connection IDs.
	MaxConfigID = 6
	// MaxServerIDLen and MinNonceLen bound the two fields; together they
	// take at most MaxBlockLen octets, so that a connection ID (one more
	// octet) fits QUIC version 1's 20.
	MaxServerIDLen = 15
	MinNonceLen    = 4
	MaxBlockLen    = 19
	// KeyLen is the length of an AES-128 key.
	KeyLen = 16
	// MaxCIDLen is the longest connection ID any configuration makes.
	MaxCIDLen = 1 + MaxBlockLen
)

// Config is one QUIC-LB configuration: what a load balancer and its
// servers must agree on.
type Config struct {
	ID          uint8  // config rotation codepoint, 0…MaxConfigID
	ServerIDLen int    // octets, 1…MaxServerIDLen
	NonceLen    int    // octets, MinNonceLen…MaxBlockLen−ServerIDLen
	Key         []byte // nil: plaintext; else KeyLen octets (AES-128)
}

// Validate says what is wrong with c, in one line, or nil.
func (c Config) Validate() error {
	switch {
	case c.ID > MaxConfigID:
		return fmt.Errorf("config id %d is out of range (0…%d; 7 marks unroutable connection IDs)", c.ID, MaxConfigID)
	case c.ServerIDLen < 1 || c.ServerIDLen > MaxServerIDLen:
		return fmt.Errorf("server id length %d is out of range (1…%d)", c.ServerIDLen, MaxServerIDLen)
	case c.NonceLen < MinNonceLen:
		return fmt.Errorf("nonce length %d is below %d", c.NonceLen, MinNonceLen)
	case c.ServerIDLen+c.NonceLen > MaxBlockLen:
		return fmt.Errorf("server id length %d and nonce length %d add up to more than %d", c.ServerIDLen, c.NonceLen, MaxBlockLen)
	case c.Key != nil && len(c.Key) != KeyLen:
		return fmt.Errorf("key has %d octets, want %d (AES-128)", len(c.Key), KeyLen)
	}
	return nil
}

// CIDLen is the length of the connection IDs c makes: the first octet,
// the server id and the nonce.
func (c Config) CIDLen() int { return 1 + c.ServerIDLen + c.NonceLen }

// ServerID is a server id of up to MaxServerIDLen octets. It is a value,
// comparable, so it can key a map without allocating.
type ServerID struct {
	b [MaxServerIDLen]byte
	n uint8
}

// MakeServerID makes a ServerID of b (1…MaxServerIDLen octets).
func MakeServerID(b []byte) (ServerID, error) {
	var id ServerID
	if len(b) < 1 || len(b) > MaxServerIDLen {
		return id, fmt.Errorf("server id has %d octets, want 1…%d", len(b), MaxServerIDLen)
	}
	copy(id.b[:], b)
	id.n = uint8(len(b))
	return id, nil
}

// ParseServerID reads a server id written in hex ("0a1b").
func ParseServerID(s string) (ServerID, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return ServerID{}, fmt.Errorf("server id %q is not hex", s)
	}
	return MakeServerID(b)
}

// Len is the id's length in octets.
func (id ServerID) Len() int { return int(id.n) }

// Bytes returns a copy of the id's octets.
func (id ServerID) Bytes() []byte { return append([]byte(nil), id.b[:id.n]...) }

// String is the id in hex.
func (id ServerID) String() string { return hex.EncodeToString(id.b[:id.n]) }

// Codec encodes and decodes the connection IDs of one configuration. It is
// immutable and safe for concurrent use; Decode's buffers are the
// caller's (Scratch).
type Codec struct {
	id       uint8
	sidLen   int
	nonceLen int
	block    cipher.Block // nil: plaintext
	plainLen int          // server id + nonce
	half     int          // plainLen / 2, rounded up
	odd      bool
}

// Scratch is Decode's working memory. A goroutine that decodes keeps one
// (in a struct that lives on the heap already, such as a worker) and
// passes it to every call.
type Scratch struct {
	in, out [aes.BlockSize]byte
	l, r    [aes.BlockSize]byte
	pt      [MaxBlockLen]byte
}

// NewCodec checks c and expands its key.
func NewCodec(c Config) (*Codec, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	k := &Codec{id: c.ID, sidLen: c.ServerIDLen, nonceLen: c.NonceLen, plainLen: c.ServerIDLen + c.NonceLen}
	k.half, k.odd = (k.plainLen+1)/2, k.plainLen%2 == 1
	if c.Key != nil {
		b, err := aes.NewCipher(c.Key)
		if err != nil {
			return nil, err
		}
		k.block = b
	}
	return k, nil
}

// ConfigID is the configuration's codepoint.
func (k *Codec) ConfigID() uint8 { return k.id }

// CIDLen is the length of the connection IDs the codec makes and reads.
func (k *Codec) CIDLen() int { return 1 + k.plainLen }

// ServerIDLen is the length of the server ids it carries.
func (k *Codec) ServerIDLen() int { return k.sidLen }

// Encrypted reports whether the configuration has a key.
func (k *Codec) Encrypted() bool { return k.block != nil }

// ErrLength is Encode's error for fields of the wrong length.
var ErrLength = errors.New("quiclb: wrong length")

// Encode writes the connection ID for server id sid and nonce into
// dst[:CIDLen()]. The first octet carries the config id and the block's
// length. sid must be ServerIDLen octets, nonce NonceLen.
func (k *Codec) Encode(dst []byte, sid ServerID, nonce []byte) error {
	if sid.Len() != k.sidLen || len(nonce) != k.nonceLen || len(dst) < k.CIDLen() {
		return ErrLength
	}
	dst[0] = k.id<<5 | uint8(k.plainLen)
	pt := dst[1:k.CIDLen()]
	copy(pt, sid.b[:sid.n])
	copy(pt[k.sidLen:], nonce)
	switch {
	case k.block == nil:
	case k.plainLen == aes.BlockSize:
		k.block.Encrypt(pt, pt)
	default:
		var s Scratch
		k.split(&s, pt)
		k.round(&s, 1, s.l[:], s.r[:], false)
		k.round(&s, 2, s.r[:], s.l[:], true)
		k.round(&s, 3, s.l[:], s.r[:], false)
		k.round(&s, 4, s.r[:], s.l[:], true)
		k.join(&s, pt)
	}
	return nil
}

// Decode reads the server id from a connection ID. ok is false when the
// ID is shorter than CIDLen or carries another config id: it is not
// routable by this configuration. Octets past CIDLen (a server's own
// additions) are ignored. Decode allocates nothing; a wrong key gives a
// wrong server id.
func (k *Codec) Decode(cid []byte, s *Scratch) (sid ServerID, ok bool) {
	if len(cid) < 1+k.plainLen || cid[0]>>5 != k.id {
		return sid, false
	}
	ct := cid[1 : 1+k.plainLen]
	sid.n = uint8(k.sidLen)
	switch {
	case k.block == nil:
		copy(sid.b[:], ct[:k.sidLen])
	case k.plainLen == aes.BlockSize:
		copy(s.in[:], ct)
		k.block.Decrypt(s.out[:], s.in[:])
		copy(sid.b[:], s.out[:k.sidLen])
	default:
		k.split(s, ct)
		k.round(s, 4, s.r[:], s.l[:], true)  // left_1
		k.round(s, 3, s.l[:], s.r[:], false) // right_1
		k.round(s, 2, s.r[:], s.l[:], true)  // left_0
		if k.sidLen > k.half || (k.odd && k.sidLen == k.half) {
			// The server id reaches into the right half.
			k.round(s, 1, s.l[:], s.r[:], false) // right_0
		}
		k.join(s, s.pt[:k.plainLen])
		copy(sid.b[:], s.pt[:k.sidLen])
	}
	return sid, true
}

// split puts the two halves of block b into s.l and s.r, each half octets;
// with an odd length the middle octet's high nibble goes left, its low
// nibble right.
func (k *Codec) split(s *Scratch, b []byte) {
	h := k.half
	s.l, s.r = [aes.BlockSize]byte{}, [aes.BlockSize]byte{}
	copy(s.l[:h], b[:h])
	copy(s.r[:h], b[len(b)-h:])
	if k.odd {
		s.l[h-1] &= 0xf0
		s.r[0] &= 0x0f
	}
}

// join writes the halves back into b, the middle octet from both.
func (k *Codec) join(s *Scratch, b []byte) {
	h := k.half
	copy(b[len(b)-h:], s.r[:h])
	copy(b[:h], s.l[:h])
	if k.odd {
		b[h-1] = s.l[h-1]&0xf0 | s.r[0]&0x0f
	}
}

// round is one Feistel pass: dst ^= AES(expand(src, pass)) truncated to
// half octets; the nibble outside the half is cleared (the left half's
// last one when dstLeft, the right half's first one otherwise).
func (k *Codec) round(s *Scratch, pass byte, src, dst []byte, dstLeft bool) {
	h := k.half
	s.in = [aes.BlockSize]byte{}
	copy(s.in[:h], src[:h])
	s.in[14], s.in[15] = byte(k.plainLen), pass
	k.block.Encrypt(s.out[:], s.in[:])
	for i := 0; i < h; i++ {
		dst[i] ^= s.out[i]
	}
	if k.odd {
		if dstLeft {
			dst[h-1] &= 0xf0
		} else {
			dst[0] &= 0x0f
		}
	}
}
