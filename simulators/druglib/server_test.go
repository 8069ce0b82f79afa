package druglib

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func startServer(t *testing.T, cfg ServerConfig) (*Server, *Client) {
	t.Helper()
	if cfg.Store == nil {
		s, _ := newTestStore(t, true)
		cfg.Store = s
	}
	srv := NewServer(cfg)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return srv, &Client{BaseURL: srv.URL()}
}

func TestServerWorkflowOverHTTP(t *testing.T) {
	srv, c := startServer(t, ServerConfig{})
	ctx := context.Background()
	host, _, err := net.SplitHostPort(srv.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("listening on %q, want loopback", srv.Addr())
	}

	if _, err := c.Current(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("current before publish: %v, want ErrNotFound", err)
	}
	lib := libVersion("ADULT-2026.02")
	info, err := c.Draft(ctx, lib, "rph.alvarez")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != StateDraft || info.Hash != lib.Hash() {
		t.Fatalf("draft answer %+v", info)
	}
	if _, err := c.Finalize(ctx, lib.Version, "rph.alvarez"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Approve(ctx, lib.Version, "rph.alvarez"); !errors.Is(err, ErrSelfApproval) {
		t.Fatalf("self approval over HTTP: %v", err)
	}
	var ae *APIError
	if _, err := c.Publish(ctx, lib.Version, "rph.chen"); !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || !errors.Is(err, ErrState) {
		t.Fatalf("publish unapproved: %v", err)
	}
	if _, err := c.Approve(ctx, lib.Version, "rph.chen"); err != nil {
		t.Fatal(err)
	}
	pubBundle, err := c.Publish(ctx, lib.Version, "rph.chen")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := c.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := testKey(1)
	if err := cur.Verify(pub); err != nil {
		t.Fatalf("served bundle does not verify: %v", err)
	}
	if cur.Hash != lib.Hash() || cur.Hash != pubBundle.Hash || cur.Seq() != 1 || cur.Library.ApprovedBy != "rph.chen" {
		t.Fatalf("current bundle hash %s seq %d", cur.Hash, cur.Seq())
	}
	got, err := c.Fetch(ctx, srv.VersionURL(lib.Version))
	if err != nil || got.Hash != cur.Hash {
		t.Fatalf("fetch by URL: %v %v", got, err)
	}
	if _, err := c.Get(ctx, "NOPE"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown version: %v", err)
	}

	// A second version, then a refused and a forced rollback.
	if _, err := c.Draft(ctx, libVersion("ADULT-2026.03"), "rph.okafor"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finalize(ctx, "ADULT-2026.03", "rph.okafor"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Approve(ctx, "ADULT-2026.03", "rph.chen"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "ADULT-2026.03", "rph.chen"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "ADULT-2026.02", "rph.chen"); !errors.Is(err, ErrRollback) {
		t.Fatalf("rollback over HTTP: %v", err)
	}
	if b, err := c.ForcePublish(ctx, "ADULT-2026.02", "rph.chen", "drill"); err != nil || b.Version() != "ADULT-2026.02" {
		t.Fatalf("forced rollback: %v %v", b, err)
	}
	vs, err := c.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Version != "ADULT-2026.02" || !vs[0].Current || len(vs[0].Events) != 5 || vs[0].Events[4].Action != ActionForcePublish {
		t.Fatalf("versions %+v", vs)
	}
}

func post(t *testing.T, url, contentType, user, body string) (int, apiError, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if user != "" {
		req.Header.Set(UserHeader, user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("error answer is not JSON: %s", data)
		}
	}
	return resp.StatusCode, e, resp.Header
}

func TestServerBadInput(t *testing.T) {
	srv, _ := startServer(t, ServerConfig{})
	drafts := srv.URL() + "/v1/library/drafts"
	badLib, _ := json.Marshal(map[string]any{"author": "rph.a", "library": json.RawMessage(`{"version":"V1","care_areas":[{"name":"ICU","max_rate_ml_h":0,"callback_min":2,"kvo_rate_ml_h":1}]}`)})
	for _, c := range []struct {
		name, ctype, user, body string
		status                  int
		code, contains          string
		field                   string
		line                    int
	}{
		{"not json", "application/json", "rph.a", "{", 400, "bad_request", "draft request", "", 0},
		{"unknown field", "application/json", "rph.a", `{"author":"a","library":{},"x":1}`, 400, "bad_request", `unknown field "x"`, "", 0},
		{"no library", "application/json", "rph.a", `{"author":"a"}`, 400, "bad_request", "field library: missing", "", 0},
		{"no author", "application/json", "", `{"library":` + mustJSON(t, libVersion("V1")) + `}`, 400, "no_user", "no user named", "", 0},
		{"user mismatch", "application/json", "rph.b", `{"author":"rph.a","library":{}}`, 400, "bad_request", "differs from X-Pumplab-User", "", 0},
		{"invalid library", "application/json", "", string(badLib), 400, "invalid", "care_areas[0].max_rate_ml_h: 0 must be greater than 0", "care_areas[0].max_rate_ml_h", 0},
		{"invalid yaml", "application/yaml", "rph.a", caseEdit("hard_max: 1}", "hard_max: 0.2}"), 400, "invalid", "request:17: entries[0].dose.hard_max: 0.2 is below soft_max 0.5", "entries[0].dose.hard_max", 17},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, e, _ := post(t, drafts, c.ctype, c.user, c.body)
			if status != c.status || e.Code != c.code || !strings.Contains(e.Error, c.contains) {
				t.Fatalf("got %d %+v, want %d %s containing %q", status, e, c.status, c.code, c.contains)
			}
			if c.field != "" && (len(e.Problems) == 0 || e.Problems[0].Field != c.field || e.Problems[0].Line != c.line) {
				t.Fatalf("problems %+v, want field %s line %d", e.Problems, c.field, c.line)
			}
		})
	}
	// A YAML upload with the user in the header works.
	status, e, _ := post(t, drafts, "application/yaml", "rph.a", CaseBase)
	if status != http.StatusCreated {
		t.Fatalf("YAML draft: %d %+v", status, e)
	}
	for _, c := range []struct {
		path, body string
		status     int
		contains   string
	}{
		{"/v1/library/LAB-1/finalize", `{"by":"rph.a","force":true}`, 400, "publish only"},
		{"/v1/library/LAB-1/finalize", `{"by":1}`, 400, "finalize request"},
		{"/v1/library/LAB-1/finalize", ``, 400, "no user named"},
		{"/v1/library/LAB-1/delete", `{"by":"x"}`, 404, `action "delete" not found`},
		{"/v1/library/NOPE/finalize", `{"by":"x"}`, 404, "library version not found"},
	} {
		status, e, _ := post(t, srv.URL()+c.path, "application/json", "", c.body)
		if status != c.status || !strings.Contains(e.Error, c.contains) {
			t.Errorf("POST %s %s: %d %+v, want %d containing %q", c.path, c.body, status, e, c.status, c.contains)
		}
	}
	// The header alone names the user.
	if status, e, _ := post(t, srv.URL()+"/v1/library/LAB-1/finalize", "application/json", "rph.a", ""); status != 200 {
		t.Fatalf("finalize with header: %d %+v", status, e)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServerAuthorizeHook(t *testing.T) {
	var seen []string
	_, c := startServer(t, ServerConfig{Authorize: func(r *http.Request, action, user string) error {
		seen = append(seen, action+":"+user)
		if action == "approve" && user != "rph.chen" {
			return errors.New("not a pharmacy approver")
		}
		return nil
	}})
	ctx := context.Background()
	if _, err := c.Draft(ctx, libVersion("V1"), "rph.a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finalize(ctx, "V1", "rph.a"); err != nil {
		t.Fatal(err)
	}
	var ae *APIError
	if _, err := c.Approve(ctx, "V1", "nurse.x"); !errors.As(err, &ae) || ae.StatusCode != 403 || ae.Code != "forbidden" || !strings.Contains(ae.Message, "not a pharmacy approver") {
		t.Fatalf("unauthorized approve: %v", err)
	}
	if _, err := c.Approve(ctx, "V1", "rph.chen"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "draft:rph.a,finalize:rph.a,approve:nurse.x,approve:rph.chen" {
		t.Fatalf("hook saw %v", seen)
	}
}

func TestServerETag(t *testing.T) {
	s, _ := newTestStore(t, false)
	b, err := s.Release(libVersion("V1"), "rph.a", "rph.b")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := startServer(t, ServerConfig{Store: s})
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v1/library/current", nil)
	req.Header.Set("If-None-Match", `"`+b.Hash+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") != `"`+b.Hash+`"` {
		t.Fatalf("conditional GET: %d etag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
}

func TestClientDetectsHashMismatch(t *testing.T) {
	lib := Default()
	honest := &Bundle{Library: lib, Hash: lib.Hash()}
	evil := &Bundle{Library: lib.Clone(), Hash: lib.Hash()}
	evil.Library.Entries[0].Dose.HardMax = 10 // raised on the wire, hash left alone
	serve := honest
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, serve)
	}))
	defer ts.Close()
	c := &Client{BaseURL: ts.URL}
	ctx := context.Background()
	if _, err := c.Get(ctx, lib.Version); err != nil {
		t.Fatalf("honest bundle: %v", err)
	}
	serve = evil
	for name, f := range map[string]func() error{
		"Get":     func() error { _, err := c.Get(ctx, lib.Version); return err },
		"Current": func() error { _, err := c.Current(ctx); return err },
		"Fetch":   func() error { _, err := c.Fetch(ctx, ts.URL+"/anything"); return err },
	} {
		if err := f(); !errors.Is(err, ErrHashMismatch) {
			t.Errorf("%s of a tampered bundle: %v, want ErrHashMismatch", name, err)
		}
	}
}

func TestServerTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	_, c := startServer(t, ServerConfig{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if !strings.HasPrefix(c.BaseURL, "https://127.0.0.1:") {
		t.Fatalf("URL %s", c.BaseURL)
	}
	ctx := context.Background()
	if _, err := c.Current(ctx); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("client without the CA reached the server: %v", err)
	}
	c.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, err := c.Current(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TLS client: %v, want ErrNotFound (nothing published)", err)
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "druglib test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestServerStartClose(t *testing.T) {
	srv := NewServer(ServerConfig{})
	if srv.Addr() != "" || srv.URL() != "" {
		t.Fatal("address known before Start")
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err == nil {
		t.Fatal("second Start accepted")
	}
	addr := srv.Addr()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Fatal("still accepting after Close")
	}
	if srv.Store() == nil {
		t.Fatal("zero config has no store")
	}
}
