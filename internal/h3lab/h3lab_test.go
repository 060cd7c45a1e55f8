package h3lab

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"
)

func TestBody(t *testing.T) {
	a, _ := io.ReadAll(NewBody(1, 100000))
	b, _ := io.ReadAll(io.LimitReader(NewBody(2, 100000), 100000))
	if len(a) != 100000 || bytes.Equal(a, b) {
		t.Fatal("bodies of two seeds are the same, or of the wrong length")
	}
	// Read in odd chunks: the same octets.
	var c bytes.Buffer
	r := NewBody(1, 100000)
	buf := make([]byte, 777)
	for {
		n, err := r.Read(buf)
		c.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !bytes.Equal(a, c.Bytes()) || sha256.Sum256(a) != Sum(1, 100000) {
		t.Fatal("chunked reads or Sum disagree")
	}
}
