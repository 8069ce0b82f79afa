package druglib

import (
	_ "embed"
	"sync"
)

//go:embed default.yaml
var defaultYAML []byte

var defaultLib = sync.OnceValues(func() (*Library, error) { return Parse(defaultYAML, "default.yaml") })

// DefaultYAML returns the text of the default library (default.yaml).
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Default returns a copy of the lab's default library, version
// ADULT-2026.01: seven care areas and illustrative entries (REFERENCE.md
// §5.3) - lab data, not clinical guidance. The embedded file is validated on
// first use; a test keeps it valid.
func Default() *Library {
	lib, err := defaultLib()
	if err != nil {
		panic("druglib: embedded default.yaml is invalid: " + err.Error())
	}
	return lib.Clone()
}
