package probe

// The generated probe_bpfel.go and probe_bpfel.o are committed so that
// `go build` needs no clang. Regenerate after editing probe.c (needs
// clang-14 and libbpf-dev):
//
//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -target bpfel probe probe.c -- -I/usr/include/x86_64-linux-gnu
