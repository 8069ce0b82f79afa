package alarms

import (
	"fmt"
	"sort"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// ControlHeartbeat is the posture control name of the heartbeat and
// sequence checks.
const ControlHeartbeat = "alarm-heartbeat"

// ControlEvent actions.
const (
	ActionBlocked = "blocked"
	ActionFlagged = "flagged"
)

// Defaults of HeartbeatCheck.
const (
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultMissed            = 3
	DefaultMaxGap            = 1000
	DefaultSilentLevel       = 1
)

// SilentEvent is the Alert.Event (and AlertRecord.Code) of the technical
// alert the manager raises for a silent reporter.
const SilentEvent = "MDC_EVT_REPORTER_SILENT"

// HeartbeatCheck configures the alarm-heartbeat control (Config.Heartbeat):
// heartbeat and sequence checks per alert reporter. A reporter is the
// client certificate CN of its connection, else its MSH-3.1 (e.g.
// PUMPSRV_SIM). See docs/alarms.md.
type HeartbeatCheck struct {
	// Interval is the reporter's heartbeat period (lab time), default 30 s.
	Interval time.Duration
	// Missed heartbeats in a row make the reporter silent (default 3): with
	// no heartbeat for (Missed + 1/2) × Interval the manager raises a
	// "reporter silent" technical alert.
	Missed int
	// SequenceCheck refuses PCD-04 messages and heartbeats whose MSH-13
	// sequence number is missing, not above the last one seen from the
	// reporter (replay, out of order) or more than MaxGap above it, and
	// flags gaps (lost messages).
	SequenceCheck bool
	// MaxGap bounds a forward jump of the sequence (default 1000).
	MaxGap uint64
	// Reporters are expected from Start: their silence counts from Start,
	// even if they never send anything. Others count from their first
	// message.
	Reporters []string
	// SilentLevel is the escalation level the "reporter silent" alert
	// starts at (default 1, the charge nurse); a level without recipients
	// falls back to level 0.
	SilentLevel int
	// WallFloor is the least wall time without a heartbeat before a
	// reporter counts as silent, whatever the lab time says. A lab running
	// its clock hundreds of times faster than the wall turns a scheduler
	// hiccup of a loaded machine into "three missed heartbeats"; the floor
	// keeps that from paging the charge nurse. 0: none (lab time only).
	WallFloor time.Duration
}

// ControlEvent is one act of the alarm-heartbeat control, for lab evidence
// and the syslog audit (Config.OnControl).
type ControlEvent struct {
	// Control is ControlHeartbeat.
	Control string
	// Action is ActionBlocked (a message or an alert end refused) or
	// ActionFlagged (a silent reporter, a sequence gap, a restart, an
	// active alert the manager never received).
	Action string
	// Target is the pump of the alert, else "alarm-manager".
	Target string
	// Source is the reporter (certificate CN or MSH-3.1).
	Source string
	// Reason says why, in words.
	Reason string
	// Ref is the message control id (MSH-10), or the alert id.
	Ref string
}

// reporterState is what the manager knows of one alert reporter.
type reporterState struct {
	key      string
	run      string
	last     uint64 // last sequence number seen; 0: none yet
	beats    int
	lastBeat time.Time
	timer    clock.Timer
	gen      int
	silentN  int
	silent   *alertState            // the open "reporter silent" alert
	pending  map[string]*alertState // alerts with an end awaiting the next heartbeat
	unknown  map[string]bool        // active ids listed but never received, already flagged
}

// pendingEnd is an alert end held until the reporter's next heartbeat.
type pendingEnd struct {
	meta hl7.ConnMeta
	key  string // phase|state of the end message
	ref  string // its control id
}

func reporterKey(sendingApp string, meta hl7.ConnMeta) string {
	if meta.PeerCN != "" {
		return meta.PeerCN
	}
	return sendingApp
}

func (m *Manager) event(e ControlEvent) {
	e.Control = ControlHeartbeat
	if e.Target == "" {
		e.Target = "alarm-manager"
	}
	m.log.Warn("alarms: alarm-heartbeat", "action", e.Action, "target", e.Target, "source", e.Source, "reason", e.Reason, "ref", e.Ref)
	if m.cfg.OnControl != nil {
		m.cfg.OnControl(e)
	}
}

func (m *Manager) reporterLocked(key string) *reporterState {
	r, ok := m.reporters[key]
	if !ok {
		r = &reporterState{key: key, pending: map[string]*alertState{}, unknown: map[string]bool{}}
		m.reporters[key] = r
	}
	return r
}

// refuse counts and reports a refused message and returns its AR error.
func (m *Manager) refuseLocked(e ControlEvent, appCode string) error {
	m.stats.Refused++
	e.Action = ActionBlocked
	m.event(e)
	return &hl7.AckError{Code: hl7.ErrCodeInternal, AckCode: hl7.AckAR, AppCode: appCode, AppText: "refused by alarm-heartbeat",
		Message: "alarms: " + e.Reason}
}

// sequenceLocked applies the sequence check to a message of reporter r.
func (m *Manager) sequenceLocked(r *reporterState, msg *hl7.Message, target string) error {
	hb := m.cfg.Heartbeat
	if !hb.SequenceCheck {
		return nil
	}
	ref := msg.ControlID()
	seq, ok, err := hl7.Sequence(msg)
	switch {
	case err != nil:
		return m.refuseLocked(ControlEvent{Target: target, Source: r.key, Ref: ref, Reason: err.Error()}, "SEQUENCE")
	case !ok:
		return m.refuseLocked(ControlEvent{Target: target, Source: r.key, Ref: ref,
			Reason: fmt.Sprintf("message from %s without a sequence number (MSH-13)", r.key)}, "SEQUENCE")
	case r.last == 0:
		r.last = seq
		return nil
	case seq <= r.last:
		m.stats.SequenceRefused++
		return m.refuseLocked(ControlEvent{Target: target, Source: r.key, Ref: ref,
			Reason: fmt.Sprintf("sequence number %d from %s is not above the last one seen, %d: replayed or out of order", seq, r.key, r.last)}, "SEQUENCE")
	case seq-r.last > hb.MaxGap:
		m.stats.SequenceRefused++
		return m.refuseLocked(ControlEvent{Target: target, Source: r.key, Ref: ref,
			Reason: fmt.Sprintf("sequence number %d from %s jumps %d above the last one seen, %d (more than %d)", seq, r.key, seq-r.last, r.last, hb.MaxGap)}, "SEQUENCE")
	case seq > r.last+1:
		m.stats.SequenceGaps++
		m.event(ControlEvent{Action: ActionFlagged, Target: target, Source: r.key, Ref: ref,
			Reason: fmt.Sprintf("%d message(s) from %s missing: sequence jumps from %d to %d (lost or suppressed)", seq-r.last-1, r.key, r.last, seq)})
	}
	r.last = seq
	return nil
}

// pendEndLocked holds the end of alert st until the reporter's next
// heartbeat (the heartbeat control), or refuses it when it does not come
// from the alert's reporter.
func (m *Manager) pendEndLocked(st *alertState, rkey, key string, a Alert, meta hl7.ConnMeta, now time.Time) (*hl7.Message, error) {
	if rkey != st.reporter {
		m.stats.EndsRefused++
		st.rec.EndsRefused++
		return nil, m.refuseLocked(ControlEvent{Target: st.alert.Pump, Source: rkey, Ref: a.ControlID,
			Reason: fmt.Sprintf("end of alert %s from %s, but the alert was reported by %s", st.alert.ID, rkey, st.reporter)}, "END-SOURCE")
	}
	if st.pendingEnd != nil {
		st.rec.Duplicates++
		m.stats.Duplicates++
		return nil, nil
	}
	st.pendingEnd = &pendingEnd{meta: meta, key: key, ref: a.ControlID}
	st.rec.EndPending = now
	m.reporterLocked(rkey).pending[st.alert.ID] = st
	m.log.Info("alarms: alert end held until the next heartbeat", "alert", st.alert.ID, "reporter", rkey)
	return nil, nil
}

// handleHeartbeat applies one reporter heartbeat.
func (m *Manager) handleHeartbeat(msg *hl7.Message, meta hl7.ConnMeta) (*hl7.Message, error) {
	hb, err := hl7.ParseHeartbeat(msg)
	if err != nil {
		return nil, fmt.Errorf("alarms: heartbeat: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, &hl7.AckError{Code: hl7.ErrCodeInternal, Message: "alarms: manager closing"}
	}
	defer m.notifyLocked()
	if m.cfg.Heartbeat == nil {
		m.stats.Heartbeats++ // control off: acknowledged, nothing checked
		return nil, nil
	}
	now := m.clk.Now()
	r := m.reporterLocked(reporterKey(hb.Header.SendingApp.Namespace, meta))
	if hb.Run != r.run {
		if r.run != "" {
			m.event(ControlEvent{Action: ActionFlagged, Source: r.key, Ref: hb.Header.ControlID,
				Reason: fmt.Sprintf("reporter %s restarted (run %s, was %s): its sequence numbers start again at %d", r.key, hb.Run, r.run, hb.Seq)})
		}
		r.run, r.last = hb.Run, hb.Seq
	} else if err := m.sequenceLocked(r, msg, ""); err != nil {
		return nil, err
	}
	m.stats.Heartbeats++
	r.beats++
	r.lastBeat = now
	m.armSilenceLocked(r)
	if r.silent != nil {
		m.log.Info("alarms: reporter heard again", "reporter", r.key)
		m.endLocked(r.silent, meta, now)
		r.silent = nil
	}
	active := make(map[string]bool, len(hb.Active))
	for _, id := range hb.Active {
		active[id] = true
		if _, known := m.alerts[id]; !known && !r.unknown[id] {
			r.unknown[id] = true
			m.event(ControlEvent{Action: ActionFlagged, Source: r.key, Ref: id,
				Reason: fmt.Sprintf("reporter %s lists alert %s as active, which the alarm manager never received (PCD-04 lost or suppressed?)", r.key, id)})
		}
	}
	ids := make([]string, 0, len(r.pending))
	for id := range r.pending {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		st := r.pending[id]
		delete(r.pending, id)
		p := st.pendingEnd
		st.pendingEnd = nil
		if active[id] {
			st.rec.EndPending = time.Time{}
			st.rec.EndsRefused++
			m.stats.EndsRefused++
			m.event(ControlEvent{Action: ActionBlocked, Target: st.alert.Pump, Source: r.key, Ref: p.ref,
				Reason: fmt.Sprintf("end of an alarm the reporter still lists as active: alert %s (end from %s refused, escalation continues)", id, connFrom(p.meta))})
			continue
		}
		st.last = p.key
		m.endLocked(st, p.meta, now)
	}
	return nil, nil
}

// armSilenceLocked (re)starts the silence timer of r.
func (m *Manager) armSilenceLocked(r *reporterState) {
	hb := m.cfg.Heartbeat
	if r.timer != nil {
		r.timer.Stop()
	}
	r.gen++
	gen := r.gen
	after := time.Duration(hb.Missed)*hb.Interval + hb.Interval/2
	armed := time.Now()
	var fire func()
	fire = func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if r.gen != gen || m.closed {
			return
		}
		if rem := hb.WallFloor - time.Since(armed); rem > 0 {
			r.timer = wallTimer{time.AfterFunc(rem, fire)}
			return
		}
		r.timer = nil
		m.silentLocked(r, after)
		m.notifyLocked()
	}
	r.timer = m.clk.AfterFunc(after, fire)
}

// wallTimer is a wall-clock timer where the manager keeps lab timers.
type wallTimer struct{ t *time.Timer }

func (w wallTimer) Stop() bool { return w.t.Stop() }

// silentLocked raises the "reporter silent" technical alert.
func (m *Manager) silentLocked(r *reporterState, quiet time.Duration) {
	hb := m.cfg.Heartbeat
	now := m.clk.Now()
	since := "since the alarm manager started"
	if !r.lastBeat.IsZero() {
		since = "since " + r.lastBeat.UTC().Format(time.RFC3339)
	}
	m.stats.SilentReporters++
	r.silentN++
	text := fmt.Sprintf("Alert reporter %s silent: no heartbeat for %s (%d missed), %s; alarms may not reach the nurses", r.key, quiet, hb.Missed, since)
	m.event(ControlEvent{Action: ActionFlagged, Source: r.key, Ref: fmt.Sprintf("AM-SILENT-%s-%d", r.key, r.silentN), Reason: text})
	a := Alert{ID: fmt.Sprintf("AM-SILENT-%s-%d", r.key, r.silentN), App: "ALERTMGR_SIM", Event: SilentEvent, Text: text,
		Priority: hl7.PriorityHigh, Type: hl7.AlertTechnical, Phase: hl7.PhaseStart, State: hl7.StateActive, Reporter: r.key}
	st := &alertState{alert: a, reported: map[string]bool{}, internal: true, reporter: r.key,
		last: hl7.PhaseStart + "|" + hl7.StateActive,
		rec: AlertRecord{ID: a.ID, App: a.App, Code: a.Event, Text: a.Text, Priority: a.Priority, Type: a.Type,
			Onset: now, Received: now, ReceivedWall: m.wall(), Status: RecordQueued, Reporter: r.key}}
	m.alerts[a.ID] = st
	m.order = append(m.order, a.ID)
	m.stats.Alerts++
	level := hb.SilentLevel
	if len(m.recipientsLocked(a, level)) == 0 {
		level = 0
	}
	st.level = level
	m.dispatchLevelLocked(st, level)
	m.armLocked(st)
	m.levelFailedLocked(st)
	m.updateStatusLocked(st)
	r.silent = st
}

// startHeartbeatLocked arms the silence timers of the expected reporters.
func (m *Manager) startHeartbeatLocked() {
	for _, key := range m.cfg.Heartbeat.Reporters {
		m.armSilenceLocked(m.reporterLocked(key))
	}
}

// Reporter is the manager's view of one alert reporter (Manager.Reporters).
type Reporter struct {
	Key        string    `json:"key"`
	Run        string    `json:"run,omitempty"`
	LastSeq    uint64    `json:"last_seq"`
	Heartbeats int       `json:"heartbeats"`
	LastBeat   time.Time `json:"last_heartbeat,omitzero"`
	Silent     bool      `json:"silent"`
	Pending    []string  `json:"pending_ends,omitempty"`
}

// Reporters returns the alert reporters the heartbeat control knows, by key.
func (m *Manager) Reporters() []Reporter {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Reporter, 0, len(m.reporters))
	for _, r := range m.reporters {
		v := Reporter{Key: r.key, Run: r.run, LastSeq: r.last, Heartbeats: r.beats, LastBeat: r.lastBeat, Silent: r.silent != nil}
		for id := range r.pending {
			v.Pending = append(v.Pending, id)
		}
		sort.Strings(v.Pending)
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
