package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/pumplab/pumplab"

type pkg struct {
	ImportPath string
	Doc        string
	Deps       []string
	Name       string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(out)
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func under(path, dir string) bool {
	full := module + "/" + dir
	return path == full || strings.HasPrefix(path, full+"/")
}

// rule forbids packages under From to depend (transitively) on packages
// matching Forbid, for the stated reason.
type rule struct {
	From   string
	Forbid func(dep string) bool
	Except func(pkg string) bool
	Why    string
}

var rules = []rule{
	{From: "simulators", Forbid: func(d string) bool { return under(d, "lab") || under(d, "harness") || under(d, "scenarios") },
		Why: "simulators are the hospital; they must not know about the lab, the harness or scenarios"},
	{From: "lab", Forbid: func(d string) bool { return under(d, "harness") || under(d, "scenarios") },
		Why: "lab brings a hospital up; scoring and scenarios build on it, not the other way round"},
	{From: "harness/score", Forbid: func(d string) bool { return strings.HasPrefix(d, "github.com/onsi/") },
		Why: "scoring is a pure model: no Ginkgo, no Gomega"},
	{From: "harness/report", Forbid: func(d string) bool { return strings.HasPrefix(d, "github.com/onsi/") },
		Why: "reports are a pure model: no Ginkgo, no Gomega"},
	{From: "harness/compare", Forbid: func(d string) bool { return strings.HasPrefix(d, "github.com/onsi/") },
		Why: "regression gating reads scorecards: no Ginkgo, no Gomega"},
	{From: "scenarios", Forbid: func(d string) bool {
		for _, s := range []string{"pump", "pumpserver", "alarms", "emar", "ehr"} {
			if under(d, "simulators/"+s) {
				return true
			}
		}
		return false
	}, Why: "scenarios use harness and lab APIs (and the protocol packages hl7, pumpwire, druglib), never a simulator's internals"},
	{From: "", Forbid: func(d string) bool { return under(d, "lab/inproc") || under(d, "lab/containers") },
		Except: func(p string) bool { return under(p, "cmd") || under(p, "lab/inproc") || under(p, "lab/containers") },
		Why:    "only cmd/ and suite entry points (test files) choose a provider"},
}

func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		p, deps := f[0], f[1:]
		for _, r := range rules {
			if r.From != "" && !under(p, r.From) {
				continue
			}
			if r.Except != nil && r.Except(p) {
				continue
			}
			checked++
			for _, d := range deps {
				if r.Forbid(d) {
					t.Errorf("%s depends on %s: %s", p, d, r.Why)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package was checked against any rule")
	}
}

func TestForbiddenDependencyIsCaught(t *testing.T) {
	// The rule table itself must flag a simulator importing the harness.
	bad := module + "/harness"
	if !rules[0].Forbid(bad) {
		t.Fatal("rule for simulators does not forbid harness")
	}
	if rules[2].Forbid(module + "/clock") {
		t.Fatal("score rule forbids an allowed package")
	}
}

func TestEveryPackageHasDocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment (// Package %s ... or // Command ...)", p.ImportPath, p.Name)
		}
	}
}
