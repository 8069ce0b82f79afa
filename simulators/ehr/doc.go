package ehr

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pumplab/pumplab/simulators/hl7"
)

// DocKey identifies one documentation record: an order on one pump channel.
type DocKey struct {
	OrderID string // OBR-2.1 of PCD-01/PCD-10 (the PCD-03 placer order); "" when the pump reports none
	PumpID  string // OBX-18 of the MDS row
	Channel string // pump channel label: A for VMD 1 (OBX-4 1.1.0.0), B for VMD 2, ...
}

// Record is what the EHR documented for one order on one pump channel.
type Record struct {
	DocKey
	MRN      string // PID-3.1 of the latest message
	DrugCode string // OBR-4.1 (empty for 999999 Medication Unknown)

	// Latest values, from the PCD-01 observation or PCD-10 event with the
	// most recent observation time (a late, buffered message does not
	// overwrite newer values).
	RateMLH      float64
	DoseRate     float64
	DoseRateUnit string
	VolumeML     float64 // cumulative volume delivered (157993)
	Status       string  // infusing status, e.g. pump-status-infusing
	ObservedAt   time.Time

	LibraryVersion string
	CareArea       string

	Observations int     // PCD-01 messages documented
	Events       []Event // PCD-10 events, sorted by event time
	ReceivedAt   time.Time
}

// Event is one documented PCD-10 event.
type Event struct {
	Type      string    // reference ID without MDC_EVT_, e.g. PUMP_DELIV_START
	Code      int       // numeric MDC code (0 when pending)
	Time      time.Time // OBR-7: original event time (also for buffered events)
	EventID   string    // OBR-3.1
	ControlID string    // MSH-10
	PumpID    string
	Channel   string

	Status      string
	RateMLH     float64
	DeliveredML float64
	// Params holds every OBX row with a value: MDC reference ID (or code)
	// -> value (for coded values the text or reference ID).
	Params map[string]string

	ReceivedAt time.Time // lab time of receipt
}

// AdminDoc is one administration documented by the eMAR (RAS^O17).
type AdminDoc struct {
	ControlID  string // MSH-10
	OrderID    string // ORC-2.1
	FillerID   string // ORC-3.1
	MRN        string
	DrugCode   string // RXA-5.1
	Amount     float64
	AmountUnit string
	Nurse      string // RXA-10.1
	Start, End time.Time
	Status     string // RXA-20: CP, PA, NA, RE
	PumpID     string
	RateMLH    float64
	ReceivedAt time.Time
	SendingApp string
}

// Documentation is the EHR's view of one order across pump channels.
type Documentation struct {
	OrderID  string
	MRN      string
	DrugCode string
	Pumps    []DocKey // pump channels that reported the order

	// From the channel with the most recent observation.
	RateMLH      float64
	DoseRate     float64
	DoseRateUnit string
	Status       string
	// VolumeML is the volume documented as delivered: the sum over pump
	// channels of each channel's latest cumulative volume.
	VolumeML        float64
	LastObservation time.Time

	Observations    int
	Events          []Event    // all channels, sorted by event time
	Administrations []AdminDoc // RAS^O17 from the eMAR, in arrival order
}

// Empty reports whether nothing was documented for the order.
func (d Documentation) Empty() bool {
	return d.Observations == 0 && len(d.Events) == 0 && len(d.Administrations) == 0
}

// HasEvent reports whether an event of type typ (e.g. PUMP_DELIV_START) was
// documented.
func (d Documentation) HasEvent(typ string) bool {
	for _, ev := range d.Events {
		if ev.Type == typ {
			return true
		}
	}
	return false
}

// docStore holds the documentation records; guarded by EHR.mu.
type docStore struct {
	records map[DocKey]*Record
	admins  map[string][]AdminDoc
	seen    map[string]struct{}
	ring    []string
	next    int
}

func (d *docStore) init(window int) {
	d.records = map[DocKey]*Record{}
	d.admins = map[string][]AdminDoc{}
	d.seen = map[string]struct{}{}
	d.ring = make([]string, window)
}

// dedupeKey is the sender (MSH-3, MSH-4) and MSH-10.
func dedupeKey(m *hl7.Message) string {
	msh := m.Segment("MSH")
	d := hl7.DefaultDelimiters
	return d.EncodeField(msh.Field(3)) + "|" + d.EncodeField(msh.Field(4)) + "|" + msh.Value(10)
}

func (d *docStore) isDuplicate(key string) bool {
	_, ok := d.seen[key]
	return ok
}

func (d *docStore) remember(key string) {
	if old := d.ring[d.next]; old != "" {
		delete(d.seen, old)
	}
	d.ring[d.next] = key
	d.next = (d.next + 1) % len(d.ring)
	d.seen[key] = struct{}{}
}

// notifyLocked wakes WaitDocumented callers; e.mu must be held.
func (e *EHR) notifyLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// channelOf returns the pump channel of a PCD-01/PCD-10 message: the VMD
// index (second element of OBX-4) of the first VMD row, as a letter
// (1 -> A). "A" when there is none.
func channelOf(m *hl7.Message) string {
	for _, s := range m.Segments("OBX") {
		id := s.Field(3)
		if hl7.MDCPumpVMD.Matches(id) || hl7.MDCPumpLVPVMD.Matches(id) || hl7.MDCPumpSyringeVMD.Matches(id) {
			return ChannelFromSubID(s.Value(4))
		}
	}
	return "A"
}

// ChannelFromSubID maps an OBX-4 sub-ID to a pump channel label: the VMD
// index of dotted notation (1.2.0.0 -> B), or a bare label ("B"). Anything
// else gives "A".
func ChannelFromSubID(sub string) string {
	parts := strings.Split(sub, ".")
	if len(parts) >= 2 {
		if n, err := strconv.Atoi(parts[1]); err == nil && n >= 1 && n <= 26 {
			return string(rune('A' + n - 1))
		}
		return "A"
	}
	if len(sub) == 1 && sub[0] >= 'A' && sub[0] <= 'Z' {
		return sub
	}
	return "A"
}

// ChannelSubID is the OBX-4 of the VMD row for a channel label (A ->
// 1.1.0.0, B -> 1.2.0.0); unknown labels give 1.1.0.0.
func ChannelSubID(channel string) string {
	n := 1
	if len(channel) == 1 && channel[0] >= 'A' && channel[0] <= 'Z' {
		n = int(channel[0]-'A') + 1
	}
	return "1." + strconv.Itoa(n) + ".0.0"
}

// obsTime picks the observation time: OBR-7, else MSH-7, else now.
func obsTime(t time.Time, h hl7.Header, now time.Time) time.Time {
	switch {
	case !t.IsZero():
		return t
	case !h.Time.IsZero():
		return h.Time
	}
	return now
}

func (e *EHR) recordLocked(k DocKey) *Record {
	r, ok := e.doc.records[k]
	if !ok {
		r = &Record{DocKey: k}
		e.doc.records[k] = r
	}
	return r
}

// handleObservation documents a PCD-01 ORU^R01.
func (e *EHR) handleObservation(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
	s, err := hl7.ParsePumpStatus(m)
	if err != nil {
		return nil, err
	}
	key := dedupeKey(m)
	now := e.clk.Now()
	k := DocKey{OrderID: s.OrderID, PumpID: s.PumpID, Channel: channelOf(m)}
	at := obsTime(s.ObsTime, s.Header, now)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.doc.isDuplicate(key) {
		e.stats.Duplicates++
		return nil, nil
	}
	e.doc.remember(key)
	r := e.recordLocked(k)
	r.Observations++
	r.ReceivedAt = now
	if s.Patient.MRN != "" {
		r.MRN = s.Patient.MRN
	}
	if s.DrugCode != "" {
		r.DrugCode = s.DrugCode
	}
	if !at.Before(r.ObservedAt) {
		r.ObservedAt = at
		r.RateMLH, r.VolumeML, r.Status = s.RateMLH, s.DeliveredML, s.Status
		r.DoseRate, r.DoseRateUnit = s.DoseRate, s.DoseRateUnit
		if s.LibraryVersion != "" {
			r.LibraryVersion = s.LibraryVersion
		}
		if s.CareArea != "" {
			r.CareArea = s.CareArea
		}
	}
	e.stats.Observations++
	e.notifyLocked()
	return nil, nil
}

// handleEvent documents a PCD-10 ORU^R42.
func (e *EHR) handleEvent(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
	ie, err := hl7.ParseInfusionEvent(m)
	if err != nil {
		return nil, err
	}
	key := dedupeKey(m)
	now := e.clk.Now()
	k := DocKey{OrderID: ie.OrderID, PumpID: ie.PumpID, Channel: channelOf(m)}
	at := obsTime(ie.EventTime, ie.Header, now)
	typ := ie.EventName()
	if typ == "" {
		typ = strconv.Itoa(ie.Event.Code)
	}
	ev := Event{
		Type: typ, Code: ie.Event.Code, Time: at, EventID: ie.EventID, ControlID: ie.Header.ControlID,
		PumpID: ie.PumpID, Channel: k.Channel, Status: ie.InfusingStatus, RateMLH: ie.RateMLH,
		DeliveredML: ie.DeliveredML, Params: obxParams(m), ReceivedAt: now,
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.doc.isDuplicate(key) {
		e.stats.Duplicates++
		return nil, nil
	}
	e.doc.remember(key)
	r := e.recordLocked(k)
	r.ReceivedAt = now
	if ie.Patient.MRN != "" {
		r.MRN = ie.Patient.MRN
	}
	if ie.DrugCode != "" {
		r.DrugCode = ie.DrugCode
	}
	i := sort.Search(len(r.Events), func(i int) bool { return r.Events[i].Time.After(at) })
	r.Events = append(r.Events, Event{})
	copy(r.Events[i+1:], r.Events[i:])
	r.Events[i] = ev
	if !at.Before(r.ObservedAt) {
		r.ObservedAt = at
		r.RateMLH, r.VolumeML = ie.RateMLH, ie.DeliveredML
		if ie.InfusingStatus != "" {
			r.Status = ie.InfusingStatus
		}
		if ie.DoseRate != 0 {
			r.DoseRate, r.DoseRateUnit = ie.DoseRate, ie.DoseRateUnit
		}
		if ie.LibraryVersion != "" {
			r.LibraryVersion = ie.LibraryVersion
		}
		if ie.CareArea != "" {
			r.CareArea = ie.CareArea
		}
	}
	e.stats.Events++
	e.notifyLocked()
	return nil, nil
}

// obxParams returns the valued OBX rows of m: reference ID (or code) ->
// value (text or reference ID of coded values).
func obxParams(m *hl7.Message) map[string]string {
	out := map[string]string{}
	for _, s := range m.Segments("OBX") {
		v := s.Field(5)
		if v.Empty() {
			continue
		}
		id := s.Field(3)
		name := id.Comp(2)
		if name == "" {
			name = id.Comp(1)
		}
		if name == "" {
			continue
		}
		val := v.Value()
		if len(v) > 0 && len(v[0]) > 1 {
			if t := v.Comp(2); t != "" {
				val = t
			}
		}
		out[name] = val
	}
	return out
}

// handleAdministration documents a RAS^O17 from the eMAR.
func (e *EHR) handleAdministration(_ context.Context, m *hl7.Message, _ hl7.ConnMeta) (*hl7.Message, error) {
	a, err := hl7.ParseAdministration(m)
	if err != nil {
		return nil, err
	}
	key := dedupeKey(m)
	now := e.clk.Now()
	d := AdminDoc{
		ControlID: a.Header.ControlID, OrderID: a.PlacerOrder, FillerID: a.FillerOrder, MRN: a.Patient.MRN,
		DrugCode: a.GiveCode, Amount: a.Amount, AmountUnit: a.AmountUnit, Nurse: a.Nurse.ID,
		Start: a.Start, End: a.End, Status: a.CompletionStatus, PumpID: a.PumpID, RateMLH: a.RateMLH,
		ReceivedAt: now, SendingApp: a.Header.SendingApp.Namespace,
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.doc.isDuplicate(key) {
		e.stats.Duplicates++
		return nil, nil
	}
	e.doc.remember(key)
	e.doc.admins[d.OrderID] = append(e.doc.admins[d.OrderID], d)
	e.stats.Administrations++
	e.notifyLocked()
	return nil, nil
}

// Records returns every documentation record, sorted by order, pump and
// channel.
func (e *EHR) Records() []Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Record, 0, len(e.doc.records))
	for _, r := range e.doc.records {
		out = append(out, copyDocRecord(r))
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i].DocKey, out[j].DocKey) })
	return out
}

func keyLess(a, b DocKey) bool {
	if a.OrderID != b.OrderID {
		return a.OrderID < b.OrderID
	}
	if a.PumpID != b.PumpID {
		return a.PumpID < b.PumpID
	}
	return a.Channel < b.Channel
}

func copyDocRecord(r *Record) Record {
	c := *r
	c.Events = make([]Event, len(r.Events))
	for i, ev := range r.Events {
		c.Events[i] = copyEvent(ev)
	}
	return c
}

func copyEvent(ev Event) Event {
	p := make(map[string]string, len(ev.Params))
	for k, v := range ev.Params {
		p[k] = v
	}
	ev.Params = p
	return ev
}

// Documented returns what was documented for an order (zero values and
// Empty() when nothing was).
func (e *EHR) Documented(orderID string) Documentation {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.documentedLocked(orderID)
}

func (e *EHR) documentedLocked(orderID string) Documentation {
	d := Documentation{OrderID: orderID}
	var latest *Record
	for k, r := range e.doc.records {
		if k.OrderID != orderID {
			continue
		}
		d.Pumps = append(d.Pumps, k)
		d.VolumeML += r.VolumeML
		d.Observations += r.Observations
		for _, ev := range r.Events {
			d.Events = append(d.Events, copyEvent(ev))
		}
		if latest == nil || r.ObservedAt.After(latest.ObservedAt) ||
			(r.ObservedAt.Equal(latest.ObservedAt) && keyLess(r.DocKey, latest.DocKey)) {
			latest = r
		}
	}
	if latest != nil {
		d.MRN, d.DrugCode = latest.MRN, latest.DrugCode
		d.RateMLH, d.DoseRate, d.DoseRateUnit = latest.RateMLH, latest.DoseRate, latest.DoseRateUnit
		d.Status, d.LastObservation = latest.Status, latest.ObservedAt
	}
	sort.Slice(d.Pumps, func(i, j int) bool { return keyLess(d.Pumps[i], d.Pumps[j]) })
	sort.SliceStable(d.Events, func(i, j int) bool { return d.Events[i].Time.Before(d.Events[j].Time) })
	d.Administrations = append([]AdminDoc(nil), e.doc.admins[orderID]...)
	if d.MRN == "" && len(d.Administrations) > 0 {
		d.MRN, d.DrugCode = d.Administrations[0].MRN, d.Administrations[0].DrugCode
	}
	return d
}

// ErrClosed is returned by WaitDocumented when the EHR closes.
var ErrClosed = errors.New("ehr: closed")

// WaitDocumented waits until pred holds for the documentation of some order
// (every order with a record or an administration, and "" for pump data
// without an order) and returns that documentation. It is woken by every
// documentation change, not by polling; it returns ctx's error or ErrClosed.
func (e *EHR) WaitDocumented(ctx context.Context, pred func(Documentation) bool) (Documentation, error) {
	for {
		e.mu.Lock()
		ids := map[string]struct{}{}
		for k := range e.doc.records {
			ids[k.OrderID] = struct{}{}
		}
		for id := range e.doc.admins {
			ids[id] = struct{}{}
		}
		sorted := make([]string, 0, len(ids))
		for id := range ids {
			sorted = append(sorted, id)
		}
		sort.Strings(sorted)
		docs := make([]Documentation, len(sorted))
		for i, id := range sorted {
			docs[i] = e.documentedLocked(id)
		}
		ch := e.changed
		e.mu.Unlock()
		for _, d := range docs {
			if pred(d) {
				return d, nil
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Documentation{}, ctx.Err()
		case <-e.done:
			return Documentation{}, ErrClosed
		}
	}
}
