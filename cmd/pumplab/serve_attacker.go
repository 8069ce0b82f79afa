package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/lab/labapi"
	"github.com/pumplab/pumplab/simulators/hl7"
)

func init() { roles["attacker"] = serveAttacker }

// Hard bounds of the attacker role, whatever the caller asks.
const (
	attackMaxProbes   = 20000
	attackMaxConns    = 2000
	attackMaxBytes    = 64 << 10
	attackMaxDuration = 60 * time.Second
)

// serveAttacker is the attacker's foothold: a container placed in one zone
// that dials, scans, floods and proxies from there on the host's request.
// Every target must be inside the lab's own networks (--lab-net).
func serveAttacker(ctx context.Context, rf *roleFlags, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve attacker", stderr)
	var nets multiFlag
	fs.Var(&nets, "lab-net", "lab network prefix the attacker may reach (CIDR), repeatable; none: loopback only")
	rf.add(fs, 1)
	if err := parse(fs, args); err != nil {
		return err
	}
	log := rf.logger(stderr)
	tg := attack.Loopback()
	for _, n := range nets {
		if err := tg.AddLab(n); err != nil {
			return fmt.Errorf("--lab-net: %w", err)
		}
	}
	a := &attacker{tg: tg}
	defer a.closeProxies()
	stop, err := rf.serveControl(map[string]labapi.Handler{
		"dial":        a.dial,
		"scan":        a.scan,
		"flood":       a.flood,
		"proxy":       a.proxy,
		"proxy-stats": a.proxyStats,
	}, log)
	if err != nil {
		return err
	}
	defer stop()
	ready(ctx, stdout, "attacker: %d lab networks in reach", len(nets))
	return nil
}

type attacker struct {
	tg      *attack.Targets
	mu      sync.Mutex
	proxies []*attack.MLLPProxy
}

func timeout(ms int) time.Duration {
	d := time.Duration(ms) * time.Millisecond
	if d <= 0 {
		d = 2 * time.Second
	}
	return min(d, 30*time.Second)
}

func (a *attacker) dial(ctx context.Context, in json.RawMessage) (any, error) {
	var r labapi.Dial
	if err := labapi.Decode(in, &r); err != nil {
		return nil, err
	}
	if err := a.tg.Check(ctx, r.Addr); err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := net.DialTimeout("tcp", r.Addr, timeout(r.TimeoutMS))
	res := labapi.DialResult{Millis: time.Since(start).Milliseconds()}
	if err != nil {
		res.Error = err.Error()
		return res, nil
	}
	defer c.Close()
	res.Connected = true
	_ = c.SetDeadline(time.Now().Add(timeout(r.TimeoutMS)))
	buf := make([]byte, 512)
	n, _ := c.Read(buf)
	res.Banner = string(buf[:n])
	if r.Send != "" {
		if _, err := io.WriteString(c, r.Send); err == nil {
			time.Sleep(50 * time.Millisecond)
			n, _ = c.Read(buf)
			res.Banner += string(buf[:n])
		}
	}
	return res, nil
}

func (a *attacker) scan(ctx context.Context, in json.RawMessage) (any, error) {
	var r labapi.Scan
	if err := labapi.Decode(in, &r); err != nil {
		return nil, err
	}
	if n := len(r.Hosts) * len(r.Ports); n == 0 || n > attackMaxProbes {
		return nil, fmt.Errorf("scan of %d hosts x %d ports: want 1..%d probes", len(r.Hosts), len(r.Ports), attackMaxProbes)
	}
	for _, h := range r.Hosts {
		if err := a.tg.Check(ctx, h); err != nil {
			return nil, err
		}
	}
	var (
		mu  sync.Mutex
		out = labapi.ScanResult{Open: []string{}}
		wg  sync.WaitGroup
		sem = make(chan struct{}, 64)
	)
	for _, h := range r.Hosts {
		for _, p := range r.Ports {
			addr := net.JoinHostPort(h, strconv.Itoa(p))
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := net.DialTimeout("tcp", addr, timeout(r.TimeoutMS))
				mu.Lock()
				defer mu.Unlock()
				out.Probes++
				switch {
				case err == nil:
					c.Close()
					out.Open = append(out.Open, addr)
				case isRefused(err):
					out.Refused++
				default:
					out.Unreachable++
				}
			}()
		}
	}
	wg.Wait()
	return out, nil
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && !op.Timeout() && errors.Is(err, syscall.ECONNREFUSED)
}

func (a *attacker) flood(ctx context.Context, in json.RawMessage) (any, error) {
	var r labapi.Flood
	if err := labapi.Decode(in, &r); err != nil {
		return nil, err
	}
	if r.Conns <= 0 || r.Conns > attackMaxConns || r.Bytes < 0 || r.Bytes > attackMaxBytes {
		return nil, fmt.Errorf("flood of %d connections x %d bytes: want 1..%d connections and 0..%d bytes", r.Conns, r.Bytes, attackMaxConns, attackMaxBytes)
	}
	if err := a.tg.Check(ctx, r.Addr); err != nil {
		return nil, err
	}
	d := min(max(time.Duration(r.DurationMS)*time.Millisecond, time.Second), attackMaxDuration)
	fctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	junk := make([]byte, r.Bytes)
	for i := range junk {
		junk[i] = byte(0xff - i%7) // never a valid MQTT, MLLP or HTTP start
	}
	var (
		opened, failed atomic.Int64
		sent           atomic.Int64
		first          atomic.Value
		wg             sync.WaitGroup
		sem            = make(chan struct{}, 128)
	)
	for range r.Conns {
		if fctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var dl net.Dialer
			c, err := dl.DialContext(fctx, "tcp", r.Addr)
			if err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err.Error())
				return
			}
			defer c.Close()
			opened.Add(1)
			_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			n, _ := c.Write(junk)
			sent.Add(int64(n))
		}()
	}
	wg.Wait()
	res := labapi.FloodResult{Opened: int(opened.Load()), Failed: int(failed.Load()), BytesSent: sent.Load()}
	if s, ok := first.Load().(string); ok {
		res.FirstErr = s
	}
	return res, nil
}

func (a *attacker) proxy(ctx context.Context, in json.RawMessage) (any, error) {
	var r labapi.Proxy
	if err := labapi.Decode(in, &r); err != nil {
		return nil, err
	}
	if r.Factor <= 0 || r.Factor > 100 {
		return nil, fmt.Errorf("proxy factor %g: want 0 < factor <= 100", r.Factor)
	}
	factor := r.Factor
	p := attack.NewMLLPProxy(attack.MLLPProxyConfig{Upstream: r.Upstream, Listen: r.Listen, Targets: a.tg,
		Tamper: func(dir attack.Direction, m *hl7.Message) (*hl7.Message, bool) {
			if dir != attack.ToServer || !m.Type().Is("RGV", "O15") || factor == 1 {
				return nil, false
			}
			v, err := strconv.ParseFloat(m.Get("RXG-15"), 64)
			if err != nil {
				return nil, false
			}
			if err := m.Set("RXG-15", strconv.FormatFloat(v*factor, 'f', -1, 64)); err != nil {
				return nil, false
			}
			return m, false
		}})
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.proxies = append(a.proxies, p)
	a.mu.Unlock()
	return labapi.Addr{Addr: p.Addr()}, nil
}

func (a *attacker) proxyStats(ctx context.Context, in json.RawMessage) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out labapi.ProxyStats
	for _, p := range a.proxies {
		s := p.Stats()
		out.Connections += s.Connections
		out.Forwarded += s.Forwarded
		out.Changed += s.Changed
	}
	return out, nil
}

func (a *attacker) closeProxies() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.proxies {
		p.Close()
	}
}
