//go:build !unix

package main

func raiseNoFile() (soft, hard uint64) { return 0, 0 }
