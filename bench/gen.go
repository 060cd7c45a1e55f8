package bench

// The generated loadgen_bpfel.* and xdptx_bpfel.* are committed so that
// `go build` needs no clang (nor does CI). Regenerate after editing the C
// sources (needs clang-14 and libbpf-dev):
//
//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -target bpfel loadgen loadgen.c -- -I/usr/include/x86_64-linux-gnu
//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -target bpfel xdptx xdptx.c -- -I/usr/include/x86_64-linux-gnu
