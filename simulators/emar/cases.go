package emar

import "github.com/pumplab/pumplab/simulators/ehr"

// Case is a fixture for the eMAR listener: a message and the
// acknowledgement it gets from a fresh eMAR (MSA-1, and ERR-3.1 when
// rejected).
type Case struct {
	Name    string
	Raw     string
	Ack     string
	ErrCode int
}

// Cases are the listener fixtures: ADT, verified orders, RRG^O16 and
// rejections.
var Cases = []Case{
	{
		Name: "adt-a01",
		Raw: "MSH|^~\\&|EHR_SIM|HOSP_EHR|BCMA_SIM|HOSP_BCMA|20250301100000-0500||ADT^A01^ADT_A01|EHR000001|P|2.6|||AL|NE\r" +
			"EVN|A01|20250301100000-0500\r" +
			"PID|||MRN4455^^^HOSP^MR||Testpatient^Alex^^^^^L||19700101|F\r" +
			"PV1||I|4W ICU^12^A\r" +
			"OBX|1|NM|29463-7^Body weight^LN||70|kg^kg^UCUM|||||F\r" +
			"OBX|2|NM|8302-2^Body height^LN||172|cm^cm^UCUM|||||F",
		Ack: "CA",
	},
	{Name: "rde-new", Raw: ehr.OrderCases[1].Raw, Ack: "CA"},
	{Name: "rde-pca", Raw: ehr.OrderCases[2].Raw, Ack: "CA"},
	{Name: "rde-discontinue-unknown", Raw: ehr.OrderCases[3].Raw, Ack: "AE", ErrCode: 204},
	{Name: "rde-bad-rate", Raw: ehr.OrderCases[4].Raw, Ack: "AE", ErrCode: 102},
	{Name: "omp-unsupported", Raw: ehr.OrderCases[0].Raw, Ack: "AR", ErrCode: 200},
	{
		Name: "rrg-unknown-msa2",
		Raw: "MSH|^~\\&|PUMPSRV_SIM^8899AABBCCDDEEFF^EUI-64|HOSP_BIOMED|BCMA_SIM^0011223344556677^EUI-64|HOSP_BCMA|20250301101503-0500||RRG^O16^RRG_O16|PS000552|P|2.6|||AL|NE|||||IHE_PCD_PIV_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.3.2^ISO\r" +
			"MSA|AR|BCMA000123\r" +
			"ERR|||207^Application internal error^HL70357|E|LIB-HARDMAX^Dose exceeds drug library hard limit^L",
		Ack: "CE", ErrCode: 204,
	},
	{
		Name: "rrg-bad-msa1",
		Raw: "MSH|^~\\&|PUMPSRV_SIM|HOSP_BIOMED|BCMA_SIM|HOSP_BCMA|20250301101503-0500||RRG^O16^RRG_O16|PS000553|P|2.6\r" +
			"MSA|OK|BCMA000123",
		Ack: "AE", ErrCode: 103,
	},
	{
		Name: "adt-a04-unsupported-event",
		Raw: "MSH|^~\\&|EHR_SIM|HOSP_EHR|BCMA_SIM|HOSP_BCMA|20250301100000-0500||ADT^A04^ADT_A01|EHR000005|P|2.6\r" +
			"EVN|A04\r" +
			"PID|||MRN1^^^HOSP^MR",
		Ack: "AR", ErrCode: 201,
	},
	{
		Name: "adt-missing-mrn",
		Raw: "MSH|^~\\&|EHR_SIM|HOSP_EHR|BCMA_SIM|HOSP_BCMA|20250301100000-0500||ADT^A08^ADT_A01|EHR000006|P|2.6\r" +
			"EVN|A08\r" +
			"PID|||^^^HOSP^MR||Doe^Jane",
		Ack: "AE", ErrCode: 101,
	},
}
