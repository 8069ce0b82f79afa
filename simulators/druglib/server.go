package druglib

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// UserHeader names the acting user of a write request when the JSON body
// does not ("by" or "author").
const UserHeader = "X-Pumplab-User"

// ServerConfig configures a Server. The zero value works: a new empty store
// with the real clock, plain HTTP on 127.0.0.1 with an ephemeral port, no
// authorization hook, no logging.
type ServerConfig struct {
	// Addr is the listen address. Empty means "127.0.0.1:0".
	Addr string
	// Store holds the versions. Nil means NewStore(StoreConfig{}).
	Store *Store
	// TLS, when set, serves HTTPS (set ClientAuth for mutual TLS).
	TLS *tls.Config
	// Logger receives request logs (Debug) and server errors. Nil discards.
	Logger *slog.Logger
	// Authorize, when set, is asked before every write: action is draft,
	// finalize, approve or publish, user the acting user. An error answers
	// 403 with its text. Nil allows everything (legacy posture).
	Authorize func(r *http.Request, action, user string) error
}

// Server distributes drug libraries over HTTP(S) and runs the approval
// workflow of its Store (REFERENCE.md §5.3, CTL-07). Endpoints are listed in
// docs/druglib.md.
type Server struct {
	cfg   ServerConfig
	store *Store
	log   *slog.Logger

	mu     sync.Mutex
	ln     net.Listener
	srv    *http.Server
	done   chan struct{}
	closed bool
}

// NewServer returns a server that is not yet listening.
func NewServer(cfg ServerConfig) *Server {
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger}
	if s.store == nil {
		s.store = NewStore(StoreConfig{})
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Store returns the server's store.
func (s *Server) Store() *Store { return s.store }

// Start listens and serves in the background. ctx bounds the listen call
// only; Close stops the server.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil || s.closed {
		return errors.New("druglib: server: start: already started")
	}
	addr := s.cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("druglib: server: listen %s: %w", addr, err)
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("druglib: server: serve", "err", err)
		}
	}()
	s.log.Info("druglib: server: listening", "url", s.urlLocked())
	return nil
}

// Addr returns the listen address ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL returns the base URL, e.g. http://127.0.0.1:41234 ("" before Start).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.urlLocked()
}

func (s *Server) urlLocked() string {
	if s.ln == nil {
		return ""
	}
	scheme := "http"
	if s.cfg.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// VersionURL returns the URL of one version's bundle, the library_url a pump
// server hands to pumps.
func (s *Server) VersionURL(version string) string { return s.URL() + versionPath(version) }

// Close stops listening, closes every open connection and waits for the
// serve loop to return. It may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	if err != nil {
		return fmt.Errorf("druglib: server: close: %w", err)
	}
	return nil
}

// Handler returns the HTTP API, for mounting in another server.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/library/current", s.getCurrent)
	mux.HandleFunc("GET /v1/library/versions", s.getVersions)
	mux.HandleFunc("GET /v1/library/{version}", s.getVersion)
	mux.HandleFunc("POST /v1/library/drafts", s.postDraft)
	mux.HandleFunc("POST /v1/library/{version}/{action}", s.postAction)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Debug("druglib: server: request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		mux.ServeHTTP(w, r)
	})
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error    string        `json:"error"`
	Code     string        `json:"code"`
	Problems []*FieldError `json:"problems,omitempty"`
}

// Error codes of the API, with their sentinel errors.
var apiCodes = []struct {
	code   string
	status int
	err    error
}{
	{"not_found", http.StatusNotFound, ErrNotFound},
	{"no_user", http.StatusBadRequest, ErrNoUser},
	{"state", http.StatusConflict, ErrState},
	{"exists", http.StatusConflict, ErrExists},
	{"self_approval", http.StatusForbidden, ErrSelfApproval},
	{"rollback", http.StatusConflict, ErrRollback},
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	body := apiError{Error: err.Error(), Code: "bad_request"}
	status := http.StatusBadRequest
	for _, c := range apiCodes {
		if errors.Is(err, c.err) {
			body.Code, status = c.code, c.status
			break
		}
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		body.Code = "invalid"
		body.Problems = ve.Problems
	}
	var fe forbidden
	if errors.As(err, &fe) {
		body.Code, status = "forbidden", http.StatusForbidden
	}
	s.log.Info("druglib: server: refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	writeJSON(w, status, body)
}

type forbidden struct{ error }

func (f forbidden) Unwrap() error { return f.error }

func (s *Server) writeBundle(w http.ResponseWriter, r *http.Request, b *Bundle) {
	etag := `"` + b.Hash + `"`
	w.Header().Set("ETag", etag)
	if r.Method == http.MethodGet && r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) getCurrent(w http.ResponseWriter, r *http.Request) {
	b, ok := s.store.Published()
	if !ok {
		s.fail(w, r, fmt.Errorf("druglib: current library %w: nothing is published", ErrNotFound))
		return
	}
	s.writeBundle(w, r, b)
}

func (s *Server) getVersions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.store.Versions())
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	b, err := s.store.Bundle(r.PathValue("version"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeBundle(w, r, b)
}

// actionRequest is the JSON body of the workflow actions (all optional
// when the X-Pumplab-User header names the user).
type actionRequest struct {
	By     string `json:"by"`
	Force  bool   `json:"force"`  // publish only: allow an older version (rollback)
	Reason string `json:"reason"` // publish only: recorded with a forced publish
}

// draftRequest is the JSON body of POST /v1/library/drafts.
type draftRequest struct {
	Author  string          `json:"author"`
	Library json.RawMessage `json:"library"`
}

func readBody(r *http.Request, w http.ResponseWriter) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxLibraryBytes+64<<10))
	if err != nil {
		return nil, fmt.Errorf("druglib: read request body: %w", err)
	}
	return data, nil
}

// who resolves the acting user from the body field and the header; they
// must agree when both are given.
func who(r *http.Request, fromBody string) (string, error) {
	h := strings.TrimSpace(r.Header.Get(UserHeader))
	b := strings.TrimSpace(fromBody)
	switch {
	case h != "" && b != "" && h != b:
		return "", fmt.Errorf("druglib: user %q in the body differs from %s %q", b, UserHeader, h)
	case b != "":
		return b, nil
	}
	return h, nil
}

func (s *Server) authorize(r *http.Request, action, user string) error {
	if s.cfg.Authorize == nil {
		return nil
	}
	if err := s.cfg.Authorize(r, action, user); err != nil {
		return forbidden{fmt.Errorf("druglib: %s refused for %q: %w", action, user, err)}
	}
	return nil
}

func (s *Server) postDraft(w http.ResponseWriter, r *http.Request) {
	data, err := readBody(r, w)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var lib *Library
	var author string
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/yaml", "application/x-yaml", "text/yaml":
		lib, err = Parse(data, "request")
		author = r.Header.Get(UserHeader)
	default:
		var req draftRequest
		if err = strictJSON(data, &req); err != nil {
			err = fmt.Errorf("druglib: draft request: %w", err)
			break
		}
		if len(req.Library) == 0 {
			err = errors.New("druglib: draft request: field library: missing")
			break
		}
		if author, err = who(r, req.Author); err != nil {
			break
		}
		lib, err = ParseJSON(req.Library)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.authorize(r, "draft", author); err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := s.store.Draft(lib, author)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) postAction(w http.ResponseWriter, r *http.Request) {
	version, action := r.PathValue("version"), r.PathValue("action")
	if action != "finalize" && action != "approve" && action != "publish" {
		s.fail(w, r, fmt.Errorf("druglib: action %q %w (want finalize, approve or publish)", action, ErrNotFound))
		return
	}
	data, err := readBody(r, w)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req actionRequest
	if len(strings.TrimSpace(string(data))) > 0 {
		if err := strictJSON(data, &req); err != nil {
			s.fail(w, r, fmt.Errorf("druglib: %s request: %w", action, err))
			return
		}
	}
	if action != "publish" && (req.Force || req.Reason != "") {
		s.fail(w, r, fmt.Errorf("druglib: %s request: force and reason are for publish only", action))
		return
	}
	by, err := who(r, req.By)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.authorize(r, action, by); err != nil {
		s.fail(w, r, err)
		return
	}
	switch action {
	case "finalize":
		info, err := s.store.Finalize(version, by)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, info)
	case "approve":
		info, err := s.store.Approve(version, by)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, info)
	case "publish":
		var b *Bundle
		if req.Force {
			b, err = s.store.ForcePublish(version, by, req.Reason)
		} else {
			b, err = s.store.Publish(version, by)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.writeBundle(w, r, b)
	}
}
