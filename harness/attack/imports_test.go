package attack

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestNoTestFrameworkImports: helpers return errors, specs assert. The
// toolkit's non-test files import no Ginkgo or Gomega.
func TestNoTestFrameworkImports(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		n++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/onsi/") || path == "testing" {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
	if n < 5 {
		t.Fatalf("checked %d files", n)
	}
}
