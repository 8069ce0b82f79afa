package attack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
)

// ErrRefused is returned (wrapped) for every target outside the lab's
// address plan. Test with errors.Is.
var ErrRefused = errors.New("attack: target refused: not loopback and not in a lab network")

// Targets is the safety rail of the toolkit: the set of addresses an attack
// may reach. Its zero value (and a nil *Targets) allows loopback only:
// 127.0.0.0/8, ::1 and the name localhost. Lab network prefixes (for example
// the CIDR of a Docker network the lab created) must be added explicitly
// with AddLab.
//
// Every helper of the package dials and listens through Targets, so a
// refused target never sees a packet.
type Targets struct {
	// Lookup resolves a host name to addresses; nil means
	// net.DefaultResolver.LookupNetIP. Every resolved address must be
	// allowed.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// Dialer opens connections to checked addresses (ip:port); nil means a
	// net.Dialer. Tests replace it to count connection attempts.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

	mu  sync.RWMutex
	lab []netip.Prefix
}

// Loopback returns targets that allow loopback addresses only.
func Loopback() *Targets { return &Targets{} }

// AddLab allows a lab network prefix such as "172.30.0.0/24". It refuses
// prefixes wider than /8 (IPv4) or /32 (IPv6) and the unspecified address,
// which would open the rail to the world.
func (t *Targets) AddLab(cidr string) error {
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		return fmt.Errorf("attack: targets: add lab network %q: %w", cidr, err)
	}
	p = p.Masked()
	if p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return fmt.Errorf("attack: targets: add lab network %q: write IPv4 prefixes as IPv4, without a zone", cidr)
	}
	min := 8
	if p.Addr().Is6() {
		min = 32
	}
	if p.Bits() < min || p.Addr().IsUnspecified() {
		return fmt.Errorf("attack: targets: add lab network %q: prefix wider than /%d or unspecified", cidr, min)
	}
	t.mu.Lock()
	t.lab = append(t.lab, p)
	t.mu.Unlock()
	return nil
}

// running holds the networks of the lab the harness runs now (UseLab): a
// nil *Targets — the default every toolkit function takes — allows loopback
// and those networks, nothing else.
var running = &Targets{}

// UseLab sets the networks of the running lab (a container lab's Docker
// networks) that a nil *Targets allows besides loopback; nil or empty
// clears them. The harness calls it when it starts and stops a lab.
func UseLab(cidrs []string) error {
	t := &Targets{}
	for _, c := range cidrs {
		if err := t.AddLab(c); err != nil {
			return err
		}
	}
	running.mu.Lock()
	running.lab = t.lab
	running.mu.Unlock()
	return nil
}

// Lab returns the lab prefixes added so far (for a nil *Targets, those of
// the running lab).
func (t *Targets) Lab() []netip.Prefix {
	if t == nil {
		return running.Lab()
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]netip.Prefix(nil), t.lab...)
}

// Allowed reports whether one address is loopback or in a lab prefix.
func (t *Targets) Allowed(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		return true
	}
	for _, p := range t.Lab() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve checks a target (host:port, or a bare host) and returns its
// addresses, all of them allowed. A literal address is checked as is; the
// name localhost is 127.0.0.1 and ::1 without a lookup; any other name is
// resolved and refused when any of its addresses is outside the lab.
func (t *Targets) Resolve(ctx context.Context, target string) ([]netip.Addr, error) {
	host := target
	if h, _, err := net.SplitHostPort(target); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return nil, fmt.Errorf("attack: target %q: empty host (would mean every interface): %w", target, ErrRefused)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.WithZone("")}
	} else if strings.EqualFold(host, "localhost") {
		addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	} else {
		lookup := net.DefaultResolver.LookupNetIP
		if t != nil && t.Lookup != nil {
			lookup = func(ctx context.Context, _, h string) ([]netip.Addr, error) { return t.Lookup(ctx, h) }
		}
		res, err := lookup(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("attack: target %q: resolve: %v: %w", target, err, ErrRefused)
		}
		if len(res) == 0 {
			return nil, fmt.Errorf("attack: target %q: resolves to nothing: %w", target, ErrRefused)
		}
		addrs = res
	}
	for _, a := range addrs {
		if !t.Allowed(a) {
			return nil, fmt.Errorf("attack: target %q: address %s: %w", target, a, ErrRefused)
		}
	}
	return addrs, nil
}

// Check returns nil when every address of target is allowed.
func (t *Targets) Check(ctx context.Context, target string) error {
	_, err := t.Resolve(ctx, target)
	return err
}

// Dial checks addr (host:port) and connects to its first checked address:
// the name is not resolved a second time, so what was checked is what is
// dialled.
func (t *Targets) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("attack: dial %s: %w", addr, err)
	}
	addrs, err := t.Resolve(ctx, addr)
	if err != nil {
		return nil, err
	}
	dst := net.JoinHostPort(addrs[0].String(), port)
	dial := (&net.Dialer{}).DialContext
	if t != nil && t.Dialer != nil {
		dial = t.Dialer
	}
	c, err := dial(ctx, network, dst)
	if err != nil {
		return nil, fmt.Errorf("attack: dial %s (%s): %w", addr, dst, err)
	}
	return c, nil
}

// Listen checks a listen address (default "127.0.0.1:0") and listens on
// it: attack proxies never listen outside the lab either.
func (t *Targets) Listen(ctx context.Context, addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if _, err := t.Resolve(ctx, addr); err != nil {
		return nil, fmt.Errorf("attack: listen: %w", err)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("attack: listen %s: %w", addr, err)
	}
	return l, nil
}
