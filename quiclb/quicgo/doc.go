// Package quicgo plugs QUIC-LB connection IDs (package quiclb) into
// quic-go: a Generator is a quic.ConnectionIDGenerator, so a Go HTTP/3 or
// QUIC server behind a Rail service with the same QUIC-LB configuration
// issues connection IDs that carry its server id.
//
//	gen, err := quicgo.NewGenerator(quiclb.Config{ID: 1, ServerIDLen: 2, NonceLen: 14, Key: key}, sid)
//	tr := &quic.Transport{Conn: udpConn, ConnectionIDGenerator: gen}
//	ln, err := tr.ListenEarly(tlsConf, quicConf)
//
// It is a package of its own so that the data path, which imports quiclb,
// does not link quic-go.
package quicgo
