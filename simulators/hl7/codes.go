package hl7

import (
	"strconv"
	"strings"
)

// Code is an IEEE 11073-10101 (MDC) nomenclature code: the context-free
// numeric code and its reference ID. It is written code^ref^MDC.
type Code struct {
	Code int
	Ref  string
}

// Field returns code^ref^MDC (a code of 0 is written as "0": pending codes).
func (c Code) Field() Field { return C(strconv.Itoa(c.Code), c.Ref, "MDC") }

// Matches reports whether a CWE field names this code: by reference ID when
// both have one, otherwise by numeric code.
func (c Code) Matches(f Field) bool {
	if ref := f.Comp(2); ref != "" && c.Ref != "" {
		return ref == c.Ref
	}
	n, err := strconv.Atoi(f.Comp(1))
	return err == nil && n != 0 && n == c.Code
}

// MDC codes used by the lab (REFERENCE.md §4.7). Codes reported as pending
// (0) in the IHE documents are matched by reference ID.
var (
	MDCPumpMDS          = Code{69985, "MDC_DEV_PUMP_INFUS_MDS"}
	MDCPumpVMD          = Code{69986, "MDC_DEV_PUMP_INFUS_VMD"}
	MDCPumpLVPMDS       = Code{70049, "MDC_DEV_PUMP_INFUS_LVP_MDS"}
	MDCPumpLVPVMD       = Code{70050, "MDC_DEV_PUMP_INFUS_LVP_VMD"}
	MDCPumpSyringeMDS   = Code{70053, "MDC_DEV_PUMP_INFUS_SYRINGE_MDS"}
	MDCPumpSyringeVMD   = Code{70054, "MDC_DEV_PUMP_INFUS_SYRINGE_VMD"}
	MDCChanSource       = Code{126977, "MDC_DEV_PUMP_INFUS_CHAN_SOURCE"}
	MDCChanDelivery     = Code{126978, "MDC_DEV_PUMP_INFUS_CHAN_DELIVERY"}
	MDCFlowPump         = Code{157784, "MDC_FLOW_FLUID_PUMP"}
	MDCFlowDrugDeliv    = Code{157804, "MDC_FLOW_DRUG_DELIV"}
	MDCVolFluidDeliv    = Code{157864, "MDC_VOL_FLUID_DELIV"}
	MDCVolInfusTotal    = Code{157948, "MDC_VOL_INFUS_ACTUAL_TOTAL"}
	MDCVolTBIRemain     = Code{157872, "MDC_VOL_FLUID_TBI_REMAIN"}
	MDCVolTBI           = Code{157884, "MDC_VOL_FLUID_TBI"}
	MDCTimeRemain       = Code{157916, "MDC_TIME_PD_REMAIN"}
	MDCRateDose         = Code{157924, "MDC_RATE_DOSE"}
	MDCConcDrug         = Code{157760, "MDC_CONC_DRUG"}
	MDCVolDelivTotal    = Code{157993, "MDC_VOL_FLUID_DELIV_TOTAL"}
	MDCVolContainer     = Code{157994, "MDC_VOL_FLUID_CONTAINER_START"}
	MDCPCADoseLimit     = Code{157985, "MDC_DOSE_PCA_LIMIT"}
	MDCPCAVolLimit      = Code{157986, "MDC_VOL_PCA_DOSE_LIMIT"}
	MDCPCALimitPeriod   = Code{157987, "MDC_TIME_PD_PCA_DOSE_LIMIT"}
	MDCPCAMaxDoses      = Code{157988, "MDC_RATE_PCA_MAX_DOSES_PER_HOUR"}
	MDCPCALockout       = Code{157989, "MDC_TIME_PCA_LOCKOUT"}
	MDCPumpMode         = Code{184504, "MDC_PUMP_MODE"}
	MDCPumpStat         = Code{184508, "MDC_PUMP_STAT"}
	MDCDrugLabel        = Code{184514, "MDC_DRUG_NAME_LABEL"}
	MDCLibCareArea      = Code{184516, "MDC_PUMP_DRUG_LIBRARY_CARE_AREA"}
	MDCLibVersion       = Code{184517, "MDC_PUMP_DRUG_LIBRARY_VERSION"}
	MDCInfusingStatus   = Code{184519, "MDC_PUMP_INFUSING_STATUS"}
	MDCPatWeight        = Code{68063, "MDC_ATTR_PT_WEIGHT"}
	MDCPatHeight        = Code{68060, "MDC_ATTR_PT_HEIGHT"}
	MDCPatBSA           = Code{188744, "MDC_AREA_BODY_SURF_ACTUAL"}
	MDCAlertSource      = Code{68480, "MDC_ATTR_ALERT_SOURCE"}
	MDCEventPhase       = Code{68481, "MDC_ATTR_EVENT_PHASE"}
	MDCAlarmState       = Code{68482, "MDC_ATTR_ALARM_STATE"}
	MDCInactivation     = Code{68483, "MDC_ATTR_ALARM_INACTIVATION_STATE"}
	MDCAlarmPriority    = Code{68484, "MDC_ATTR_ALARM_PRIORITY"}
	MDCAlertType        = Code{68485, "MDC_ATTR_ALERT_TYPE"}
	MDCEvtCond          = Code{0, "MDC_ATTR_EVT_COND"}
	MDCEvtAlarm         = Code{196616, "MDC_EVT_ALARM"}
	MDCEvtLineOccl      = Code{196940, "MDC_EVT_FLUID_LINE_OCCL"}
	MDCEvtPumpDelivStrt = Code{197288, "MDC_EVT_PUMP_DELIV_START"}
)

// Events is the table of event codes used in PCD-04 alerts (facet 1) and
// PCD-10 infusion events. Codes 0 are pending or unverified and are matched
// by reference ID; callers may append local codes.
var Events = []Code{
	// PCD-10 (IPEC) delivery events.
	MDCEvtPumpDelivStrt,
	{0, "MDC_EVT_PUMP_DELIV_STOP"},
	{0, "MDC_EVT_PUMP_DELIV_COMP"},
	{0, "MDC_EVT_PUMP_COMM_STATUS_CHANGE"},
	{0, "MDC_EVT_PUMP_PROG_CLEARED"},
	{0, "MDC_EVT_PUMP_AUTO_PROG_CLEARED"},
	{0, "MDC_EVT_PUMP_PATIENT_CHANGE"},
	{0, "MDC_EVT_PUMP_PATIENT_ID_CHANGE"},
	{0, "MDC_EVT_PUMP_PATIENT_PARAM_CHANGE"},
	{0, "MDC_EVT_PUMP_VOL_COUNTERS_CLEARED"},
	{0, "MDC_EVT_PUMP_DEVICE_TIME_CHANGED"},
	// PCD-04 alarms and advisories.
	MDCEvtAlarm,
	MDCEvtLineOccl,
	{196688, "MDC_EVT_OCCL"},
	{196634, "MDC_EVT_EMPTY"},
	{196630, "MDC_EVT_DISCONN"},
	{196660, "MDC_EVT_INOP"},
	{196802, "MDC_EVT_BATT_LO"},
	{196800, "MDC_EVT_BATT_FAIL"},
	{197206, "MDC_EVT_PUMP_FLOW_FREE"},
	{196842, "MDC_EVT_DOOR_OR_HANDLE_POSN_PROB"},
	{196860, "MDC_EVT_FLUID_LINE_PROB"},
	{202828, "MDC_EVT_STAT_DOOR_OPEN"},
	{202822, "MDC_EVT_STAT_AL_SILENCE"},
	{202752, "MDC_EVT_STAT_AL_OFF"},
	{203276, "MDC_EVT_ADVIS_SETTINGS_CHK"},
	{203320, "MDC_EVT_ADVIS_PUMP_SYRINGE_REPLACE_WARN"},
	{0, "MDC_EVT_FLUID_LINE_AIR"},
	{0, "MDC_EVT_FLUID_LINE_OCCL_PROXIMAL"},
	{0, "MDC_EVT_BATT_DEPL"},
	{0, "MDC_EVT_EMER_STOP"},
	{0, "MDC_EVT_FLOW_LO"},
	{0, "MDC_EVT_MALF"},
}

// EventByRef returns the event code with reference ID ref.
func EventByRef(ref string) (Code, bool) {
	for _, c := range Events {
		if c.Ref == ref {
			return c, true
		}
	}
	return Code{}, false
}

// EventByCode returns the event with numeric code n (n != 0).
func EventByCode(n int) (Code, bool) {
	if n == 0 {
		return Code{}, false
	}
	for _, c := range Events {
		if c.Code == n {
			return c, true
		}
	}
	return Code{}, false
}

// codeOf reads a CWE field as an MDC code, completing it from the Events
// table when only the code or only the reference ID is given.
func codeOf(f Field) Code {
	c := Code{Ref: f.Comp(2)}
	c.Code, _ = strconv.Atoi(f.Comp(1))
	if c.Ref == "" {
		if e, ok := EventByCode(c.Code); ok {
			return e
		}
	} else if c.Code == 0 {
		if e, ok := EventByRef(c.Ref); ok {
			return e
		}
	}
	return c
}

// Unit is one unit of measure: the lab's spelling (as in the drug library),
// its MDC code (0 when the lab only knows the UCUM form) and UCUM code.
type Unit struct {
	Lab  string // e.g. "mcg/kg/min"
	MDC  Code   // e.g. 265619 MDC_DIM_MICRO_G_PER_KG_PER_MIN
	UCUM string // e.g. "ug/kg/min"
}

// Units are the units the lab writes and reads (REFERENCE.md §4.7).
var Units = []Unit{
	{"mL", Code{263762, "MDC_DIM_MILLI_L"}, "mL"},
	{"mL/h", Code{265266, "MDC_DIM_MILLI_L_PER_HR"}, "mL/h"},
	{"mcg/kg/min", Code{265619, "MDC_DIM_MICRO_G_PER_KG_PER_MIN"}, "ug/kg/min"},
	{"g", Code{263872, "MDC_DIM_X_G"}, "g"},
	{"mg", Code{263890, "MDC_DIM_MILLI_G"}, "mg"},
	{"mcg", Code{263891, "MDC_DIM_MICRO_G"}, "ug"},
	{"kg", Code{263875, "MDC_DIM_KILO_G"}, "kg"},
	{"cm", Code{263441, "MDC_DIM_CENTI_M"}, "cm"},
	{"m2", Code{263616, "MDC_DIM_SQ_X_M"}, "m2"},
	{"mg/mL", Code{264306, "MDC_DIM_MILLI_G_PER_ML"}, "mg/mL"},
	{"min", Code{264352, "MDC_DIM_MIN"}, "min"},
	{"h", Code{264384, "MDC_DIM_HR"}, "h"},
	{"s", Code{264320, "MDC_DIM_X_SEC"}, "s"},
	{"units/h", Code{267840, "MDC_DIM_INTL_UNIT_PER_HR"}, "[iU]/h"},
	{"mg/min", Code{265490, "MDC_DIM_MILLI_G_PER_MIN"}, "mg/min"},
	{"mg/h", Code{265522, "MDC_DIM_MILLI_G_PER_HR"}, "mg/h"},
	{"mcg/min", Code{265491, "MDC_DIM_MICRO_G_PER_MIN"}, "ug/min"},
	{"mcg/h", Code{265523, "MDC_DIM_MICRO_G_PER_HR"}, "ug/h"},
	{"units", Code{}, "[iU]"},
	{"units/kg/h", Code{}, "[iU]/kg/h"},
	{"mEq", Code{}, "meq"},
	{"mEq/h", Code{}, "meq/h"},
	{"mcg/mL", Code{}, "ug/mL"},
	{"units/mL", Code{}, "[iU]/mL"},
	{"mEq/mL", Code{}, "meq/mL"},
	{"mg/kg/h", Code{}, "mg/kg/h"},
	{"mcg/kg/h", Code{}, "ug/kg/h"},
	{"mg/kg", Code{}, "mg/kg"},
	{"mcg/kg", Code{}, "ug/kg"},
}

// LookupUnit finds a unit by lab spelling, UCUM code, MDC reference ID or
// numeric MDC code (as text).
func LookupUnit(s string) (Unit, bool) {
	if s == "" {
		return Unit{}, false
	}
	n, _ := strconv.Atoi(s)
	for _, u := range Units {
		if u.Lab == s || u.UCUM == s || (u.MDC.Ref != "" && u.MDC.Ref == s) || (n != 0 && u.MDC.Code == n) {
			return u, true
		}
	}
	for _, u := range Units { // case-insensitive second pass (ML/H, mcg/KG/MIN)
		if strings.EqualFold(u.Lab, s) || strings.EqualFold(u.UCUM, s) {
			return u, true
		}
	}
	return Unit{}, false
}

// UnitField returns the CWE for a unit: code^MDC_REF^MDC when the unit has
// an MDC code, otherwise ucum^ucum^UCUM. Unknown spellings are written as
// given, tagged UCUM. "" gives an empty field.
func UnitField(unit string) Field {
	if unit == "" {
		return nil
	}
	u, ok := LookupUnit(unit)
	switch {
	case ok && u.MDC.Code != 0:
		return u.MDC.Field()
	case ok:
		return C(u.UCUM, u.UCUM, "UCUM")
	}
	return C(unit, unit, "UCUM")
}

// UnitUCUMField returns the UCUM form ucum^ucum^UCUM of a unit.
func UnitUCUMField(unit string) Field {
	if unit == "" {
		return nil
	}
	if u, ok := LookupUnit(unit); ok {
		return C(u.UCUM, u.UCUM, "UCUM")
	}
	return C(unit, unit, "UCUM")
}

// UnitOf reads a units CWE (MDC or UCUM, or a bare code) and returns the
// lab spelling; unknown units come back as written (identifier, else text).
func UnitOf(f Field) string {
	for _, s := range []string{f.Comp(2), f.Comp(1)} {
		if u, ok := LookupUnit(s); ok {
			return u.Lab
		}
	}
	if v := f.Comp(1); v != "" {
		return v
	}
	return f.Comp(2)
}
