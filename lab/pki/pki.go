// Package pki is the lab PKI: a root CA generated in memory when a lab
// starts, certificates for devices (pumps), services (pump server, alarm
// manager, eMAR/BCMA, EHR, broker) and users, mutual-TLS configurations, a
// revocation list and a PEM export for tools that run outside the process.
//
// Everything is crypto/x509 with ECDSA P-256; no external tool is needed.
// Validity periods come from the injected lab clock, so a certificate
// expires in lab time, and the tls.Config values built here check expiry
// against the same clock. Serial numbers are deterministic per lab (1 for
// the CA, then 2, 3, ... in issue order); private keys come from
// crypto/rand (Options.Rand can replace it) and so differ between runs.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
)

// Kind is what a certificate identifies. It is written in the subject's
// OrganizationalUnit, so a broker ACL or an MLLP listener can tell a pump
// from a service.
type Kind string

// Kinds of certificate.
const (
	Device  Kind = "device"  // a pump or another medical device: client and server auth
	Service Kind = "service" // a server of the hospital: server and client auth
	User    Kind = "user"    // a person or a tool: client auth only
)

// Options configure a lab PKI. The zero value works.
type Options struct {
	// Clock gives the validity periods and the verification time; nil
	// means the wall clock.
	Clock clock.Clock
	// Lab names the lab in the CA's subject (default "pumplab").
	Lab string
	// CALifetime is the CA's validity in lab time (default 720h).
	CALifetime time.Duration
	// CertLifetime is an issued certificate's validity (default 168h),
	// capped at the CA's expiry.
	CertLifetime time.Duration
	// CRLLifetime is the distance from a CRL's ThisUpdate to NextUpdate
	// (default 24h).
	CRLLifetime time.Duration
	// Backdate moves NotBefore into the past to tolerate clock skew between
	// processes (default 0: NotBefore is the issue time).
	Backdate time.Duration
	// Rand is the entropy for keys and signatures; nil means crypto/rand.
	Rand io.Reader
}

// Identity is an issued certificate and its key.
type Identity struct {
	Name string
	Kind Kind
	// TLS holds the chain (leaf, then the CA) and the key, ready for
	// tls.Config.Certificates; TLS.Leaf is set.
	TLS tls.Certificate
	// Leaf is the parsed certificate.
	Leaf *x509.Certificate
	// Key is the private key, also usable to sign application messages.
	Key *ecdsa.PrivateKey
}

// Revocation is one entry of the revocation list.
type Revocation struct {
	Serial *big.Int
	Name   string
	Time   time.Time // lab time of the revocation
}

// PKI is a running lab PKI. It is safe for concurrent use.
type PKI struct {
	opts   Options
	clk    clock.Clock
	rnd    io.Reader
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool

	mu        sync.Mutex
	serial    int64
	crlNumber int64
	current   map[string]*Identity  // name -> latest identity
	issued    map[string][]*big.Int // name -> every serial issued
	byName    map[string]string     // serial (decimal) -> name
	revoked   map[string]Revocation // serial (decimal) -> entry
}

// Errors of the PKI.
var (
	ErrUnknown = errors.New("unknown identity")
	ErrRevoked = errors.New("certificate revoked")
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// New generates the root CA of a lab.
func New(opts Options) (*PKI, error) {
	if opts.Lab == "" {
		opts.Lab = "pumplab"
	}
	if opts.CALifetime <= 0 {
		opts.CALifetime = 720 * time.Hour
	}
	if opts.CertLifetime <= 0 {
		opts.CertLifetime = 168 * time.Hour
	}
	if opts.CRLLifetime <= 0 {
		opts.CRLLifetime = 24 * time.Hour
	}
	p := &PKI{opts: opts, clk: opts.Clock, rnd: opts.Rand, current: map[string]*Identity{},
		issued: map[string][]*big.Int{}, byName: map[string]string{}, revoked: map[string]Revocation{}}
	if p.clk == nil {
		p.clk = clock.Real()
	}
	if p.rnd == nil {
		p.rnd = rand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), p.rnd)
	if err != nil {
		return nil, fmt.Errorf("pki: new: CA key: %w", err)
	}
	now := p.clk.Now()
	p.serial = 1
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(p.serial),
		Subject:               pkix.Name{CommonName: opts.Lab + " lab CA", Organization: []string{opts.Lab}},
		NotBefore:             now.Add(-opts.Backdate),
		NotAfter:              now.Add(opts.CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(p.rnd, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: new: CA certificate: %w", err)
	}
	p.caCert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: new: CA certificate: %w", err)
	}
	p.caKey = key
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.caCert)
	return p, nil
}

func keyID(pub *ecdsa.PublicKey) []byte {
	raw, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(fmt.Sprintf("pki: marshal public key: %v", err))
	}
	sum := sha1.Sum(raw) // RFC 5280 method 1; an identifier, not a security function
	return sum[:]
}

// CA returns the lab's root certificate.
func (p *PKI) CA() *x509.Certificate { return p.caCert }

// Pool returns a new pool holding the lab CA.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	return pool
}

// Issue creates a certificate for commonName. sans are added to the
// certificate's subject alternative names: an IP address, a URI (with
// "://"), an e-mail address (with "@") or else a DNS name. commonName is
// always a DNS name of the certificate, and a Service certificate also
// covers localhost, 127.0.0.1 and ::1 (the lab's default addresses).
// Issuing a name again gives a new certificate (a new serial) that
// replaces the old one for ServerTLS and ClientTLS; the old one stays valid
// until revoked or expired.
func (p *PKI) Issue(commonName string, kind Kind, sans []string) (*Identity, error) {
	fail := func(err error) (*Identity, error) {
		return nil, fmt.Errorf("pki: issue %s: %w", commonName, err)
	}
	if !nameRE.MatchString(commonName) {
		return fail(errors.New("name must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"))
	}
	var ext []x509.ExtKeyUsage
	switch kind {
	case Device, Service:
		ext = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case User:
		ext = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return fail(fmt.Errorf("unknown kind %q (device, service or user)", kind))
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: commonName, Organization: []string{p.opts.Lab},
			OrganizationalUnit: []string{string(kind)}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: ext,
		DNSNames:    []string{commonName},
	}
	if kind == Service {
		tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	for _, s := range sans {
		switch {
		case net.ParseIP(s) != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(s))
		case strings.Contains(s, "://"):
			u, err := url.Parse(s)
			if err != nil {
				return fail(fmt.Errorf("SAN %q: %w", s, err))
			}
			tmpl.URIs = append(tmpl.URIs, u)
		case strings.Contains(s, "@"):
			tmpl.EmailAddresses = append(tmpl.EmailAddresses, s)
		case s != "":
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), p.rnd)
	if err != nil {
		return fail(err)
	}
	tmpl.SubjectKeyId = keyID(&key.PublicKey)

	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clk.Now()
	if !now.Before(p.caCert.NotAfter) {
		return fail(fmt.Errorf("the lab CA expired at %s", p.caCert.NotAfter.UTC().Format(time.RFC3339)))
	}
	p.serial++
	tmpl.SerialNumber = big.NewInt(p.serial)
	tmpl.NotBefore = now.Add(-p.opts.Backdate)
	tmpl.NotAfter = now.Add(p.opts.CertLifetime)
	if tmpl.NotAfter.After(p.caCert.NotAfter) {
		tmpl.NotAfter = p.caCert.NotAfter
	}
	der, err := x509.CreateCertificate(p.rnd, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return fail(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return fail(err)
	}
	id := &Identity{Name: commonName, Kind: kind, Leaf: leaf, Key: key,
		TLS: tls.Certificate{Certificate: [][]byte{der, p.caCert.Raw}, PrivateKey: key, Leaf: leaf}}
	p.current[commonName] = id
	p.issued[commonName] = append(p.issued[commonName], tmpl.SerialNumber)
	p.byName[tmpl.SerialNumber.String()] = commonName
	return id, nil
}

// Identity returns the latest identity issued to name.
func (p *PKI) Identity(name string) (*Identity, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.current[name]
	return id, ok
}

// Names returns the names with an issued identity, sorted.
func (p *PKI) Names() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.current))
	for n := range p.current {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ServerTLS returns a mutual-TLS server configuration for the identity
// called name: the server presents its certificate, requires and verifies
// a client certificate from the lab CA, refuses revoked ones (VerifyPeer)
// and checks validity against the lab clock. TLS 1.2 is the minimum.
func (p *PKI) ServerTLS(name string) (*tls.Config, error) {
	id, ok := p.Identity(name)
	if !ok {
		return nil, fmt.Errorf("pki: server TLS for %s: %w", name, ErrUnknown)
	}
	return &tls.Config{
		Certificates:          []tls.Certificate{id.TLS},
		ClientAuth:            tls.RequireAndVerifyClientCert,
		ClientCAs:             p.Pool(),
		MinVersion:            tls.VersionTLS12,
		Time:                  p.clk.Now,
		VerifyPeerCertificate: p.VerifyPeer,
	}, nil
}

// ClientTLS returns a mutual-TLS client configuration for the identity
// called name: it presents the client certificate, trusts only the lab CA,
// refuses a revoked server certificate and checks validity against the lab
// clock. Set ServerName to the server's name (its certificate carries its
// common name as a DNS name) unless dialing an address the server
// certificate covers (127.0.0.1 for Service certificates).
func (p *PKI) ClientTLS(name string) (*tls.Config, error) {
	id, ok := p.Identity(name)
	if !ok {
		return nil, fmt.Errorf("pki: client TLS for %s: %w", name, ErrUnknown)
	}
	return &tls.Config{
		Certificates:          []tls.Certificate{id.TLS},
		RootCAs:               p.Pool(),
		MinVersion:            tls.VersionTLS12,
		Time:                  p.clk.Now,
		VerifyPeerCertificate: p.VerifyPeer,
	}, nil
}

// ClientTLSTo is ClientTLS(name) with ServerName set to server: the
// connection is refused unless the server presents a certificate issued to
// server. Every Service certificate also covers 127.0.0.1, so a client that
// dials a loopback address without ServerName accepts any lab service; this
// is the configuration that detects a man in the middle holding another
// lab certificate (hl7.VerificationError on MLLP).
func (p *PKI) ClientTLSTo(name, server string) (*tls.Config, error) {
	c, err := p.ClientTLS(name)
	if err != nil {
		return nil, err
	}
	c.ServerName = server
	return c, nil
}

// VerifyPeer is a tls.Config.VerifyPeerCertificate hook: it refuses a peer
// whose certificate this PKI revoked. When the standard verification ran
// (verifiedChains set) it checks the leaf only; otherwise (InsecureSkipVerify,
// or ClientAuth without verification) it also verifies the chain against
// the lab CA at lab time.
func (p *PKI) VerifyPeer(rawCerts [][]byte, verifiedChains [][]*x509.Certificate) error {
	if len(rawCerts) == 0 {
		return errors.New("pki: verify peer: no certificate")
	}
	var leaf *x509.Certificate
	if len(verifiedChains) > 0 && len(verifiedChains[0]) > 0 {
		leaf = verifiedChains[0][0]
	} else {
		c, err := x509.ParseCertificate(rawCerts[0])
		if err != nil {
			return fmt.Errorf("pki: verify peer: %w", err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: p.pool, CurrentTime: p.clk.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return fmt.Errorf("pki: verify peer %s: %w", c.Subject.CommonName, err)
		}
		leaf = c
	}
	if err := leaf.CheckSignatureFrom(p.caCert); err != nil {
		return nil // another CA's certificate: not ours to judge revocation of
	}
	p.mu.Lock()
	r, revoked := p.revoked[leaf.SerialNumber.String()]
	p.mu.Unlock()
	if revoked {
		return fmt.Errorf("pki: verify peer %s (serial %s): %w at %s", leaf.Subject.CommonName, leaf.SerialNumber,
			ErrRevoked, r.Time.UTC().Format(time.RFC3339))
	}
	return nil
}

// Revoke revokes every certificate issued to name (the decommission of a
// device or service). Revoking a name twice is not an error.
func (p *PKI) Revoke(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	serials, ok := p.issued[name]
	if !ok {
		return fmt.Errorf("pki: revoke %s: %w", name, ErrUnknown)
	}
	now := p.clk.Now()
	for _, s := range serials {
		if _, done := p.revoked[s.String()]; !done {
			p.revoked[s.String()] = Revocation{Serial: s, Name: name, Time: now}
		}
	}
	return nil
}

// RevokeSerial revokes one certificate by serial number.
func (p *PKI) RevokeSerial(serial *big.Int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if serial == nil {
		return fmt.Errorf("pki: revoke serial: %w", ErrUnknown)
	}
	name, ok := p.byName[serial.String()]
	if !ok {
		return fmt.Errorf("pki: revoke serial %s: %w", serial, ErrUnknown)
	}
	if _, done := p.revoked[serial.String()]; !done {
		p.revoked[serial.String()] = Revocation{Serial: new(big.Int).Set(serial), Name: name, Time: p.clk.Now()}
	}
	return nil
}

// IsRevoked reports whether the certificate with this serial is revoked.
func (p *PKI) IsRevoked(serial *big.Int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.revoked[serial.String()]
	return ok
}

// Revocations returns the revoked certificates, by serial.
func (p *PKI) Revocations() []Revocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Revocation, 0, len(p.revoked))
	for _, r := range p.revoked {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Serial.Cmp(out[j].Serial) < 0 })
	return out
}

// CRL returns a new DER-encoded revocation list signed by the lab CA:
// ThisUpdate is now (lab time), NextUpdate now + CRLLifetime, and the CRL
// number grows with each call.
func (p *PKI) CRL() ([]byte, error) {
	revs := p.Revocations()
	p.mu.Lock()
	p.crlNumber++
	number := p.crlNumber
	p.mu.Unlock()
	now := p.clk.Now()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(number),
		ThisUpdate: now,
		NextUpdate: now.Add(p.opts.CRLLifetime),
	}
	for _, r := range revs {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: r.Serial, RevocationTime: r.Time})
	}
	der, err := x509.CreateRevocationList(p.rnd, tmpl, p.caCert, p.caKey)
	if err != nil {
		return nil, fmt.Errorf("pki: CRL: %w", err)
	}
	return der, nil
}

// WriteFiles exports the PKI as PEM files into dir (created 0700 if
// needed) for tools that run outside the lab: ca.pem, crl.pem, and for
// every issued name NAME.pem (the certificate followed by the CA) and
// NAME-key.pem (PKCS #8, mode 0600).
func (p *PKI) WriteFiles(dir string) error {
	fail := func(err error) error { return fmt.Errorf("pki: write files to %s: %w", dir, err) }
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	crl, err := p.CRL()
	if err != nil {
		return fail(err)
	}
	write := func(file string, mode os.FileMode, blocks ...*pem.Block) error {
		var b []byte
		for _, blk := range blocks {
			b = append(b, pem.EncodeToMemory(blk)...)
		}
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, b, mode); err != nil {
			return err
		}
		return os.Chmod(path, mode) // WriteFile keeps the mode of an existing file
	}
	if err := write("ca.pem", 0o644, &pem.Block{Type: "CERTIFICATE", Bytes: p.caCert.Raw}); err != nil {
		return fail(err)
	}
	if err := write("crl.pem", 0o644, &pem.Block{Type: "X509 CRL", Bytes: crl}); err != nil {
		return fail(err)
	}
	for _, n := range p.Names() {
		id, _ := p.Identity(n)
		key, err := x509.MarshalPKCS8PrivateKey(id.Key)
		if err != nil {
			return fail(err)
		}
		if err := write(n+".pem", 0o644, &pem.Block{Type: "CERTIFICATE", Bytes: id.Leaf.Raw},
			&pem.Block{Type: "CERTIFICATE", Bytes: p.caCert.Raw}); err != nil {
			return fail(err)
		}
		if err := write(n+"-key.pem", 0o600, &pem.Block{Type: "PRIVATE KEY", Bytes: key}); err != nil {
			return fail(err)
		}
	}
	return nil
}

// Signer returns the private key of the identity called name as a
// crypto.Signer, for signing application messages (commands, bundles).
func (p *PKI) Signer(name string) (crypto.Signer, error) {
	id, ok := p.Identity(name)
	if !ok {
		return nil, fmt.Errorf("pki: signer %s: %w", name, ErrUnknown)
	}
	return id.Key, nil
}
