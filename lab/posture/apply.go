package posture

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Apply returns a copy of p with the overrides applied in order (a later
// one wins). An override is
//
//	NAME=on|off           switch a control or weakness (true/false work too)
//	NAME.PARAM=VALUE      set one parameter; VALUE is YAML: 10, 2.5, 30s, false, [mqtt]
//
// The copy's Name is p.Name followed by "+OVERRIDE" for each override
// (nccoe+order-crosscheck=off) and its Overrides lists them, so a scorecard
// that records the Name records the exact posture. The copy is validated:
// an unknown name or value, or a broken dependency (pki=off while mtls-mqtt
// stays on), is an error that says what to do.
func (p *Posture) Apply(overrides []string) (*Posture, error) {
	out := p.Clone()
	for _, o := range overrides {
		norm, err := out.apply1(o)
		if err != nil {
			return nil, err
		}
		out.Name += "+" + norm
		out.Overrides = append(out.Overrides, norm)
	}
	if err := out.validateOverrides(); err != nil {
		return nil, err
	}
	return out, nil
}

// validateOverrides validates a posture made by Apply, naming it in the
// problems.
func (p *Posture) validateOverrides() error {
	err := p.Validate()
	var ve *ValidationError
	if errors.As(err, &ve) {
		for _, pr := range ve.Problems {
			pr.File = p.Name
		}
	}
	return err
}

func (p *Posture) apply1(o string) (string, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("posture: --control %s: %s", o, fmt.Sprintf(format, args...))
	}
	key, val, ok := strings.Cut(strings.TrimSpace(o), "=")
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	if !ok || key == "" {
		return "", fail("want NAME=on|off or NAME.PARAM=VALUE")
	}
	name, param, hasParam := strings.Cut(key, ".")
	f, found := lookup(name)
	if !found {
		return "", fail("unknown control %q (controls: %s; weaknesses: %s)", name,
			strings.Join(ControlNames(), ", "), strings.Join(WeaknessNames(), ", "))
	}
	sv := p.value(f)
	if !hasParam {
		var on bool
		switch strings.ToLower(val) {
		case "on", "true":
			on = true
		case "off", "false":
		default:
			return "", fail("value %q must be on or off", val)
		}
		sv.FieldByName("Enabled").SetBool(on)
		if on {
			return name + "=on", nil
		}
		return name + "=off", nil
	}
	t := sv.Type()
	var params []string
	idx := -1
	for i := 0; i < t.NumField(); i++ {
		n := yamlName(t.Field(i))
		params = append(params, n)
		if n == param {
			idx = i
		}
	}
	if idx < 0 {
		return "", fail("%s has no parameter %q (parameters: %s)", name, param, strings.Join(params, ", "))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(val), &doc); err != nil {
		return "", fail("value %q is not valid YAML: %s", val, yamlErrMsg(err))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return "", fail("missing value")
	}
	field := f.section + "." + name + "." + param
	d := &decoder{lines: map[string]int{}}
	nv := reflect.New(sv.Field(idx).Type()).Elem()
	d.decode(doc.Content[0], nv, field)
	if len(d.errs) > 0 {
		d.errs[0].Line = 0
		return "", fail("%s", d.errs[0].Error())
	}
	sv.Field(idx).Set(nv)
	return name + "." + param + "=" + val, nil
}

// The built-in postures. Their canonical files are lab/posture/postures/*.yaml
// (there is no second copy at the repository root).
//
//go:embed postures/*.yaml
var builtinFS embed.FS

// Names returns the names of the built-in postures, sorted.
func Names() []string {
	entries, err := fs.ReadDir(builtinFS, "postures")
	if err != nil {
		panic(fmt.Sprintf("posture: embedded postures: %v", err))
	}
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Builtin returns a fresh copy of the built-in posture called name.
func Builtin(name string) (*Posture, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("posture: builtin %q: unknown (built-in: %s)", name, strings.Join(Names(), ", "))
	}
	file := path.Join("postures", name+".yaml")
	data, err := builtinFS.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("posture: builtin %q: unknown (built-in: %s)", name, strings.Join(Names(), ", "))
	}
	p, err := Parse(data, "lab/posture/"+file)
	if err != nil {
		return nil, err
	}
	p.Source = "builtin:" + name
	return p, nil
}

// Resolve returns the built-in posture called ref, or else loads ref as a
// file path: what a --posture flag accepts. A ref with a path separator or
// a .yaml/.yml/.json extension is always a file.
func Resolve(ref string) (*Posture, error) {
	isFile := strings.ContainsAny(ref, `/\`) || strings.HasSuffix(ref, ".yaml") ||
		strings.HasSuffix(ref, ".yml") || strings.HasSuffix(ref, ".json")
	if !isFile {
		p, err := Builtin(ref)
		if err == nil {
			return p, nil
		}
		if _, statErr := os.Stat(ref); statErr != nil {
			return nil, err
		}
	}
	return Load(ref)
}
