package posture

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestDocs checks that docs/postures.md shows the Example's code and output
// and documents every control, weakness and parameter.
func TestDocs(t *testing.T) {
	raw, err := os.ReadFile("../../docs/postures.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	body := s[strings.Index(s, "func Example() {"):]
	i := strings.Index(body, "\t// Output:")
	code := strings.TrimRight(body[:i], "\n\t ") + "\n}"
	if !strings.Contains(doc, "```go\n"+code+"\n```") {
		t.Error("docs/postures.md does not show the code of Example")
	}
	var out []string
	for _, l := range strings.Split(body[i:], "\n")[1:] {
		if !strings.HasPrefix(l, "\t// ") {
			break
		}
		out = append(out, strings.TrimPrefix(l, "\t// "))
	}
	if !strings.Contains(doc, "```\n"+strings.Join(out, "\n")+"\n```") {
		t.Error("docs/postures.md does not show the output of Example")
	}
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
