package druglib

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func testKey(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	k := ed25519.NewKeyFromSeed(s)
	return k.Public().(ed25519.PublicKey), k
}

func TestHashStable(t *testing.T) {
	a, err := Parse(DefaultYAML(), "a")
	if err != nil {
		t.Fatal(err)
	}
	b := Default()
	h := a.Hash()
	if len(h) != 64 {
		t.Fatalf("hash %q is not hex SHA-256", h)
	}
	if b.Hash() != h || a.Clone().Hash() != h || a.Hash() != h {
		t.Fatal("the same library hashes differently")
	}
	// approved_by is outside the hash; nil and empty lists are the same.
	b.ApprovedBy = "someone.else"
	for i := range b.Entries {
		if len(b.Entries[i].Codes) == 0 {
			b.Entries[i].Codes = []string{}
		}
		if len(b.Entries[i].CareAreas) == 0 {
			b.Entries[i].CareAreas = []string{}
		}
	}
	if b.Hash() != h {
		t.Fatal("approved_by or empty lists changed the hash")
	}
	empty := &Library{Version: "A"}
	if empty.Hash() != (&Library{Version: "A", CareAreas: []CareArea{}, Entries: []Entry{}}).Hash() {
		t.Fatal("nil and empty top-level lists hash differently")
	}
	// Any content change changes it.
	for name, mutate := range map[string]func(*Library){
		"limit":     func(l *Library) { l.Entries[0].Dose.HardMax = 2 },
		"version":   func(l *Library) { l.Version = "ADULT-2026.02" },
		"author":    func(l *Library) { l.CreatedBy = "mallory" },
		"care area": func(l *Library) { l.CareAreas[1].MaxRateMLH = 1000 },
		"pca":       func(l *Library) { e, _ := l.Lookup("MORPHINE-PCA-30-30", ""); e.PCA.HourLimitMax = 100 },
		"advisory":  func(l *Library) { l.Entries[0].Advisory = "" },
	} {
		c := a.Clone()
		mutate(c)
		if c.Hash() == h {
			t.Errorf("%s change kept the hash", name)
		}
	}
}

func TestCanonicalJSONFormat(t *testing.T) {
	lib := &Library{Version: "V1", CreatedBy: "a", ApprovedBy: "b",
		CareAreas: []CareArea{{Name: "ICU", MaxRateMLH: 999, CallbackMin: 2, KVORateMLH: 1}},
		Entries:   []Entry{{ID: "NS", Name: "Saline", DoseUnit: "mL/h", Dose: Limits{HardMax: 999}}}}
	got, err := lib.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"V1","created_by":"a","care_areas":[{"name":"ICU","max_rate_ml_h":999,"callback_min":2,"kvo_rate_ml_h":1,"weight_min_kg":0,"weight_max_kg":0,"basic_infusion_allowed":false}],` +
		`"entries":[{"id":"NS","name":"Saline","channels":[],"high_alert":false,"dose_unit":"mL/h","dose":{"hard_max":999}}]}`
	if string(got) != want {
		t.Fatalf("canonical JSON\n%s\nwant\n%s", got, want)
	}
}

func approvalFor(lib *Library) *Approval {
	at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	return &Approval{Seq: 7, Author: "rph.alvarez", FinalizedBy: "rph.alvarez", FinalizedAt: at, Approver: "rph.chen", ApprovedAt: at.Add(time.Hour)}
}

func TestSignVerify(t *testing.T) {
	pub, priv := testKey(1)
	otherPub, _ := testKey(2)
	lib := Default()
	b, err := Sign(lib, approvalFor(lib), priv, "pharmacy-2026")
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash != lib.Hash() || b.Approval.Hash != b.Hash || b.Approval.Version != lib.Version || b.Library.ApprovedBy != "rph.chen" || b.Seq() != 7 {
		t.Fatalf("bundle fields: hash %s approval %+v approved_by %q", b.Hash, b.Approval, b.Library.ApprovedBy)
	}
	if err := b.Verify(pub); err != nil {
		t.Fatalf("fresh bundle: %v", err)
	}
	// Survives JSON transport.
	data, _ := json.Marshal(b)
	var back Bundle
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(pub); err != nil {
		t.Fatalf("bundle after JSON round trip: %v", err)
	}

	tamper := func(f func(*Bundle)) error {
		var c Bundle
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		f(&c)
		return c.Verify(pub)
	}
	for _, c := range []struct {
		name string
		f    func(*Bundle)
		want error
	}{
		{"raised hard max", func(b *Bundle) { b.Library.Entries[0].Dose.HardMax = 10 }, ErrHashMismatch},
		{"raised hard max, hash updated", func(b *Bundle) {
			b.Library.Entries[0].Dose.HardMax = 10
			b.Hash = b.Library.Hash()
		}, ErrApproval},
		{"raised hard max, hash and approval updated", func(b *Bundle) {
			b.Library.Entries[0].Dose.HardMax = 10
			b.Hash = b.Library.Hash()
			b.Approval.Hash = b.Hash
		}, ErrBadSignature},
		{"other approver", func(b *Bundle) { b.Approval.Approver = "rph.mallory"; b.Library.ApprovedBy = "" }, ErrBadSignature},
		{"approved_by differs from record", func(b *Bundle) { b.Library.ApprovedBy = "rph.mallory" }, ErrApproval},
		{"older seq", func(b *Bundle) { b.Approval.Seq = 99 }, ErrBadSignature},
		{"self approval record", func(b *Bundle) { b.Approval.Approver = b.Approval.Author; b.Library.ApprovedBy = "" }, ErrApproval},
		{"signature flipped", func(b *Bundle) { b.Signature[0] ^= 1 }, ErrBadSignature},
		{"signature removed", func(b *Bundle) { b.Signature = nil }, ErrUnsigned},
	} {
		err := tamper(c.f)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
	if err := b.Verify(otherPub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong key: %v", err)
	}
	if err := b.Verify(nil); err == nil {
		t.Fatal("nil key accepted")
	}
}

func TestUnsignedBundle(t *testing.T) {
	lib := Default()
	b := &Bundle{Library: lib, Hash: lib.Hash()}
	err := b.Verify(nil)
	if !errors.Is(err, ErrUnsigned) || errors.Is(err, ErrBadSignature) {
		t.Fatalf("unsigned bundle: %v", err)
	}
	if err := b.CheckHash(); err != nil {
		t.Fatalf("CheckHash of a sound unsigned bundle: %v", err)
	}
	b.Library.Entries[0].Dose.HardMax = 5
	if err := b.Verify(nil); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("tampered unsigned bundle: %v, want ErrHashMismatch (not ErrUnsigned)", err)
	}
	if err := (&Bundle{}).CheckHash(); err == nil {
		t.Fatal("empty bundle passed CheckHash")
	}
}

func TestSignRefuses(t *testing.T) {
	_, priv := testKey(1)
	lib := Default()
	self := approvalFor(lib)
	self.Approver = "RPH.Alvarez "
	if _, err := Sign(lib, self, priv, "k"); !errors.Is(err, ErrApproval) {
		t.Fatalf("self approval: %v", err)
	}
	wrong := approvalFor(lib)
	wrong.Hash = "00"
	if _, err := Sign(lib, wrong, priv, "k"); !errors.Is(err, ErrApproval) {
		t.Fatalf("approval for another hash: %v", err)
	}
	if _, err := Sign(lib, nil, priv, "k"); !errors.Is(err, ErrApproval) {
		t.Fatalf("no approval: %v", err)
	}
	bad := Default()
	bad.Entries[0].Channels = nil
	if _, err := Sign(bad, approvalFor(bad), priv, "k"); err == nil {
		t.Fatal("invalid library signed")
	}
	if _, err := Sign(lib, approvalFor(lib), priv[:10], "k"); err == nil {
		t.Fatal("short key accepted")
	}
}
