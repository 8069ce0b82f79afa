package oracle

import (
	"encoding/binary"
	"encoding/json"
	"sort"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/hl7"
	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// PumpMinutesOffline sums, over the given pumps, the minutes within
// [from, to] during which the pump server saw them offline. A pump is online
// until its first recorded change.
func PumpMinutesOffline(changes []lab.Presence, pumps []string, from, to time.Time) float64 {
	byPump := map[string][]lab.Presence{}
	for _, c := range changes {
		byPump[c.PumpID] = append(byPump[c.PumpID], c)
	}
	var total time.Duration
	for _, id := range pumps {
		cs := byPump[id]
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].At.Before(cs[j].At) })
		online, since := true, from
		for _, c := range cs {
			if !c.At.After(from) {
				online = c.Online
				continue
			}
			if c.At.After(to) {
				break
			}
			if !online {
				total += c.At.Sub(since)
			}
			online, since = c.Online, c.At
		}
		if !online {
			total += to.Sub(since)
		}
	}
	return total.Minutes()
}

// ExposedPHI counts the distinct patients (by MRN) whose identity appears in
// what an attacker captured: HL7 messages (PID-3) and pump-wire payloads
// (status patient_id, program patient_id).
func ExposedPHI(captured [][]byte) int {
	mrns := map[string]bool{}
	for _, b := range captured {
		if m, err := hl7.Parse(b); err == nil {
			for _, pid := range m.Segments("PID") {
				if v := pid.Comp(3, 1); v != "" {
					mrns[v] = true
				}
			}
			continue
		}
		env, err := pumpwire.DecodeEnvelope(b)
		if err != nil {
			continue
		}
		var body struct {
			PatientID string `json:"patient_id"`
			Program   *struct {
				PatientID string `json:"patient_id"`
			} `json:"program"`
		}
		if json.Unmarshal(env.Body, &body) == nil {
			if body.PatientID != "" {
				mrns[body.PatientID] = true
			}
			if body.Program != nil && body.Program.PatientID != "" {
				mrns[body.Program.PatientID] = true
			}
		}
	}
	return len(mrns)
}

// ExposedCredentials counts the distinct user name and password pairs an
// attacker captured in MQTT CONNECT packets (MQTT 3.1.1 and 5).
func ExposedCredentials(packets [][]byte) int {
	creds := map[string]bool{}
	for _, p := range packets {
		if u, pw, ok := connectCredentials(p); ok {
			creds[u+"\x00"+pw] = true
		}
	}
	return len(creds)
}

// connectCredentials reads the user name and password of an MQTT CONNECT
// packet; ok is false for anything else or a packet without a password.
func connectCredentials(b []byte) (user, pass string, ok bool) {
	if len(b) < 2 || b[0] != 0x10 {
		return "", "", false
	}
	r := &reader{b: b[1:]}
	n, ok := r.varint()
	if !ok || n > len(r.b) {
		return "", "", false
	}
	r.b = r.b[:n]
	if _, ok := r.str(); !ok { // protocol name
		return "", "", false
	}
	level, ok1 := r.byte()
	flags, ok2 := r.byte()
	_, ok3 := r.bytes(2) // keep alive
	if !ok1 || !ok2 || !ok3 {
		return "", "", false
	}
	if level == 5 && !r.skipProps() {
		return "", "", false
	}
	if _, ok := r.str(); !ok { // client id
		return "", "", false
	}
	if flags&0x04 != 0 { // will
		if level == 5 && !r.skipProps() {
			return "", "", false
		}
		if _, ok := r.str(); !ok {
			return "", "", false
		}
		if _, ok := r.str(); !ok {
			return "", "", false
		}
	}
	if flags&0x80 != 0 {
		if user, ok = r.str(); !ok {
			return "", "", false
		}
	}
	if flags&0x40 == 0 {
		return "", "", false
	}
	pass, ok = r.str()
	return user, pass, ok
}

type reader struct{ b []byte }

func (r *reader) byte() (byte, bool) {
	if len(r.b) < 1 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

func (r *reader) bytes(n int) ([]byte, bool) {
	if n < 0 || len(r.b) < n {
		return nil, false
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, true
}

func (r *reader) str() (string, bool) {
	l, ok := r.bytes(2)
	if !ok {
		return "", false
	}
	v, ok := r.bytes(int(binary.BigEndian.Uint16(l)))
	return string(v), ok
}

func (r *reader) varint() (int, bool) {
	n, mul := 0, 1
	for i := 0; i < 4; i++ {
		c, ok := r.byte()
		if !ok {
			return 0, false
		}
		n += int(c&0x7f) * mul
		if c&0x80 == 0 {
			return n, true
		}
		mul *= 128
	}
	return 0, false
}

func (r *reader) skipProps() bool {
	n, ok := r.varint()
	if !ok {
		return false
	}
	_, ok = r.bytes(n)
	return ok
}
