// Package bench holds Rail's traffic generation and measurement: synthetic
// frames for in-memory runs of the pipeline (railbench pipeline), and the
// measurements that later issues build on (generator, sink, comparisons).
package bench
