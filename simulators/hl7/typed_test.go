package hl7

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// est is the zone of the REFERENCE.md examples.
var est = time.FixedZone("", -5*3600)

func mustParse(t *testing.T, b []byte) *Message {
	t.Helper()
	m, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

// TestExamplesRebuild parses each REFERENCE.md example with its typed view
// and rebuilds it: the layout of the builders must match the examples byte
// for byte.
func TestExamplesRebuild(t *testing.T) {
	tests := []struct {
		name    string
		raw     []byte
		rebuild func(*Message) (*Message, error)
		want    []byte
	}{
		{"rgv", ExampleRGV, func(m *Message) (*Message, error) { v, err := ParseRGV(m); return BuildRGV(v), err }, nil},
		{"rgv-change", ExampleRGVChange, func(m *Message) (*Message, error) { v, err := ParseRGV(m); return BuildRGV(v), err }, nil},
		{"ack-o15", ExampleAckO15, func(m *Message) (*Message, error) { v, err := ParseAck(m); return BuildAckMessage(v), err }, nil},
		{"rrg-reject", ExampleRRGReject, func(m *Message) (*Message, error) { v, err := ParseRRG(m); return BuildRRG(v), err }, nil},
		{"rrg-accept", ExampleRRGAccept, func(m *Message) (*Message, error) { v, err := ParseRRG(m); return BuildRRG(v), err }, nil},
		{"r42", ExampleR42, func(m *Message) (*Message, error) { v, err := ParseInfusionEvent(m); return BuildInfusionEvent(v), err },
			// The builder writes 0 and 250 where the example has 0.0 and 250.0.
			[]byte(strings.NewReplacer("|0.0|", "|0|", "|250.0|", "|250|").Replace(string(ExampleR42)))},
		{"r40", ExampleR40, func(m *Message) (*Message, error) { v, err := ParseAlert(m); return BuildAlert(v), err }, nil},
		{"r01", ExampleR01, func(m *Message) (*Message, error) { v, err := ParsePumpStatus(m); return BuildPumpStatus(v), err }, nil},
		{"r41", ExampleR41, func(m *Message) (*Message, error) { v, err := ParseAlertStatus(m); return BuildAlertStatus(v), err }, nil},
		{"omp", ExampleOMP, func(m *Message) (*Message, error) { v, err := ParseOMP(m); return BuildOMP(v), err }, nil},
		{"rde", ExampleRDE, func(m *Message) (*Message, error) { v, err := ParseRDE(m); return BuildRDE(v), err }, nil},
		{"adt-a01", ExampleADTA01, func(m *Message) (*Message, error) { v, err := ParseADT(m); return BuildADT(v), err }, nil},
		{"adt-a02", ExampleADTA02, func(m *Message) (*Message, error) { v, err := ParseADT(m); return BuildADT(v), err }, nil},
		{"adt-a08", ExampleADTA08, func(m *Message) (*Message, error) { v, err := ParseADT(m); return BuildADT(v), err }, nil},
		{"ras", ExampleRAS, func(m *Message) (*Message, error) {
			v, err := ParseAdministration(m)
			return BuildAdministration(v), err
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.rebuild(mustParse(t, tt.raw))
			if err != nil {
				t.Fatalf("typed parse: %v", err)
			}
			want := tt.want
			if want == nil {
				want = tt.raw
			}
			if got := out.Bytes(); string(got) != string(want) {
				t.Errorf("rebuilt message differs:\ngot:\n%s\nwant:\n%s", strings.ReplaceAll(string(got), "\r", "\n"), strings.ReplaceAll(string(want), "\r", "\n"))
			}
		})
	}
}

func TestParseRGVExample(t *testing.T) {
	r, err := ParseRGV(mustParse(t, ExampleRGV))
	if err != nil {
		t.Fatal(err)
	}
	want := RGV{
		Header: Header{
			SendingApp:      HD{"BCMA_SIM", "0011223344556677", "EUI-64"},
			SendingFacility: HD{Namespace: "HOSP_BCMA"},
			ReceivingApp:    HD{"PUMPSRV_SIM", "8899AABBCCDDEEFF", "EUI-64"}, ReceivingFacility: HD{Namespace: "HOSP_BIOMED"},
			Time: time.Date(2025, 3, 1, 10, 15, 0, 0, est), ControlID: "BCMA000123", ProcessingID: "P", Version: "2.6",
			AcceptAck: "AL", AppAck: "AL", Charset: "UNICODE UTF-8", Language: "en", Profile: ProfilePCD03,
			Type: MessageType{"RGV", "O15", "RGV_O15"},
		},
		Patient:      Patient{MRN: "MRN4455", Authority: "HOSP", Family: "Testpatient", Given: "Alex", DOB: "19700101", Sex: "F", Class: "I", Location: Location{"4W ICU", "12", "A"}},
		OrderControl: "RE", PlacerOrder: "ADM-778899", PlacerApp: "BCMA_SIM", TxnTime: time.Date(2025, 3, 1, 10, 15, 0, 0, est),
		Nurse:     Person{"RN0042", "Nurse", "Nina"},
		GiveSubID: "1", GiveCode: "NOREPI-4-250", GiveText: "Norepinephrine 4 mg/250 mL", GiveSystem: "HOSPFORM",
		VTBI: 250, VTBIUnit: "mL", DoseRate: 0.05, DoseRateUnit: "mcg/kg/min", DrugAmount: 4, DrugAmountUnit: "mg",
		DiluentVolume: 250, DiluentUnit: "mL", Route: "IV", Device: "IVP", Method: "IV",
		PumpID: "PUMP-0007", PumpAuthority: "HOSP", WeightKg: 70,
	}
	// Times in different *Location values: compare them apart.
	if !r.Header.Time.Equal(want.Header.Time) || !r.TxnTime.Equal(want.TxnTime) {
		t.Errorf("times: %v %v", r.Header.Time, r.TxnTime)
	}
	r.Header.Time, r.TxnTime, want.Header.Time, want.TxnTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("ParseRGV:\n got %+v\nwant %+v", r, want)
	}
	if c := r.Concentration(); c != 0.016 {
		t.Errorf("Concentration = %v, want 0.016", c)
	}
}

// lab is a lab time in UTC so that parsed values compare with DeepEqual.
var lab = time.Date(2026, 1, 2, 8, 30, 15, 0, time.UTC)

func hdr(id string) Header {
	return Header{
		SendingApp: HD{"A_SIM", "0011223344556677", "EUI-64"}, SendingFacility: HD{Namespace: "F1"},
		ReceivingApp: HD{Namespace: "B_SIM"}, ReceivingFacility: HD{Namespace: "F2"},
		Time: lab, ControlID: id, ProcessingID: "P", Version: "2.6", AcceptAck: "AL", AppAck: "NE",
	}
}

var testPatient = Patient{MRN: "MRN1", Authority: "HOSP", Family: "O'Brien^x", Given: "Ann|Marie", DOB: "19800202", Sex: "F", Class: "I", Location: Location{"4W ICU", "3", "B"}}

// TestTypedRoundTrip builds every typed message, encodes it, parses the
// bytes and the typed view, and expects the original value back (values
// with delimiters included).
func TestTypedRoundTrip(t *testing.T) {
	withType := func(h Header, code, trig, st string, p Profile) Header {
		h.Type, h.Profile = MessageType{code, trig, st}, p
		return h
	}
	tests := []struct {
		name  string
		in    any
		build func(any) *Message
		parse func(*Message) (any, error)
	}{
		{"rgv", RGV{
			Header: withType(hdr("R1"), "RGV", "O15", "RGV_O15", ProfilePCD03), Patient: testPatient,
			OrderControl: "RE", PlacerOrder: "ADM-1", PlacerApp: "BCMA", TxnTime: lab, Nurse: Person{"RN1", "Nurse", "N"},
			Duration:  90 * time.Minute,
			GiveSubID: "1", GiveCode: "HEP-25K", GiveText: "Heparin 25,000 units/250 mL & more", GiveSystem: "HOSPFORM",
			VTBI: 250, VTBIUnit: "mL", DoseRate: 18, DoseRateUnit: "units/kg/h", DrugAmount: 25000, DrugAmountUnit: "units",
			DiluentVolume: 250, DiluentUnit: "mL", Route: "IV", Device: DevicePCA, Method: "IVPB",
			PumpID: "PUMP-0001", PumpAuthority: "HOSP", WeightKg: 82.5, HeightCm: 180, BSA: 2.03, ContainerStartML: 260,
			PCA: &PCAParams{DoseLimit: 10, DoseLimitUnit: "mg", VolumeLimitML: 30, LimitPeriodMin: 240, MaxDosesPerHour: 6, LockoutMin: 10},
		}, func(v any) *Message { return BuildRGV(v.(RGV)) }, func(m *Message) (any, error) { return ParseRGV(m) }},
		{"ack", Ack{Header: withType(hdr("A1"), "ACK", "O15", "ACK", Profile{}), Code: AckCE, AckedID: "R1", Text: "t^x",
			Errors: []AckError{{Code: 101, Text: "Required field missing", Segment: "ORC", Seq: 4, Field: 2, Severity: "E", AppCode: "X", AppText: "y", Message: "no ORC-2"}, {Code: 207, Text: "Application internal error", Severity: "W"}}},
			func(v any) *Message { return BuildAckMessage(v.(Ack)) }, func(m *Message) (any, error) { return ParseAck(m) }},
		{"rrg", Ack{Header: withType(hdr("A2"), "RRG", "O16", "RRG_O16", ProfileRRG), Code: AckAR, AckedID: "R1",
			Errors: []AckError{{Code: 207, Text: "Application internal error", Severity: "E", AppCode: "LIB-HARDMAX", AppText: "Dose exceeds drug library hard limit"}}},
			func(v any) *Message { return BuildRRG(v.(Ack)) }, func(m *Message) (any, error) { return ParseRRG(m) }},
		{"pcd01", PumpStatus{Header: withType(hdr("D1"), "ORU", "R01", "ORU_R01", ProfilePCD01), Patient: testPatient,
			OrderID: "ADM-1", OrderApp: "BCMA", FillerID: "D1", FillerApp: "PS", DrugCode: "NOREPI", DrugText: "Norepi", DrugSystem: "HOSPFORM",
			ObsTime: lab, Kind: PumpKindSyringe, PumpID: "PUMP-0002", PumpEUI: "8899AABBCCDD0002", LibraryVersion: "ADULT-2025.02", CareArea: "Adult ICU",
			RateMLH: 13.1, DeliveredML: 9.6, Status: StatusInfusing, DoseRate: 0.05, DoseRateUnit: "mcg/kg/min", RemainingML: 240.4, DrugLabel: "Norepinephrine"},
			func(v any) *Message { return BuildPumpStatus(v.(PumpStatus)) }, func(m *Message) (any, error) { return ParsePumpStatus(m) }},
		{"pcd01-unknown-drug", PumpStatus{Header: withType(hdr("D2"), "ORU", "R01", "ORU_R01", ProfilePCD01),
			Kind: PumpKindGeneric, PumpID: "PUMP-0003", Status: StatusKVO},
			func(v any) *Message { return BuildPumpStatus(v.(PumpStatus)) }, func(m *Message) (any, error) { return ParsePumpStatus(m) }},
		{"pcd10", InfusionEvent{Header: withType(hdr("E1"), "ORU", "R42", "ORU_R01", ProfilePCD10), Patient: testPatient,
			OrderID: "ADM-1", OrderApp: "BCMA", EventID: "E1", EventApp: "PS", DrugCode: "NOREPI", DrugText: "Norepi", DrugSystem: "HOSPFORM",
			EventTime: lab.Add(-37 * time.Minute), Kind: PumpKindLVP, PumpID: "PUMP-0002", PumpEUI: "8899AABBCCDD0002",
			LibraryVersion: "ADULT-2025.02", Event: Code{0, "MDC_EVT_PUMP_DELIV_STOP"}, InfusingStatus: StatusPaused,
			RateMLH: 0, DoseRate: 0.05, DoseRateUnit: "mcg/kg/min", VTBIML: 250, DeliveredML: 12.5, RemainingML: 237.5, TimeRemainingMin: 1086,
			DrugLabel: "Norepinephrine", Concentration: 0.016, ConcentrationUnit: "mg/mL", CareArea: "Adult ICU", WeightKg: 70},
			func(v any) *Message { return BuildInfusionEvent(v.(InfusionEvent)) }, func(m *Message) (any, error) { return ParseInfusionEvent(m) }},
		{"pcd04", Alert{Header: withType(hdr("AL1"), "ORU", "R40", "ORU_R40", ProfilePCD04), Patient: testPatient,
			AlertID: "ALR-1", AlertApp: "PS", OnsetTime: lab, PumpID: "PUMP-0002", PumpEUI: "8899AABBCCDD0002", Prefix: "1.1.2.0",
			Event: MDCEvtLineOccl, EventText: "Occlusion ~ downstream", Source: MDCPumpLVPVMD, Phase: PhaseStart, State: StateActive,
			Inactivation: InactAudioPaused, Priority: PriorityHigh, Type: AlertTechnical, ResultStatus: "F"},
			func(v any) *Message { return BuildAlert(v.(Alert)) }, func(m *Message) (any, error) { return ParseAlert(m) }},
		{"pcd05", AlertStatus{Header: withType(hdr("S1"), "ORA", "R41", "ORA_R41", ProfilePCD05), Patient: testPatient,
			AlertID: "ALR-1", AlertApp: "PS", Time: lab, Status: AlertRejected, Provider: Person{"RN1", "Nurse", "N"}, Communicator: "PHONE-7"},
			func(v any) *Message { return BuildAlertStatus(v.(AlertStatus)) }, func(m *Message) (any, error) { return ParseAlertStatus(m) }},
		{"omp", PharmacyOrder{Header: withType(hdr("O1"), "OMP", "O09", "OMP_O09", Profile{}), Patient: testPatient,
			OrderControl: "NW", PlacerOrder: "ORD-1", PlacerApp: "CPOE", OrderTime: lab, OrderingProvider: Person{"DR1", "Doc", "D"},
			GiveCode: "NOREPI", GiveText: "Norepi", GiveSystem: "HOSPFORM", Dose: 0.05, DoseUnit: "mcg/kg/min",
			DrugAmount: 4, DrugAmountUnit: "mg", DiluentVolume: 250, DiluentUnit: "mL", DiluentCode: "D5W", DiluentText: "Dextrose 5%",
			Route: "IV", WeightKg: 70},
			func(v any) *Message { return BuildOMP(v.(PharmacyOrder)) }, func(m *Message) (any, error) { return ParseOMP(m) }},
		{"rde", PharmacyOrder{Header: withType(hdr("O2"), "RDE", "O11", "RDE_O11", Profile{}), Patient: testPatient,
			OrderControl: "NW", PlacerOrder: "ORD-1", PlacerApp: "CPOE", FillerOrder: "RX-1", FillerApp: "PHARM", OrderTime: lab,
			OrderingProvider: Person{"DR1", "Doc", "D"}, Verifier: Person{"RPH1", "Pharm", "P"},
			GiveCode: "INSULIN", GiveText: "Insulin regular", Dose: 2, DoseUnit: "units/h", DrugAmount: 100, DrugAmountUnit: "units",
			DiluentVolume: 100, DiluentUnit: "mL", Route: "IV"},
			func(v any) *Message { return BuildRDE(v.(PharmacyOrder)) }, func(m *Message) (any, error) { return ParseRDE(m) }},
		{"adt-a02", ADT{Header: withType(hdr("T1"), "ADT", "A02", "ADT_A02", Profile{}), Event: ADTTransfer, EventTime: lab,
			Patient: testPatient, PriorLocation: Location{Unit: "ED", Room: "1"}, WeightKg: 70.2, HeightCm: 165},
			func(v any) *Message { return BuildADT(v.(ADT)) }, func(m *Message) (any, error) { return ParseADT(m) }},
		{"ras", Administration{Header: withType(hdr("RA1"), "RAS", "O17", "RAS_O17", Profile{}), Patient: testPatient,
			PlacerOrder: "ADM-1", PlacerApp: "BCMA", FillerOrder: "RX-1", Start: lab, End: lab.Add(2 * time.Hour),
			GiveCode: "NOREPI", GiveText: "Norepi", GiveSystem: "HOSPFORM", Amount: 26.2, AmountUnit: "mL", Nurse: Person{"RN1", "Nurse", "N"},
			CompletionStatus: "PA", Route: "IV", PumpID: "PUMP-0002", RateMLH: 13.1},
			func(v any) *Message { return BuildAdministration(v.(Administration)) }, func(m *Message) (any, error) { return ParseAdministration(m) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.build(tt.in)
			raw := m.Bytes()
			m2 := mustParse(t, raw)
			checkRoundTrip(t, m2)
			got, err := tt.parse(m2)
			if err != nil {
				t.Fatalf("typed parse of\n%s\n: %v", m2, err)
			}
			if !reflect.DeepEqual(got, tt.in) {
				t.Errorf("round trip:\n got %+v\nwant %+v\nmessage:\n%s", got, tt.in, m2)
			}
			// Parse twice: the view must not depend on state.
			again, _ := tt.parse(mustParse(t, raw))
			if !reflect.DeepEqual(again, got) {
				t.Errorf("second parse differs")
			}
		})
	}
}

func TestParseAlertLegacyOBX8(t *testing.T) {
	a, err := ParseAlert(mustParse(t, ExampleR40Legacy))
	if err != nil {
		t.Fatal(err)
	}
	if a.Priority != PriorityMedium || a.Type != AlertTechnical {
		t.Errorf("priority/type from OBX-8 = %q/%q, want PM/ST", a.Priority, a.Type)
	}
	if a.Event != MDCEvtLineOccl || a.Phase != PhaseEnd || a.State != StateInactive || a.Active() {
		t.Errorf("alert = %+v", a)
	}
	if a.AlertID != "ALR-55130" || a.PumpID != "PUMP-0007" || a.PumpEUI != "8899AABBCCDD0007" {
		t.Errorf("ids = %q %q %q", a.AlertID, a.PumpID, a.PumpEUI)
	}
	// Facet rows win over OBX-8.
	b, _ := ParseAlert(mustParse(t, ExampleR40))
	if b.Priority != PriorityHigh || b.Type != AlertTechnical || b.EventText != "Air in line" || b.Event.Ref != "MDC_EVT_FLUID_LINE_AIR" {
		t.Errorf("alert = %+v", b)
	}
	if !b.OnsetTime.Equal(time.Date(2025, 3, 1, 11, 30, 12, 0, est)) {
		t.Errorf("onset = %v", b.OnsetTime)
	}
}

func TestParseInfusionEventExample(t *testing.T) {
	e, err := ParseInfusionEvent(mustParse(t, ExampleR42))
	if err != nil {
		t.Fatal(err)
	}
	if e.Event != MDCEvtPumpDelivStrt || e.EventName() != "PUMP_DELIV_START" {
		t.Errorf("event = %+v", e.Event)
	}
	if !e.EventTime.Equal(time.Date(2025, 3, 1, 10, 16, 18, 0, est)) || FormatTime(e.EventTime) != "20250301101618-0500" {
		t.Errorf("event time = %v (must keep the original time and zone)", e.EventTime)
	}
	if e.RateMLH != 13.1 || e.DoseRate != 0.05 || e.DoseRateUnit != "mcg/kg/min" || e.VTBIML != 250 || e.DeliveredML != 0 ||
		e.RemainingML != 250 || e.TimeRemainingMin != 1143 || e.Concentration != 0.016 || e.ConcentrationUnit != "mg/mL" ||
		e.CareArea != "Adult ICU" || e.LibraryVersion != "ADULT-2025.02" || e.WeightKg != 70 || e.DrugLabel != "Norepinephrine" ||
		e.InfusingStatus != StatusInfusing || e.PumpID != "PUMP-0007" || e.PumpEUI != "8899AABBCCDD0007" || e.Kind != PumpKindLVP ||
		e.OrderID != "ADM-778899" || e.EventID != "EV000311" {
		t.Errorf("event = %+v", e)
	}
}

func TestParsePumpStatusExample(t *testing.T) {
	s, err := ParsePumpStatus(mustParse(t, ExampleR01))
	if err != nil {
		t.Fatal(err)
	}
	if s.RateMLH != 13.1 || s.DeliveredML != 9.6 || s.Status != StatusInfusing || s.PumpID != "PUMP-0007" ||
		s.Kind != PumpKindGeneric || s.DrugCode != "NOREPI-4-250" || s.Patient.MRN != "MRN4455" {
		t.Errorf("status = %+v", s)
	}
}

// TestTypedErrors checks that typed views reject what an IOC/AM must
// reject, with the segment, field and table 0357 code.
func TestTypedErrors(t *testing.T) {
	rgv := func(edit func(m *Message)) *Message {
		m := mustParse(t, ExampleRGV)
		edit(m)
		return m
	}
	tests := []struct {
		name  string
		m     *Message
		parse func(*Message) error
		code  int
		loc   string
		msg   string
	}{
		{"wrong type", mustParse(t, ExampleAckO15), func(m *Message) error { _, err := ParseRGV(m); return err }, 200, "MSH-9", "want RGV^O15"},
		{"missing ORC-2", rgv(func(m *Message) { _ = m.Set("ORC-2", "") }), func(m *Message) error { _, err := ParseRGV(m); return err }, 101, "ORC-2", "placer order"},
		{"bad ORC-1", rgv(func(m *Message) { _ = m.Set("ORC-1", "ZZ") }), func(m *Message) error { _, err := ParseRGV(m); return err }, 103, "ORC-1", "order control"},
		{"rate not a number", rgv(func(m *Message) { _ = m.Set("RXG-15", "1e9") }), func(m *Message) error { _, err := ParseRGV(m); return err }, 102, "RXG-15", "not a number"},
		{"rate NaN", rgv(func(m *Message) { _ = m.Set("RXG-15", "NaN") }), func(m *Message) error { _, err := ParseRGV(m); return err }, 102, "RXG-15", "not a number"},
		{"rate missing", rgv(func(m *Message) { _ = m.Set("RXG-15", "") }), func(m *Message) error { _, err := ParseRGV(m); return err }, 101, "RXG-15", "RXG-15"},
		{"drug amount bad", rgv(func(m *Message) { _ = m.Set("RXG-17", "4mg") }), func(m *Message) error { _, err := ParseRGV(m); return err }, 102, "RXG-17", "not a number"},
		{"weight bad", rgv(func(m *Message) { _ = m.Set("OBX(2)-5", "seventy") }), func(m *Message) error { _, err := ParseRGV(m); return err }, 102, "OBX-5", "not a number"},
		{"no give code", rgv(func(m *Message) { _ = m.Set("RXG-4", "") }), func(m *Message) error { _, err := ParseRGV(m); return err }, 101, "RXG-4", "give code"},
		{"no pump row", rgv(func(m *Message) { m.Segs = m.Segs[:len(m.Segs)-2] }), func(m *Message) error { _, err := ParseRGV(m); return err }, 101, "OBX-3", "pump ID row"},
		{"empty pump id", rgv(func(m *Message) { _ = m.Set("OBX-18", "") }), func(m *Message) error { _, err := ParseRGV(m); return err }, 101, "OBX-18", "pump ID"},
		{"two pump rows", rgv(func(m *Message) { m.Add(m.Segment("OBX").clone()) }), func(m *Message) error { _, err := ParseRGV(m); return err }, 100, "OBX-3", "more than one"},
		{"no RXG", rgv(func(m *Message) { m.Segs = append(m.Segs[:4:4], m.Segs[5:]...) }), func(m *Message) error { _, err := ParseRGV(m); return err }, 100, "RXG", "missing RXG"},
		{"no PID", rgv(func(m *Message) { m.Segs = append(m.Segs[:1:1], m.Segs[2:]...) }), func(m *Message) error { _, err := ParseRGV(m); return err }, 100, "PID", "missing PID"},
		{"bad MSH-7", rgv(func(m *Message) { _ = m.Set("MSH-7", "2025-03-01") }), func(m *Message) error { _, err := ParseRGV(m); return err }, 102, "MSH-7", "bad HL7 time"},
		{"ack bad code", mustParse(t, []byte(strings.Replace(string(ExampleAckO15), "MSA|CA", "MSA|XX", 1))), func(m *Message) error { _, err := ParseAck(m); return err }, 103, "MSA-1", "acknowledgment code"},
		{"ack no MSA", mustParse(t, er7(strings.Split(string(ExampleAckO15), "\r")[0])), func(m *Message) error { _, err := ParseAck(m); return err }, 100, "MSA", "missing MSA"},
		{"alert no facet 1", mustParse(t, er7(strings.Split(string(ExampleR40), "\r")[:4]...)), func(m *Message) error { _, err := ParseAlert(m); return err }, 101, "OBX-3", "facet 1"},
		{"event missing", mustParse(t, []byte(strings.Replace(string(ExampleR42), "MDC_ATTR_EVT_COND", "MDC_OTHER", 1))), func(m *Message) error { _, err := ParseInfusionEvent(m); return err }, 101, "OBX-3", "event row"},
		{"status unknown", mustParse(t, []byte(strings.Replace(string(ExampleR41), "|accepted|", "|ignored|", 1))), func(m *Message) error { _, err := ParseAlertStatus(m); return err }, 103, "OBX-5", "unknown alert status"},
		{"rde no filler", mustParse(t, []byte(strings.Replace(string(ExampleRDE), "RX-9001^PHARM_SIM", "", 1))), func(m *Message) error { _, err := ParseRDE(m); return err }, 101, "ORC-3", "filler order"},
		{"ras amount bad", mustParse(t, []byte(strings.Replace(string(ExampleRAS), "|22.9|", "|lots|", 1))), func(m *Message) error { _, err := ParseAdministration(m); return err }, 102, "RXA-6", "not a number"},
		{"adt no PID-3", mustParse(t, []byte(strings.Replace(string(ExampleADTA01), "MRN4455^^^HOSP^MR", "", 1))), func(m *Message) error { _, err := ParseADT(m); return err }, 101, "PID-3", "patient identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(tt.m)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v, want *ParseError", err)
			}
			if pe.Code != tt.code || pe.Location() != tt.loc || !strings.Contains(pe.Error(), tt.msg) {
				t.Errorf("got code %d at %q: %v; want %d at %q containing %q", pe.Code, pe.Location(), err, tt.code, tt.loc, tt.msg)
			}
			ae := AsAckError(err)
			if ae.Code != tt.code || ae.Segment != pe.Segment || ae.Field != pe.Field {
				t.Errorf("AsAckError = %+v", ae)
			}
		})
	}
}

func TestBuildAck(t *testing.T) {
	orig := mustParse(t, ExampleRGV)
	ack := BuildAck(orig, AckAR, &AckError{Code: 207, AppCode: "LIB-HARDMAX", AppText: "Dose exceeds drug library hard limit", Message: "0.5 > 0.3"})
	ack.Stamp(time.Date(2025, 3, 1, 10, 15, 1, 0, est), "PS000551")
	want := "MSH|^~\\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|BCMA_SIM^0011223344556677^EUI-64|HOSP_BCMA|20250301101501-0500||ACK^O15^ACK|PS000551|P|2.6\r" +
		"MSA|AR|BCMA000123\r" +
		"ERR|||207^Application internal error^HL70357|E|LIB-HARDMAX^Dose exceeds drug library hard limit^L|||0.5 > 0.3"
	if got := string(ack.Bytes()); got != want {
		t.Errorf("BuildAck:\n got %q\nwant %q", got, want)
	}
	a, err := ParseAck(mustParse(t, ack.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if a.OK() || a.AckedID != "BCMA000123" || len(a.Errors) != 1 || a.Errors[0].AppCode != "LIB-HARDMAX" {
		t.Errorf("ParseAck = %+v", a)
	}
	var ae *AckError
	if !errors.As(a.Err(), &ae) || ae.Code != 207 || !strings.Contains(ae.Error(), "LIB-HARDMAX") {
		t.Errorf("Err() = %v", a.Err())
	}
	ok := BuildAck(orig, AckCA, nil)
	if a, _ := ParseAck(ok); !a.OK() || a.Err() != nil || len(a.Errors) != 0 {
		t.Errorf("CA ack = %+v", a)
	}
}

// TestChannelBRows checks that PCD-01 and PCD-10 of channel B carry VMD
// index 2 in OBX-4 and parse back as channel B; channel A stays 1.1.x.x.
func TestChannelBRows(t *testing.T) {
	ps := PumpStatus{Header: Header{ControlID: "C1"}, PumpID: "PUMP-0009", Channel: "B", RateMLH: 5, DeliveredML: 1, Status: StatusInfusing}
	m := BuildPumpStatus(ps)
	if !strings.Contains(string(m.Bytes()), "|1.2.1.1|") || strings.Contains(string(m.Bytes()), "|1.1.1.1|") {
		t.Fatalf("channel B rows:\n%s", m.Bytes())
	}
	got, err := ParsePumpStatus(m)
	if err != nil || got.Channel != "B" {
		t.Fatalf("parsed channel %q, %v", got.Channel, err)
	}
	ie := InfusionEvent{Header: Header{ControlID: "C2"}, PumpID: "PUMP-0009", Channel: "C", Event: MDCEvtPumpDelivStrt}
	gotE, err := ParseInfusionEvent(BuildInfusionEvent(ie))
	if err != nil || gotE.Channel != "C" {
		t.Fatalf("parsed event channel %q, %v", gotE.Channel, err)
	}
	ps.Channel = ""
	if b := BuildPumpStatus(ps).Bytes(); !strings.Contains(string(b), "|1.1.1.1|") {
		t.Fatalf("channel A rows moved:\n%s", b)
	}
	if ChannelIndex("B") != 2 || ChannelLabel("1.3.0.0") != "C" || ChannelLabel("x") != "A" {
		t.Fatal("channel helpers")
	}
}
