package harness

import (
	"strings"
	"testing"
)

func TestValidateLabels(t *testing.T) {
	ok := []Label{Kind("attack"), Technique("T0831"), Technique("T0855"), Area("AU"), Lifecycle("use"), Target("pump")}
	if err := validate("ATK-10", ok); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id     string
		labels []Label
		want   string
	}{
		{"ATK-41", ok, "not ATK-01..ATK-40"},
		{"CTL-16", []Label{Kind("control")}, "not ATK-01..ATK-40"},
		{"ATK-10", []Label{Kind("attack"), Technique("T9999")}, `technique "T9999"`},
		{"ATK-10", []Label{Kind("attack"), Area("XX")}, `area "XX"`},
		{"ATK-10", []Label{Kind("attack"), "colour:blue"}, "unknown dimension"},
		{"ATK-10", []Label{"attack"}, "no dimension"},
		{"ATK-10", []Label{Technique("T0831")}, "exactly one kind"},
		{"ATK-10", []Label{Kind("control")}, "labelled kind:control"},
		{"CTL-01", []Label{Kind("control"), Lifecycle("sometime")}, `lifecycle "sometime"`},
	} {
		err := validate(tc.id, tc.labels)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: error %v, want %q", tc.id, tc.labels, err, tc.want)
		}
	}
}

func TestRegisterRefusesDuplicates(t *testing.T) {
	labels := Register("CTL-15", "test", Kind("control"))
	if labels[0] != "CTL-15" || labels[1] != "kind:control" {
		t.Fatalf("labels %v", labels)
	}
	found := false
	for _, s := range Scenarios() {
		if s.ID == "CTL-15" && s.Kind() == "control" {
			found = true
		}
	}
	if !found {
		t.Fatal("registered scenario not listed")
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "registered twice") {
			t.Fatalf("duplicate registration: %v", r)
		}
	}()
	Register("CTL-15", "again", Kind("control"))
}
