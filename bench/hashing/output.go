package hashing

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// WriteAll writes the CSV files and PNG plots of res and bt into dir and
// returns their names.
func WriteAll(res *Results, bt []BuildTime, dir string) ([]string, error) {
	var names []string
	write := func(name string, fn func(io.Writer) error) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return err
		}
		names = append(names, name)
		return f.Close()
	}
	for _, x := range []struct {
		name string
		fn   func(io.Writer) error
	}{
		{"evenness.csv", res.WriteEvennessCSV},
		{"disruption.csv", res.WriteDisruptionCSV},
		{"weights.csv", res.WriteWeightsCSV},
		{"buildtime.csv", func(w io.Writer) error { return writeBuildCSV(w, bt) }},
	} {
		if err := write(x.name, x.fn); err != nil {
			return names, err
		}
	}
	for _, m := range res.Config.Ms {
		for _, x := range []struct {
			name string
			fn   func(io.Writer, uint32) error
		}{
			{"evenness-M%d.png", res.PlotEvenness},
			{"disruption-M%d.png", res.PlotDisruption},
			{"weights-M%d.png", res.PlotWeights},
		} {
			if err := write(fmt.Sprintf(x.name, m), func(w io.Writer) error { return x.fn(w, m) }); err != nil {
				return names, err
			}
		}
	}
	return names, nil
}

func writeBuildCSV(w io.Writer, bt []BuildTime) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"N", "M", "weights", "repeats", "median_ns", "min_ns", "table_bytes"})
	for _, b := range bt {
		ws := "equal"
		if b.Weighted {
			ws = "random 1-10"
		}
		cw.Write([]string{strconv.Itoa(b.N), strconv.FormatUint(uint64(b.M), 10), ws, strconv.Itoa(b.Repeats),
			strconv.FormatInt(b.Median.Nanoseconds(), 10), strconv.FormatInt(b.Min.Nanoseconds(), 10), strconv.Itoa(b.Bytes)})
	}
	cw.Flush()
	return cw.Error()
}
