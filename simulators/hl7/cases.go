package hl7

import "strings"

// Case is one fixture of the codec: raw ER7 bytes and what Parse must make
// of them. Codec, server, fuzz and attack tests share the table.
type Case struct {
	Name string
	Raw  []byte
	// Type is MSH-9 as "CODE^TRIGGER" for a valid message.
	Type string
	// Err is a substring of the expected Parse error; "" means valid.
	Err string
	// Field is the location the *ParseError names (ParseError.Location(),
	// e.g. "MSH-9", "PID-5", "MSH", or "" for errors without a segment).
	Field string
}

// Valid reports whether the case is a valid message.
func (c Case) Valid() bool { return c.Err == "" }

// er7 joins segment lines with CR.
func er7(lines ...string) []byte { return []byte(strings.Join(lines, "\r")) }

// Fixture messages from REFERENCE.md §4.8 (norepinephrine 4 mg/250 mL,
// 0.05 mcg/kg/min, 70 kg, pump PUMP-0007).
var (
	mshRGV  = `MSH|^~\&|BCMA_SIM^0011223344556677^EUI-64|HOSP_BCMA|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|20250301101500-0500||RGV^O15^RGV_O15|BCMA000123|P|2.6|||AL|AL||UNICODE UTF-8|en^English^ISO639||IHE_PCD_PIV_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.3.1^ISO`
	pidFull = `PID|||MRN4455^^^HOSP^MR||Testpatient^Alex^^^^^L||19700101|F`
	pidName = `PID|||MRN4455^^^HOSP^MR||Testpatient^Alex^^^^^L`
	pv1ICU  = `PV1||I|4W ICU^12^A`

	rgvLines = []string{
		mshRGV, pidFull, pv1ICU,
		`ORC|RE|ADM-778899^BCMA_SIM|||||||20250301101500-0500||||||||||RN0042^Nurse^Nina`,
		`RXG|1|||NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|250||263762^MDC_DIM_MILLI_L^MDC||||||||0.05|265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|4|263890^MDC_DIM_MILLI_G^MDC|||||250|263762^MDC_DIM_MILLI_L^MDC`,
		`RXR|^IV^HL70162||^IVP^HL70164|^IV^HL70165`,
		`OBX|1||69986^MDC_DEV_PUMP_INFUS_VMD^MDC|||||||||||||||^^PUMP-0007^HOSP`,
		`OBX|2|NM|68063^MDC_ATTR_PT_WEIGHT^MDC||70|263875^MDC_DIM_KILO_G^MDC`,
	}

	// ExampleRGV is REFERENCE.md §4.8(a): PCD-03 from BCMA to pump server.
	ExampleRGV = er7(rgvLines...)

	// ExampleRGVChange is the rate change of §4.8(a): ORC-1 XO, RXG-5/7 empty.
	ExampleRGVChange = er7(
		strings.Replace(mshRGV, "BCMA000123", "BCMA000124", 1), pidFull, pv1ICU,
		`ORC|XO|ADM-778899^BCMA_SIM|||||||20250301113000-0500||||||||||RN0042^Nurse^Nina`,
		`RXG|1|||NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|||||||||||0.08|265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|4|263890^MDC_DIM_MILLI_G^MDC|||||250|263762^MDC_DIM_MILLI_L^MDC`,
		`RXR|^IV^HL70162||^IVP^HL70164|^IV^HL70165`,
		`OBX|1||69986^MDC_DEV_PUMP_INFUS_VMD^MDC|||||||||||||||^^PUMP-0007^HOSP`,
		`OBX|2|NM|68063^MDC_ATTR_PT_WEIGHT^MDC||70|263875^MDC_DIM_KILO_G^MDC`,
	)

	// ExampleAckO15 is the accept acknowledgement of §4.8(b).
	ExampleAckO15 = er7(
		`MSH|^~\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|BCMA_SIM^0011223344556677^EUI-64|HOSP_BCMA|20250301101501-0500||ACK^O15^ACK|PS000551|P|2.6`,
		`MSA|CA|BCMA000123`,
	)

	// ExampleRRGReject is the application reject of §4.8(b).
	ExampleRRGReject = er7(
		`MSH|^~\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|BCMA_SIM^0011223344556677^EUI-64|HOSP_BCMA|20250301101503-0500||RRG^O16^RRG_O16|PS000552|P|2.6|||AL|NE|||||IHE_PCD_PIV_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.3.2^ISO`,
		`MSA|AR|BCMA000123`,
		`ERR|||207^Application internal error^HL70357|E|LIB-HARDMAX^Dose exceeds drug library hard limit^L`,
	)

	// ExampleRRGAccept is the success case of §4.8(b).
	ExampleRRGAccept = er7(
		`MSH|^~\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|BCMA_SIM^0011223344556677^EUI-64|HOSP_BCMA|20250301101503-0500||RRG^O16^RRG_O16|PS000552|P|2.6|||AL|NE|||||IHE_PCD_PIV_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.3.2^ISO`,
		`MSA|AA|BCMA000123`,
	)

	// ExampleR42 is §4.8(c): PCD-10 delivery start.
	ExampleR42 = er7(
		`MSH|^~\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|EHR_SIM|HOSP_EHR|20250301101620-0500||ORU^R42^ORU_R01|EV000311|P|2.6|||AL|NE|||||IHE_PCD_010^IHE PCD^1.3.6.1.4.1.19376.1.6.4.10^ISO`,
		pidName, pv1ICU,
		`OBR|1|ADM-778899^BCMA_SIM|EV000311^PUMPSRV_SIM|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|||20250301101618-0500`,
		`OBX|1||70049^MDC_DEV_PUMP_INFUS_LVP_MDS^MDC|1.0.0.0|||||||X|||||||PUMP-0007^^8899AABBCCDD0007^EUI-64`,
		`OBX|2|ST|184517^MDC_PUMP_DRUG_LIBRARY_VERSION^MDC|1.0.0.1|ADULT-2025.02||||||R`,
		`OBX|3|CWE|0^MDC_ATTR_EVT_COND^MDC|1.0.0.2|197288^MDC_EVT_PUMP_DELIV_START^MDC||||||R`,
		`OBX|4||70050^MDC_DEV_PUMP_INFUS_LVP_VMD^MDC|1.1.0.0|||||||X`,
		`OBX|5|CWE|184519^MDC_PUMP_INFUSING_STATUS^MDC|1.1.1.1|^pump-status-infusing||||||R`,
		`OBX|6|NM|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.2.1|13.1|265266^MDC_DIM_MILLI_L_PER_HR^MDC|||||R`,
		`OBX|7|NM|157924^MDC_RATE_DOSE^MDC|1.1.2.2|0.05|265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|||||R`,
		`OBX|8|NM|157884^MDC_VOL_FLUID_TBI^MDC|1.1.2.3|250|263762^MDC_DIM_MILLI_L^MDC|||||R`,
		`OBX|9|NM|157993^MDC_VOL_FLUID_DELIV_TOTAL^MDC|1.1.2.4|0.0|263762^MDC_DIM_MILLI_L^MDC|||||R`,
		`OBX|10|NM|157872^MDC_VOL_FLUID_TBI_REMAIN^MDC|1.1.2.5|250.0|263762^MDC_DIM_MILLI_L^MDC|||||R`,
		`OBX|11|NM|157916^MDC_TIME_PD_REMAIN^MDC|1.1.2.6|1143|264352^MDC_DIM_MIN^MDC|||||R`,
		`OBX|12|ST|184514^MDC_DRUG_NAME_LABEL^MDC|1.1.2.7|Norepinephrine||||||R`,
		`OBX|13|NM|157760^MDC_CONC_DRUG^MDC|1.1.2.8|0.016|264306^MDC_DIM_MILLI_G_PER_ML^MDC|||||R`,
		`OBX|14|ST|184516^MDC_PUMP_DRUG_LIBRARY_CARE_AREA^MDC|1.1.2.9|Adult ICU||||||R`,
		`OBX|15|NM|68063^MDC_ATTR_PT_WEIGHT^MDC|1.1.2.10|70|263875^MDC_DIM_KILO_G^MDC|||||R`,
	)

	// ExampleR40 is §4.8(d): PCD-04 air-in-line technical alarm (the
	// pending event code written 0).
	ExampleR40 = er7(
		`MSH|^~\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|ALERTMGR_SIM^1122334455667788^EUI-64|HOSP_AM|20250301113012-0500||ORU^R40^ORU_R40|AR000981|P|2.6|||AL|NE|||||IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.4.1^ISO`,
		pidName, pv1ICU,
		`OBR|1|ALR-55123^PUMPSRV_SIM|ALR-55123^PUMPSRV_SIM|196616^MDC_EVT_ALARM^MDC|||20250301113012-0500`,
		`OBX|1|CWE|196616^MDC_EVT_ALARM^MDC|1.1.1.0.1|0^MDC_EVT_FLUID_LINE_AIR^MDC^^^^^^Air in line||||||F|||||||PUMP-0007^^8899AABBCCDD0007^EUI-64`,
		`OBX|2|CWE|68480^MDC_ATTR_ALERT_SOURCE^MDC|1.1.1.0.2|69986^MDC_DEV_PUMP_INFUS_VMD^MDC||||||F`,
		`OBX|3|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.1.1.0.3|start||||||F`,
		`OBX|4|ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.1.1.0.4|active||||||F`,
		`OBX|5|ST|68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC|1.1.1.0.5|enabled||||||F`,
		`OBX|6|ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|1.1.1.0.6|PH||||||F`,
		`OBX|7|ST|68485^MDC_ATTR_ALERT_TYPE^MDC|1.1.1.0.7|ST||||||F`,
	)

	// ExampleR40Legacy is an occlusion alarm ending, from an older reporter
	// that puts priority and type in OBX-8 instead of facet rows 6 and 7.
	ExampleR40Legacy = er7(
		`MSH|^~\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|ALERTMGR_SIM^1122334455667788^EUI-64|HOSP_AM|20250301114500-0500||ORU^R40^ORU_R40|AR000990|P|2.6|||AL|NE`,
		pidName, pv1ICU,
		`OBR|1|ALR-55130^PUMPSRV_SIM|ALR-55130^PUMPSRV_SIM|196616^MDC_EVT_ALARM^MDC|||20250301114410-0500`,
		`OBX|1|CWE|196616^MDC_EVT_ALARM^MDC|1.1.1.0.1|196940^MDC_EVT_FLUID_LINE_OCCL^MDC|||PM~ST|||F|||||||PUMP-0007^^8899AABBCCDD0007^EUI-64`,
		`OBX|2|CWE|68480^MDC_ATTR_ALERT_SOURCE^MDC|1.1.1.0.2|69986^MDC_DEV_PUMP_INFUS_VMD^MDC||||||F`,
		`OBX|3|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.1.1.0.3|end||||||F`,
		`OBX|4|ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.1.1.0.4|inactive||||||F`,
	)

	// ExampleR01 is §4.8(e): PCD-01 periodic status.
	ExampleR01 = er7(
		`MSH|^~\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|EHR_SIM|HOSP_EHR|20250301101700-0500||ORU^R01^ORU_R01|DEC000412|P|2.6|||AL|NE|||||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO`,
		pidName, pv1ICU,
		`OBR|1|ADM-778899^BCMA_SIM|DEC000412^PUMPSRV_SIM|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|||20250301101700-0500`,
		`OBX|1||69985^MDC_DEV_PUMP_INFUS_MDS^MDC|1.0.0.0|||||||X|||||||PUMP-0007^^8899AABBCCDD0007^EUI-64`,
		`OBX|2||69986^MDC_DEV_PUMP_INFUS_VMD^MDC|1.1.0.0|||||||X`,
		`OBX|3||126978^MDC_DEV_PUMP_INFUS_CHAN_DELIVERY^MDC|1.1.1.0|||||||X`,
		`OBX|4|NM|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.1.1|13.1|265266^MDC_DIM_MILLI_L_PER_HR^MDC|||||R`,
		`OBX|5|NM|157993^MDC_VOL_FLUID_DELIV_TOTAL^MDC|1.1.1.2|9.6|263762^MDC_DIM_MILLI_L^MDC|||||R`,
		`OBX|6|CWE|184519^MDC_PUMP_INFUSING_STATUS^MDC|1.1.1.3|^pump-status-infusing||||||R`,
	)

	// ExampleR41 is a PCD-05 status: the nurse accepted alert ALR-55123.
	ExampleR41 = er7(
		`MSH|^~\&|ALERTMGR_SIM^1122334455667788^EUI-64|HOSP_AM|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|20250301113105-0500||ORA^R41^ORA_R41|AM000123|P|2.6|||AL|NE|||||IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.5.1^ISO`,
		pidName, pv1ICU,
		`OBR|1|ALR-55123^PUMPSRV_SIM|ALR-55123^PUMPSRV_SIM|196616^MDC_EVT_ALARM^MDC|||20250301113105-0500`,
		`OBX|1|ST|^ALERT_STATUS^L|1.1.1.0.8|accepted||||||F`,
		`PRT|1|UC||AAP^Alert Acknowledging Provider^HL70912|RN0042^Nurse^Nina|||||VOCERA-0042`,
	)

	// ExampleOMP is the CPOE order behind the infusion.
	ExampleOMP = er7(
		`MSH|^~\&|CPOE_SIM|HOSP_EHR|PHARM_SIM|HOSP_PHARM|20250301093000-0500||OMP^O09^OMP_O09|CPOE000077|P|2.6`,
		pidFull, pv1ICU,
		`ORC|NW|ORD-5566^CPOE_SIM|||||||20250301093000-0500|||DR0007^Doctor^Dana`,
		`RXO|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|0.05||ug/kg/min^ug/kg/min^UCUM`,
		`RXR|^IV^HL70162`,
		`RXC|B|NS^Sodium chloride 0.9%|250|mL^mL^UCUM`,
		`RXC|A|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|4|mg^mg^UCUM`,
		`OBX|1|NM|29463-7^Body weight^LN||70|kg^kg^UCUM|||||F`,
	)

	// ExampleRDE is the pharmacy-verified order.
	ExampleRDE = er7(
		`MSH|^~\&|PHARM_SIM|HOSP_PHARM|EMAR_SIM|HOSP_EMAR|20250301094500-0500||RDE^O11^RDE_O11|PH000311|P|2.6`,
		pidFull, pv1ICU,
		`ORC|NW|ORD-5566^CPOE_SIM|RX-9001^PHARM_SIM||||||20250301094500-0500|||DR0007^Doctor^Dana`,
		`RXE||NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|0.05||ug/kg/min^ug/kg/min^UCUM|||||||||RPH0003^Pharmacist^Paul`,
		`RXR|^IV^HL70162`,
		`RXC|B|NS^Sodium chloride 0.9%|250|mL^mL^UCUM`,
		`RXC|A|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|4|mg^mg^UCUM`,
		`OBX|1|NM|29463-7^Body weight^LN||70|kg^kg^UCUM|||||F`,
	)

	// ExampleADTA01 admits the patient to 4W ICU with weight and height.
	ExampleADTA01 = er7(
		`MSH|^~\&|EHR_SIM|HOSP_EHR|ALL|HOSP|20250301080000-0500||ADT^A01^ADT_A01|ADT000101|P|2.6`,
		`EVN|A01|20250301080000-0500`,
		pidFull, pv1ICU,
		`OBX|1|NM|29463-7^Body weight^LN||70|kg^kg^UCUM|||||F`,
		`OBX|2|NM|8302-2^Body height^LN||172|cm^cm^UCUM|||||F`,
	)

	// ExampleADTA02 transfers the patient from 4W ICU to step-down (CTL-13).
	ExampleADTA02 = er7(
		`MSH|^~\&|EHR_SIM|HOSP_EHR|ALL|HOSP|20250301140000-0500||ADT^A02^ADT_A02|ADT000102|P|2.6`,
		`EVN|A02|20250301140000-0500`,
		pidFull,
		`PV1||I|3S STEPDOWN^7^B|||4W ICU^12^A`,
	)

	// ExampleADTA08 updates the weight.
	ExampleADTA08 = er7(
		`MSH|^~\&|EHR_SIM|HOSP_EHR|ALL|HOSP|20250301150000-0500||ADT^A08^ADT_A01|ADT000103|P|2.6`,
		`EVN|A08|20250301150000-0500`,
		pidFull, pv1ICU,
		`OBX|1|NM|29463-7^Body weight^LN||68.5|kg^kg^UCUM|||||F`,
	)

	// ExampleRAS documents the administration.
	ExampleRAS = er7(
		`MSH|^~\&|BCMA_SIM^0011223344556677^EUI-64|HOSP_BCMA|EHR_SIM|HOSP_EHR|20250301120000-0500||RAS^O17^RAS_O17|BCMA000200|P|2.6`,
		pidFull, pv1ICU,
		`ORC|RE|ADM-778899^BCMA_SIM|RX-9001`,
		`RXA|0|1|20250301101500-0500|20250301120000-0500|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|22.9|263762^MDC_DIM_MILLI_L^MDC|||RN0042^Nurse^Nina||||||||||CP`,
		`RXR|^IV^HL70162`,
		`OBX|1||69986^MDC_DEV_PUMP_INFUS_VMD^MDC|||||||||||||||PUMP-0007`,
		`OBX|2|NM|157784^MDC_FLOW_FLUID_PUMP^MDC||13.1|265266^MDC_DIM_MILLI_L_PER_HR^MDC|||||F`,
	)
)

func replaceLine(lines []string, i int, s string) []string {
	out := append([]string(nil), lines...)
	out[i] = s
	return out
}

// oversize returns a message just over MaxMessageSize bytes.
func oversize() []byte {
	head := string(ExampleAckO15) + "\rNTE|1||"
	return []byte(head + strings.Repeat("A", MaxMessageSize+1-len(head)))
}

// Cases is the shared fixture table: every message type of the lab, ER7
// variants, and malformed input.
var Cases = []Case{
	// Valid messages of every type (REFERENCE.md §4.8 and lab fixtures).
	{Name: "pcd03-rgv-o15", Raw: ExampleRGV, Type: "RGV^O15"},
	{Name: "pcd03-rgv-o15-rate-change", Raw: ExampleRGVChange, Type: "RGV^O15"},
	{Name: "pcd03-ack-o15-accept", Raw: ExampleAckO15, Type: "ACK^O15"},
	{Name: "pcd03-rrg-o16-reject", Raw: ExampleRRGReject, Type: "RRG^O16"},
	{Name: "pcd03-rrg-o16-accept", Raw: ExampleRRGAccept, Type: "RRG^O16"},
	{Name: "pcd10-oru-r42-delivery-start", Raw: ExampleR42, Type: "ORU^R42"},
	{Name: "pcd04-oru-r40-air-in-line", Raw: ExampleR40, Type: "ORU^R40"},
	{Name: "pcd04-oru-r40-legacy-obx8", Raw: ExampleR40Legacy, Type: "ORU^R40"},
	{Name: "pcd01-oru-r01-status", Raw: ExampleR01, Type: "ORU^R01"},
	{Name: "pcd05-ora-r41-accepted", Raw: ExampleR41, Type: "ORA^R41"},
	{Name: "omp-o09-order", Raw: ExampleOMP, Type: "OMP^O09"},
	{Name: "rde-o11-verified", Raw: ExampleRDE, Type: "RDE^O11"},
	{Name: "adt-a01-admit", Raw: ExampleADTA01, Type: "ADT^A01"},
	{Name: "adt-a02-transfer", Raw: ExampleADTA02, Type: "ADT^A02"},
	{Name: "adt-a08-update", Raw: ExampleADTA08, Type: "ADT^A08"},
	{Name: "ras-o17-administration", Raw: ExampleRAS, Type: "RAS^O17"},

	// ER7 variants that must parse.
	{Name: "lf-separated", Raw: []byte(strings.Join(rgvLines, "\n")), Type: "RGV^O15"},
	{Name: "crlf-separated", Raw: []byte(strings.Join(rgvLines, "\r\n") + "\r\n"), Type: "RGV^O15"},
	{Name: "trailing-cr", Raw: append(append([]byte(nil), ExampleAckO15...), '\r'), Type: "ACK^O15"},
	{Name: "version-2.5", Raw: []byte(strings.Replace(string(ExampleAckO15), "|P|2.6", "|P|2.5", 1)), Type: "ACK^O15"},
	{Name: "ack-without-trigger", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ACK|X1|P|2.6`, `MSA|AA|Y1`), Type: "ACK"},
	{Name: "escapes-decoded", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ACK^O15^ACK|X2|P|2.6`, `MSA|AE|Y2|pipe \F\ caret \S\ amp \T\ tilde \R\ backslash \E\`), Type: "ACK^O15"},
	{Name: "escapes-kept-verbatim", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ACK^O15^ACK|X3|P|2.6`, `MSA|AE|Y3|line\.br\break \H\bold\N\ hex \X0D0A\ local \Zab\`), Type: "ACK^O15"},
	{Name: "other-delimiters", Raw: er7(`MSH#$%!*#A#B#C#D#20250301101501##ACK$O15$ACK#X4#P#2.6`, `MSA#AA#Y4#a|b^c~d\e&f`), Type: "ACK^O15"},
	{Name: "truncation-char-v27", Raw: er7(`MSH|^~\&#|A|B|C|D|20250301101501||ACK^O15^ACK|X5|P|2.7`, `MSA|AA|Y5|hash \P\`), Type: "ACK^O15"},
	{Name: "z-segment-and-repetitions", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ADT^A08^ADT_A01|X6|P|2.6`, `PID|||MRN1^^^HOSP^MR~SSN9^^^US^SS||Doe^Jo`, `ZPL|1|pump&sub&comp^x~y`), Type: "ADT^A08"},
	{Name: "empty-fields-and-components", Raw: er7(`MSH|^~\&|||||||ORU^R01^ORU_R01|X7`, `OBX|1||^^^||||`), Type: "ORU^R01"},

	// Malformed input.
	{Name: "empty", Raw: nil, Err: "empty message"},
	{Name: "no-msh", Raw: er7(pidFull, pv1ICU), Err: "must start with MSH", Field: "MSH"},
	{Name: "msh-only-name", Raw: []byte("MSH"), Err: "missing field separator", Field: "MSH-1"},
	{Name: "msh-name-then-cr", Raw: []byte("MSH\rPID|1"), Err: "missing field separator", Field: "MSH-1"},
	{Name: "alnum-field-separator", Raw: []byte("MSHA^~\\&A1A2"), Err: "invalid field separator", Field: "MSH-1"},
	{Name: "encoding-chars-short", Raw: er7(`MSH|^~|A|B|C|D|20250301101501||ACK^O15^ACK|X1|P|2.6`), Err: "want 4 or 5 characters", Field: "MSH-2"},
	{Name: "encoding-chars-duplicate", Raw: er7(`MSH|^^\&|A|B|C|D|20250301101501||ACK^O15^ACK|X1|P|2.6`), Err: "invalid encoding characters", Field: "MSH-2"},
	{Name: "encoding-chars-alnum", Raw: er7(`MSH|^~\A|A|B|C|D|20250301101501||ACK^O15^ACK|X1|P|2.6`), Err: "invalid encoding characters", Field: "MSH-2"},
	{Name: "encoding-chars-missing", Raw: []byte("MSH||A|B"), Err: "want 4 or 5 characters", Field: "MSH-2"},
	{Name: "missing-msh9", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501|||X1|P|2.6`, `MSA|AA|Y1`), Err: "missing message type", Field: "MSH-9"},
	{Name: "bad-msh9", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||R-1^O15|X1|P|2.6`), Err: "bad message type", Field: "MSH-9"},
	{Name: "bad-trigger", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ACK^O-15|X1|P|2.6`), Err: "bad trigger event", Field: "MSH-9"},
	{Name: "missing-msh10", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ACK^O15^ACK||P|2.6`, `MSA|AA|Y1`), Err: "missing message control ID", Field: "MSH-10"},
	{Name: "msh-truncated-before-msh10", Raw: []byte(`MSH|^~\&|A|B|C|D|20250301101501||ACK^O15`), Err: "missing message control ID", Field: "MSH-10"},
	{Name: "truncated-segment", Raw: er7(replaceLine(rgvLines, 7, "OB")...), Err: "bad segment name", Field: ""},
	{Name: "lowercase-segment", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ACK^O15^ACK|X1|P|2.6`, `msa|AA|Y1`), Err: "bad segment name"},
	{Name: "long-segment-name", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ACK^O15^ACK|X1|P|2.6`, `MSAX|AA|Y1`), Err: "bad segment name"},
	{Name: "second-msh", Raw: er7(string(ExampleAckO15), string(ExampleAckO15)), Err: "second MSH segment", Field: "MSH"},
	{Name: "bad-escape", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ADT^A08^ADT_A01|X1|P|2.6`, `PID|||MRN1||Doe\Q\^Jo`), Err: "bad escape sequence", Field: "PID-5"},
	{Name: "unterminated-escape", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ADT^A08^ADT_A01|X1|P|2.6`, `PID|||MRN1||Doe\F`), Err: "unterminated escape", Field: "PID-5"},
	{Name: "empty-escape", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ADT^A08^ADT_A01|X1|P|2.6`, `PID|||MRN1\\`), Err: "bad escape sequence", Field: "PID-3"},
	{Name: "escape-in-msh10", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ACK^O15^ACK|X\Y\1|P|2.6`), Err: "bad escape sequence", Field: "MSH-10"},
	{Name: "control-char", Raw: er7(`MSH|^~\&|A|B|C|D|20250301101501||ACK^O15^ACK|X1|P|2.6`, "MSA|AA|Y1|nul\x00here"), Err: "control character", Field: "MSA-3"},
	{Name: "mllp-bytes-inside", Raw: append([]byte{StartBlock}, ExampleAckO15...), Err: "must start with MSH", Field: "MSH"},
	{Name: "binary-garbage", Raw: []byte("\x8f\x00\xff\x13\x37MSH\x1c\x0d\xde\xad\xbe\xef|^~\\&"), Err: "must start with MSH", Field: "MSH"},
	{Name: "binary-after-msh", Raw: []byte("MSH|^~\\&|A|B|C|D|20250301101501||ACK^O15^ACK|X1|P|2.6\r\xff\xfe\x00\x01"), Err: "bad segment name"},
	{Name: "oversize", Raw: oversize(), Err: "exceeds", Field: ""},
}
