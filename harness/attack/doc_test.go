package attack

import (
	"os"
	"strings"
	"testing"
)

// TestDocExample checks that docs/attack-toolkit.md shows the Example's
// code and its verified output.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/attack-toolkit.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	body := s[strings.Index(s, "func Example() {"):]
	i := strings.Index(body, "\t// Output:")
	if i < 0 {
		t.Fatal("example has no Output")
	}
	code := strings.TrimRight(body[:i], "\n\t ") + "\n}"
	if !strings.Contains(string(doc), "```go\n"+code+"\n```") {
		t.Error("docs/attack-toolkit.md does not show the code of Example")
	}
	var out []string
	for _, l := range strings.Split(body[i:], "\n")[1:] {
		if !strings.HasPrefix(l, "\t// ") {
			break
		}
		out = append(out, strings.TrimPrefix(l, "\t// "))
	}
	if len(out) < 3 || !strings.Contains(string(doc), "```\n"+strings.Join(out, "\n")+"\n```") {
		t.Error("docs/attack-toolkit.md does not show the output of Example")
	}
	for _, want := range []string{"ErrRefused", "AddLab", "MaxFloodCount", "100,000", "60 s", "before", "FuzzMQTTPacket"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/attack-toolkit.md does not mention %q", want)
		}
	}
}
