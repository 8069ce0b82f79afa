package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

// ErrNotAlert is returned by DecodeFileLine for a line that is valid but
// carries no alert: an empty line or a Suricata event other than
// event_type "alert" (flow, dns, stats, ...). Such lines are skipped, not
// refused.
var ErrNotAlert = errors.New("intake: not an alert")

// DefaultEveTool is the tool name of eve.json alerts when the file source
// names none.
const DefaultEveTool = "suricata"

var signatureTechniqueRE = regexp.MustCompile(`\bT\d{4}(?:\.\d{3})?\b`)

// eveTimeLayouts are the time formats of eve.json ("+0000" without colon)
// and RFC 3339.
var eveTimeLayouts = []string{"2006-01-02T15:04:05.999999999-0700", time.RFC3339Nano}

type eveEvent struct {
	EventType *string   `json:"event_type"`
	Timestamp string    `json:"timestamp"`
	SrcIP     string    `json:"src_ip"`
	DestIP    string    `json:"dest_ip"`
	Alert     *eveAlert `json:"alert"`
}

type eveAlert struct {
	Action      string                     `json:"action"`
	Signature   string                     `json:"signature"`
	SignatureID int64                      `json:"signature_id"`
	Category    string                     `json:"category"`
	Severity    json.RawMessage            `json:"severity"`
	Metadata    map[string]json.RawMessage `json:"metadata"`
}

// DecodeFileLine decodes one line of a file a tool writes: a JSON object
// with an "event_type" member is a Suricata eve.json event, any other a
// JSON alert of the HTTP schema (DecodeAlerts; an array is accepted too).
// tool names eve.json alerts ("" for DefaultEveTool). It returns
// ErrNotAlert for lines to skip.
func DecodeFileLine(line []byte, tool string) ([]score.Alert, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil, ErrNotAlert
	}
	if len(line) > MaxLine {
		return nil, derr("line", "%d bytes, more than the limit of %d", len(line), MaxLine)
	}
	if line[0] == '{' && json.Valid(line) {
		var probe struct {
			EventType *string `json:"event_type"`
		}
		if json.Unmarshal(line, &probe) == nil && probe.EventType != nil {
			a, err := DecodeEve(line, tool)
			if err != nil {
				return nil, err
			}
			return []score.Alert{a}, nil
		}
	}
	return DecodeAlerts(line)
}

// DecodeEve maps one Suricata eve.json event to an alert: Assets and
// Addresses are src_ip and dest_ip; Techniques come from
// alert.metadata.mitre_technique_id, else from T-ids in the signature;
// Tactics from alert.metadata.mitre_tactic_id; Severity 1/2/3 become
// high/medium/low; Category is alert.category; Text the signature with its
// id; Reported the timestamp; Raw the line. Events other than alerts give
// ErrNotAlert. Time and Source are left for the caller.
func DecodeEve(line []byte, tool string) (score.Alert, error) {
	var a score.Alert
	var ev eveEvent
	if err := json.Unmarshal(line, &ev); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return a, derr("eve."+te.Field, "want a JSON %s, got a JSON %s", te.Type, te.Value)
		}
		return a, derr("eve", "invalid JSON: %v", err)
	}
	if ev.EventType == nil || *ev.EventType != "alert" {
		return a, ErrNotAlert
	}
	if ev.Alert == nil {
		return a, derr("eve.alert", `missing in an event_type "alert" event`)
	}
	if tool == "" {
		tool = DefaultEveTool
	}
	a.Tool = tool
	if ev.Timestamp != "" {
		var err error
		for _, l := range eveTimeLayouts {
			var t time.Time
			if t, err = time.Parse(l, ev.Timestamp); err == nil {
				a.Reported = t
				break
			}
		}
		if err != nil {
			return a, derr("eve.timestamp", "%s is not a Suricata or RFC 3339 time", quote(ev.Timestamp))
		}
	}
	for _, ip := range []string{ev.SrcIP, ev.DestIP} {
		if ip != "" && !slices.Contains(a.Addresses, ip) {
			a.Addresses = append(a.Addresses, ip)
			a.Assets = append(a.Assets, ip)
		}
	}
	al := ev.Alert
	a.Category = al.Category
	a.Text = al.Signature
	if al.SignatureID != 0 {
		a.Text = fmt.Sprintf("%s [sid %d]", al.Signature, al.SignatureID)
	}
	if len(al.Severity) > 0 && !isNull(al.Severity) {
		s := strings.Trim(string(al.Severity), `"`)
		switch s {
		case "1":
			a.Severity = "high"
		case "2":
			a.Severity = "medium"
		case "3":
			a.Severity = "low"
		default:
			if _, err := strconv.ParseFloat(s, 64); err != nil && jsonKind(al.Severity) != "string" {
				return a, derr("eve.alert.severity", "want a number, got a JSON %s", jsonKind(al.Severity))
			}
			a.Severity = s
		}
	}
	meta := func(key string) ([]string, error) {
		r, ok := al.Metadata[key]
		if !ok {
			return nil, nil
		}
		return jsonStrings("eve.alert.metadata."+key, r, nil)
	}
	var err error
	if a.Techniques, err = meta("mitre_technique_id"); err != nil {
		return a, err
	}
	if len(a.Techniques) == 0 {
		for _, t := range signatureTechniqueRE.FindAllString(al.Signature, MaxListItems) {
			if !slices.Contains(a.Techniques, t) {
				a.Techniques = append(a.Techniques, t)
			}
		}
	}
	if a.Tactics, err = meta("mitre_tactic_id"); err != nil {
		return a, err
	}
	assets, err := meta("asset")
	if err != nil {
		return a, err
	}
	a.Assets = append(assets, a.Assets...)
	checks := []error{
		checkTool("tool", a.Tool),
		checkList("eve.alert.metadata.mitre_technique_id", a.Techniques, checkTechnique),
		checkList("eve.alert.metadata.mitre_tactic_id", a.Tactics, checkTactic),
		checkList("eve.src_ip/dest_ip/metadata.asset", a.Assets, nil),
		checkList("eve.src_ip/dest_ip", a.Addresses, checkAddress),
		checkShort("eve.alert.severity", a.Severity),
		checkShort("eve.alert.category", a.Category),
		checkString("eve.alert.signature", a.Text, MaxTextLen, true),
	}
	for _, err := range checks {
		if err != nil {
			return a, err
		}
	}
	raw := bytes.TrimSpace(line)
	if len(raw) > MaxRawLen {
		raw = raw[:MaxRawLen]
	}
	a.Raw = strings.ToValidUTF8(string(raw), "\uFFFD")
	return a, nil
}
