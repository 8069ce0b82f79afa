package intake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Handler is the HTTP transport: POST /v1/alerts and GET /v1/alerts/stats.
// Start serves it; it is exported to mount it in another server.
//
// POST /v1/alerts takes one alert object or an array of at most MaxBatch
// (body at most MaxBody bytes) and answers 202 {"accepted": n}, or 400 (413
// for an oversized body, 405 for another method) with {"error": "..."}
// naming the bad field; a refused request accepts nothing.
func (in *Intake) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/alerts", in.postAlerts)
	mux.HandleFunc("GET /v1/alerts/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, in.Stats())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

type httpError struct {
	Error string `json:"error"`
}

func (in *Intake) postAlerts(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		err := fmt.Errorf("method %s not allowed, want POST", r.Method)
		in.refuse(SourceHTTP, fmt.Errorf("http: %w", err), "remote", r.RemoteAddr)
		writeJSON(w, http.StatusMethodNotAllowed, httpError{err.Error()})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		code := http.StatusBadRequest
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			code = http.StatusRequestEntityTooLarge
			err = derr("body", "more than the limit of %d bytes", MaxBody)
		} else {
			err = derr("body", "read: %v", err)
		}
		in.refuse(SourceHTTP, fmt.Errorf("http: %w", err), "remote", r.RemoteAddr)
		writeJSON(w, code, httpError{err.Error()})
		return
	}
	as, err := DecodeAlerts(body)
	if err != nil {
		in.refuse(SourceHTTP, fmt.Errorf("http: %w", err), "remote", r.RemoteAddr)
		writeJSON(w, http.StatusBadRequest, httpError{err.Error()})
		return
	}
	in.accept(SourceHTTP, as)
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": len(as)})
}
