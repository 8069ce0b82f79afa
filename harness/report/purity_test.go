package report

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestPurity: the package imports no Ginkgo or Gomega, and the only code
// that uses package os is the function Write.
func TestPurity(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		seen++
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range f.Imports {
			p := strings.Trim(im.Path.Value, `"`)
			if strings.Contains(p, "onsi/ginkgo") || strings.Contains(p, "onsi/gomega") {
				t.Errorf("%s imports %s", n, p)
			}
			for _, banned := range []string{"net/http", "os/exec", "io/ioutil"} {
				if p == banned {
					t.Errorf("%s imports %s", n, p)
				}
			}
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			ast.Inspect(fd, func(nd ast.Node) bool {
				sel, ok := nd.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "os" && !(fd.Recv == nil && fd.Name.Name == "Write") {
					t.Errorf("%s: %s uses os.%s outside Write", n, fd.Name.Name, sel.Sel.Name)
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && sel.Sel.Name == "Now" {
					t.Errorf("%s: %s calls time.Now", n, fd.Name.Name)
				}
				return true
			})
		}
	}
	if seen < 5 {
		t.Fatalf("only %d source files seen", seen)
	}
}
