package hl7

import (
	"errors"
	"fmt"
	"strconv"
)

// Acknowledgment codes (MSA-1).
const (
	AckAA = "AA" // application accept
	AckAE = "AE" // application error
	AckAR = "AR" // application reject
	AckCA = "CA" // commit (accept) accept
	AckCE = "CE" // commit error
	AckCR = "CR" // commit reject
)

func validAckCode(c string) bool {
	switch c {
	case AckAA, AckAE, AckAR, AckCA, AckCE, AckCR:
		return true
	}
	return false
}

// AckError is one ERR segment. It is also an error: a Handler that returns
// an *AckError controls the ERR segment (and, with AckCode, MSA-1) of the
// server's reply.
type AckError struct {
	Code     int    // ERR-3.1, HL7 table 0357 (0 in a reply means 207)
	Text     string // ERR-3.2; "" = the table text
	Segment  string // ERR-2.1 error location: segment ID
	Seq      int    // ERR-2.2 segment sequence (1-based position in the message)
	Field    int    // ERR-2.3 field position
	Severity string // ERR-4: E (default), W, I, F
	AppCode  string // ERR-5.1 application error code, e.g. LIB-HARDMAX
	AppText  string // ERR-5.2, e.g. "Dose exceeds drug library hard limit"
	Message  string // ERR-8 user message
	// AckCode is the MSA-1 a server uses when a handler returns this error:
	// "" means AE (or CE when an accept acknowledgement was asked for).
	// Not encoded in ERR.
	AckCode string
}

func (e *AckError) Error() string {
	code := e.Code
	if code == 0 {
		code = ErrCodeInternal
	}
	s := fmt.Sprintf("hl7: ack error %d %s", code, e.text())
	if e.Segment != "" {
		s += fmt.Sprintf(" at %s", e.Segment)
		if e.Field > 0 {
			s += fmt.Sprintf("-%d", e.Field)
		}
	}
	if e.AppCode != "" {
		s += ": " + e.AppCode
		if e.AppText != "" {
			s += " " + e.AppText
		}
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *AckError) text() string {
	if e.Text != "" {
		return e.Text
	}
	code := e.Code
	if code == 0 {
		code = ErrCodeInternal
	}
	return ErrCodeText(code)
}

func (e *AckError) segment() *Segment {
	code := e.Code
	if code == 0 {
		code = ErrCodeInternal
	}
	var loc Field
	if e.Segment != "" {
		seq, field := "", ""
		if e.Seq > 0 {
			seq = strconv.Itoa(e.Seq)
		}
		if e.Field > 0 {
			field = strconv.Itoa(e.Field)
		}
		loc = C(e.Segment, seq, field)
	}
	sev := e.Severity
	if sev == "" {
		sev = "E"
	}
	var app Field
	if e.AppCode != "" || e.AppText != "" {
		app = C(e.AppCode, e.AppText, "L")
	}
	s := NewSegment("ERR", nil, loc, C(strconv.Itoa(code), e.text(), "HL70357"), F(sev), app)
	s.SetField(8, F(e.Message))
	return s
}

func ackErrorOf(s *Segment) AckError {
	e := AckError{
		Segment:  s.Comp(2, 1),
		Text:     s.Comp(3, 2),
		Severity: s.Value(4),
		AppCode:  s.Comp(5, 1),
		AppText:  s.Comp(5, 2),
		Message:  s.Value(8),
	}
	e.Code, _ = strconv.Atoi(s.Comp(3, 1))
	e.Seq, _ = strconv.Atoi(s.Comp(2, 2))
	e.Field, _ = strconv.Atoi(s.Comp(2, 3))
	return e
}

// AsAckError converts err into an ERR description: an *AckError is returned
// as is, a *ParseError gives its code and location, anything else is 207
// Application internal error with the error text as user message.
func AsAckError(err error) *AckError {
	if err == nil {
		return nil
	}
	var ae *AckError
	if errors.As(err, &ae) {
		return ae
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		code := pe.Code
		if code == 0 {
			code = ErrCodeInternal
		}
		return &AckError{Code: code, Segment: pe.Segment, Seq: pe.Index, Field: pe.Field, Message: pe.Error()}
	}
	return &AckError{Code: ErrCodeInternal, Message: err.Error()}
}

// Ack is an acknowledgement: ACK, ACK^O15, RRG^O16 (MSH, MSA, ERR*).
type Ack struct {
	Header  Header
	Code    string // MSA-1: AA AE AR CA CE CR
	AckedID string // MSA-2: MSH-10 of the acknowledged message
	Text    string // MSA-3 (deprecated, still read)
	Errors  []AckError
}

// OK reports whether the acknowledgement is AA or CA.
func (a Ack) OK() bool { return a.Code == AckAA || a.Code == AckCA }

// Err returns the acknowledgement as an error, nil when OK. The error is the
// first *AckError when there is one.
func (a Ack) Err() error {
	if a.OK() {
		return nil
	}
	if len(a.Errors) > 0 {
		e := a.Errors[0]
		return &e
	}
	return fmt.Errorf("hl7: message %s not accepted: MSA-1 %s", a.AckedID, a.Code)
}

// BuildAckMessage encodes a. MSH-9 is a.Header.Type, or ACK (with no trigger)
// when that is empty.
func BuildAckMessage(a Ack) *Message {
	t := a.Header.Type
	if t.Code == "" {
		t = MessageType{Code: "ACK"}
	}
	m := NewMessage(a.Header.msh(t, Profile{}))
	m.Add(NewSegment("MSA", F(a.Code), F(a.AckedID), F(a.Text)))
	for i := range a.Errors {
		m.Add(a.Errors[i].segment())
	}
	return m
}

// BuildAck answers orig: MSH with applications and facilities swapped,
// MSH-9 ACK^<trigger of orig>^ACK, MSH-10 "<orig MSH-10>-ACK" and MSH-7
// empty (the server or caller stamps time and ID with Message.Stamp), MSA-1
// code, MSA-2 orig's MSH-10, and an ERR segment when e is not nil.
func BuildAck(orig *Message, code string, e *AckError) *Message {
	h, _ := ParseHeader(orig)
	rh := h.Reply()
	rh.Type = MessageType{"ACK", h.Type.Trigger, "ACK"}
	if h.Type.Trigger == "" {
		rh.Type = MessageType{Code: "ACK"}
	}
	rh.ControlID = h.ControlID + "-ACK"
	a := Ack{Header: rh, Code: code, AckedID: h.ControlID}
	if e != nil {
		a.Errors = []AckError{*e}
	}
	return BuildAckMessage(a)
}

// BuildRRG encodes a as RRG^O16^RRG_O16 (the PCD-03 application
// acknowledgement) with the RRG profile in MSH-21.
func BuildRRG(a Ack) *Message {
	h := a.Header
	if h.Profile == (Profile{}) {
		h.Profile = ProfileRRG
	}
	h.Type = MessageType{"RRG", "O16", "RRG_O16"}
	a.Header = h
	return BuildAckMessage(a)
}

// ParseAck reads MSH, MSA and ERR segments of any message carrying an MSA
// (ACK, RRG^O16...). MSA-1 must be a valid code; MSA-2 must be present
// in an AA or CA.
func ParseAck(m *Message) (Ack, error) {
	var a Ack
	if m == nil || len(m.Segs) == 0 {
		return a, perr("MSH", 0, 0, ErrCodeSegmentSequence, "empty message")
	}
	h, err := ParseHeader(m)
	if err != nil {
		return a, err
	}
	a.Header = h
	msa, idx, err := requireSeg(m, "MSA")
	if err != nil {
		return a, err
	}
	a.Code, a.AckedID, a.Text = msa.Value(1), msa.Value(2), msa.Value(3)
	if a.Code == "" {
		return a, perr("MSA", idx, 1, ErrCodeRequiredMissing, "missing acknowledgment code")
	}
	if !validAckCode(a.Code) {
		return a, perr("MSA", idx, 1, ErrCodeTableValue, "unknown acknowledgment code %q", clip(a.Code))
	}
	if a.AckedID == "" && a.OK() {
		// A reject of bytes whose MSH-10 could not be read has no MSA-2.
		return a, perr("MSA", idx, 2, ErrCodeRequiredMissing, "missing acknowledged message control ID")
	}
	for _, s := range m.Segments("ERR") {
		a.Errors = append(a.Errors, ackErrorOf(s))
	}
	return a, nil
}

// ParseRRG is ParseAck for RRG^O16.
func ParseRRG(m *Message) (Ack, error) {
	if err := requireType(m, "RRG", "O16"); err != nil {
		return Ack{}, err
	}
	return ParseAck(m)
}
