package druglib

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// DoseUnits are the dose units an entry may use.
var DoseUnits = []string{
	"mL/h",
	"mg/h", "mg/min", "g/h",
	"mcg/min", "mcg/h",
	"mcg/kg/min", "mcg/kg/h", "mg/kg/h",
	"units/h", "units/kg/h", "milliunits/min",
	"mEq/h",
}

// AmountUnits are the units of a concentration's amount.
var AmountUnits = []string{"mcg", "mg", "g", "units", "mEq"}

// Channels are the channel types an entry may allow.
var Channels = []string{"lvp", "syringe", "pca"}

// ReservedVersions cannot be used as library versions: they are path
// segments of the HTTP API.
var ReservedVersions = []string{"current", "versions", "drafts"}

// maxProblems bounds the problems collected for one document.
const maxProblems = 50

var versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// FieldError is one problem in a library document.
type FieldError struct {
	File  string `json:"file,omitempty"`  // document name; empty when unknown
	Line  int    `json:"line,omitempty"`  // 1-based line; 0 when unknown (JSON, in-memory libraries)
	Field string `json:"field,omitempty"` // path of the field, e.g. entries[3].dose.hard_max (indexes from 0)
	Msg   string `json:"message"`
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("druglib: ")
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValidationError lists every problem found in a library (at most 50; the
// count of the others is in Omitted).
type ValidationError struct {
	Problems []*FieldError
	Omitted  int
}

func (e *ValidationError) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	for _, p := range e.Problems {
		lines = append(lines, p.Error())
	}
	if e.Omitted > 0 {
		lines = append(lines, fmt.Sprintf("druglib: and %d more problems", e.Omitted))
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so errors.As finds a *FieldError.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// problems collects up to maxProblems problems and counts the rest.
type problems struct {
	list    []*FieldError
	omitted int
}

func (ps *problems) add(p *FieldError) {
	if len(ps.list) >= maxProblems {
		ps.omitted++
		return
	}
	ps.list = append(ps.list, p)
}

func (ps *problems) full() bool { return len(ps.list) >= maxProblems }

func (ps *problems) withFile(name string) *ValidationError {
	for _, p := range ps.list {
		p.File = name
	}
	return ps.err()
}

func (ps *problems) err() *ValidationError {
	if len(ps.list) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps.list, Omitted: ps.omitted}
}

type validator struct{ ps problems }

func (v *validator) bad(field, format string, args ...any) {
	if v.ps.full() {
		v.ps.omitted++
		return
	}
	v.ps.add(&FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks a library's content (REFERENCE.md §5.3; rules in
// docs/druglib.md). It returns nil or a *ValidationError listing every
// problem with its field path.
func (l *Library) Validate() error {
	if l == nil {
		return &ValidationError{Problems: []*FieldError{{Msg: "no library"}}}
	}
	v := &validator{}
	v.library(l)
	if ve := v.ps.err(); ve != nil {
		return ve
	}
	return nil
}

func (v *validator) text(field, s string, required bool) {
	switch {
	case required && strings.TrimSpace(s) == "":
		v.bad(field, "missing")
	case !utf8.ValidString(s):
		v.bad(field, "not valid UTF-8")
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		v.bad(field, "control characters are not allowed")
	}
}

// code checks an identifier matched against HL7 RXG-4: no whitespace and
// no HL7 delimiter.
func (v *validator) code(field, s string) {
	switch {
	case s == "":
		v.bad(field, "missing")
	case !utf8.ValidString(s):
		v.bad(field, "not valid UTF-8")
	case strings.ContainsAny(s, "|^~\\& \t\r\n"):
		v.bad(field, "%q contains whitespace or an HL7 delimiter (|^~\\&)", s)
	case len(s) > 64:
		v.bad(field, "longer than 64 characters")
	}
}

func (v *validator) number(field string, x float64, positive bool) bool {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		v.bad(field, "%v is not a finite number", x)
	case positive && x <= 0:
		v.bad(field, "%g must be greater than 0", x)
	case x < 0:
		v.bad(field, "%g is negative", x)
	default:
		return true
	}
	return false
}

func (v *validator) library(l *Library) {
	switch {
	case l.Version == "":
		v.bad("version", "missing")
	case !versionRE.MatchString(l.Version):
		v.bad("version", "%q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", l.Version)
	case slices.ContainsFunc(ReservedVersions, func(r string) bool { return strings.EqualFold(r, l.Version) }):
		v.bad("version", "%q is reserved", l.Version)
	}
	v.text("created_by", l.CreatedBy, false)
	v.text("approved_by", l.ApprovedBy, false)

	if len(l.CareAreas) == 0 {
		v.bad("care_areas", "at least one care area is needed")
	}
	areas := map[string]int{}
	for i := range l.CareAreas {
		a := &l.CareAreas[i]
		p := fmt.Sprintf("care_areas[%d]", i)
		v.text(p+".name", a.Name, true)
		key := strings.ToLower(strings.TrimSpace(a.Name))
		if first, dup := areas[key]; dup && key != "" {
			v.bad(p+".name", "duplicate care area %q (care_areas[%d])", a.Name, first)
		} else {
			areas[key] = i
		}
		v.number(p+".max_rate_ml_h", a.MaxRateMLH, true)
		v.number(p+".callback_min", a.CallbackMin, true)
		if v.number(p+".kvo_rate_ml_h", a.KVORateMLH, true) && a.MaxRateMLH > 0 && a.KVORateMLH > a.MaxRateMLH {
			v.bad(p+".kvo_rate_ml_h", "%g is above max_rate_ml_h %g", a.KVORateMLH, a.MaxRateMLH)
		}
		okMin := v.number(p+".weight_min_kg", a.WeightMinKg, false)
		okMax := v.number(p+".weight_max_kg", a.WeightMaxKg, false)
		if okMin && okMax && a.WeightMaxKg > 0 && a.WeightMinKg > a.WeightMaxKg {
			v.bad(p+".weight_max_kg", "%g is below weight_min_kg %g", a.WeightMaxKg, a.WeightMinKg)
		}
	}

	ids := map[string]int{}
	for i := range l.Entries {
		e := &l.Entries[i]
		p := fmt.Sprintf("entries[%d]", i)
		v.code(p+".id", e.ID)
		key := strings.ToLower(e.ID)
		if first, dup := ids[key]; dup && key != "" {
			v.bad(p+".id", "duplicate id %q (entries[%d])", e.ID, first)
		} else {
			ids[key] = i
		}
		v.entry(e, p, areas)
	}
	v.ambiguousCodes(l)
}

func (v *validator) entry(e *Entry, p string, areas map[string]int) {
	v.text(p+".name", e.Name, true)
	v.text(p+".advisory", e.Advisory, false)
	for j, c := range e.Codes {
		v.code(fmt.Sprintf("%s.codes[%d]", p, j), c)
	}
	for j, a := range e.CareAreas {
		if _, ok := areas[strings.ToLower(strings.TrimSpace(a))]; !ok {
			v.bad(fmt.Sprintf("%s.care_areas[%d]", p, j), "unknown care area %q", a)
		}
	}
	if len(e.Channels) == 0 {
		v.bad(p+".channels", "at least one channel (lvp, syringe, pca) is needed")
	}
	for j, c := range e.Channels {
		f := fmt.Sprintf("%s.channels[%d]", p, j)
		if !slices.Contains(Channels, c) {
			v.bad(f, "unknown channel %q (want lvp, syringe or pca)", c)
		} else if slices.Index(e.Channels, c) < j {
			v.bad(f, "channel %q listed twice", c)
		}
	}

	// Concentration and dose unit.
	unitOK := slices.Contains(DoseUnits, e.DoseUnit)
	switch {
	case e.DoseUnit == "":
		v.bad(p+".dose_unit", "missing")
	case !unitOK:
		v.bad(p+".dose_unit", "unknown dose unit %q (want one of %s)", e.DoseUnit, strings.Join(DoseUnits, ", "))
	}
	amtOK := v.number(p+".amount", e.Amount, false)
	volOK := v.number(p+".volume_ml", e.VolumeML, false)
	if e.AmountUnit != "" && !slices.Contains(AmountUnits, e.AmountUnit) {
		v.bad(p+".amount_unit", "unknown amount unit %q (want one of %s)", e.AmountUnit, strings.Join(AmountUnits, ", "))
		amtOK = false
	}
	set := []bool{e.Amount != 0, e.AmountUnit != "", e.VolumeML != 0}
	names := []string{"amount", "amount_unit", "volume_ml"}
	hasConc := set[0] && set[1] && set[2]
	if !hasConc && slices.Contains(set, true) {
		for k := range set {
			if !set[k] {
				v.bad(p+"."+names[k], "missing: amount, amount_unit and volume_ml must be set together")
				break
			}
		}
	} else if !hasConc && unitOK && e.DoseUnit != "mL/h" {
		v.bad(p+".amount", "missing: dose unit %s needs a concentration (amount, amount_unit, volume_ml)", e.DoseUnit)
	}
	if hasConc && amtOK && volOK && unitOK && e.DoseUnit != "mL/h" {
		if _, err := DoseToRate(1, e.DoseUnit, e.Concentration(), e.AmountUnit, 70); err != nil {
			v.bad(p+".dose_unit", "%s does not fit amount unit %s", e.DoseUnit, e.AmountUnit)
		}
	}

	v.ordered(p+".dose", []string{"hard_min", "soft_min", "soft_max", "hard_max"},
		[]float64{e.Dose.HardMin, e.Dose.SoftMin, e.Dose.SoftMax, e.Dose.HardMax})

	hasPCAChannel := slices.Contains(e.Channels, "pca")
	switch {
	case e.PCA != nil && !hasPCAChannel:
		v.bad(p+".channels", "entry has pca limits but no pca channel")
	case e.PCA == nil && hasPCAChannel:
		v.bad(p+".pca", "missing: channel pca needs pca limits")
	}
	if e.PCA != nil {
		v.pca(e, p+".pca", hasConc)
	}
}

// ordered checks that the set (non-zero) values are non-negative and in
// non-decreasing order; each is compared with the closest set value before it.
func (v *validator) ordered(prefix string, names []string, vals []float64) {
	prev := -1
	for i, x := range vals {
		if !v.number(prefix+"."+names[i], x, false) {
			continue
		}
		if x == 0 {
			continue
		}
		if prev >= 0 && x < vals[prev] {
			v.bad(prefix+"."+names[i], "%g is below %s %g", x, names[prev], vals[prev])
		}
		prev = i
	}
}

func (v *validator) pca(e *Entry, p string, hasConc bool) {
	c := e.PCA
	if !hasConc {
		v.bad(p, "pca entries need a concentration (amount, amount_unit, volume_ml)")
	}
	if c.DoseHardMax == 0 {
		v.bad(p+".dose_hard_max", "missing")
	}
	if c.LockoutHardMin == 0 {
		v.bad(p+".lockout_hard_min", "missing")
	}
	if c.HourLimitMax == 0 {
		v.bad(p+".hour_limit_max", "missing")
	}
	v.ordered(p, []string{"dose_soft_min", "dose_soft_max", "dose_hard_max"},
		[]float64{c.DoseSoftMin, c.DoseSoftMax, c.DoseHardMax})
	v.ordered(p, []string{"lockout_hard_min", "lockout_soft_min", "lockout_soft_max"},
		[]float64{c.LockoutHardMin, c.LockoutSoftMin, c.LockoutSoftMax})
	v.ordered(p, []string{"hour_limit_max", "four_hour_max"}, []float64{c.HourLimitMax, c.FourHourMax})
}

// ambiguousCodes refuses a code (id or codes[]) that matches two entries
// usable in the same care area: Lookup would pick one silently. It runs in
// time linear in the number of (code, care area) pairs.
func (v *validator) ambiguousCodes(l *Library) {
	type first struct {
		entry int
		isID  bool
	}
	type codeUse struct {
		any   *first           // first entry using the code at all
		all   *first           // first entry using it in every care area
		areas map[string]first // care area (lower case) -> first entry using it there
	}
	uses := map[string]*codeUse{}
	for i := range l.Entries {
		e := &l.Entries[i]
		fields := append([]string{e.ID}, e.Codes...)
		for j, code := range fields {
			if code == "" {
				continue
			}
			isID := j == 0
			k := strings.ToLower(code)
			u := uses[k]
			if u == nil {
				u = &codeUse{areas: map[string]first{}}
				uses[k] = u
			}
			// Find a clash with an earlier entry.
			var clash *first
			where := ""
			if len(e.CareAreas) == 0 {
				if u.any != nil {
					clash = u.any
					if u.all == nil {
						where = l.Entries[u.any.entry].CareAreas[0]
					}
				}
			} else {
				for _, a := range e.CareAreas {
					if u.all != nil {
						clash, where = u.all, a
						break
					}
					if f, ok := u.areas[strings.ToLower(a)]; ok {
						clash, where = &f, a
						break
					}
				}
			}
			if clash != nil && clash.entry != i && !(isID && clash.isID) {
				field := fmt.Sprintf("entries[%d].id", i)
				if !isID {
					field = fmt.Sprintf("entries[%d].codes[%d]", i, j-1)
				}
				in := "every care area"
				if where != "" {
					in = "care area " + where
				}
				v.bad(field, "code %q also matches entries[%d] in %s", code, clash.entry, in)
			}
			// Register this use where no earlier one is recorded.
			me := first{i, isID}
			if u.any == nil {
				u.any = &me
			}
			if len(e.CareAreas) == 0 {
				if u.all == nil {
					u.all = &me
				}
				continue
			}
			for _, a := range e.CareAreas {
				if _, ok := u.areas[strings.ToLower(a)]; !ok {
					u.areas[strings.ToLower(a)] = me
				}
			}
		}
	}
}
