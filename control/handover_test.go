package control

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/rail-lb/rail/pipeline/header"
)

// TestHandoverRoundTrip: the control state survives export, JSON and
// import into a fresh state built from the same file: the API-added
// backend, a reweight, a health verdict and a next hop, so the new
// snapshot has the same services (the same tables).
func TestHandoverRoundTrip(t *testing.T) {
	old := newAPILab(t, apiConfig)
	w := uint32(5)
	if _, err := old.state.AddBackend("web", BackendRequest{Address: "10.1.0.13", Weight: &w}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.state.SetWeight("web", "10.1.0.11", 3); err != nil {
		t.Fatal(err)
	}
	old.state.SetHealth("dns", netip.MustParseAddr("10.1.0.21"), false)
	old.state.SetNeighbor(netip.MustParseAddr("10.1.0.12"), header.MAC{2, 0, 0, 0, 0, 12}, true)
	b, err := json.Marshal(old.state.Export())
	if err != nil {
		t.Fatal(err)
	}
	var h Handover
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	fresh := newAPILab(t, apiConfig)
	discarded, err := fresh.state.Import(h)
	if err != nil || len(discarded) != 0 {
		t.Fatalf("import: discarded %v, %v", discarded, err)
	}
	if got, want := fresh.state.Services(), old.state.Services(); !reflect.DeepEqual(got, want) {
		t.Fatalf("services after import:\n%+v\nwant\n%+v", got, want)
	}
	if got, want := fresh.state.Snap.Load().Config().Services, old.state.Snap.Load().Config().Services; !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot services after import:\n%+v\nwant\n%+v", got, want)
	}
	if !reflect.DeepEqual(fresh.state.changes, old.state.changes) || len(fresh.state.changes) != 2 {
		t.Fatalf("changes %v, want %v", fresh.state.changes, old.state.changes)
	}

	// A new file with other services wins; the API changes are named.
	other := newAPILab(t, strings.Replace(apiConfig, "10.1.0.12", "10.1.0.14", 1))
	discarded, err = other.state.Import(h)
	if err != nil || len(discarded) != 2 {
		t.Fatalf("import over another file: discarded %v, %v", discarded, err)
	}
	for _, sv := range other.state.Services() {
		for _, b := range sv.Backends {
			if b.Address == "10.1.0.13" {
				t.Fatal("an API-added backend survived a file with other services")
			}
		}
	}
	h.Version = HandoverVersion + 1
	if _, err := fresh.state.Import(h); err == nil {
		t.Fatal("another version imported")
	}
}
