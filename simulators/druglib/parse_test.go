package druglib

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var lineRE = regexp.MustCompile(`^druglib: case\.yaml:(\d+): `)

func TestParseCases(t *testing.T) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			lib, err := Parse([]byte(c.Input), "case.yaml")
			if c.Err == "" {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				if lib == nil || lib.Version == "" {
					t.Fatalf("valid document gave %+v", lib)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want error containing %q", c.Err)
			}
			if !strings.Contains(err.Error(), c.Err) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, c.Err)
			}
			// Where the case names a line, the structured error carries it.
			if m := lineRE.FindStringSubmatch("druglib: " + c.Err); m != nil {
				want, _ := strconv.Atoi(m[1])
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("error %T is not a *ValidationError", err)
				}
				var fe *FieldError
				for _, p := range ve.Problems {
					if strings.Contains(p.Error(), c.Err) {
						fe = p
					}
				}
				if fe == nil || fe.Line != want || fe.File != "case.yaml" {
					t.Fatalf("no problem at case.yaml:%d in %#v", want, ve.Problems)
				}
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	doc := caseEdit("max_rate_ml_h: 999", "max_rate_ml_h: 0")
	doc = strings.Replace(doc, "channels: [lvp]", "channels: [iv]", 1)
	_, err := Parse([]byte(doc), "two.yaml")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T), want *ValidationError", err, err)
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.Field+"@"+strconv.Itoa(p.Line))
	}
	want := []string{"care_areas[0].max_rate_ml_h@4", "entries[0].channels[0]@12"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems %v, want %v", got, want)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 2 {
		t.Fatalf("error text has %d lines, want 2:\n%v", len(lines), err)
	}
}

func TestParseCapsProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString(CaseBase)
	for i := 0; i < 70; i++ {
		b.WriteString("  - id: X" + strconv.Itoa(i) + "\n    name: x\n    channels: [bogus]\n    dose_unit: mL/h\n")
	}
	_, err := Parse([]byte(b.String()), "many.yaml")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v, want *ValidationError", err)
	}
	if len(ve.Problems) != maxProblems || ve.Omitted != 70-maxProblems {
		t.Fatalf("%d problems, %d omitted; want %d and %d", len(ve.Problems), ve.Omitted, maxProblems, 70-maxProblems)
	}
	if !strings.HasSuffix(err.Error(), "and 20 more problems") {
		t.Fatalf("error does not end with the omitted count: ...%s", err.Error()[len(err.Error())-60:])
	}
}

func TestLoadNamesThePath(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(CaseBase), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(caseEdit("hard_max: 1}", "hard_max: 0.2}")), 0o644); err != nil {
		t.Fatal(err)
	}
	lib, err := Load(good)
	if err != nil || lib.Version != "LAB-1" || len(lib.Entries) != 1 || lib.Entries[0].Dose.HardMax != 1 {
		t.Fatalf("Load(good) = %+v, %v", lib, err)
	}
	_, err = Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad+":17: entries[0].dose.hard_max: 0.2 is below soft_max 0.5") {
		t.Fatalf("Load(bad) error = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.HasPrefix(err.Error(), "druglib: load:") {
		t.Fatalf("Load(missing) error = %v", err)
	}
}

func TestParseDecodesEveryField(t *testing.T) {
	lib, err := Parse([]byte(CaseBase+casePCA), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Library{
		Version:   "LAB-1",
		CareAreas: []CareArea{{Name: "ICU", MaxRateMLH: 999, CallbackMin: 2, KVORateMLH: 1, WeightMinKg: 30, WeightMaxKg: 300}},
		Entries: []Entry{
			{ID: "DRUG-1", Name: "Drug one", Channels: []string{"lvp"}, Amount: 4, AmountUnit: "mg", VolumeML: 250,
				DoseUnit: "mcg/kg/min", Dose: Limits{SoftMin: 0.01, SoftMax: 0.5, HardMax: 1}},
			{ID: "PCA-1", Name: "PCA drug", Channels: []string{"pca"}, Amount: 30, AmountUnit: "mg", VolumeML: 30,
				DoseUnit: "mg/h", PCA: &PCALimits{DoseSoftMin: 0.5, DoseSoftMax: 2, DoseHardMax: 3,
					LockoutSoftMin: 6, LockoutSoftMax: 60, LockoutHardMin: 5, HourLimitMax: 10}},
		},
	}
	if !reflect.DeepEqual(lib, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", lib, want)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	lib := Default()
	data, err := json.Marshal(lib)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseJSON(data)
	if err != nil {
		t.Fatalf("ParseJSON of marshalled default: %v", err)
	}
	if !reflect.DeepEqual(back, lib) {
		t.Fatal("JSON round trip changed the library")
	}
	// The YAML parser reads the same JSON with the same result.
	viaYAML, err := Parse(data, "default.json")
	if err != nil {
		t.Fatalf("Parse of JSON: %v", err)
	}
	if viaYAML.Hash() != lib.Hash() {
		t.Fatal("Parse(JSON) hashes differently from the original")
	}
}

func TestParseJSONRefuses(t *testing.T) {
	for name, c := range map[string]struct{ in, want string }{
		"unknown field": {`{"version":"A","care_areas":[],"entries":[],"extra":1}`, `unknown field "extra"`},
		"trailing":      {`{"version":"A"} {}`, "trailing data"},
		"invalid":       {`{"version":"A","care_areas":[{"name":"ICU","max_rate_ml_h":-1,"callback_min":2,"kvo_rate_ml_h":1}]}`, "druglib: care_areas[0].max_rate_ml_h: -1 must be greater than 0"},
		"wrong type":    {`{"version":1}`, "cannot unmarshal number"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseJSON([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestValidateInMemoryNamesFieldWithoutLine(t *testing.T) {
	lib := Default()
	lib.Entries[2].Dose.HardMax = 0.1
	err := lib.Validate()
	want := "druglib: entries[2].dose.hard_max: 0.1 is below soft_max 20"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	if (*Library)(nil).Validate() == nil {
		t.Fatal("nil library validated")
	}
}
