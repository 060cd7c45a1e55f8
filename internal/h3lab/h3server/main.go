// Command h3server is the QUIC-LB lab's backend: an HTTP/3 server (quic-go)
// that issues QUIC-LB connection IDs with its server id (quiclb/quicgo) and
// answers GET /bytes?n=N&seed=S with h3lab's body, its name in the
// X-Backend header. It makes its own self-signed certificate. Lab use
// only: see cmd/raild/quic_lab_linux_test.go.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/rail-lb/rail/internal/h3lab"
	"github.com/rail-lb/rail/quiclb"
	"github.com/rail-lb/rail/quiclb/quicgo"
)

func main() {
	listen := flag.String("listen", "", "UDP address to serve on (the VIP), e.g. 192.0.2.10:443")
	name := flag.String("name", "", "name in the X-Backend header")
	sid := flag.String("server-id", "", "QUIC-LB server id, hex")
	cid := flag.Uint("config-id", 0, "QUIC-LB config id")
	nonce := flag.Int("nonce-length", 0, "QUIC-LB nonce length")
	key := flag.String("key", "", "QUIC-LB key, hex (none: plaintext)")
	flag.Parse()
	if err := run(*listen, *name, *sid, uint8(*cid), *nonce, *key); err != nil {
		fmt.Fprintln(os.Stderr, "h3server:", err)
		os.Exit(1)
	}
}

func run(listen, name, sidHex string, configID uint8, nonceLen int, keyHex string) error {
	id, err := quiclb.ParseServerID(sidHex)
	if err != nil {
		return err
	}
	c := quiclb.Config{ID: configID, ServerIDLen: id.Len(), NonceLen: nonceLen}
	if keyHex != "" {
		if c.Key, err = hex.DecodeString(keyHex); err != nil {
			return fmt.Errorf("key: %v", err)
		}
	}
	gen, err := quicgo.NewGenerator(c, id)
	if err != nil {
		return err
	}
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	addr, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return err
	}
	udp, err := net.ListenUDP("udp", addr)
	if err != nil {
		return err
	}
	tr := &quic.Transport{Conn: udp, ConnectionIDGenerator: gen}
	tlsConf := http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}})
	ln, err := tr.ListenEarly(tlsConf, &quic.Config{DisablePathMTUDiscovery: true, MaxIdleTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err1 := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		seed, err2 := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
		if err1 != nil || err2 != nil || n < 0 || n > 1<<30 {
			http.Error(w, "want /bytes?n=N&seed=S", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Backend", name)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		io.Copy(w, h3lab.NewBody(seed, n))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name+"\n") })
	log.Printf("h3server %s: serving HTTP/3 on %s, QUIC-LB config %d, server id %v, %d-octet connection IDs", name, listen, configID, id, gen.ConnectionIDLen())
	return (&http3.Server{Handler: mux}).ServeListener(ln)
}

// selfSigned makes a throwaway certificate (the lab's client does not
// verify it).
func selfSigned() (tls.Certificate, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"rail-lab"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, nil
}
