package posture

import (
	"reflect"
	"testing"
)

// FuzzParse feeds untrusted posture documents to Parse. A document Parse
// accepts must validate, marshal, and read back to the same posture.
func FuzzParse(f *testing.F) {
	for _, c := range Cases {
		f.Add([]byte(c.YAML))
	}
	for _, n := range Names() {
		data, err := builtinFS.ReadFile("postures/" + n + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if p != nil {
				t.Fatal("Parse returned a posture with an error")
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted posture does not validate: %v", err)
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		q, err := Parse(out, "fuzz.yaml")
		if err != nil {
			t.Fatalf("Parse(Marshal(p)): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip differs:\n%+v\n%+v", p, q)
		}
		_ = p.Enabled()
	})
}
