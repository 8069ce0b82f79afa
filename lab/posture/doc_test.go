package posture

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pumplab/pumplab/internal/doctest"
)

// TestDocs checks that docs/postures.md shows the Example's code and output
// and documents every control, weakness and parameter.
func TestDocs(t *testing.T) {
	doc := doctest.Doc(t, "../../docs/postures.md")
	doctest.ExampleShown(t, doc, "docs/postures.md", 1)
	nccoe, _ := builtinFS.ReadFile("postures/nccoe.yaml")
	if !strings.Contains(doc, string(nccoe)) {
		t.Error("docs/postures.md does not show postures/nccoe.yaml as it is")
	}
	for _, sec := range []reflect.Type{reflect.TypeOf(Controls{}), reflect.TypeOf(Weaknesses{})} {
		for j := 0; j < sec.NumField(); j++ {
			name := yamlName(sec.Field(j))
			if !strings.Contains(doc, "| `"+name+"` |") {
				t.Errorf("docs/postures.md has no table row for %s", name)
			}
			ft := sec.Field(j).Type
			for k := 1; k < ft.NumField(); k++ { // field 0 is enabled
				if p := yamlName(ft.Field(k)); !strings.Contains(doc, "`"+p+"`") {
					t.Errorf("docs/postures.md does not document %s.%s", name, p)
				}
			}
		}
	}
	for _, want := range []string{"lab/posture/postures/", "FuzzParse", "nccoe+order-crosscheck=off"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/postures.md does not mention %q", want)
		}
	}
}
