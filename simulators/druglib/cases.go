package druglib

import "strings"

// Case is one entry of the exported library-document case table: a document
// and the error Parse must give for it when named "case.yaml" ("" for a
// valid document). Parser tests, server tests and fuzz seeds share it.
type Case struct {
	Name  string
	Input string
	Err   string // substring of the expected error; "" = valid
}

// CaseBase is the valid document the broken cases of Cases are made from.
// Its line numbers are referred to by the expected errors.
const CaseBase = `version: LAB-1
care_areas:
  - name: ICU
    max_rate_ml_h: 999
    callback_min: 2
    kvo_rate_ml_h: 1
    weight_min_kg: 30
    weight_max_kg: 300
entries:
  - id: DRUG-1
    name: Drug one
    channels: [lvp]
    amount: 4
    amount_unit: mg
    volume_ml: 250
    dose_unit: mcg/kg/min
    dose: {soft_min: 0.01, soft_max: 0.5, hard_max: 1}
`

const casePCA = `  - id: PCA-1
    name: PCA drug
    channels: [pca]
    amount: 30
    amount_unit: mg
    volume_ml: 30
    dose_unit: mg/h
    pca:
      dose_soft_min: 0.5
      dose_soft_max: 2
      dose_hard_max: 3
      lockout_soft_min: 6
      lockout_soft_max: 60
      lockout_hard_min: 5
      hour_limit_max: 10
`

// caseEdit returns CaseBase with old replaced by new (old must occur).
func caseEdit(old, new string) string {
	if !strings.Contains(CaseBase, old) {
		panic("druglib: case table: " + old + " not in CaseBase")
	}
	return strings.Replace(CaseBase, old, new, 1)
}

// caseEdits applies caseEdit for each (old, new) pair in turn.
func caseEdits(pairs ...string) string {
	doc := CaseBase
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(doc, pairs[i]) {
			panic("druglib: case table: " + pairs[i] + " not in the document")
		}
		doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
	}
	return doc
}

// caseTwoAreas is CaseBase with a second care area (PACU) and entries[0]
// restricted to ICU; a second entry shares entries[0]'s id as a code.
func caseTwoAreas(secondAreas string) string {
	return caseEdits("entries:\n", "  - name: PACU\n    max_rate_ml_h: 500\n    callback_min: 5\n    kvo_rate_ml_h: 5\nentries:\n",
		"    channels: [lvp]\n", "    care_areas: [ICU]\n    channels: [lvp]\n") +
		"  - id: DRUG-1-PACU\n    codes: [drug-1]\n    name: Drug one (PACU)\n    care_areas: " + secondAreas + "\n    channels: [lvp]\n    dose_unit: mL/h\n"
}

// Cases is the library-document case table.
var Cases = []Case{
	{"valid", CaseBase, ""},
	{"valid json", `{"version":"LAB-1","care_areas":[{"name":"ICU","max_rate_ml_h":999,"callback_min":2,"kvo_rate_ml_h":1}],` +
		`"entries":[{"id":"NS","name":"Saline","channels":["lvp"],"dose_unit":"mL/h","dose":{"hard_max":999}}]}`, ""},
	{"valid pca", CaseBase + casePCA, ""},
	{"valid basic with concentration", caseEdit("dose_unit: mcg/kg/min", "dose_unit: mL/h"), ""},
	{"valid entry restricted to care area", caseEdit("    channels: [lvp]\n", "    care_areas: [icu]\n    channels: [lvp]\n"), ""},

	// Syntax and structure.
	{"yaml syntax", "version: [\n", "parse case.yaml: yaml: line"},
	{"empty document", "", "case.yaml: empty document"},
	{"second document", CaseBase + "---\nversion: LAB-2\n", "case.yaml:18: a second YAML document is not allowed"},
	{"not a mapping", "- a\n- b\n", "case.yaml:1: expected a mapping, got a list"},
	{"unknown top field", caseEdit("version: LAB-1\n", "version: LAB-1\ncolour: red\n"), "case.yaml:2: colour: unknown field"},
	{"unknown entry field", caseEdit("    name: Drug one\n", "    name: Drug one\n    strength: 4\n"), "case.yaml:12: entries[0].strength: unknown field"},
	{"unknown care area field", caseEdit("    callback_min: 2\n", "    callback_min: 2\n    pressure: high\n"), "case.yaml:6: care_areas[0].pressure: unknown field"},
	{"duplicate key", caseEdit("    name: Drug one\n", "    name: Drug one\n    name: Drug two\n"), "case.yaml:12: entries[0].name: field set twice (first on line 11)"},
	{"alias", caseEdit("    channels: [lvp]\n", "    channels: &ch [lvp]\n    care_areas: *ch\n"), "case.yaml:13: entries[0].care_areas: YAML aliases are not supported"},
	{"number expected", caseEdit("hard_max: 1}", "hard_max: high}"), `case.yaml:17: entries[0].dose.hard_max: expected a number, got "high"`},
	{"not finite", caseEdit("hard_max: 1}", "hard_max: .inf}"), `case.yaml:17: entries[0].dose.hard_max: ".inf" is not a finite number`},
	{"bool expected", caseEdit("    name: Drug one\n", "    name: Drug one\n    high_alert: yes\n"), `case.yaml:12: entries[0].high_alert: expected true or false, got "yes"`},
	{"list expected", caseEdit("channels: [lvp]", "channels: lvp"), `case.yaml:12: entries[0].channels: expected a list, got "lvp"`},
	{"string expected", caseEdit("name: Drug one", "name: {first: Drug}"), "case.yaml:11: entries[0].name: expected a string, got a mapping"},

	// Library fields.
	{"missing version", strings.Replace(CaseBase, "version: LAB-1\n", "", 1), "case.yaml:1: version: missing"},
	{"bad version", caseEdit("version: LAB-1", "version: LAB 1"), `case.yaml:1: version: "LAB 1" must be`},
	{"reserved version", caseEdit("version: LAB-1", "version: current"), `case.yaml:1: version: "current" is reserved`},
	{"no care areas", "version: LAB-1\ncare_areas: []\n", "case.yaml:2: care_areas: at least one care area is needed"},

	// Care areas.
	{"duplicate care area", caseEdit("entries:\n", "  - name: icu\n    max_rate_ml_h: 500\n    callback_min: 5\n    kvo_rate_ml_h: 5\nentries:\n"), `case.yaml:9: care_areas[1].name: duplicate care area "icu" (care_areas[0])`},
	{"zero max rate", caseEdit("max_rate_ml_h: 999", "max_rate_ml_h: 0"), "case.yaml:4: care_areas[0].max_rate_ml_h: 0 must be greater than 0"},
	{"negative callback", caseEdit("callback_min: 2", "callback_min: -2"), "case.yaml:5: care_areas[0].callback_min: -2 must be greater than 0"},
	{"missing kvo", caseEdit("    kvo_rate_ml_h: 1\n", ""), "case.yaml:3: care_areas[0].kvo_rate_ml_h: 0 must be greater than 0"},
	{"kvo above max", caseEdit("kvo_rate_ml_h: 1", "kvo_rate_ml_h: 1000"), "case.yaml:6: care_areas[0].kvo_rate_ml_h: 1000 is above max_rate_ml_h 999"},
	{"weight bounds reversed", caseEdit("weight_max_kg: 300", "weight_max_kg: 20"), "case.yaml:8: care_areas[0].weight_max_kg: 20 is below weight_min_kg 30"},

	// Entries.
	{"missing entry name", caseEdit("    name: Drug one\n", ""), "case.yaml:10: entries[0].name: missing"},
	{"duplicate id", CaseBase + "  - id: drug-1\n    name: Drug two\n    channels: [lvp]\n    dose_unit: mL/h\n", `case.yaml:18: entries[1].id: duplicate id "drug-1" (entries[0])`},
	{"hl7 delimiter in id", caseEdit("id: DRUG-1", "id: DRUG^1"), `case.yaml:10: entries[0].id: "DRUG^1" contains whitespace or an HL7 delimiter`},
	{"valid shared code in separate care areas", caseTwoAreas("[PACU]"), ""},
	{"code shared in one care area", caseTwoAreas("[PACU, icu]"), `case.yaml:24: entries[1].codes[0]: code "drug-1" also matches entries[0] in care area icu`},
	{"ambiguous code", CaseBase + "  - id: DRUG-2\n    codes: [X1, drug-1]\n    name: Drug two\n    channels: [lvp]\n    dose_unit: mL/h\n", `case.yaml:19: entries[1].codes[1]: code "drug-1" also matches entries[0] in every care area`},
	{"unknown care area", caseEdit("    channels: [lvp]\n", "    care_areas: [ICU, PACU]\n    channels: [lvp]\n"), `case.yaml:12: entries[0].care_areas[1]: unknown care area "PACU"`},
	{"no channel", caseEdit("    channels: [lvp]\n", ""), "case.yaml:10: entries[0].channels: at least one channel"},
	{"bad channel", caseEdit("channels: [lvp]", "channels: [lvp, iv]"), `case.yaml:12: entries[0].channels[1]: unknown channel "iv"`},
	{"channel twice", caseEdit("channels: [lvp]", "channels: [lvp, syringe, lvp]"), `case.yaml:12: entries[0].channels[2]: channel "lvp" listed twice`},
	{"unknown dose unit", caseEdit("dose_unit: mcg/kg/min", "dose_unit: mcg/kg/hr"), `case.yaml:16: entries[0].dose_unit: unknown dose unit "mcg/kg/hr"`},
	{"missing dose unit", caseEdit("    dose_unit: mcg/kg/min\n", ""), "case.yaml:10: entries[0].dose_unit: missing"},
	{"unknown amount unit", caseEdit("amount_unit: mg", "amount_unit: grains"), `case.yaml:14: entries[0].amount_unit: unknown amount unit "grains"`},
	{"partial concentration", caseEdit("    volume_ml: 250\n", ""), "case.yaml:10: entries[0].volume_ml: missing: amount, amount_unit and volume_ml must be set together"},
	{"no concentration", caseEdit("    amount: 4\n    amount_unit: mg\n    volume_ml: 250\n", ""), "case.yaml:10: entries[0].amount: missing: dose unit mcg/kg/min needs a concentration"},
	{"unit mismatch", caseEdit("dose_unit: mcg/kg/min", "dose_unit: units/h"), "case.yaml:16: entries[0].dose_unit: units/h does not fit amount unit mg"},
	{"negative volume", caseEdit("volume_ml: 250", "volume_ml: -250"), "case.yaml:15: entries[0].volume_ml: -250 is negative"},
	{"hard max below soft max", caseEdit("soft_max: 0.5, hard_max: 1", "soft_max: 1, hard_max: 0.5"), "case.yaml:17: entries[0].dose.hard_max: 0.5 is below soft_max 1"},
	{"soft max below soft min", caseEdit("soft_min: 0.01, soft_max: 0.5", "soft_min: 0.6, soft_max: 0.5"), "case.yaml:17: entries[0].dose.soft_max: 0.5 is below soft_min 0.6"},
	{"soft min below hard min", caseEdit("{soft_min: 0.01,", "{hard_min: 0.02, soft_min: 0.01,"), "case.yaml:17: entries[0].dose.soft_min: 0.01 is below hard_min 0.02"},
	{"hard max below hard min", caseEdit("{soft_min: 0.01, soft_max: 0.5,", "{hard_min: 2,"), "case.yaml:17: entries[0].dose.hard_max: 1 is below hard_min 2"},
	{"negative limit", caseEdit("soft_min: 0.01", "soft_min: -0.01"), "case.yaml:17: entries[0].dose.soft_min: -0.01 is negative"},

	// PCA.
	{"pca limits without pca channel", CaseBase + strings.Replace(casePCA, "channels: [pca]", "channels: [syringe]", 1), "case.yaml:20: entries[1].channels: entry has pca limits but no pca channel"},
	{"pca channel without limits", CaseBase + casePCA[:strings.Index(casePCA, "    pca:")], "case.yaml:18: entries[1].pca: missing: channel pca needs pca limits"},
	{"pca lockout order", CaseBase + strings.Replace(casePCA, "lockout_hard_min: 5", "lockout_hard_min: 8", 1), "case.yaml:29: entries[1].pca.lockout_soft_min: 6 is below lockout_hard_min 8"},
	{"pca dose order", CaseBase + strings.Replace(casePCA, "dose_hard_max: 3", "dose_hard_max: 1.5", 1), "case.yaml:28: entries[1].pca.dose_hard_max: 1.5 is below dose_soft_max 2"},
	{"pca no hour limit", CaseBase + strings.Replace(casePCA, "      hour_limit_max: 10\n", "", 1), "case.yaml:25: entries[1].pca.hour_limit_max: missing"},
	{"pca no concentration", CaseBase + strings.Replace(casePCA, "    amount: 30\n    amount_unit: mg\n    volume_ml: 30\n", "", 1), "case.yaml:22: entries[1].pca: pca entries need a concentration"},
}
