package pump

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
)

// MaxServiceLine is the longest service-port line accepted, in bytes
// (without the line end).
const MaxServiceLine = 512

// ServiceCmd is one parsed service-port line.
type ServiceCmd struct {
	Verb string   // LOGIN, SHOW, SERVICE, SET, LOGOUT, QUIT, HELP
	Args []string // LOGIN: user, code; SHOW: CONFIG; SERVICE: work order, reason (rest of line); SET: key, value
}

// ParseServiceLine parses one line of the service-port protocol (verbs are
// case-insensitive; fields are separated by spaces):
//
//	LOGIN user code
//	SHOW CONFIG
//	SERVICE workorder reason...
//	SET key value
//	LOGOUT
//	QUIT
//	HELP
//
// It never panics; an error names what was wrong.
func ParseServiceLine(line string) (ServiceCmd, error) {
	line = strings.TrimRight(line, "\r\n")
	if len(line) > MaxServiceLine {
		return ServiceCmd{}, fmt.Errorf("line of %d bytes exceeds %d", len(line), MaxServiceLine)
	}
	for i := 0; i < len(line); i++ {
		if c := line[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return ServiceCmd{}, fmt.Errorf("byte 0x%02x at %d: only printable ASCII is accepted", c, i)
		}
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return ServiceCmd{}, errors.New("empty line")
	}
	c := ServiceCmd{Verb: strings.ToUpper(f[0])}
	args := f[1:]
	switch c.Verb {
	case "LOGIN":
		if len(args) != 2 {
			return c, errors.New("usage: LOGIN user code")
		}
	case "SHOW":
		if len(args) != 1 || strings.ToUpper(args[0]) != "CONFIG" {
			return c, errors.New("usage: SHOW CONFIG")
		}
		args = []string{"CONFIG"}
	case "SERVICE":
		if len(args) < 1 {
			return c, errors.New("usage: SERVICE workorder reason...")
		}
		args = []string{args[0], strings.Join(args[1:], " ")}
	case "SET":
		if len(args) != 2 {
			return c, errors.New("usage: SET key value")
		}
	case "LOGOUT", "QUIT", "HELP":
		if len(args) != 0 {
			return c, fmt.Errorf("usage: %s", c.Verb)
		}
	default:
		return c, fmt.Errorf("unknown command %q (LOGIN, SHOW CONFIG, SERVICE, SET, LOGOUT, QUIT, HELP)", f[0])
	}
	c.Args = args
	return c, nil
}

// ServicePort is the pump's telnet-style maintenance port (a TCP listener on
// loopback). With AccessPolicy.Unauthenticated (the legacy service-port
// weakness) a connection may SHOW and SET without LOGIN; otherwise LOGIN
// opens a session like the keypad's ServiceLogin. Replies are one line
// "OK ..." or "ERR CODE text"; SHOW CONFIG sends "OK-key value" lines and
// ends with "OK ...". docs/pump.md describes the protocol.
type ServicePort struct {
	p   *Pump
	ln  net.Listener
	wg  sync.WaitGroup
	mu  sync.Mutex
	cs  map[net.Conn]struct{}
	end bool
}

// ServicePortIdle is the wall-time idle limit of a service-port connection.
const ServicePortIdle = 5 * time.Minute

// maxServiceConns bounds concurrent service-port connections.
const maxServiceConns = 16

// NewServicePort listens on addr (default "127.0.0.1:0"; only loopback
// addresses) and serves p's service port until Close.
func NewServicePort(p *Pump, addr string) (*ServicePort, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("pump %s: service port address %q: %w", p.ID(), addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("pump %s: service port address %q: only loopback", p.ID(), addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pump %s: service port: %w", p.ID(), err)
	}
	return ServeServicePort(p, ln), nil
}

// ServeServicePort serves p's service port on a listener the caller opened
// and owns the address of (the container lab binds on its own container
// network); NewServicePort is the loopback form. Close closes ln.
func ServeServicePort(p *Pump, ln net.Listener) *ServicePort {
	s := &ServicePort{p: p, ln: ln, cs: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s
}

// Addr returns the listening address (host:port).
func (s *ServicePort) Addr() string { return s.ln.Addr().String() }

// Close stops the listener, closes open connections and waits for them.
func (s *ServicePort) Close() error {
	s.mu.Lock()
	s.end = true
	for c := range s.cs {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *ServicePort) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.end || len(s.cs) >= maxServiceConns {
			s.mu.Unlock()
			fmt.Fprintf(c, "ERR BUSY too many connections\r\n")
			c.Close()
			continue
		}
		s.cs[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.cs, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *ServicePort) serve(c net.Conn) {
	p := s.p
	w := bufio.NewWriter(c)
	reply := func(format string, args ...any) {
		fmt.Fprintf(w, format+"\r\n", args...)
		w.Flush()
	}
	p.logPort(c.RemoteAddr().String(), "service_port_connect", "")
	sess := ""
	if id, err := p.openUnauthenticated("service-port"); err == nil {
		sess = id
		reply("OK pumplab service port %s %s %s (no login required) session %s", p.ID(), p.Model(), p.Firmware(), sess)
	} else {
		reply("OK pumplab service port %s %s %s: LOGIN user code", p.ID(), p.Model(), p.Firmware())
	}
	defer func() {
		if sess != "" {
			p.ServiceLogout(sess)
		}
	}()
	r := bufio.NewReaderSize(c, MaxServiceLine+2)
	for {
		c.SetReadDeadline(time.Now().Add(ServicePortIdle))
		line, err := readLine(r)
		if errors.Is(err, errLineTooLong) {
			reply("ERR LINE-TOO-LONG a line is at most %d bytes", MaxServiceLine)
			continue
		}
		if err != nil {
			return
		}
		cmd, err := ParseServiceLine(line)
		if err != nil {
			reply("ERR BAD-CMD %s", err)
			continue
		}
		switch cmd.Verb {
		case "HELP":
			reply("OK LOGIN user code | SHOW CONFIG | SERVICE workorder reason... | SET key value | LOGOUT | QUIT")
		case "QUIT":
			reply("OK bye")
			return
		case "LOGIN":
			id, err := p.serviceLogin(cmd.Args[0], cmd.Args[1], "service-port")
			if err != nil {
				replyErr(reply, err)
				continue
			}
			sess = id
			reply("OK session %s", id)
		case "LOGOUT":
			if sess == "" {
				reply("ERR SVC-SESSION not logged in")
				continue
			}
			err := p.ServiceLogout(sess)
			sess = ""
			if err != nil {
				replyErr(reply, err)
				continue
			}
			reply("OK logged out")
		case "SHOW":
			d, err := p.ServiceShow(sess)
			if err != nil {
				replyErr(reply, err)
				continue
			}
			lines := d.Lines()
			for _, l := range lines {
				reply("OK-%s", l)
			}
			reply("OK config %d lines", len(lines))
		case "SERVICE":
			if err := p.ServiceEnter(sess, cmd.Args[0], cmd.Args[1]); err != nil {
				replyErr(reply, err)
				continue
			}
			reply("OK service mode, work order %s", cmd.Args[0])
		case "SET":
			if err := p.ServiceSet(sess, cmd.Args[0], cmd.Args[1]); err != nil {
				replyErr(reply, err)
				continue
			}
			v, _ := p.Setting(cmd.Args[0])
			reply("OK %s %s", cmd.Args[0], v)
		}
	}
}

func replyErr(reply func(string, ...any), err error) {
	var r *Rejection
	if errors.As(err, &r) {
		reply("ERR %s %s", r.Code, r.Reason)
		return
	}
	reply("ERR ERROR %s", strings.ReplaceAll(err.Error(), "\n", " "))
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line; a longer line than MaxServiceLine is consumed
// to its end and reported as errLineTooLong.
func readLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	line := strings.TrimRight(string(b), "\r\n")
	if len(line) > MaxServiceLine {
		return "", errLineTooLong
	}
	return line, nil
}

// logPort records a service-port connection in the event log.
func (p *Pump) logPort(remote, action, detail string) {
	p.mu.Lock()
	defer p.unlock()
	p.addLog(LogEntry{Kind: LogService, Source: "service-port", Action: action, Detail: strings.TrimSpace(remote + " " + detail)})
}

// Lines renders the dump as "key value" lines, in a fixed order.
func (d ConfigDump) Lines() []string {
	out := []string{
		"pump_id " + d.PumpID, "model " + d.Model, "firmware " + d.Firmware,
		"library " + d.LibraryVersion, fmt.Sprintf("library_release %d", d.LibrarySeq), "care_area " + d.CareArea,
	}
	keys := make([]string, 0, len(d.Settings))
	for k := range d.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+" "+d.Settings[k])
	}
	c := d.Credentials
	for _, kv := range [][2]string{{"broker_username", c.BrokerUsername}, {"broker_password", c.BrokerPassword},
		{"wifi_ssid", c.WiFiSSID}, {"wifi_psk", c.WiFiPSK}} {
		out = append(out, kv[0]+" "+kv[1])
	}
	out = append(out, fmt.Sprintf("client_cert_pem %d bytes", len(c.ClientCertPEM)), fmt.Sprintf("client_key_pem %d bytes", len(c.ClientKeyPEM)))
	out = append(out, "recent_patients "+strings.Join(d.RecentPatients, ","), "access_users "+strings.Join(d.AccessUsers, ","))
	if d.Decommissioned {
		out = append(out, "decommissioned true")
	}
	return out
}
