package control

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rail-lb/rail/pipeline"
)

// maxBody bounds a request body.
const maxBody = 64 << 10

// APIServer serves the admin API (docs/API.md) over HTTP/JSON for a State.
type APIServer struct {
	State *State
	Log   *slog.Logger
	// Token, when set, is required as "Authorization: Bearer TOKEN" (the
	// TCP listener); the unix socket relies on its file mode instead.
	Token string
	// BGP, when set, serves /v1/bgp and /v1/drain.
	BGP *Speaker
	// Capture, when set, serves /v1/capture (capture.go).
	Capture *pipeline.Capture

	requests [6]atomic.Uint64 // by status class: 2xx, 4xx, 5xx at 2, 4, 5
}

// Handler returns the API's routes.
func (a *APIServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		a.reply(w, http.StatusOK, a.State.Services())
	})
	mux.HandleFunc("GET /v1/bgp", func(w http.ResponseWriter, r *http.Request) {
		if a.BGP == nil {
			a.fail(w, badRequest(http.StatusNotFound, "bgp is not configured (no bgp: block in the configuration)"))
			return
		}
		a.reply(w, http.StatusOK, a.BGP.View())
	})
	mux.HandleFunc("POST /v1/drain", func(w http.ResponseWriter, r *http.Request) {
		if a.BGP == nil {
			a.fail(w, badRequest(http.StatusNotFound, "bgp is not configured: there is nothing to drain"))
			return
		}
		go a.BGP.Drain(context.Background())
		a.Log.Info("drain requested through the API")
		a.reply(w, http.StatusAccepted, map[string]string{"drain": "started"})
	})
	mux.HandleFunc("DELETE /v1/drain", func(w http.ResponseWriter, r *http.Request) {
		if a.BGP == nil {
			a.fail(w, badRequest(http.StatusNotFound, "bgp is not configured: there is nothing to drain"))
			return
		}
		a.BGP.Undrain()
		a.Log.Info("drain ended through the API")
		a.reply(w, http.StatusOK, map[string]string{"drain": "ended"})
	})
	mux.HandleFunc("GET /v1/services/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := a.State.Service(r.PathValue("name"))
		if !ok {
			a.fail(w, badRequest(http.StatusNotFound, "no service %q", r.PathValue("name")))
			return
		}
		a.reply(w, http.StatusOK, v)
	})
	mux.HandleFunc("POST /v1/services/{name}/backends", func(w http.ResponseWriter, r *http.Request) {
		var req BackendRequest
		if err := decode(r, &req); err != nil {
			a.fail(w, err)
			return
		}
		v, err := a.State.AddBackend(r.PathValue("name"), req)
		if err != nil {
			a.fail(w, err)
			return
		}
		a.reply(w, http.StatusCreated, v)
	})
	mux.HandleFunc("PUT /v1/services/{name}/backends/{address}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Weight *uint32 `json:"weight"`
			State  *string `json:"state"`
		}
		if err := decode(r, &req); err != nil {
			a.fail(w, err)
			return
		}
		if req.Weight == nil && req.State == nil {
			a.fail(w, badRequest(http.StatusBadRequest, "weight or state is required (e.g. {\"weight\": 0} to drain, {\"state\": \"draining\"})"))
			return
		}
		var v BackendView
		var err error
		if req.State != nil {
			if v, err = a.State.SetState(r.PathValue("name"), r.PathValue("address"), BackendState(*req.State)); err != nil {
				a.fail(w, err)
				return
			}
		}
		if req.Weight != nil {
			if v, err = a.State.SetWeight(r.PathValue("name"), r.PathValue("address"), *req.Weight); err != nil {
				a.fail(w, err)
				return
			}
		}
		a.reply(w, http.StatusOK, v)
	})
	mux.HandleFunc("DELETE /v1/services/{name}/backends/{address}", func(w http.ResponseWriter, r *http.Request) {
		if err := a.State.RemoveBackend(r.PathValue("name"), r.PathValue("address")); err != nil {
			a.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		a.requests[2].Add(1)
	})
	mux.HandleFunc("GET /v1/conntrack", func(w http.ResponseWriter, r *http.Request) {
		a.reply(w, http.StatusOK, a.State.Conntrack())
	})
	mux.HandleFunc("GET /v1/trace", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		src, dst, proto, err := ParseTrace(q.Get("src"), q.Get("dst"), q.Get("proto"))
		if err != nil {
			a.fail(w, err)
			return
		}
		dcid, err := ParseDCID(q.Get("dcid"))
		if err != nil {
			a.fail(w, err)
			return
		}
		a.reply(w, http.StatusOK, a.State.Trace(src, dst, proto, dcid))
	})
	mux.HandleFunc("GET /v1/capture", a.serveCapture)
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		a.reply(w, http.StatusOK, a.State.Stats())
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		res, err := a.State.Reload()
		if err != nil {
			a.fail(w, badRequest(http.StatusUnprocessableEntity, "reload: %v (nothing changed)", err))
			return
		}
		a.reply(w, http.StatusOK, res)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if m := allowed(r.URL.Path); m != "" {
			w.Header().Set("Allow", m)
			a.fail(w, badRequest(http.StatusMethodNotAllowed, "%s %s: method not allowed (use %s)", r.Method, r.URL.Path, m))
			return
		}
		a.fail(w, badRequest(http.StatusNotFound, "no such endpoint: %s %s (see docs/API.md)", r.Method, r.URL.Path))
	})
	return a.auth(mux)
}

// allowed returns the methods a known path takes, or "".
func allowed(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 2 || parts[0] != "v1" {
		return ""
	}
	switch {
	case len(parts) == 2 && parts[1] == "services", len(parts) == 3 && parts[1] == "services",
		len(parts) == 2 && (parts[1] == "conntrack" || parts[1] == "stats" || parts[1] == "bgp" || parts[1] == "trace" || parts[1] == "capture"):
		return "GET"
	case len(parts) == 2 && parts[1] == "drain":
		return "POST, DELETE"
	case len(parts) == 4 && parts[1] == "services" && parts[3] == "backends", len(parts) == 2 && parts[1] == "reload":
		return "POST"
	case len(parts) == 5 && parts[1] == "services" && parts[3] == "backends":
		return "PUT, DELETE"
	}
	return ""
}

func (a *APIServer) auth(next http.Handler) http.Handler {
	if a.Token == "" {
		return next
	}
	want := []byte("Bearer " + a.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			// A client without the token gets no keep-alive: the
			// connection is closed after the answer, so unauthenticated
			// clients cannot sit on the listener's connections.
			w.Header().Set("Connection", "close")
			a.fail(w, badRequest(http.StatusUnauthorized, "missing or wrong bearer token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// decode reads a single JSON object with only known fields into v.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badRequest(http.StatusBadRequest, "reading the body: %v", err)
	}
	if len(body) > maxBody {
		return badRequest(http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", maxBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest(http.StatusBadRequest, "the body is empty: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return badRequest(http.StatusBadRequest, "%s: expected %s, got %s", te.Field, jsonType(te.Type.Kind().String()), te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return badRequest(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "json: "))
		default:
			return badRequest(http.StatusBadRequest, "the body is not a valid JSON object: %v", err)
		}
	}
	if dec.More() {
		return badRequest(http.StatusBadRequest, "the body holds more than one JSON value")
	}
	return nil
}

func jsonType(kind string) string {
	if strings.HasPrefix(kind, "uint") {
		return "a whole number from 0 to 4294967295"
	}
	return "a " + kind
}

type errorBody struct {
	Error string `json:"error"`
}

func (a *APIServer) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var re *RequestError
	if errors.As(err, &re) {
		code = re.Code
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if a.Log != nil && code >= 500 {
		a.Log.Error("api", "err", msg)
	}
	a.reply(w, code, errorBody{msg})
}

func (a *APIServer) reply(w http.ResponseWriter, code int, v any) {
	if c := code / 100; c >= 2 && c <= 5 {
		a.requests[c].Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Requests returns how many requests were answered with 2xx, 4xx and 5xx.
func (a *APIServer) Requests() (ok, client, server uint64) {
	return a.requests[2].Load(), a.requests[4].Load(), a.requests[5].Load()
}

// Listeners are the API's open servers.
type Listeners struct {
	servers []*http.Server
	socket  string
}

// Close stops the servers and removes the socket.
func (l *Listeners) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range l.servers {
		s.Shutdown(ctx)
	}
	if l.socket != "" {
		os.Remove(l.socket)
	}
	return nil
}

// Serve opens the API's listeners: the unix socket (mode 0600; a stale
// socket file is replaced, a live one is an error) and, when cfg.Address is
// set, TCP with the bearer token read from cfg.TokenFile.
// Each listener is held to lim (see HTTPLimits).
func (a *APIServer) Serve(cfg API, lim HTTPLimits) (*Listeners, error) {
	l := &Listeners{}
	if cfg.Socket != "" {
		ln, err := listenUnix(cfg.Socket)
		if err != nil {
			return nil, err
		}
		l.socket = cfg.Socket
		l.servers = append(l.servers, serveHTTP(ln, a.Handler(), lim))
	}
	if cfg.Address != "" {
		tok, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("api.token_file: %w", err)
		}
		token := strings.TrimSpace(string(tok))
		if token == "" {
			l.Close()
			return nil, fmt.Errorf("api.token_file %s is empty", cfg.TokenFile)
		}
		ln, err := net.Listen("tcp", cfg.Address)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("api.address %s: %w", cfg.Address, err)
		}
		tcp := &APIServer{State: a.State, Log: a.Log, Token: token, BGP: a.BGP, Capture: a.Capture}
		l.servers = append(l.servers, serveHTTP(ln, tcp.Handler(), lim))
	}
	return l, nil
}

// listenUnix listens on path with mode 0600, creating its directory.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api.socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("api.socket %s exists and is not a socket: name a free path", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("api.socket %s: another process is serving it (is raild already running?)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("api.socket: removing the stale %s: %w", path, err)
		}
	}
	// The socket is created 0600 from the start: no moment with a wider mode.
	restore := umask(0o177)
	ln, err := net.Listen("unix", path)
	restore()
	if err != nil {
		return nil, fmt.Errorf("api.socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api.socket: %w", err)
	}
	return ln, nil
}
