package attck

import (
	"regexp"
	"testing"
)

func TestTable(t *testing.T) {
	if len(Techniques) < 50 {
		t.Fatalf("only %d techniques", len(Techniques))
	}
	re := regexp.MustCompile(`^T0\d{3}$`)
	for id, name := range Techniques {
		if !re.MatchString(id) || name == "" {
			t.Errorf("bad entry %q %q", id, name)
		}
	}
	for _, id := range []string{"T0831", "T0855", "T0878", "T0836", "T0856"} {
		if err := CheckTechnique(id); err != nil {
			t.Error(err)
		}
	}
	for _, id := range []string{"T0001", "T1059", "t0831", ""} {
		if CheckTechnique(id) == nil {
			t.Errorf("%q accepted", id)
		}
	}
	if CheckTactic("TA0106") != nil || CheckTactic("TA0042") == nil {
		t.Fatal("tactic check")
	}
	if ids := TechniqueIDs(); ids[0] != "T0800" {
		t.Fatalf("first id %s", ids[0])
	}
}
