package pump

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

func signedBundle(t *testing.T, version string, seq uint64, k ed25519.PrivateKey, kid string) *druglib.Bundle {
	t.Helper()
	b, err := druglib.Sign(testLib(version), &druglib.Approval{Seq: seq, Author: "pharm-a", FinalizedBy: "pharm-a",
		FinalizedAt: labT0, Approver: "pharm-b", ApprovedAt: labT0}, k, kid)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// libRig is a pump whose agent fetches whatever bundle the test puts in serve.
func libRig(t *testing.T, pol *LibraryPolicy, seq uint64) (*secRig, *(*druglib.Bundle)) {
	serve := new(*druglib.Bundle)
	s := newSecRig(t, Config{LibraryPolicy: pol, LibrarySeq: seq}, AgentConfig{
		BundleFetcher: func(_ context.Context, url, hash string) (*druglib.Bundle, error) { return *serve, nil },
	})
	return s, serve
}

func libCmd(s *secRig, id string, b *druglib.Bundle) pumpwire.CommandAck {
	ack, _ := s.cmd(nil, 1, pumpwire.Command{CmdID: id, Op: pumpwire.OpActivateLib, LibraryVersion: b.Version(), LibraryURL: "/libraries/x", LibraryHash: b.Hash})
	return ack
}

func TestSignedLibraryPolicy(t *testing.T) {
	pharmacy := key(5)
	pol := &LibraryPolicy{Keys: map[string]ed25519.PublicKey{"pharm": pharmacy.Public().(ed25519.PublicKey)},
		RequireSignature: true, RequireApproval: true}
	good := signedBundle(t, "TEST-5", 5, pharmacy, "pharm")

	unsigned := &druglib.Bundle{Library: testLib("TEST-6"), Hash: testLib("TEST-6").Hash()}
	forged := signedBundle(t, "TEST-7", 7, key(66), "pharm")
	older := signedBundle(t, "TEST-3", 3, pharmacy, "pharm")
	badApproval := signedBundle(t, "TEST-8", 8, pharmacy, "pharm")
	badApproval.Approval.Approver = "pharm-a" // breaks the two-person rule (and the signature)

	for _, c := range []struct {
		name string
		b    *druglib.Bundle
		code string
	}{
		{"unsigned", unsigned, "LIB-SIG"},
		{"forged", forged, "LIB-SIG"},
		{"rollback", older, "LIB-ROLLBACK"},
		{"one pharmacist", badApproval, "LIB-APPROVAL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, serve := libRig(t, pol, 4)
			s.must(func() error { _, err := s.p.StageBundle(good, "seed"); return err }())
			*serve = c.b
			ack := libCmd(s, "L-"+c.name, c.b)
			if ack.Result != pumpwire.ResultRejected || ack.Code != c.code {
				t.Fatalf("ack %+v, want rejected %s", ack, c.code)
			}
			if lib, _ := s.p.Library(); lib.Version != "TEST-5" {
				t.Fatalf("library %s after a refused push", lib.Version)
			}
			bl := s.ctl.find(CtlSignedLibrary, ActionBlocked)
			if len(bl) != 1 || bl[0].Ref != "L-"+c.name || !strings.Contains(bl[0].Reason, c.code) {
				t.Fatalf("blocked events %+v", bl)
			}
			if !hasLog(s.p, "library_refused", c.code) {
				t.Fatal("refusal not logged")
			}
		})
	}

	// The legitimate flow: a newer approved, signed release is activated.
	s, serve := libRig(t, pol, 4)
	*serve = good
	if ack := libCmd(s, "L-good", good); ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("good bundle: %+v", ack)
	}
	if lib, h := s.p.Library(); lib.Version != "TEST-5" || h != good.Hash || s.p.LibrarySeq() != 5 {
		t.Fatalf("active %s %s seq %d", lib.Version, h, s.p.LibrarySeq())
	}
	if len(s.ctl.find(CtlSignedLibrary, ActionAllowed)) != 1 {
		t.Fatal("allowed not reported")
	}
	// Re-pushing the same release is fine; rollback allowed by policy too.
	if ack := libCmd(s, "L-again", good); ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("same release again: %+v", ack)
	}
	s.p.cfg.LibraryPolicy = &LibraryPolicy{Keys: pol.Keys, RequireSignature: true, AllowRollback: true}
	*serve = signedBundle(t, "TEST-3", 3, pharmacy, "pharm")
	if ack := libCmd(s, "L-rb", *serve); ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("rollback with AllowRollback: %+v", ack)
	}
}

func TestLibraryLegacyAcceptsUnsigned(t *testing.T) {
	s, serve := libRig(t, nil, 9)
	*serve = &druglib.Bundle{Library: testLib("TEST-1B"), Hash: "whatever"}
	if ack := libCmd(s, "L1", *serve); ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("legacy: %+v", ack)
	}
	if lib, _ := s.p.Library(); lib.Version != "TEST-1B" {
		t.Fatalf("legacy library %s", lib.Version)
	}
	if len(s.ctl.ev) != 0 {
		t.Fatalf("events without policy: %+v", s.ctl.ev)
	}
}

func TestLibraryFetcherStillWorks(t *testing.T) {
	s := newSecRig(t, Config{}, AgentConfig{LibraryFetcher: func(context.Context, string, string) (*druglib.Library, error) {
		return testLib("TEST-2"), nil
	}})
	ack, _ := s.cmd(nil, 1, pumpwire.Command{CmdID: "L", Op: pumpwire.OpActivateLib, LibraryVersion: "TEST-2", LibraryHash: "h"})
	if ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("%+v", ack)
	}
}

func TestSignedFirmwarePolicy(t *testing.T) {
	vendor := key(7)
	hash := strings.Repeat("ab", 32)
	img := func(v string, k ed25519.PrivateKey) *pumpwire.FirmwareImage {
		f, err := pumpwire.SignFirmware(v, hash, "vendor", k)
		if err != nil {
			t.Fatal(err)
		}
		return &f
	}
	pol := &FirmwarePolicy{VendorKeys: map[string]ed25519.PublicKey{"vendor": vendor.Public().(ed25519.PublicKey)},
		RequireSignature: true, MinVersion: "1.5"}
	for _, c := range []struct {
		name, version string
		image         *pumpwire.FirmwareImage
		code          string
	}{
		{"unsigned", "2.0.0", nil, "FW-SIG"},
		{"forged", "2.0.0", img("2.0.0", key(8)), "FW-SIG"},
		{"rollback", "1.8.0", img("1.8.0", vendor), "FW-ROLLBACK"},
		{"below minimum", "1.4.0", img("1.4.0", vendor), "FW-MINVERSION"},
		{"bad version", "two", nil, "FW-VERSION"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSecRig(t, Config{Firmware: "1.9.0", FirmwarePolicy: pol}, AgentConfig{})
			ack, _ := s.cmd(nil, 1, pumpwire.Command{CmdID: "F", Op: pumpwire.OpFirmware, Firmware: c.version, Image: c.image})
			if ack.Result != pumpwire.ResultRejected || ack.Code != c.code {
				t.Fatalf("ack %+v, want %s", ack, c.code)
			}
			if s.p.Firmware() != "1.9.0" {
				t.Fatalf("firmware %s after refusal", s.p.Firmware())
			}
			if len(s.ctl.find(CtlSignedFirmware, ActionBlocked)) != 1 {
				t.Fatal("not reported")
			}
		})
	}
	s := newSecRig(t, Config{Firmware: "1.9.0", FirmwarePolicy: pol}, AgentConfig{})
	if ack, _ := s.cmd(nil, 1, pumpwire.Command{CmdID: "F", Op: pumpwire.OpFirmware, Firmware: "2.0.0", Image: img("2.0.0", vendor)}); ack.Result != pumpwire.ResultAccepted {
		t.Fatalf("signed newer firmware: %+v", ack)
	}
	if s.p.Firmware() != "2.0.0" || len(s.ctl.find(CtlSignedFirmware, ActionAllowed)) != 1 {
		t.Fatalf("firmware %s", s.p.Firmware())
	}
	// Legacy: anything goes, even a downgrade without a descriptor.
	l := newSecRig(t, Config{Firmware: "1.9.0"}, AgentConfig{})
	if ack, _ := l.cmd(nil, 1, pumpwire.Command{CmdID: "F", Op: pumpwire.OpFirmware, Firmware: "0.1"}); ack.Result != pumpwire.ResultAccepted || l.p.Firmware() != "0.1" {
		t.Fatalf("legacy downgrade: %+v %s", ack, l.p.Firmware())
	}
}
