package attack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// proxyRun is the listener and connection lifecycle the MLLP and MQTT
// proxies share: listen through the safety rail, accept, track every proxied
// connection, and on Close stop accepting, close them all and wait.
type proxyRun struct {
	ln   net.Listener
	cnt  proxyCounters
	next atomic.Uint64

	mu     sync.Mutex // guards conns and closed (and the proxy's own state)
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// start checks upstream, listens on listen and serves every accepted
// connection with serve(conn, id) in its own goroutine (counted in wg).
func (r *proxyRun) start(ctx context.Context, tg *Targets, kind, upstream, listen string, serve func(net.Conn, uint64)) error {
	if upstream == "" {
		return fmt.Errorf("attack: %s proxy: start: no upstream", kind)
	}
	if err := tg.Check(ctx, upstream); err != nil {
		return fmt.Errorf("attack: %s proxy: start: upstream: %w", kind, err)
	}
	ln, err := tg.Listen(ctx, listen)
	if err != nil {
		return fmt.Errorf("attack: %s proxy: start: %w", kind, err)
	}
	r.ln = ln
	r.wg.Add(1)
	go r.accept(serve)
	return nil
}

func (r *proxyRun) accept(serve func(net.Conn, uint64)) {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if !r.track(c) {
			return
		}
		r.cnt.conns.Add(1)
		r.wg.Add(1)
		go serve(c, r.next.Add(1))
	}
}

// track registers a connection; false (and the connection closed) once the
// proxy is closing.
func (r *proxyRun) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		_ = c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *proxyRun) close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	var err error
	if r.ln != nil {
		err = r.ln.Close()
	}
	r.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
