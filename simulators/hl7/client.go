package hl7

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Client is an MLLP connection to a server. Send is safe for concurrent use:
// sends are serialised, each waiting for its reply.
type Client struct {
	// MaxMessage caps the size of a reply frame, default MaxMessageSize.
	MaxMessage int

	mu     sync.Mutex
	conn   net.Conn
	br     *bufio.Reader
	broken error
}

// Dial connects to addr; with tlsConf it speaks MLLP over TLS and verifies
// that the server's certificate is issued to tlsConf.ServerName (default:
// the host of addr), so set ServerName to the server's identity (e.g.
// "alarm-manager") to detect a man in the middle that holds another
// certificate of the same CA. ctx bounds the connection and handshake. A
// failed verification of the server's certificate is a *VerificationError.
func Dial(ctx context.Context, addr string, tlsConf *tls.Config) (*Client, error) {
	var conn net.Conn
	var err error
	if tlsConf != nil {
		cfg := tlsConf.Clone()
		if cfg.ServerName == "" {
			if host, _, e := net.SplitHostPort(addr); e == nil {
				cfg.ServerName = host
			}
		}
		if vp := cfg.VerifyPeerCertificate; vp != nil {
			cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
				if err := vp(raw, chains); err != nil {
					return &hookError{err}
				}
				return nil
			}
		}
		d := tls.Dialer{Config: cfg}
		conn, err = d.DialContext(ctx, "tcp", addr)
		if err != nil && isVerification(err) {
			return nil, &VerificationError{Addr: addr, ServerName: cfg.ServerName, Err: err}
		}
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("hl7: client: dial %s: %w", addr, err)
	}
	return &Client{conn: conn, br: bufio.NewReader(conn)}, nil
}

// Conn returns the underlying connection (for tests that write raw bytes).
func (c *Client) Conn() net.Conn { return c.conn }

// Send writes m as one frame and returns the parsed reply frame. ctx's
// deadline and cancellation interrupt the exchange; after any I/O error the
// client is unusable (the reply stream would be out of step) and must be
// closed.
func (c *Client) Send(ctx context.Context, m *Message) (*Message, error) {
	raw, err := c.SendRaw(ctx, m.Bytes())
	if err != nil {
		return nil, err
	}
	reply, err := ParseLimit(raw, c.max())
	if err != nil {
		return nil, fmt.Errorf("hl7: client: parse reply: %w", err)
	}
	return reply, nil
}

func (c *Client) max() int {
	if c.MaxMessage > 0 {
		return c.MaxMessage
	}
	return MaxMessageSize
}

// SendRaw frames msg (any bytes), writes it and returns the content of the
// next reply frame without parsing it.
func (c *Client) SendRaw(ctx context.Context, msg []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, fmt.Errorf("hl7: client: connection unusable: %w", c.broken)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("hl7: client: send: %w", err)
	}
	// The context alone interrupts the exchange (so that ctx.Err() is set
	// whenever I/O fails because of it).
	_ = c.conn.SetDeadline(time.Time{})
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.conn.SetDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	defer func() {
		if !stop() {
			<-interrupted // let the interruption finish before the next Send
		}
	}()
	fail := func(op string, err error) ([]byte, error) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		c.broken = err
		_ = c.conn.Close()
		return nil, fmt.Errorf("hl7: client: %s: %w", op, err)
	}
	if err := WriteFrame(c.conn, msg); err != nil {
		return fail("send", err)
	}
	reply, err := ReadFrame(c.br, c.max())
	if err != nil {
		return fail("read reply", err)
	}
	return reply, nil
}

// Close closes the connection, interrupting a Send in progress.
func (c *Client) Close() error {
	err := c.conn.Close()
	c.mu.Lock()
	if c.broken == nil {
		c.broken = errors.New("client closed")
	}
	c.mu.Unlock()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// SendOnce dials addr, sends m, returns the reply and closes the connection.
func SendOnce(ctx context.Context, addr string, tlsConf *tls.Config, m *Message) (*Message, error) {
	c, err := Dial(ctx, addr, tlsConf)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Send(ctx, m)
}
