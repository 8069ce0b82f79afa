package ehr

import (
	"context"
	"reflect"
	"testing"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/simulators/hl7"
)

// FuzzParseOrder feeds arbitrary bytes to ParseOrder. A decoded order must
// encode again, and encoding is stable after one normalisation:
// Parse(Build(o)) == Parse(Build(Parse(Build(o)))).
func FuzzParseOrder(f *testing.F) {
	for _, c := range OrderCases {
		f.Add([]byte(c.Raw))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := hl7.Parse(b)
		if err != nil {
			return
		}
		o, pat, err := ParseOrder(m)
		if err != nil {
			return
		}
		h, err := hl7.ParseHeader(m)
		if err != nil {
			return
		}
		build := BuildRDE
		if m.Type().Code == "OMP" {
			build = BuildOMP
		}
		once := func(o Order, p hl7.Patient) (Order, hl7.Patient) {
			out, err := hl7.Parse(build(h, p, o).Bytes())
			if err != nil {
				t.Fatalf("encoded order does not parse: %v\n%s", err, build(h, p, o))
			}
			o2, p2, err := ParseOrder(out)
			if err != nil {
				t.Fatalf("encoded order does not decode: %v\n%s", err, out)
			}
			return o2, p2
		}
		o1, p1 := once(o, pat)
		o2, _ := once(o1, p1)
		o1.OrderedAt, o2.OrderedAt = o1.OrderedAt.UTC(), o2.OrderedAt.UTC()
		if !reflect.DeepEqual(o1, o2) {
			t.Fatalf("encoding not stable:\n%+v\n%+v", o1, o2)
		}
	})
}

// FuzzDocument feeds arbitrary messages to the EHR's listener handler
// (pharmacy inbox and documentation): no panic, and a message is either
// answered with an error or counted exactly once.
func FuzzDocument(f *testing.F) {
	for _, c := range DocCases {
		f.Add([]byte(c.Raw))
	}
	e := New(Config{Clock: clock.NewFake(caseTime)})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := hl7.Parse(b)
		if err != nil {
			return
		}
		total := func(s Stats) int64 {
			return s.PharmacyOrders + s.Observations + s.Events + s.Administrations + s.Duplicates + s.Rejected
		}
		before := total(e.Stats())
		_, err = e.handler(context.Background(), m, hl7.ConnMeta{})
		after := total(e.Stats())
		if after != before+1 {
			t.Fatalf("message counted %d times (err %v)", after-before, err)
		}
		for _, r := range e.Records() {
			if r.Observations < 0 {
				t.Fatalf("bad record %+v", r)
			}
		}
	})
}
