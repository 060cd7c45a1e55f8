package bench

import (
	"fmt"
	"io"
)

// WriteTrafgen writes frames as a netsniff-ng trafgen configuration: one
// packet block per frame, which trafgen sends in order, round robin.
func WriteTrafgen(w io.Writer, frames [][]byte) error {
	for i, f := range frames {
		if _, err := fmt.Fprintf(w, "/* frame %d, %d bytes */\n{", i, len(f)); err != nil {
			return err
		}
		for j, b := range f {
			sep := ", "
			switch {
			case j == 0:
				sep = "\n  "
			case j%16 == 0:
				sep = ",\n  "
			}
			fmt.Fprintf(w, "%s0x%02x", sep, b)
		}
		if _, err := fmt.Fprint(w, "\n}\n"); err != nil {
			return err
		}
	}
	return nil
}
