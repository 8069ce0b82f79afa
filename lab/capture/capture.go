// Package capture records the lab's traffic: an AF_PACKET capture of a
// network interface (the loopback interface for the in-process lab),
// filtered to the lab's ports, written as pcapng (a writer and a reader of
// the format, no libpcap), with per-flow counts so that ground-truth labels
// can be keyed by time and TCP 5-tuple (docs/capture.md).
//
// Capturing needs CAP_NET_RAW (root); without it Start returns an error
// wrapping ErrPermission, and the caller carries on without a capture.
package capture

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// ErrPermission means the process may not open a packet socket.
var ErrPermission = errors.New("capture needs CAP_NET_RAW (run as root, or setcap cap_net_raw+ep on the binary)")

// Config is a capture.
type Config struct {
	// Interface to capture; default "lo".
	Interface string
	// Path of the pcapng file to write.
	Path string
	// Snaplen is the largest number of bytes kept per packet; default 262144.
	Snaplen int
	// Now stamps packets; default time.Now (packet times are wall time, as
	// the ground truth's).
	Now func() time.Time
	// App is written in the file's section header; default "pumplab".
	App string
}

// Stats are the counters of a capture.
type Stats struct {
	Packets  int64 `json:"packets"`  // written to the file
	Bytes    int64 `json:"bytes"`    // captured bytes written
	Filtered int64 `json:"filtered"` // seen but not on a lab port
	Errors   int64 `json:"errors"`   // receive or write errors
	// Dropped counts packets the kernel dropped because the capture fell
	// behind (PACKET_STATISTICS), all ports.
	Dropped int64 `json:"dropped"`
	// PreRoll counts packets written from the pre-roll buffer: captured
	// before their port was allowed (a lab's start-up traffic).
	PreRoll int64 `json:"pre_roll"`
	// KernelTime counts packets stamped with the kernel's receive time
	// (SO_TIMESTAMPNS); the others carry the time the capture read them.
	KernelTime int64 `json:"kernel_time"`
}

// preRollWindow is how long packets on ports not (yet) allowed are kept in
// memory, so that a lab's start-up traffic, captured before the lab knew
// its ports, is written once they are allowed; preRollBytes bounds it.
const (
	preRollWindow = 10 * time.Second
	preRollBytes  = 64 << 20
)

type held struct {
	t       time.Time
	data    []byte
	origLen int
	seg     Segment
}

// Flow is what the capture saw of one 5-tuple (one direction).
type Flow struct {
	Tuple   string    `json:"tuple"` // tcp:src->dst
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	Packets int       `json:"packets"`
	Bytes   int       `json:"bytes"`
	// Closed: a FIN or RST was seen in this direction.
	Closed bool `json:"closed,omitempty"`
}

// Capture is a running capture.
type Capture struct {
	cfg     Config
	fd      int
	file    *os.File
	w       *Writer
	mu      sync.Mutex
	ports   map[uint16]bool
	fresh   bool // ports were added since the pre-roll was last flushed
	pre     []held
	preHead int // c.pre[:preHead] were dropped
	preSz   int
	flows   map[string]*Flow
	stats   Stats
	done    chan struct{}
	stop    chan struct{}
	err     error
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Start opens a packet socket on the interface and starts writing matching
// packets to cfg.Path. Packets are kept when their source or destination
// port has been allowed with AllowPorts.
func Start(cfg Config) (*Capture, error) {
	if cfg.Interface == "" {
		cfg.Interface = "lo"
	}
	if cfg.Snaplen <= 0 {
		cfg.Snaplen = 262144
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.App == "" {
		cfg.App = "pumplab"
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("capture: interface %q: %w", cfg.Interface, err)
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, int(htons(syscall.ETH_P_ALL)))
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("capture on %s: %w: %v", cfg.Interface, ErrPermission, err)
		}
		return nil, fmt.Errorf("capture on %s: packet socket: %w", cfg.Interface, err)
	}
	fail := func(what string, err error) (*Capture, error) {
		syscall.Close(fd)
		return nil, fmt.Errorf("capture on %s: %s: %w", cfg.Interface, what, err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	// A large receive buffer (SO_RCVBUFFORCE as root passes rmem_max):
	// loopback bursts must not overflow it.
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 64<<20) != nil {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<20)
	}
	// Kernel receive timestamps: a packet's time is when the kernel saw
	// it, not when this process got round to reading it.
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	tv := syscall.NsecToTimeval(int64(100 * time.Millisecond))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return fail("receive timeout", err)
	}
	f, err := os.Create(cfg.Path)
	if err != nil {
		return fail("output", err)
	}
	w, err := NewWriter(f, LinkTypeEthernet, uint32(cfg.Snaplen), cfg.Interface, cfg.App)
	if err != nil {
		f.Close()
		return fail("output", err)
	}
	c := &Capture{cfg: cfg, fd: fd, file: f, w: w, ports: map[uint16]bool{}, flows: map[string]*Flow{},
		done: make(chan struct{}), stop: make(chan struct{})}
	go c.loop()
	return c, nil
}

// Path is the pcapng file being written.
func (c *Capture) Path() string { return c.cfg.Path }

// AllowPorts adds lab ports: packets to or from them are kept.
func (c *Capture) AllowPorts(ports ...uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ports {
		if p != 0 && !c.ports[p] {
			c.ports[p] = true
			c.fresh = true
		}
	}
}

// AllowAddr adds the port of a host:port or URL-ish address (tcp://h:p,
// http://h:p/path); it reports whether it found one.
func (c *Capture) AllowAddr(addr string) bool {
	p, ok := PortOf(addr)
	if ok {
		c.AllowPorts(p)
	}
	return ok
}

// PortOf extracts the port of host:port, scheme://host:port[/path] or
// "tcp:a:p->b:p" (both ports are not returned, only the first).
func PortOf(addr string) (uint16, bool) {
	for i := 0; i+3 <= len(addr); i++ {
		if addr[i:i+3] == "://" {
			addr = addr[i+3:]
			break
		}
	}
	for i := 0; i < len(addr); i++ {
		if addr[i] == '/' {
			addr = addr[:i]
			break
		}
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return 0, false
		}
		var p uint16
		if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p == 0 {
			return 0, false
		}
		return p, true
	}
	return ap.Port(), ap.Port() != 0
}

func (c *Capture) loop() {
	defer close(c.done)
	buf := make([]byte, c.cfg.Snaplen)
	oob := make([]byte, 256)
	lastFlush := time.Now()
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, oobn, _, from, err := syscall.Recvmsg(c.fd, buf, oob, syscall.MSG_TRUNC)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				c.flush(&lastFlush, true)
				continue
			}
			c.mu.Lock()
			c.stats.Errors++
			c.err = err
			c.mu.Unlock()
			return
		}
		// On loopback every packet is seen twice, outgoing and incoming;
		// keep the incoming copy (as libpcap does).
		if ll, ok := from.(*syscall.SockaddrLinklayer); ok && ll.Pkttype == syscall.PACKET_OUTGOING && c.cfg.Interface == "lo" {
			continue
		}
		now := kernelTime(oob[:oobn])
		if now.IsZero() {
			now = c.cfg.Now()
		} else {
			c.mu.Lock()
			c.stats.KernelTime++
			c.mu.Unlock()
		}
		capLen := min(n, len(buf))
		c.packet(now, buf[:capLen], n)
		c.flush(&lastFlush, false)
	}
}

// kernelTime returns the SCM_TIMESTAMPNS receive time in the control
// messages, or the zero time. It parses the cmsg headers in place (no
// allocation: it runs for every packet on the interface).
func kernelTime(oob []byte) time.Time {
	const hdr = syscall.SizeofCmsghdr
	for len(oob) >= hdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			return time.Time{}
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SO_TIMESTAMPNS && l-hdr >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&oob[hdr]))
			return time.Unix(ts.Sec, ts.Nsec)
		}
		next := (l + 7) &^ 7 // CMSG_ALIGN on 64-bit
		if next > len(oob) {
			return time.Time{}
		}
		oob = oob[next:]
	}
	return time.Time{}
}

func (c *Capture) packet(now time.Time, data []byte, origLen int) {
	seg, err := DecodeEthernet(data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fresh {
		c.flushPreRoll()
	}
	if err != nil {
		c.stats.Filtered++
		return
	}
	if !(c.ports[seg.Src.Port()] || c.ports[seg.Dst.Port()]) {
		c.hold(now, data, origLen, seg)
		return
	}
	c.write(now, data, origLen, seg)
}

// hold keeps a packet of a port not allowed yet in the pre-roll.
func (c *Capture) hold(now time.Time, data []byte, origLen int, seg Segment) {
	cp := append([]byte(nil), data...)
	seg2, _ := DecodeEthernet(cp)
	c.pre = append(c.pre, held{t: now, data: cp, origLen: origLen, seg: seg2})
	c.preSz += len(cp)
	// Drop what is too old from the front (amortised O(1): the slice is
	// compacted only when half of it is dropped).
	for c.preHead < len(c.pre) && (now.Sub(c.pre[c.preHead].t) > preRollWindow || c.preSz > preRollBytes) {
		c.preSz -= len(c.pre[c.preHead].data)
		c.pre[c.preHead] = held{}
		c.stats.Filtered++
		c.preHead++
	}
	if c.preHead > 1024 && c.preHead > len(c.pre)/2 {
		n := copy(c.pre, c.pre[c.preHead:])
		for i := n; i < len(c.pre); i++ {
			c.pre[i] = held{}
		}
		c.pre, c.preHead = c.pre[:n], 0
	}
}

// flushPreRoll writes the held packets of newly allowed ports, in order.
func (c *Capture) flushPreRoll() {
	c.fresh = false
	c.pre, c.preHead = c.pre[c.preHead:], 0
	kept := c.pre[:0]
	for _, h := range c.pre {
		if c.ports[h.seg.Src.Port()] || c.ports[h.seg.Dst.Port()] {
			c.write(h.t, h.data, h.origLen, h.seg)
			c.stats.PreRoll++
			c.preSz -= len(h.data)
			continue
		}
		kept = append(kept, h)
	}
	for i := len(kept); i < len(c.pre); i++ {
		c.pre[i] = held{}
	}
	c.pre = kept
}

func (c *Capture) write(now time.Time, data []byte, origLen int, seg Segment) {
	if err := c.w.WritePacket(now, data, origLen, ""); err != nil {
		c.stats.Errors++
		c.err = err
		return
	}
	c.stats.Packets++
	c.stats.Bytes += int64(len(data))
	t := seg.Tuple()
	f := c.flows[t]
	if f == nil {
		f = &Flow{Tuple: t, First: now}
		c.flows[t] = f
	}
	f.Last = now
	f.Packets++
	f.Bytes += len(seg.Payload)
	if seg.Flags&(FlagFIN|FlagRST) != 0 {
		f.Closed = true
	}
}

// flush writes buffered packets so that readers of the growing file (a
// detector reading the pcap live) see them within ~20 ms.
func (c *Capture) flush(last *time.Time, idle bool) {
	if !idle && time.Since(*last) < 20*time.Millisecond {
		return
	}
	*last = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.w.Flush(); err != nil {
		c.stats.Errors++
		c.err = err
	}
}

// Sync makes every packet captured so far visible in the file.
func (c *Capture) Sync() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Flush()
}

// Stats returns the counters.
func (c *Capture) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDrops()
	st := c.stats
	st.Filtered += int64(len(c.pre) - c.preHead)
	return st
}

// readDrops adds the kernel's drop counter (reset on each read).
func (c *Capture) readDrops() {
	if c.fd < 0 {
		return
	}
	var st struct{ Packets, Drops uint32 }
	l := uint32(unsafe.Sizeof(st))
	const packetStatistics = 6 // PACKET_STATISTICS
	_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(c.fd), syscall.SOL_PACKET, packetStatistics,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&l)), 0)
	if e == 0 {
		c.stats.Dropped += int64(st.Drops)
	}
}

// Flows returns what was seen of each 5-tuple, sorted by first packet.
func (c *Capture) Flows() []Flow {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Flow, 0, len(c.flows))
	for _, f := range c.flows {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].First.Equal(out[j].First) {
			return out[i].First.Before(out[j].First)
		}
		return out[i].Tuple < out[j].Tuple
	})
	return out
}

// Close stops the capture and closes the file; it returns the first
// receive or write error, if any.
func (c *Capture) Close() error {
	close(c.stop)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDrops()
	c.stats.Filtered += int64(len(c.pre) - c.preHead)
	c.pre, c.preHead = nil, 0
	err := c.err
	if ferr := c.w.Flush(); err == nil {
		err = ferr
	}
	if cerr := c.file.Close(); err == nil {
		err = cerr
	}
	syscall.Close(c.fd)
	c.fd = -1
	return err
}
