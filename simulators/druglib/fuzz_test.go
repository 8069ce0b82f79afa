package druglib

import (
	"encoding/json"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the library decoders (Parse for YAML
// and JSON, ParseJSON for HTTP bodies). They must never panic, and a
// library either accepts must survive a JSON round trip with the same hash.
func FuzzParse(f *testing.F) {
	for _, c := range Cases {
		f.Add([]byte(c.Input))
	}
	f.Add(DefaultYAML())
	if b, err := json.Marshal(Default()); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, parse := range map[string]func([]byte) (*Library, error){
			"Parse":     func(d []byte) (*Library, error) { return Parse(d, "fuzz.yaml") },
			"ParseJSON": ParseJSON,
		} {
			lib, err := parse(data)
			if err != nil {
				if lib != nil {
					t.Fatalf("%s returned a library with error %v", name, err)
				}
				continue
			}
			if err := lib.Validate(); err != nil {
				t.Fatalf("%s accepted an invalid library: %v", name, err)
			}
			h := lib.Hash()
			if h == "" {
				t.Fatalf("%s accepted a library that does not hash", name)
			}
			enc, err := json.Marshal(lib)
			if err != nil {
				t.Fatalf("%s: marshal accepted library: %v", name, err)
			}
			back, err := ParseJSON(enc)
			if err != nil {
				t.Fatalf("%s: re-encoded library refused: %v\n%s", name, err, enc)
			}
			if back.Hash() != h {
				t.Fatalf("%s: hash changed over a JSON round trip\n%s", name, enc)
			}
		}
	})
}
