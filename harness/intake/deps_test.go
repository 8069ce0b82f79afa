package intake

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoGinkgo keeps the intake free of Ginkgo and Gomega: the harness
// adapts it, not the other way round.
func TestNoGinkgo(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if strings.Contains(imp.Path.Value, "github.com/onsi/") {
				t.Errorf("%s imports %s", f, imp.Path.Value)
			}
		}
	}
	if _, err := exec.LookPath("go"); err != nil {
		return
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	if strings.Contains(string(out), "github.com/onsi/") {
		t.Errorf("intake depends on Ginkgo or Gomega:\n%s", out)
	}
}
