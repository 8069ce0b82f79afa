// Package doctest checks that a Markdown document shows a package's runnable
// Example: its code in a ```go block and its verified output in a plain
// block, so that the docs cannot drift from code that compiles and runs.
package doctest

import (
	"os"
	"strings"
	"testing"
)

// Doc reads the document at path (relative to the test's package).
func Doc(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ExampleShown checks that doc shows the code and the output of
// `func Example()` in the package's example_test.go, with at least minOut
// output lines. It returns the output lines.
func ExampleShown(t testing.TB, doc, docName string, minOut int) []string {
	t.Helper()
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	start := strings.Index(s, "func Example() {")
	if start < 0 {
		t.Fatal("example_test.go has no func Example()")
	}
	body := s[start:]
	i := strings.Index(body, "\t// Output:")
	if i < 0 {
		t.Fatal("Example has no Output")
	}
	code := strings.TrimRight(body[:i], "\n\t ") + "\n}"
	if !strings.Contains(doc, "```go\n"+code+"\n```") {
		t.Errorf("%s does not show the code of Example", docName)
	}
	var out []string
	for _, l := range strings.Split(body[i:], "\n")[1:] {
		if !strings.HasPrefix(l, "\t// ") {
			break
		}
		out = append(out, strings.TrimPrefix(l, "\t// "))
	}
	if len(out) < minOut {
		t.Fatalf("parsed %d output lines of Example, want at least %d", len(out), minOut)
	}
	if !strings.Contains(doc, "```\n"+strings.Join(out, "\n")+"\n```") {
		t.Errorf("%s does not show the output of Example", docName)
	}
	return out
}

// Mentions checks that doc mentions every string of want.
func Mentions(t testing.TB, doc, docName string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(doc, w) {
			t.Errorf("%s does not mention %q", docName, w)
		}
	}
}
