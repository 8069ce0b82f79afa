package ehr

import "time"

// OrderCase is a fixture for ParseOrder (and the golden output of
// BuildOMP/BuildRDE when Golden is set): ER7 bytes with CR separators, the
// decoded order and patient MRN, or the location of the expected error.
type OrderCase struct {
	Name string
	Raw  string
	// Golden: Raw is exactly what BuildOMP/BuildRDE write for Want (with
	// the header and patient of GoldenHeader/GoldenPatient in the tests).
	Golden bool
	Want   Order
	// WantErr is the location ("RXE-23", "MSH-9") of the expected
	// *hl7.ParseError; "" when the message decodes.
	WantErr string
}

var caseTime = time.Date(2025, 3, 1, 10, 10, 0, 0, time.FixedZone("", -5*3600))

// OrderCases are the order fixtures: the REFERENCE.md §4.8 norepinephrine
// order as OMP^O09 and RDE^O11, a PCA order, and malformed variants.
var OrderCases = []OrderCase{
	{
		Name: "omp-norepinephrine",
		Raw: "MSH|^~\\&|EHR_SIM|HOSP_EHR|PHARM_SIM|HOSP_PHARM|20250301101000-0500||OMP^O09^OMP_O09|EHR000002|P|2.6|||AL|NE\r" +
			"PID|||MRN4455^^^HOSP^MR||Testpatient^Alex^^^^^L||19700101|F\r" +
			"PV1||I|4W ICU^12^A\r" +
			"ORC|NW|ORD-000001^EHR_SIM|||||||20250301101000-0500|||MD0007\r" +
			"RXO|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|0.05||ug/kg/min^ug/kg/min^UCUM|||||||250|mL^mL^UCUM|||||||||13.125|mL/h^mL/h^UCUM\r" +
			"RXR|^IV^HL70162||^IVP^HL70164\r" +
			"RXC|B||250|mL^mL^UCUM\r" +
			"RXC|A|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|4|mg^mg^UCUM\r" +
			"OBX|1|NM|29463-7^Body weight^LN||70|kg^kg^UCUM|||||F",
		Golden: true,
		Want: Order{PlacerID: "ORD-000001", PlacerApp: "EHR_SIM", Control: ControlNew, MRN: "MRN4455",
			DrugCode: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL", GiveSystem: "HOSPFORM",
			DoseRate: 0.05, DoseUnit: "mcg/kg/min", RateMLH: 13.125, DrugAmount: 4, DrugUnit: "mg", DiluentML: 250,
			VTBI: 250, Route: "IV", Device: DeviceLVP, Prescriber: "MD0007", OrderedAt: caseTime, WeightKg: 70},
	},
	{
		Name: "rde-norepinephrine",
		Raw: "MSH|^~\\&|PHARM_SIM|HOSP_PHARM|BCMA_SIM|HOSP_BCMA|20250301101000-0500||RDE^O11^RDE_O11|EHR000003|P|2.6|||AL|NE\r" +
			"PID|||MRN4455^^^HOSP^MR||Testpatient^Alex^^^^^L||19700101|F\r" +
			"PV1||I|4W ICU^12^A\r" +
			"ORC|NW|ORD-000001^EHR_SIM|RX-000001^PHARM_SIM||||||20250301101000-0500|||MD0007\r" +
			"RXE||NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|0.05||ug/kg/min^ug/kg/min^UCUM|||||250|mL^mL^UCUM|||PH0003|||||||||13.125|mL/h^mL/h^UCUM\r" +
			"RXR|^IV^HL70162||^IVP^HL70164\r" +
			"RXC|B||250|mL^mL^UCUM\r" +
			"RXC|A|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|4|mg^mg^UCUM\r" +
			"OBX|1|NM|29463-7^Body weight^LN||70|kg^kg^UCUM|||||F",
		Golden: true,
		Want: Order{PlacerID: "ORD-000001", PlacerApp: "EHR_SIM", FillerID: "RX-000001", Control: ControlNew, MRN: "MRN4455",
			DrugCode: "NOREPI-4-250", DrugText: "Norepinephrine 4 mg/250 mL", GiveSystem: "HOSPFORM",
			DoseRate: 0.05, DoseUnit: "mcg/kg/min", RateMLH: 13.125, DrugAmount: 4, DrugUnit: "mg", DiluentML: 250,
			VTBI: 250, Route: "IV", Device: DeviceLVP, Prescriber: "MD0007", Verifier: "PH0003", OrderedAt: caseTime, WeightKg: 70},
	},
	{
		Name: "rde-pca-morphine",
		Raw: "MSH|^~\\&|PHARM_SIM|HOSP_PHARM|BCMA_SIM|HOSP_BCMA|20250301101000-0500||RDE^O11^RDE_O11|EHR000004|P|2.6|||AL|NE\r" +
			"PID|||MRN4455^^^HOSP^MR||Testpatient^Alex^^^^^L||19700101|F\r" +
			"PV1||I|4W ICU^12^A\r" +
			"ORC|NW|ORD-000002^EHR_SIM|RX-000002^PHARM_SIM||||||20250301101000-0500|||MD0007\r" +
			"RXE||MORPH-1-30^Morphine 1 mg/mL PCA^HOSPFORM|0.5||mg/h^mg/h^UCUM|||||30|mL^mL^UCUM|||PH0003\r" +
			"RXR|^IV^HL70162||^PCA^HL70164\r" +
			"RXC|B||30|mL^mL^UCUM\r" +
			"RXC|A|MORPH-1-30^Morphine 1 mg/mL PCA^HOSPFORM|30|mg^mg^UCUM\r" +
			"OBX|1|NM|0^MDC_DOSE_PCA_PATIENT^MDC||1|263890^MDC_DIM_MILLI_G^MDC|||||F\r" +
			"OBX|2|NM|157989^MDC_TIME_PCA_LOCKOUT^MDC||10|264352^MDC_DIM_MIN^MDC|||||F\r" +
			"OBX|3|NM|157988^MDC_RATE_PCA_MAX_DOSES_PER_HOUR^MDC||6||||||F\r" +
			"OBX|4|NM|157985^MDC_DOSE_PCA_LIMIT^MDC||8|263890^MDC_DIM_MILLI_G^MDC|||||F\r" +
			"OBX|5|NM|157987^MDC_TIME_PD_PCA_DOSE_LIMIT^MDC||60|264352^MDC_DIM_MIN^MDC|||||F",
		Golden: true,
		Want: Order{PlacerID: "ORD-000002", PlacerApp: "EHR_SIM", FillerID: "RX-000002", Control: ControlNew, MRN: "MRN4455",
			DrugCode: "MORPH-1-30", DrugText: "Morphine 1 mg/mL PCA", GiveSystem: "HOSPFORM",
			DoseRate: 0.5, DoseUnit: "mg/h", DrugAmount: 30, DrugUnit: "mg", DiluentML: 30, VTBI: 30,
			Route: "IV", Device: DevicePCA, Prescriber: "MD0007", Verifier: "PH0003", OrderedAt: caseTime,
			PCA: &PCA{DemandDose: 1, DemandUnit: "mg", LockoutMin: 10, MaxDosesPerHour: 6, DoseLimit: 8, LimitPeriodMin: 60}},
	},
	{
		Name: "rde-discontinue-minimal",
		Raw: "MSH|^~\\&|PHARM_SIM|HOSP_PHARM|BCMA_SIM|HOSP_BCMA|20250301120000-0500||RDE^O11^RDE_O11|EHR000009|P|2.6\r" +
			"PID|||MRN4455^^^HOSP^MR\r" +
			"ORC|DC|ORD-000001^EHR_SIM|RX-000001^PHARM_SIM\r" +
			"RXE||NOREPI-4-250",
		Want: Order{PlacerID: "ORD-000001", PlacerApp: "EHR_SIM", FillerID: "RX-000001", Control: ControlDiscontinue,
			MRN: "MRN4455", DrugCode: "NOREPI-4-250"},
	},
	{
		Name: "rde-bad-rate",
		Raw: "MSH|^~\\&|PHARM_SIM|HOSP_PHARM|BCMA_SIM|HOSP_BCMA|20250301101000-0500||RDE^O11^RDE_O11|X1|P|2.6\r" +
			"PID|||MRN4455^^^HOSP^MR\r" +
			"ORC|NW|ORD-000001|RX-000001\r" +
			"RXE||NOREPI-4-250|0.05||ug/kg/min|||||250|mL|||PH0003|||||||||1e3|mL/h",
		WantErr: "RXE-23",
	},
	{
		Name: "rde-missing-filler",
		Raw: "MSH|^~\\&|PHARM_SIM|HOSP_PHARM|BCMA_SIM|HOSP_BCMA|20250301101000-0500||RDE^O11^RDE_O11|X2|P|2.6\r" +
			"PID|||MRN4455^^^HOSP^MR\r" +
			"ORC|NW|ORD-000001\r" +
			"RXE||NOREPI-4-250|0.05",
		WantErr: "ORC-3",
	},
	{
		Name: "omp-missing-give-code",
		Raw: "MSH|^~\\&|EHR_SIM|HOSP_EHR|PHARM_SIM|HOSP_PHARM|20250301101000-0500||OMP^O09^OMP_O09|X3|P|2.6\r" +
			"PID|||MRN4455^^^HOSP^MR\r" +
			"ORC|NW|ORD-000001\r" +
			"RXO||0.05",
		WantErr: "RXO-1",
	},
	{
		Name: "omp-bad-pca-lockout",
		Raw: "MSH|^~\\&|EHR_SIM|HOSP_EHR|PHARM_SIM|HOSP_PHARM|20250301101000-0500||OMP^O09^OMP_O09|X4|P|2.6\r" +
			"PID|||MRN4455^^^HOSP^MR\r" +
			"ORC|NW|ORD-000002\r" +
			"RXO|MORPH-1-30|0.5\r" +
			"OBX|1|NM|157989^MDC_TIME_PCA_LOCKOUT^MDC||ten|min",
		WantErr: "OBX-5",
	},
	{
		Name: "wrong-type",
		Raw: "MSH|^~\\&|EHR_SIM|HOSP_EHR|PHARM_SIM|HOSP_PHARM|20250301101000-0500||ADT^A01^ADT_A01|X5|P|2.6\r" +
			"PID|||MRN4455^^^HOSP^MR",
		WantErr: "MSH-9",
	},
}

// DocCase is a fixture for the EHR listener (pharmacy and documentation
// inbox): a message, the acknowledgement it gets, and for documented
// messages the record key and values.
type DocCase struct {
	Name string
	Raw  string
	// Ack is the expected MSA-1; ErrCode the expected ERR-3.1 (0: no ERR).
	Ack     string
	ErrCode int
	// For documented messages: the record and what it holds.
	Key      DocKey
	RateMLH  float64
	VolumeML float64
	Status   string // infusing status
	Event    string // PCD-10 event type
}

// DocCases are the listener fixtures: PCD-01 (REFERENCE.md §4.8(e)), PCD-10
// (§4.8(c)), RAS^O17, an order for the pharmacy inbox, and rejections.
var DocCases = []DocCase{
	{
		Name: "pcd01-infusing",
		Raw: "MSH|^~\\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|EHR_SIM|HOSP_EHR|20250301101700-0500||ORU^R01^ORU_R01|DEC000412|P|2.6|||AL|NE|||||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO\r" +
			"PID|||MRN4455^^^HOSP^MR||Testpatient^Alex^^^^^L\r" +
			"PV1||I|4W ICU^12^A\r" +
			"OBR|1|ORD-000001^EHR_SIM|DEC000412^PUMPSRV_SIM|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|||20250301101700-0500\r" +
			"OBX|1||69985^MDC_DEV_PUMP_INFUS_MDS^MDC|1.0.0.0|||||||X|||||||PUMP-0007^^8899AABBCCDD0007^EUI-64\r" +
			"OBX|2||69986^MDC_DEV_PUMP_INFUS_VMD^MDC|1.1.0.0|||||||X\r" +
			"OBX|3||126978^MDC_DEV_PUMP_INFUS_CHAN_DELIVERY^MDC|1.1.1.0|||||||X\r" +
			"OBX|4|NM|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.1.1|13.1|265266^MDC_DIM_MILLI_L_PER_HR^MDC|||||R\r" +
			"OBX|5|NM|157993^MDC_VOL_FLUID_DELIV_TOTAL^MDC|1.1.1.2|9.6|263762^MDC_DIM_MILLI_L^MDC|||||R\r" +
			"OBX|6|CWE|184519^MDC_PUMP_INFUSING_STATUS^MDC|1.1.1.3|^pump-status-infusing||||||R",
		Ack:     "CA",
		Key:     DocKey{OrderID: "ORD-000001", PumpID: "PUMP-0007", Channel: "A"},
		RateMLH: 13.1, VolumeML: 9.6, Status: "pump-status-infusing",
	},
	{
		Name: "pcd01-channel-b",
		Raw: "MSH|^~\\&|PUMPSRV_SIM|HOSP_BIOMED|EHR_SIM|HOSP_EHR|20250301101700-0500||ORU^R01^ORU_R01|DEC000413|P|2.6\r" +
			"PID|||MRN4455^^^HOSP^MR\r" +
			"OBR|1|ORD-000003|DEC000413|HEP-25000-250|||20250301101700-0500\r" +
			"OBX|1||70049^MDC_DEV_PUMP_INFUS_LVP_MDS^MDC|1.0.0.0|||||||X|||||||PUMP-0007\r" +
			"OBX|2||70050^MDC_DEV_PUMP_INFUS_LVP_VMD^MDC|1.2.0.0|||||||X\r" +
			"OBX|3|NM|157784^MDC_FLOW_FLUID_PUMP^MDC|1.2.1.1|18|265266^MDC_DIM_MILLI_L_PER_HR^MDC|||||R\r" +
			"OBX|4|NM|157993^MDC_VOL_FLUID_DELIV_TOTAL^MDC|1.2.1.2|3|263762^MDC_DIM_MILLI_L^MDC|||||R",
		Ack:     "AA",
		Key:     DocKey{OrderID: "ORD-000003", PumpID: "PUMP-0007", Channel: "B"},
		RateMLH: 18, VolumeML: 3,
	},
	{
		Name: "pcd10-delivery-start",
		Raw: "MSH|^~\\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|EHR_SIM|HOSP_EHR|20250301101620-0500||ORU^R42^ORU_R01|EV000311|P|2.6|||AL|NE|||||IHE_PCD_010^IHE PCD^1.3.6.1.4.1.19376.1.6.4.10^ISO\r" +
			"PID|||MRN4455^^^HOSP^MR||Testpatient^Alex^^^^^L\r" +
			"PV1||I|4W ICU^12^A\r" +
			"OBR|1|ORD-000001^EHR_SIM|EV000311^PUMPSRV_SIM|NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|||20250301101618-0500\r" +
			"OBX|1||70049^MDC_DEV_PUMP_INFUS_LVP_MDS^MDC|1.0.0.0|||||||X|||||||PUMP-0007^^8899AABBCCDD0007^EUI-64\r" +
			"OBX|2|ST|184517^MDC_PUMP_DRUG_LIBRARY_VERSION^MDC|1.0.0.1|ADULT-2025.02||||||R\r" +
			"OBX|3|CWE|0^MDC_ATTR_EVT_COND^MDC|1.0.0.2|197288^MDC_EVT_PUMP_DELIV_START^MDC||||||R\r" +
			"OBX|4||70050^MDC_DEV_PUMP_INFUS_LVP_VMD^MDC|1.1.0.0|||||||X\r" +
			"OBX|5|CWE|184519^MDC_PUMP_INFUSING_STATUS^MDC|1.1.1.1|^pump-status-infusing||||||R\r" +
			"OBX|6|NM|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.2.1|13.1|265266^MDC_DIM_MILLI_L_PER_HR^MDC|||||R\r" +
			"OBX|7|NM|157924^MDC_RATE_DOSE^MDC|1.1.2.2|0.05|265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|||||R\r" +
			"OBX|8|NM|157884^MDC_VOL_FLUID_TBI^MDC|1.1.2.3|250|263762^MDC_DIM_MILLI_L^MDC|||||R\r" +
			"OBX|9|NM|157993^MDC_VOL_FLUID_DELIV_TOTAL^MDC|1.1.2.4|0.0|263762^MDC_DIM_MILLI_L^MDC|||||R\r" +
			"OBX|10|NM|157872^MDC_VOL_FLUID_TBI_REMAIN^MDC|1.1.2.5|250.0|263762^MDC_DIM_MILLI_L^MDC|||||R\r" +
			"OBX|11|NM|157916^MDC_TIME_PD_REMAIN^MDC|1.1.2.6|1143|264352^MDC_DIM_MIN^MDC|||||R\r" +
			"OBX|12|ST|184514^MDC_DRUG_NAME_LABEL^MDC|1.1.2.7|Norepinephrine||||||R\r" +
			"OBX|13|NM|157760^MDC_CONC_DRUG^MDC|1.1.2.8|0.016|264306^MDC_DIM_MILLI_G_PER_ML^MDC|||||R\r" +
			"OBX|14|ST|184516^MDC_PUMP_DRUG_LIBRARY_CARE_AREA^MDC|1.1.2.9|Adult ICU||||||R\r" +
			"OBX|15|NM|68063^MDC_ATTR_PT_WEIGHT^MDC|1.1.2.10|70|263875^MDC_DIM_KILO_G^MDC|||||R",
		Ack:     "CA",
		Key:     DocKey{OrderID: "ORD-000001", PumpID: "PUMP-0007", Channel: "A"},
		RateMLH: 13.1, VolumeML: 0, Status: "pump-status-infusing", Event: "PUMP_DELIV_START",
	},
	{
		Name: "ras-administration",
		Raw: "MSH|^~\\&|BCMA_SIM|HOSP_BCMA|EHR_SIM|HOSP_EHR|20250301101504-0500||RAS^O17^RAS_O17|BCMA000002|P|2.6|||AL|NE\r" +
			"PID|||MRN4455^^^HOSP^MR||Testpatient^Alex^^^^^L||19700101|F\r" +
			"PV1||I|4W ICU^12^A\r" +
			"ORC|RE|ORD-000001^EHR_SIM|RX-000001\r" +
			"RXA|0|1|20250301101503-0500||NOREPI-4-250^Norepinephrine 4 mg/250 mL^HOSPFORM|250|263762^MDC_DIM_MILLI_L^MDC|||RN0042||||||||||CP\r" +
			"RXR|^IV^HL70162\r" +
			"OBX|1||69986^MDC_DEV_PUMP_INFUS_VMD^MDC|||||||||||||||PUMP-0007\r" +
			"OBX|2|NM|157784^MDC_FLOW_FLUID_PUMP^MDC||13.125|265266^MDC_DIM_MILLI_L_PER_HR^MDC|||||F",
		Ack: "CA",
		Key: DocKey{OrderID: "ORD-000001"},
	},
	{
		Name: "pharmacy-inbox-omp",
		Raw:  OrderCases[0].Raw,
		Ack:  "CA",
	},
	{
		Name: "unsupported-pcd04",
		Raw: "MSH|^~\\&|PUMPSRV_SIM|HOSP_BIOMED|EHR_SIM|HOSP_EHR|20250301113012-0500||ORU^R40^ORU_R40|AR000981|P|2.6|||AL|NE\r" +
			"PID|||MRN4455^^^HOSP^MR\r" +
			"OBR|1|ALR-55123|ALR-55123|196616^MDC_EVT_ALARM^MDC|||20250301113012-0500",
		Ack: "AR", ErrCode: 200,
	},
	{
		Name: "pcd10-bad-event-time",
		Raw: "MSH|^~\\&|PUMPSRV_SIM|HOSP_BIOMED|EHR_SIM|HOSP_EHR|20250301101620-0500||ORU^R42^ORU_R01|EV000312|P|2.6|||AL|NE\r" +
			"PID|||MRN4455^^^HOSP^MR\r" +
			"OBR|1|ORD-000001|EV000312|NOREPI-4-250|||2025-03-01T10:16\r" +
			"OBX|1||70049^MDC_DEV_PUMP_INFUS_LVP_MDS^MDC|1.0.0.0|||||||X|||||||PUMP-0007\r" +
			"OBX|2|CWE|0^MDC_ATTR_EVT_COND^MDC|1.0.0.2|197288^MDC_EVT_PUMP_DELIV_START^MDC||||||R",
		Ack: "CE", ErrCode: 102,
	},
	{
		Name: "pcd01-no-pump",
		Raw: "MSH|^~\\&|PUMPSRV_SIM|HOSP_BIOMED|EHR_SIM|HOSP_EHR|20250301101700-0500||ORU^R01^ORU_R01|DEC000414|P|2.6\r" +
			"PID|||MRN4455^^^HOSP^MR\r" +
			"OBR|1|ORD-000001|DEC000414|NOREPI-4-250|||20250301101700-0500\r" +
			"OBX|1|NM|157784^MDC_FLOW_FLUID_PUMP^MDC|1.1.1.1|13.1|265266^MDC_DIM_MILLI_L_PER_HR^MDC|||||R",
		Ack: "AE", ErrCode: 101,
	},
}
