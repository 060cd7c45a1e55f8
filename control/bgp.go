package control

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Announcement is one VIP's route as the speaker sees it: whether it is
// announced, with what, and why.
type Announcement struct {
	Prefix      netip.Prefix `json:"prefix"`
	NextHop     netip.Addr   `json:"next_hop"`
	Communities []string     `json:"communities"`
	MED         *uint32      `json:"med,omitempty"`
	Services    []string     `json:"services"`
	Announced   bool         `json:"announced"`
	// Why says why it is (or is not) announced.
	Why string `json:"why"`
}

// PeerView is one BGP session.
type PeerView struct {
	Address     netip.Addr `json:"address"`
	ASN         uint32     `json:"asn"`
	State       string     `json:"state"`
	Up          bool       `json:"up"`
	Uptime      string     `json:"uptime,omitempty"`
	PrefixesOut uint64     `json:"prefixes_sent"`
	UpdatesOut  uint64     `json:"updates_sent"`
	// LastError is why the session last went down, if it did.
	LastError string `json:"last_error,omitempty"`
}

// BGPView is GET /v1/bgp.
type BGPView struct {
	ASN           uint32         `json:"asn"`
	RouterID      netip.Addr     `json:"router_id"`
	Forwarding    bool           `json:"forwarding"`
	Draining      bool           `json:"draining"`
	Peers         []PeerView     `json:"peers"`
	Announcements []Announcement `json:"announcements"`
}

// Announcements decides, from the configuration alone and what the node
// can do now, which VIPs to announce (pure: the speaker and its tests use
// it). A VIP is announced while the workers forward and at least one of
// its services can serve: it has a usable backend, or its when_down is keep
// or forward. Draining adds GRACEFUL_SHUTDOWN to every announcement.
func Announcements(b *BGP, svcs []Service, usable map[string]bool, forwarding, draining, withdrawn bool) []Announcement {
	byVIP := map[netip.Addr]*Announcement{}
	var order []netip.Addr
	for _, sv := range svcs {
		a := byVIP[sv.VIP]
		if a == nil {
			bits := 32
			nh := b.NextHop
			if sv.VIP.Is6() {
				bits, nh = 128, b.NextHop6
			}
			a = &Announcement{Prefix: netip.PrefixFrom(sv.VIP, bits), NextHop: nh, Communities: []string{}}
			byVIP[sv.VIP] = a
			order = append(order, sv.VIP)
		}
		a.Services = append(a.Services, sv.Name)
		if a.Announced {
			continue
		}
		switch {
		case usable[sv.Name]:
			a.Announced, a.Why = true, "service "+sv.Name+" has a healthy backend"
		case sv.WhenDown == DownKeep:
			a.Announced, a.Why = true, "service "+sv.Name+" has no usable backend; when_down: keep"
		case sv.WhenDown == DownForward:
			a.Announced, a.Why = true, "service "+sv.Name+" has no usable backend; when_down: forward to other nodes"
		default:
			a.Why = "no service on this VIP has a usable backend (when_down: withdraw)"
		}
	}
	out := make([]Announcement, 0, len(order))
	for _, vip := range order {
		a := *byVIP[vip]
		switch {
		case !a.NextHop.IsValid():
			a.Announced, a.Why = false, "no next hop for this family (set local_address6 or bgp.next_hop6)"
		case !forwarding && a.Announced:
			a.Announced, a.Why = false, "the workers are not forwarding"
		case withdrawn && a.Announced:
			a.Announced, a.Why = false, "drained: withdrawn"
		}
		if a.Announced {
			for _, c := range b.Communities {
				a.Communities = append(a.Communities, FormatCommunity(c))
			}
			if draining {
				a.Communities = append(a.Communities, FormatCommunity(GracefulShutdown))
				a.Why += "; draining (GRACEFUL_SHUTDOWN)"
			}
			if b.HasMED {
				med := b.MED
				a.MED = &med
			}
		}
		out = append(out, a)
	}
	return out
}

// Speaker is raild's BGP speaker: GoBGP as a library, with one session per
// configured peer, announcing what Announcements says. Update and the
// setters never block (they may run under the state's lock); a goroutine
// of the speaker talks to GoBGP.
type Speaker struct {
	cfg *BGP
	srv *server.BgpServer
	log *slog.Logger

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup

	// syncMu serialises sync (the speaker's goroutine, Drain); have is
	// guarded by it.
	syncMu sync.Mutex

	mu         sync.Mutex
	drainGen   uint64 // bumped by Undrain: a drain under way then stops
	svcs       []Service
	usable     map[string]bool
	forwarding bool
	draining   bool
	withdrawn  bool
	want       []Announcement
	have       map[netip.Prefix]Announcement // what GoBGP holds
	lastErr    map[netip.Addr]string
	up         map[netip.Addr]bool
	// logged are the problems of each peer logged since its session was
	// last up: each is logged once.
	logged map[netip.Addr]map[string]bool
}

// maxPeerProblems bounds the distinct problems logged for a peer between two
// sessions (a peer's garbage may make every error message different).
const maxPeerProblems = 8

// gobgpLog is GoBGP's logger: warnings and errors only (it logs every FSM
// step at info), and of those about a peer (GoBGP's Key attribute) each
// distinct one once until the peer's session comes up. GoBGP v4 makes its
// outgoing connections and reads the peer's OPEN outside the FSM: a peer
// that answers every connection with garbage changes no state and shows
// only as this warning, once per attempt, so it is also the peer's last
// error.
type gobgpLog struct {
	slog.Handler
	peer netip.Addr
	s    *Speaker
}

func (h gobgpLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h gobgpLog) WithAttrs(as []slog.Attr) slog.Handler {
	peer := h.peer
	for _, a := range as {
		if p, ok := gobgpPeer(a); ok {
			peer = p
		}
	}
	return gobgpLog{h.Handler.WithAttrs(as), peer, h.s}
}

func (h gobgpLog) WithGroup(g string) slog.Handler {
	return gobgpLog{h.Handler.WithGroup(g), h.peer, h.s}
}

func (h gobgpLog) Handle(ctx context.Context, r slog.Record) error {
	peer, why := h.peer, r.Message
	r.Attrs(func(a slog.Attr) bool {
		if p, ok := gobgpPeer(a); ok {
			peer = p
		}
		if a.Key == "Error" {
			why += ": " + a.Value.String()
		}
		return true
	})
	if peer.IsValid() && !h.s.problem(peer, why) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func gobgpPeer(a slog.Attr) (netip.Addr, bool) {
	if a.Key != "Key" {
		return netip.Addr{}, false
	}
	p, err := netip.ParseAddr(a.Value.String())
	return p, err == nil
}

// problem notes why peer's session fails and says whether to log it.
func (s *Speaker) problem(peer netip.Addr, why string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.problemLocked(peer, why)
}

func (s *Speaker) problemLocked(peer netip.Addr, why string) bool {
	if !s.up[peer] {
		s.lastErr[peer] = why
	}
	seen := s.logged[peer]
	if seen == nil {
		seen = map[string]bool{}
		s.logged[peer] = seen
	}
	if seen[why] || len(seen) >= maxPeerProblems {
		return false
	}
	seen[why] = true
	return true
}

// NewSpeaker starts the BGP server and its sessions. Nothing is announced
// until SetForwarding(true) and an Update that makes a service usable.
func NewSpeaker(cfg *BGP, log *slog.Logger) (*Speaker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn) // GoBGP's own chatter: warnings and errors only
	s := &Speaker{
		cfg: cfg, log: log,
		kick: make(chan struct{}, 1), done: make(chan struct{}),
		have: map[netip.Prefix]Announcement{}, lastErr: map[netip.Addr]string{}, up: map[netip.Addr]bool{},
		logged: map[netip.Addr]map[string]bool{},
	}
	gobgp := slog.New(gobgpLog{Handler: log.Handler(), s: s}).With("component", "gobgp")
	s.srv = server.NewBgpServer(server.LoggerOption(gobgp, lvl))
	go s.srv.Serve()
	ctx := context.Background()
	port := int32(-1)
	if cfg.ListenPort != 0 {
		port = int32(cfg.ListenPort)
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.ASN, RouterId: cfg.RouterID.String(), ListenPort: port,
	}}); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: start: %w", err)
	}
	// Rail only announces. Routes a peer sends are kept by GoBGP but never
	// used (a global import policy would also reject Rail's own paths).
	if err := s.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.peerEvent}, server.WatchPeer()); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: watch: %w", err)
	}
	for _, p := range cfg.Peers {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConf(p, cfg)}); err != nil {
			s.srv.Stop()
			return nil, fmt.Errorf("bgp: peer %s: %w", p.Address, err)
		}
	}
	s.wg.Add(1)
	go s.run()
	return s, nil
}

func peerConf(p Peer, cfg *BGP) *api.Peer {
	families := []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}}
	if cfg.NextHop6.IsValid() {
		families = append(families, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}})
	}
	hold := uint64(p.HoldTime / time.Second)
	keepalive := hold / 3
	local := cfg.NextHop
	if p.Address.Is6() {
		local = cfg.NextHop6
	}
	tr := &api.Transport{PassiveMode: p.Passive, RemotePort: uint32(p.Port)}
	if local.IsValid() {
		tr.LocalAddress = local.String()
	}
	return &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN, AuthPassword: p.Password},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: hold, KeepaliveInterval: keepalive, ConnectRetry: 1, IdleHoldTimeAfterReset: 1}},
		Transport: tr,
		AfiSafis:  families,
	}
}

// peerEvent logs session changes: a session that comes up or goes down,
// and why a session cannot be established — each distinct reason once, so
// a peer that refuses us or keeps sending garbage (GoBGP answers with a
// NOTIFICATION and closes) costs one line, and forwarding never depends on
// it.
func (s *Speaker) peerEvent(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := ev.Peer.State
	addr := st.NeighborAddress
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.SessionState == bgp.BGP_FSM_ESTABLISHED {
		s.log.Info("bgp session up", "peer", addr, "asn", st.PeerASN)
		s.up[addr] = true
		delete(s.lastErr, addr)
		delete(s.logged, addr)
		s.Kick() // announce to the new session
		return
	}
	why := st.DisconnectMessage
	if s.up[addr] {
		delete(s.up, addr)
		if why == "" {
			why = strings.ToLower(strings.TrimPrefix(st.DisconnectReason.String(), "DISCONNECT_REASON_"))
		}
		s.lastErr[addr] = why
		s.problemLocked(addr, why) // logged here; not again while it stays down for it
		s.log.Warn("bgp session down", "peer", addr, "why", why)
		return
	}
	if why != "" && !benignFSM[why] && s.problemLocked(addr, why) {
		s.log.Warn("bgp session cannot be established", "peer", addr, "state", fsmName(st.SessionState), "why", why)
	}
}

// benignFSM are GoBGP's reasons for the steps of a session coming up:
// not worth a warning.
var benignFSM = map[string]bool{"idle-hold-timer-expired": true, "open-msg-received": true, "open-msg-negotiated": true, "new-connection": true}

func fsmName(st bgp.FSMState) string {
	return strings.ToLower(strings.TrimPrefix(st.String(), "BGP_FSM_"))
}

// Update gives the speaker the services and which of them can serve now.
func (s *Speaker) Update(svcs []Service, usable map[string]bool) {
	s.mu.Lock()
	s.svcs, s.usable = svcs, usable
	s.mu.Unlock()
	s.Kick()
}

// SetForwarding says whether the workers forward: false withdraws
// everything (never announce what cannot be forwarded).
func (s *Speaker) SetForwarding(ok bool) {
	s.mu.Lock()
	changed := s.forwarding != ok
	s.forwarding = ok
	s.mu.Unlock()
	if changed {
		s.Kick()
	}
}

// Drain re-announces every route with GRACEFUL_SHUTDOWN, waits drain_time,
// withdraws, and returns once the withdrawals are sent (or ctx ends).
func (s *Speaker) Drain(ctx context.Context) {
	s.mu.Lock()
	s.draining = true
	gen := s.drainGen
	s.mu.Unlock()
	s.sync()
	s.log.Info("bgp drain: routes carry GRACEFUL_SHUTDOWN", "drain_time", s.cfg.DrainTime)
	select {
	case <-time.After(s.cfg.DrainTime):
	case <-ctx.Done():
	}
	s.mu.Lock()
	if s.drainGen != gen { // undrained meanwhile
		s.mu.Unlock()
		return
	}
	s.withdrawn = true
	s.mu.Unlock()
	s.sync()
	s.log.Info("bgp drain: routes withdrawn")
}

// Undrain ends a drain: routes are announced as before.
func (s *Speaker) Undrain() {
	s.mu.Lock()
	s.draining, s.withdrawn = false, false
	s.drainGen++
	s.mu.Unlock()
	s.Kick()
}

// Kick asks the speaker's goroutine to bring GoBGP up to date.
func (s *Speaker) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Speaker) run() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
			s.sync()
		}
	}
}

// sync adds the paths that should be announced and are not (or differ),
// and deletes those that should not be.
func (s *Speaker) sync() {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	want := Announcements(s.cfg, s.svcs, s.usable, s.forwarding, s.draining, s.withdrawn)
	s.want = want
	s.mu.Unlock()
	seen := map[netip.Prefix]bool{}
	for _, a := range want {
		seen[a.Prefix] = true
		old, had := s.have[a.Prefix]
		switch {
		case a.Announced && (!had || !sameRoute(old, a)):
			if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{s.path(a)}}); err != nil {
				s.log.Error("bgp: announce", "prefix", a.Prefix, "err", err)
				continue
			}
			s.have[a.Prefix] = a
			s.log.Info("bgp: announced", "prefix", a.Prefix, "next_hop", a.NextHop, "communities", strings.Join(a.Communities, " "), "why", a.Why)
		case !a.Announced && had:
			s.withdraw(old, a.Why)
		}
	}
	for p, old := range s.have {
		if !seen[p] {
			s.withdraw(old, "no service on this VIP any more")
		}
	}
}

func (s *Speaker) withdraw(a Announcement, why string) {
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{s.path(a)}}); err != nil {
		s.log.Error("bgp: withdraw", "prefix", a.Prefix, "err", err)
		return
	}
	delete(s.have, a.Prefix)
	s.log.Info("bgp: withdrawn", "prefix", a.Prefix, "why", why)
}

func sameRoute(a, b Announcement) bool {
	return a.NextHop == b.NextHop && slices.Equal(a.Communities, b.Communities) &&
		(a.MED == nil) == (b.MED == nil) && (a.MED == nil || *a.MED == *b.MED)
}

func (s *Speaker) path(a Announcement) *apiutil.Path {
	nlri, _ := bgp.NewIPAddrPrefix(a.Prefix)
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0)} // IGP
	family := bgp.RF_IPv4_UC
	if a.Prefix.Addr().Is4() {
		nh, _ := bgp.NewPathAttributeNextHop(a.NextHop)
		attrs = append(attrs, nh)
	} else {
		family = bgp.RF_IPv6_UC
		mp, _ := bgp.NewPathAttributeMpReachNLRI(family, []bgp.PathNLRI{{NLRI: nlri}}, a.NextHop)
		attrs = append(attrs, mp)
	}
	var comms []uint32
	for _, c := range a.Communities {
		v, _ := parseCommunity(c)
		comms = append(comms, v)
	}
	if len(comms) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(comms))
	}
	if a.MED != nil {
		attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(*a.MED))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}
}

// View is what GET /v1/bgp shows.
func (s *Speaker) View() BGPView {
	s.mu.Lock()
	v := BGPView{ASN: s.cfg.ASN, RouterID: s.cfg.RouterID, Forwarding: s.forwarding, Draining: s.draining,
		Announcements: Announcements(s.cfg, s.svcs, s.usable, s.forwarding, s.draining, s.withdrawn)}
	lastErr := map[netip.Addr]string{}
	for k, e := range s.lastErr {
		lastErr[k] = e
	}
	s.mu.Unlock()
	v.Peers = s.peers(lastErr)
	return v
}

func (s *Speaker) peers(lastErr map[netip.Addr]string) []PeerView {
	out := []PeerView{}
	s.srv.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		pv := PeerView{}
		if p.Conf != nil {
			pv.Address, _ = netip.ParseAddr(p.Conf.NeighborAddress)
			pv.ASN = p.Conf.PeerAsn
		}
		if st := p.State; st != nil {
			pv.State = strings.ToLower(strings.TrimPrefix(st.SessionState.String(), "SESSION_STATE_"))
			pv.Up = st.SessionState == api.PeerState_SESSION_STATE_ESTABLISHED
			if st.Messages != nil && st.Messages.Sent != nil {
				pv.UpdatesOut = st.Messages.Sent.Update
			}
		}
		if pv.Up && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			pv.Uptime = time.Since(p.Timers.State.Uptime.AsTime()).Round(time.Second).String()
		}
		for _, af := range p.AfiSafis {
			if af.State != nil {
				pv.PrefixesOut += af.State.Advertised
			}
		}
		pv.LastError = lastErr[pv.Address]
		out = append(out, pv)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Address.Less(out[j].Address) })
	return out
}

// WritePrometheus writes rail_bgp_session_up{peer}, rail_bgp_updates_sent_total{peer}
// and rail_bgp_announced{prefix}.
func (s *Speaker) WritePrometheus(w io.Writer) {
	v := s.View()
	for _, p := range v.Peers {
		l := `{peer="` + p.Address.String() + `"}`
		metrics.WriteGaugeUint64(w, "rail_bgp_session_up"+l, b2u(p.Up))
		metrics.WriteCounterUint64(w, "rail_bgp_updates_sent_total"+l, p.UpdatesOut)
		metrics.WriteGaugeUint64(w, "rail_bgp_prefixes_sent"+l, p.PrefixesOut)
	}
	for _, a := range v.Announcements {
		metrics.WriteGaugeUint64(w, `rail_bgp_announced{prefix="`+a.Prefix.String()+`"}`, b2u(a.Announced))
	}
	metrics.WriteGaugeUint64(w, "rail_bgp_draining", b2u(v.Draining))
}

// Stop ends every session (the peers see the routes go) and the server.
func (s *Speaker) Stop() {
	close(s.done)
	s.wg.Wait()
	s.srv.Stop()
}
