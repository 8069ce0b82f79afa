package druglib

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of bundle checks; test with errors.Is.
var (
	// ErrUnsigned: the bundle carries no signature. Legacy postures accept
	// it; secure postures refuse it.
	ErrUnsigned = errors.New("bundle is not signed")
	// ErrHashMismatch: the bundle's hash is not the hash of its library.
	ErrHashMismatch = errors.New("hash does not match the library content")
	// ErrBadSignature: the signature does not verify with the given key.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrApproval: the approval record does not fit the library or breaks the
	// two-person rule.
	ErrApproval = errors.New("approval record invalid")
)

// signatureDomain separates bundle signatures from any other use of a key.
const signatureDomain = "pumplab-druglib-bundle-v1"

// Clone returns a deep copy of l.
func (l *Library) Clone() *Library {
	if l == nil {
		return nil
	}
	c := *l
	if l.CareAreas != nil {
		c.CareAreas = make([]CareArea, len(l.CareAreas))
		copy(c.CareAreas, l.CareAreas)
	}
	if l.Entries != nil {
		c.Entries = make([]Entry, len(l.Entries))
		for i, e := range l.Entries {
			e.Codes = cloneStrings(e.Codes)
			e.CareAreas = cloneStrings(e.CareAreas)
			e.Channels = cloneStrings(e.Channels)
			if e.PCA != nil {
				p := *e.PCA
				e.PCA = &p
			}
			c.Entries[i] = e
		}
	}
	return &c
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

// CanonicalJSON is the encoding that Hash digests: the JSON encoding of the
// library with approved_by cleared (approval is recorded, and signed, in the
// bundle's Approval) and absent lists written as empty lists, so that equal
// content always encodes to the same bytes.
func (l *Library) CanonicalJSON() ([]byte, error) {
	c := l.Clone()
	c.ApprovedBy = ""
	if c.CareAreas == nil {
		c.CareAreas = []CareArea{}
	}
	if c.Entries == nil {
		c.Entries = []Entry{}
	}
	for i := range c.Entries {
		e := &c.Entries[i]
		if e.Channels == nil {
			e.Channels = []string{}
		}
		if len(e.Codes) == 0 {
			e.Codes = nil
		}
		if len(e.CareAreas) == 0 {
			e.CareAreas = nil
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("druglib: canonical encoding: %w", err)
	}
	return b, nil
}

// Hash returns the hex SHA-256 of the library's CanonicalJSON. The same
// content always gives the same hash; approved_by is not covered. A library
// that cannot be encoded (non-finite numbers, which Validate refuses) hashes
// to "".
func (l *Library) Hash() string {
	b, err := l.CanonicalJSON()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Approval is the record of the two-person release of one library version
// (CTL-07): who edited and finalized it, who approved it, and when.
type Approval struct {
	Version     string    `json:"version"`
	Seq         uint64    `json:"seq"` // release sequence number; higher is newer (anti-rollback)
	Hash        string    `json:"hash"`
	Author      string    `json:"author"`
	FinalizedBy string    `json:"finalized_by"`
	FinalizedAt time.Time `json:"finalized_at"`
	Approver    string    `json:"approver"`
	ApprovedAt  time.Time `json:"approved_at"`
}

// check verifies that a fits a library of version and hash and that the
// approver is not the author or the finalizer.
func (a *Approval) check(version, hash string) error {
	switch {
	case a.Version != version:
		return fmt.Errorf("%w: record is for version %q, library is %q", ErrApproval, a.Version, version)
	case a.Hash != hash:
		return fmt.Errorf("%w: record is for hash %s, library hashes to %s", ErrApproval, a.Hash, hash)
	case strings.TrimSpace(a.Approver) == "":
		return fmt.Errorf("%w: no approver", ErrApproval)
	case samePerson(a.Approver, a.Author) || samePerson(a.Approver, a.FinalizedBy):
		return fmt.Errorf("%w: approver %q also authored or finalized the library", ErrApproval, a.Approver)
	}
	return nil
}

func samePerson(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

// Bundle is a library as distributed: the content, its hash, the approval
// record and, in secure postures, an Ed25519 signature over the hash and the
// approval record.
type Bundle struct {
	Library   *Library  `json:"library"`
	Hash      string    `json:"hash"`
	Approval  *Approval `json:"approval,omitempty"`
	Signature []byte    `json:"signature,omitempty"` // base64 in JSON
	KeyID     string    `json:"key_id,omitempty"`
}

// Version returns the library version ("" without a library).
func (b *Bundle) Version() string {
	if b == nil || b.Library == nil {
		return ""
	}
	return b.Library.Version
}

// Seq returns the release sequence number of the approval record (0 when
// there is none). Pumps refuse a bundle whose Seq is below the active one.
func (b *Bundle) Seq() uint64 {
	if b == nil || b.Approval == nil {
		return 0
	}
	return b.Approval.Seq
}

// signedMessage is the byte string that a bundle signature covers.
func signedMessage(hash string, a *Approval) ([]byte, error) {
	return json.Marshal(struct {
		Domain   string    `json:"domain"`
		Hash     string    `json:"hash"`
		Approval *Approval `json:"approval"`
	}{signatureDomain, hash, a})
}

// Sign validates lib and returns a signed bundle. The approval record's
// Version and Hash are filled in when empty and must match lib otherwise;
// the approver must differ from the author and the finalizer. The bundle's
// library is a copy with approved_by set to the approver.
func Sign(lib *Library, approval *Approval, key ed25519.PrivateKey, keyID string) (*Bundle, error) {
	if err := lib.Validate(); err != nil {
		return nil, fmt.Errorf("druglib: sign: %w", err)
	}
	if approval == nil {
		return nil, fmt.Errorf("druglib: sign %s: %w: no approval record", lib.Version, ErrApproval)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("druglib: sign %s: private key has %d bytes, want %d", lib.Version, len(key), ed25519.PrivateKeySize)
	}
	hash := lib.Hash()
	a := *approval
	if a.Version == "" {
		a.Version = lib.Version
	}
	if a.Hash == "" {
		a.Hash = hash
	}
	if err := a.check(lib.Version, hash); err != nil {
		return nil, fmt.Errorf("druglib: sign %s: %w", lib.Version, err)
	}
	msg, err := signedMessage(hash, &a)
	if err != nil {
		return nil, fmt.Errorf("druglib: sign %s: %w", lib.Version, err)
	}
	c := lib.Clone()
	c.ApprovedBy = a.Approver
	return &Bundle{Library: c, Hash: hash, Approval: &a, Signature: ed25519.Sign(key, msg), KeyID: keyID}, nil
}

// CheckHash checks that the bundle has a valid library whose hash is Hash.
// It needs no key: clients use it on every download.
func (b *Bundle) CheckHash() error {
	if b == nil || b.Library == nil {
		return errors.New("druglib: check bundle: no library")
	}
	if err := b.Library.Validate(); err != nil {
		return fmt.Errorf("druglib: check bundle %s: %w", b.Library.Version, err)
	}
	if h := b.Library.Hash(); h != b.Hash {
		return fmt.Errorf("druglib: check bundle %s: %w: bundle says %q, content hashes to %s", b.Library.Version, ErrHashMismatch, b.Hash, h)
	}
	return nil
}

// Verify checks the bundle: library valid, hash matching the content,
// approval record consistent (version, hash, approver distinct from author
// and finalizer, approved_by equal to the approver when set) and the
// signature valid for pub. An otherwise sound bundle without a signature
// gives an error wrapping ErrUnsigned, which legacy postures may accept:
//
//	if err := b.Verify(pub); err != nil && !(legacy && errors.Is(err, druglib.ErrUnsigned)) { refuse }
func (b *Bundle) Verify(pub ed25519.PublicKey) error {
	if err := b.CheckHash(); err != nil {
		return err
	}
	v := b.Library.Version
	if a := b.Approval; a != nil {
		if err := a.check(v, b.Hash); err != nil {
			return fmt.Errorf("druglib: verify %s: %w", v, err)
		}
		if b.Library.ApprovedBy != "" && b.Library.ApprovedBy != a.Approver {
			return fmt.Errorf("druglib: verify %s: %w: approved_by %q but the record names %q", v, ErrApproval, b.Library.ApprovedBy, a.Approver)
		}
	}
	if len(b.Signature) == 0 {
		return fmt.Errorf("druglib: verify %s: %w", v, ErrUnsigned)
	}
	if b.Approval == nil {
		return fmt.Errorf("druglib: verify %s: %w: signed bundle without approval record", v, ErrApproval)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("druglib: verify %s: public key has %d bytes, want %d", v, len(pub), ed25519.PublicKeySize)
	}
	msg, err := signedMessage(b.Hash, b.Approval)
	if err != nil {
		return fmt.Errorf("druglib: verify %s: %w", v, err)
	}
	if !ed25519.Verify(pub, msg, b.Signature) {
		return fmt.Errorf("druglib: verify %s (key %q): %w", v, b.KeyID, ErrBadSignature)
	}
	return nil
}
