package attack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// FileServer serves fixed JSON documents over HTTP on a lab address: an
// attacker's host offering a tampered or stale drug-library bundle
// (REFERENCE.md ATK-19..21) for pumps to download.
type FileServer struct {
	ln  net.Listener
	srv *http.Server
}

// ServeJSON starts a server on listen (default 127.0.0.1:0, through the
// safety rail) that answers GET path with doc encoded as JSON.
func ServeJSON(ctx context.Context, tg *Targets, listen string, docs map[string]any) (*FileServer, error) {
	ln, err := tg.Listen(ctx, listen)
	if err != nil {
		return nil, fmt.Errorf("attack: file server: %w", err)
	}
	mux := http.NewServeMux()
	for path, doc := range docs {
		b, err := json.Marshal(doc)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("attack: file server: encode %s: %w", path, err)
		}
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		})
	}
	fs := &FileServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = fs.srv.Serve(ln) }()
	return fs, nil
}

// URL is the server's URL for path.
func (s *FileServer) URL(path string) string { return "http://" + s.ln.Addr().String() + path }

// Close stops the server.
func (s *FileServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
