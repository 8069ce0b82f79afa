package pki

import (
	"os"
	"strings"
	"testing"
)

// TestDocs checks that docs/pki.md shows the Example's code and output.
func TestDocs(t *testing.T) {
	raw, err := os.ReadFile("../../docs/pki.md")
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
		t.Error("docs/pki.md does not show the code of Example")
	}
	var out []string
	for _, l := range strings.Split(body[i:], "\n")[1:] {
		if !strings.HasPrefix(l, "\t// ") {
			break
		}
		out = append(out, strings.TrimPrefix(l, "\t// "))
	}
	if !strings.Contains(doc, "```\n"+strings.Join(out, "\n")+"\n```") {
		t.Error("docs/pki.md does not show the output of Example")
	}
	for _, want := range []string{"ca.pem", "crl.pem", "-key.pem", "0600", "RequireAndVerifyClientCert", "crypto/rand", "ErrRevoked"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/pki.md does not mention %q", want)
		}
	}
}
