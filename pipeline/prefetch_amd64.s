//go:build amd64 && !rail_noasm

#include "textflag.h"

// func prefetchStaged(bases *[2]unsafe.Pointer, staged *uint32, n int)
//
// For each of the n staged buckets (batch.go): an IPv4 bucket's index x
// (below 1<<31) is the 128 bytes at bases[0] + x<<7, two cache lines; an
// IPv6 bucket's (bit 31 set) the 256 bytes at bases[1] + (x&^(1<<31))<<8,
// four; all ones is none. PREFETCHT0 asks for every line and retires
// without waiting for it.
TEXT ·prefetchStaged(SB), NOSPLIT|NOFRAME, $0-24
	MOVQ bases+0(FP), DI
	MOVQ 0(DI), AX
	MOVQ 8(DI), BX
	MOVQ staged+8(FP), SI
	MOVQ n+16(FP), CX
	TESTQ CX, CX
	JLE done

loop:
	MOVL (SI), DX
	CMPL DX, $0x80000000
	JAE notv4
	SHLQ $7, DX
	PREFETCHT0 (AX)(DX*1)
	PREFETCHT0 64(AX)(DX*1)
	JMP next

notv4:
	CMPL DX, $0xffffffff
	JEQ next
	ANDL $0x7fffffff, DX
	SHLQ $8, DX
	PREFETCHT0 (BX)(DX*1)
	PREFETCHT0 64(BX)(DX*1)
	PREFETCHT0 128(BX)(DX*1)
	PREFETCHT0 192(BX)(DX*1)

next:
	ADDQ $4, SI
	DECQ CX
	JNZ loop

done:
	RET
