package pumpserver

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// DefaultHeartbeatInterval is HeartbeatConfig.Interval when zero.
const DefaultHeartbeatInterval = 30 * time.Second

// HeartbeatConfig is the alert reporter's side of the alarm-heartbeat
// control (Config.Heartbeat). With it, the pump server:
//
//   - stamps every PCD-04 it sends to the alarm manager with a sequence
//     number in MSH-13, one counter per server run starting at 1;
//   - sends the alarm manager a heartbeat (hl7.Heartbeat, an ORU^R40 with
//     OBR-4 MDC_EVT_HEARTBEAT) at Start and then every Interval of lab time,
//     carrying the next sequence number, the server's run id and the ids of
//     the alerts active at the server (started and not yet ended).
//
// Heartbeats and PCD-04 messages go through the same outbound queue and
// connection, so the manager sees them in sequence order, and a heartbeat
// sent after an alert's end never lists it.
type HeartbeatConfig struct {
	// Interval is the heartbeat period in lab time (posture
	// alarm-heartbeat interval); default DefaultHeartbeatInterval.
	Interval time.Duration
}

// reporterHeartbeat is the running heartbeat of a server.
type reporterHeartbeat struct {
	interval time.Duration
	clk      clock.Clock

	mu     sync.Mutex // held across numbering and queueing: queue order is sequence order
	seq    uint64
	active map[string]bool
	timer  clock.Timer
	stop   bool
	sent   int64
}

// startHeartbeat starts the heartbeat when it is configured and PCD-04 goes
// somewhere. Called by Start once the senders exist.
func (s *Server) startHeartbeat() {
	if s.cfg.Heartbeat == nil || s.am == nil {
		return
	}
	iv := s.cfg.Heartbeat.Interval
	if iv <= 0 {
		iv = DefaultHeartbeatInterval
	}
	hb := &reporterHeartbeat{interval: iv, clk: s.clk, active: map[string]bool{}}
	s.hb = hb
	s.beat()
	context.AfterFunc(s.runCtx, func() {
		hb.mu.Lock()
		defer hb.mu.Unlock()
		hb.stop = true
		if hb.timer != nil {
			hb.timer.Stop()
		}
	})
}

// beat queues one heartbeat and arms the next.
func (s *Server) beat() {
	hb := s.hb
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if hb.stop {
		return
	}
	ids := make([]string, 0, len(hb.active))
	for id := range hb.active {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	now := s.clk.Now()
	hb.seq++
	h := s.header("HB", "am")
	m := hl7.BuildHeartbeat(hl7.Heartbeat{Header: h, App: "PUMPSRV_SIM", Run: s.session, Seq: hb.seq, Time: now, Active: ids})
	if err := s.am.enqueue(m); err != nil {
		hb.seq-- // the number was not used
		s.log.Warn("heartbeat not queued", "err", err)
	} else {
		hb.sent++
	}
	hb.timer = hb.clk.AfterFunc(hb.interval, s.beat)
}

// enqueueAlert queues a PCD-04; with the heartbeat on it numbers it (MSH-13)
// and keeps the set of active alerts the heartbeat reports.
func (s *Server) enqueueAlert(al hl7.Alert) error {
	m := hl7.BuildAlert(al)
	hb := s.hb
	if hb == nil {
		return s.am.enqueue(m)
	}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.seq++
	hl7.SetSequence(m, hb.seq)
	if err := s.am.enqueue(m); err != nil {
		hb.seq--
		return fmt.Errorf("pumpserver: PCD-04 %s: %w", al.AlertID, err)
	}
	if al.Active() {
		hb.active[al.AlertID] = true
	} else {
		delete(hb.active, al.AlertID)
	}
	return nil
}

// HeartbeatStats reports the reporter heartbeat: heartbeats queued, the last
// sequence number used and the alerts active now. ok is false when the
// heartbeat is off.
func (s *Server) HeartbeatStats() (sent int64, seq uint64, active []string, ok bool) {
	hb := s.hb
	if hb == nil {
		return 0, 0, nil, false
	}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	for id := range hb.active {
		active = append(active, id)
	}
	sort.Strings(active)
	return hb.sent, hb.seq, active, true
}
