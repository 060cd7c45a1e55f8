// Package h3lab is what the QUIC-LB lab (cmd/raild/quic_lab_linux_test.go)
// shares between its HTTP/3 server, h3server, which runs on each backend,
// and its client, the test: the bodies the server sends, which the client
// checks byte for byte without either side storing them.
package h3lab
