// Package labapi is the control and observation API of the container lab:
// every role started with `pumplab serve ROLE` answers `POST /v1/METHOD`
// with a JSON body and a JSON answer on its control port, so that the host
// (lab/containers) can drive the hospital and read its truth layers without
// living in the same process.
//
// The control port accepts connections only from the addresses it is told
// to trust (the host's side of the lab's Docker networks); any other peer,
// an attacker container in the same zone for instance, is refused before a
// byte is read. The wire types are the lab package's own values plus the few
// requests below.
package labapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/pumplab/pumplab/lab"
)

// ControlPort is the TCP port of every role's control API.
const ControlPort = 7070

// MaxBody bounds a request or answer body.
const MaxBody = 8 << 20

// Handler answers one method: in is the raw JSON request body.
type Handler func(ctx context.Context, in json.RawMessage) (any, error)

// Server is a role's control API.
type Server struct {
	// Role names the role in errors and in /v1/ping.
	Role string
	// Methods maps a method name to its handler.
	Methods map[string]Handler
	// Allow lists the peers accepted; empty accepts every peer (a role run
	// by hand on loopback).
	Allow []netip.Addr
	// Logger receives refused peers and handler errors; nil discards.
	Logger *slog.Logger

	ln  net.Listener
	srv *http.Server
}

// ParseAllow parses a comma-separated list of IP addresses.
func ParseAllow(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("labapi: allowed control peer %q: %w", f, err)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// Start listens on addr and serves until Close.
func (s *Server) Start(addr string) error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("labapi: %s control: listen %s: %w", s.Role, addr, err)
	}
	s.ln = &allowListener{Listener: ln, allow: s.Allow, log: s.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/{method}", s.serve)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(s.ln)
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("method")
	if name == "ping" {
		writeJSON(w, http.StatusOK, map[string]string{"role": s.Role})
		return
	}
	h, ok := s.Methods[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("%s: no method %q", s.Role, name)})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil || len(body) > MaxBody {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("%s: %s: request body unreadable or over %d bytes", s.Role, name, MaxBody)})
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	out, err := h(r.Context(), body)
	if err != nil {
		s.Logger.Info("control method failed", "method", name, "err", err)
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: fmt.Sprintf("%s: %s: %v", s.Role, name, err)})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Decode unmarshals a request strictly: unknown fields are an error naming
// the field.
func Decode(in json.RawMessage, v any) error {
	d := json.NewDecoder(bytes.NewReader(in))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("bad request body: %w", err)
	}
	return nil
}

type allowListener struct {
	net.Listener
	allow []netip.Addr
	log   *slog.Logger
}

func (l *allowListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || len(l.allow) == 0 {
			return c, err
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		if perr == nil {
			for _, a := range l.allow {
				if a == ap.Addr().Unmap() {
					return c, nil
				}
			}
		}
		l.log.Warn("control connection refused: peer not allowed", "peer", c.RemoteAddr().String())
		c.Close()
	}
}

// Client calls a role's control API.
type Client struct {
	// Role names the role in errors.
	Role string
	// Base is http://host:port.
	Base string
	// HTTP is the client; nil means a client with a 30 s timeout.
	HTTP *http.Client
}

// ErrUnreachable wraps failures to reach the role at all (as opposed to the
// role answering an error).
var ErrUnreachable = errors.New("control API unreachable")

// Call posts in (nil: {}) to method and decodes the answer into out (nil:
// discarded).
func (c *Client) Call(ctx context.Context, method string, in, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	var body []byte
	if in == nil {
		body = []byte("{}")
	} else {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: %s: encode request: %w", c.Role, method, err)
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/v1/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %s: %w", c.Role, method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %s: %w: %v", c.Role, method, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return fmt.Errorf("%s: %s: read answer: %w", c.Role, method, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s: %s: HTTP %d: %.200s", c.Role, method, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: %s: decode answer: %w", c.Role, method, err)
	}
	return nil
}

// ChannelReq names a pump channel (and, by method, a window, a fault, a
// user or a layer).
type ChannelReq struct {
	PumpID  string    `json:"pump_id"`
	Channel string    `json:"channel,omitempty"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	Fault   string    `json:"fault,omitempty"`
	AlarmID string    `json:"alarm_id,omitempty"`
	User    string    `json:"user,omitempty"`
	// Ordered is the ordered truth layer (set-ordered).
	Ordered *Ordered `json:"ordered,omitempty"`
}

// Ordered is what CPOE ordered for a channel (the ordered truth layer).
type Ordered struct {
	OrderID       string  `json:"order_id"`
	DrugID        string  `json:"drug_id"`
	DrugName      string  `json:"drug_name"`
	DoseRate      float64 `json:"dose_rate"`
	DoseUnit      string  `json:"dose_unit"`
	RateMLH       float64 `json:"rate_mlh"`
	Concentration float64 `json:"concentration"`
	AmountUnit    string  `json:"amount_unit"`
	VTBI          float64 `json:"vtbi"`
	WeightKg      float64 `json:"weight_kg"`
}

// OrderFor asks the EHR for the order a BCMA scan refers to.
type OrderFor struct {
	Scan lab.Scan `json:"scan"`
}

// OrderForResult is the order found (Found false: none).
type OrderForResult struct {
	Found   bool    `json:"found"`
	Ordered Ordered `json:"ordered"`
}

// State is a channel's state.
type State struct {
	State string `json:"state"`
}

// Value is a single number.
type Value struct {
	Value float64 `json:"value"`
}

// OrderID names an order.
type OrderID struct {
	OrderID    string `json:"order_id"`
	Pharmacist string `json:"pharmacist,omitempty"`
}

// Addr is a network address (set-ioc).
type Addr struct {
	Addr string `json:"addr"`
}

// Dial asks the attacker to connect from its zone to Addr and read what the
// service says first.
type Dial struct {
	Addr      string `json:"addr"`
	TimeoutMS int    `json:"timeout_ms"`
	// Send is written after connecting (e.g. a login); empty sends nothing.
	Send string `json:"send,omitempty"`
}

// DialResult is what a dial found.
type DialResult struct {
	Connected bool   `json:"connected"`
	Banner    string `json:"banner,omitempty"`
	Error     string `json:"error,omitempty"`
	Millis    int64  `json:"millis"`
}

// Scan asks the attacker for a TCP connect scan of Hosts x Ports.
type Scan struct {
	Hosts     []string `json:"hosts"`
	Ports     []int    `json:"ports"`
	TimeoutMS int      `json:"timeout_ms"`
}

// ScanResult lists the open host:port pairs and what the others did.
type ScanResult struct {
	Open        []string `json:"open"`
	Refused     int      `json:"refused"`
	Unreachable int      `json:"unreachable"`
	Probes      int      `json:"probes"`
}

// Flood asks the attacker to open Conns TCP connections to Addr and write
// Bytes of garbage on each (a protocol DoS), bounded by DurationMS.
type Flood struct {
	Addr       string `json:"addr"`
	Conns      int    `json:"conns"`
	Bytes      int    `json:"bytes"`
	DurationMS int    `json:"duration_ms"`
}

// FloodResult counts what the flood achieved.
type FloodResult struct {
	Opened    int    `json:"opened"`
	Failed    int    `json:"failed"`
	BytesSent int64  `json:"bytes_sent"`
	FirstErr  string `json:"first_error,omitempty"`
}

// Proxy asks the attacker to run an MLLP man in the middle on Listen that
// forwards to Upstream, multiplying the dose (RXG) of every PCD-03 by
// Factor (1 = forward unchanged).
type Proxy struct {
	Listen   string  `json:"listen"`
	Upstream string  `json:"upstream"`
	Factor   float64 `json:"factor"`
}

// ProxyStats counts what the proxy did.
type ProxyStats struct {
	Connections int64 `json:"connections"`
	Forwarded   int64 `json:"forwarded"`
	Changed     int64 `json:"changed"`
}

// GatewayStats counts what an application gateway did, per route.
type GatewayStats struct {
	Routes []RouteStats `json:"routes"`
}

// RouteStats is one gateway route's counters.
type RouteStats struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Protocol string `json:"protocol"`
	Allowed  int64  `json:"allowed"`
	Blocked  int64  `json:"blocked"`
}

// EvidenceList is the answer of evidence.
type EvidenceList struct {
	Evidence []lab.Evidence `json:"evidence"`
}
