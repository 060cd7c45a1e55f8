package decap

// The generated decap_bpfel.go and decap_bpfel.o are committed so that
// `go build` needs no clang. Regenerate after editing decap.c (needs
// clang-14 and libbpf-dev):
//
//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -target bpfel decap decap.c -- -I/usr/include/x86_64-linux-gnu
