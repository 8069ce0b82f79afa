package pump

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/pumplab/pumplab/simulators/druglib"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// LibraryPolicy is the signed-library control on a pump (nil in
// Config.LibraryPolicy = legacy: any library the fetcher returns is staged).
//
// Ordering of releases: every signed bundle carries a release number
// (druglib.Approval.Seq, covered by the pharmacy signature). A bundle is newer
// than the installed library when its release number is higher; the same
// number is accepted only for the same content (same hash: a re-push). The
// installed number is Config.LibrarySeq at creation, then the number of each
// library staged; the staged-but-not-active library counts too.
type LibraryPolicy struct {
	// Keys are the pharmacy signing keys by key id.
	Keys map[string]ed25519.PublicKey
	// RequireSignature refuses unsigned bundles and bad signatures (LIB-SIG).
	RequireSignature bool
	// RequireApproval refuses bundles without a valid two-person approval
	// record (LIB-APPROVAL): approver distinct from author and finalizer.
	RequireApproval bool
	// AllowRollback accepts bundles older than the installed one; otherwise
	// they are refused (LIB-ROLLBACK).
	AllowRollback bool
}

// FirmwarePolicy is the signed-firmware control on a pump (nil in
// Config.FirmwarePolicy = legacy: any version is staged).
type FirmwarePolicy struct {
	// VendorKeys are the vendor's firmware signing keys by key id.
	VendorKeys map[string]ed25519.PublicKey
	// RequireSignature refuses firmware without a valid signed image
	// descriptor (FW-SIG).
	RequireSignature bool
	// AllowRollback accepts a version lower than the running one; otherwise
	// it is refused (FW-ROLLBACK). Versions compare as dotted numbers
	// (pumpwire.CompareVersions).
	AllowRollback bool
	// MinVersion refuses versions below it (FW-MINVERSION); "" = no gate.
	MinVersion string
}

// StageBundle stages a library bundle after the checks of
// Config.LibraryPolicy (none when nil). A refusal is a *Rejection with code
// LIB-SIG, LIB-APPROVAL, LIB-ROLLBACK or LIB-HASH, logged and reported as a
// ControlEvent{signed-library, blocked}; an accepted bundle under a policy is
// reported as allowed. ref names the request (a command id).
func (p *Pump) StageBundle(b *druglib.Bundle, ref string) (activated bool, err error) {
	if b == nil || b.Library == nil {
		return false, fmt.Errorf("pump %s: stage bundle: no library", p.cfg.ID)
	}
	p.mu.Lock()
	defer p.unlock()
	pol := p.cfg.LibraryPolicy
	if pol != nil {
		if r := p.checkBundle(pol, b); r != nil {
			p.addLog(LogEntry{Kind: LogLibrary, Source: "remote", Action: "library_refused", Code: r.Code, Detail: b.Version() + ": " + r.Reason})
			p.control(CtlSignedLibrary, ActionBlocked, ref, fmt.Sprintf("library %s (release %d): %s: %s", b.Version(), b.Seq(), r.Code, r.Reason))
			return false, r
		}
		p.control(CtlSignedLibrary, ActionAllowed, ref, fmt.Sprintf("library %s release %d signed by %q", b.Version(), b.Seq(), b.KeyID))
	}
	return p.stageLibraryLocked(b.Library, b.Hash, b.Seq()), nil
}

func (p *Pump) checkBundle(pol *LibraryPolicy, b *druglib.Bundle) *Rejection {
	classify := func(err error) *Rejection {
		switch {
		case errors.Is(err, druglib.ErrApproval):
			return reject("LIB-APPROVAL", "%v", err)
		case errors.Is(err, druglib.ErrHashMismatch):
			return reject("LIB-HASH", "%v", err)
		}
		return reject("LIB-SIG", "%v", err)
	}
	if err := b.CheckHash(); err != nil {
		return classify(err)
	}
	if pol.RequireSignature {
		key, ok := pol.Keys[b.KeyID]
		if len(b.Signature) == 0 {
			return reject("LIB-SIG", "library %s is not signed", b.Version())
		}
		if !ok {
			return reject("LIB-SIG", "library %s signed with unknown key %q", b.Version(), b.KeyID)
		}
		if err := b.Verify(key); err != nil {
			return classify(err)
		}
	}
	if pol.RequireApproval {
		if b.Approval == nil {
			return reject("LIB-APPROVAL", "library %s has no approval record", b.Version())
		}
		// Verify checks the record before the signature.
		if err := b.Verify(nil); errors.Is(err, druglib.ErrApproval) {
			return classify(err)
		}
	}
	if !pol.AllowRollback {
		cur, curHash := p.libSeq, p.libHash
		if p.pendingLib != nil && p.pendingSeq >= cur {
			cur, curHash = p.pendingSeq, p.pendingHash
		}
		switch seq := b.Seq(); {
		case seq < cur:
			return reject("LIB-ROLLBACK", "library %s is release %d, older than the installed release %d", b.Version(), seq, cur)
		case seq == cur && cur > 0 && b.Hash != curHash:
			return reject("LIB-ROLLBACK", "library %s is release %d, the installed release number, with different content", b.Version(), seq)
		}
	}
	return nil
}

// LibrarySeq returns the release number of the active library.
func (p *Pump) LibrarySeq() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.libSeq
}

// StageFirmwareImage stages firmware version after the checks of
// Config.FirmwarePolicy (none when nil: exactly StageFirmware). img is the
// signed descriptor (nil when the command carried none). A refusal is a
// *Rejection with code FW-SIG, FW-VERSION, FW-ROLLBACK or FW-MINVERSION,
// logged and reported as ControlEvent{signed-firmware, blocked}.
func (p *Pump) StageFirmwareImage(version string, img *pumpwire.FirmwareImage, ref string) (applied bool, err error) {
	pol := p.cfg.FirmwarePolicy
	if pol == nil {
		return p.StageFirmware(version)
	}
	if version == "" {
		return false, fmt.Errorf("pump %s: stage firmware: empty version", p.cfg.ID)
	}
	p.mu.Lock()
	defer p.unlock()
	if r := p.checkFirmware(pol, version, img); r != nil {
		p.addLog(LogEntry{Kind: LogFirmware, Source: "remote", Action: "firmware_refused", Code: r.Code, Detail: version + ": " + r.Reason})
		p.control(CtlSignedFirmware, ActionBlocked, ref, fmt.Sprintf("firmware %s: %s: %s", version, r.Code, r.Reason))
		return false, r
	}
	p.control(CtlSignedFirmware, ActionAllowed, ref, "firmware "+version)
	return p.stageFirmwareLocked(version), nil
}

func (p *Pump) checkFirmware(pol *FirmwarePolicy, version string, img *pumpwire.FirmwareImage) *Rejection {
	if _, err := pumpwire.ParseVersion(version); err != nil {
		return reject("FW-VERSION", "%v", err)
	}
	if pol.RequireSignature {
		if img == nil || img.Sig == "" {
			return reject("FW-SIG", "firmware %s has no signed image descriptor", version)
		}
		if img.Version != version {
			return reject("FW-SIG", "descriptor is for version %s, not %s", img.Version, version)
		}
		key, ok := pol.VendorKeys[img.KeyID]
		if !ok {
			return reject("FW-SIG", "firmware %s signed with unknown vendor key %q", version, img.KeyID)
		}
		if err := img.Verify(key); err != nil {
			return reject("FW-SIG", "%v", err)
		}
	}
	if pol.MinVersion != "" {
		if c, err := pumpwire.CompareVersions(version, pol.MinVersion); err != nil {
			return reject("FW-VERSION", "minimum version: %v", err)
		} else if c < 0 {
			return reject("FW-MINVERSION", "firmware %s is below the minimum version %s", version, pol.MinVersion)
		}
	}
	if !pol.AllowRollback {
		cur := p.firmware
		if p.pendingFW != "" {
			cur = p.pendingFW
		}
		if c, err := pumpwire.CompareVersions(version, cur); err == nil && c < 0 {
			return reject("FW-ROLLBACK", "firmware %s is older than the installed %s", version, cur)
		}
	}
	return nil
}
