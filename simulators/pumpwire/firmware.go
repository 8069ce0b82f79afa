package pumpwire

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// firmwareDomain separates firmware signatures from any other use of a key.
const firmwareDomain = "pumplab-firmware-v1"

// FirmwareImage describes a firmware image as a vendor releases it: version,
// SHA-256 of the image (hex), the vendor key id and the Ed25519 signature
// (base64) over {"domain","version","hash","kid"}.
type FirmwareImage struct {
	Version string `json:"version"`
	Hash    string `json:"hash"`
	KeyID   string `json:"kid,omitempty"`
	Sig     string `json:"sig,omitempty"`
}

// Validate implements Validator: version dotted numeric, hash 64 hex digits.
func (f *FirmwareImage) Validate() error {
	if _, err := ParseVersion(f.Version); err != nil {
		return fmt.Errorf("field version: %w", err)
	}
	if b, err := hex.DecodeString(f.Hash); err != nil || len(b) != 32 {
		return fmt.Errorf("field hash: %q is not 64 hex digits (SHA-256)", f.Hash)
	}
	if len(f.KeyID) > 64 || len(f.Sig) > 256 {
		return errors.New("field kid or sig: too long")
	}
	return nil
}

func (f *FirmwareImage) signed() ([]byte, error) {
	return json.Marshal(struct {
		Domain  string `json:"domain"`
		Version string `json:"version"`
		Hash    string `json:"hash"`
		KID     string `json:"kid"`
	}{firmwareDomain, f.Version, f.Hash, f.KeyID})
}

// SignFirmware returns the descriptor of an image of version with SHA-256
// hash (hex), signed by the vendor key kid.
func SignFirmware(version, hash, kid string, key ed25519.PrivateKey) (FirmwareImage, error) {
	f := FirmwareImage{Version: version, Hash: hash, KeyID: kid}
	if err := f.Validate(); err != nil {
		return f, fmt.Errorf("pumpwire: sign firmware: %w", err)
	}
	if len(key) != ed25519.PrivateKeySize {
		return f, errors.New("pumpwire: sign firmware: not an Ed25519 private key")
	}
	msg, err := f.signed()
	if err != nil {
		return f, err
	}
	f.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))
	return f, nil
}

// Verify checks the descriptor's signature with pub (ErrUnsigned,
// ErrBadSignature).
func (f *FirmwareImage) Verify(pub ed25519.PublicKey) error {
	if f.Sig == "" {
		return fmt.Errorf("pumpwire: firmware %s: %w", f.Version, ErrUnsigned)
	}
	sig, err := base64.StdEncoding.DecodeString(f.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("pumpwire: firmware %s: %w: malformed signature or key", f.Version, ErrBadSignature)
	}
	msg, err := f.signed()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("pumpwire: firmware %s (kid %q): %w", f.Version, f.KeyID, ErrBadSignature)
	}
	return nil
}

// ParseVersion parses a dotted numeric version ("4.2.0"): 1 to 6 parts of
// 1 to 9 decimal digits.
func ParseVersion(v string) ([]int, error) {
	if v == "" {
		return nil, errors.New("version is empty")
	}
	parts := strings.Split(v, ".")
	if len(parts) > 6 {
		return nil, fmt.Errorf("version %q: more than 6 parts", v)
	}
	out := make([]int, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 9 || strings.TrimLeft(p, "0123456789") != "" {
			return nil, fmt.Errorf("version %q: part %q is not a number of 1..9 digits", v, p)
		}
		out[i], _ = strconv.Atoi(p)
	}
	return out, nil
}

// CompareVersions compares dotted numeric versions part by part, missing
// parts counting as 0 ("4.2" == "4.2.0" < "4.10"): -1, 0 or 1.
func CompareVersions(a, b string) (int, error) {
	x, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	y, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	for i := 0; i < max(len(x), len(y)); i++ {
		var p, q int
		if i < len(x) {
			p = x[i]
		}
		if i < len(y) {
			q = y[i]
		}
		switch {
		case p < q:
			return -1, nil
		case p > q:
			return 1, nil
		}
	}
	return 0, nil
}
