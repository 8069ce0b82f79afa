package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrNoMosquitto is returned when no mosquitto binary is installed.
var ErrNoMosquitto = errors.New("broker: mosquitto: binary not found (Debian package mosquitto)")

// FindMosquitto returns the path of the mosquitto binary.
func FindMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", ErrNoMosquitto
}

// Mosquitto runs Debian's mosquitto as a child process on loopback, with
// anonymous access and no persistence (a flat legacy broker).
type Mosquitto struct {
	// Port to listen on; 0 picks a free one at the first Start.
	Port int
	// Dir for the config file; default a temporary directory.
	Dir string
	// Binary path; default FindMosquitto.
	Binary string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

// Start implements Restarter: it writes the config, starts the process and
// waits until the port accepts connections.
func (m *Mosquitto) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return errors.New("broker: mosquitto: already started")
	}
	if m.Binary == "" {
		b, err := FindMosquitto()
		if err != nil {
			return err
		}
		m.Binary = b
	}
	if m.Port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("broker: mosquitto: pick port: %w", err)
		}
		m.Port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	if m.Dir == "" {
		d, err := os.MkdirTemp("", "pumplab-mosquitto-")
		if err != nil {
			return fmt.Errorf("broker: mosquitto: %w", err)
		}
		m.Dir = d
	}
	conf := filepath.Join(m.Dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\nlog_dest stderr\nlog_type error\n", m.Port)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return fmt.Errorf("broker: mosquitto: write config: %w", err)
	}
	cmd := exec.Command(m.Binary, "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("broker: mosquitto: start %s: %w", m.Binary, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port))
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			return fmt.Errorf("broker: mosquitto: exited before listening on %s: %v", addr, err)
		case <-ctx.Done():
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("broker: mosquitto: waiting for %s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	m.cmd, m.done = cmd, done
	return nil
}

// URL implements Broker.
func (m *Mosquitto) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", m.Port) }

// Stop implements Restarter: SIGTERM, then wait for the process.
func (m *Mosquitto) Stop() error {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd, m.done = nil, nil
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}

// Close implements Broker.
func (m *Mosquitto) Close() error { return m.Stop() }
