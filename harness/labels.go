package harness

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/onsi/ginkgo/v2"

	"github.com/pumplab/pumplab/harness/attck"
)

// Label is one typed scenario label. Labels are Ginkgo labels with a prefix
// per dimension, so label filters read naturally:
//
//	pumplab run --label-filter 'kind:attack && technique:T0831'
type Label string

// The label dimensions and their allowed values (REFERENCE.md §1.7, §1.8,
// Appendix A). A value outside these sets fails the suite before any spec
// runs.
var (
	Kinds      = []string{"attack", "control"}
	Areas      = []string{"AC", "WL", "AL", "AM", "AU", "MU", "PV", "US", "EM", "DL", "NW"}
	Lifecycles = []string{"procurement", "onboarding", "training", "configuration", "use", "maintenance", "decontamination", "decommissioning"}
	Targets    = []string{"pump", "pumpserver", "alarms", "emar", "ehr", "druglib", "broker", "network", "nurse"}
	Needs      = []string{"containers", "segmentation"}
)

// Kind labels a scenario attack or control.
func Kind(k string) Label { return Label("kind:" + k) }

// Technique labels an ATT&CK for ICS technique (T0831).
func Technique(id string) Label { return Label("technique:" + id) }

// Area labels a SP 1800-8 challenge area (AU).
func Area(code string) Label { return Label("area:" + code) }

// Lifecycle labels a pump lifecycle stage (use).
func Lifecycle(stage string) Label { return Label("lifecycle:" + stage) }

// Target labels the system a scenario acts on (pump).
func Target(system string) Label { return Label("target:" + system) }

// Need labels what a scenario needs to run (containers); elsewhere it is
// reported Not Applicable.
func Need(what string) Label { return Label("needs:" + what) }

var scenarioID = regexp.MustCompile(`^(ATK-(0[1-9]|[1-3][0-9]|40)|CTL-(0[1-9]|1[0-5]))$`)

var (
	regMu     sync.Mutex
	scenarios = map[string]Scenario{}
)

// Scenario is a registered scenario: its id and labels.
type Scenario struct {
	ID     string
	Title  string
	Labels []Label
}

// Kind returns the scenario's kind label value.
func (s Scenario) Kind() string { return s.value("kind") }

func (s Scenario) value(dim string) string {
	for _, l := range s.Labels {
		if v, ok := strings.CutPrefix(string(l), dim+":"); ok {
			return v
		}
	}
	return ""
}

// Values returns every value of a dimension (e.g. all techniques).
func (s Scenario) Values(dim string) []string {
	var out []string
	for _, l := range s.Labels {
		if v, ok := strings.CutPrefix(string(l), dim+":"); ok {
			out = append(out, v)
		}
	}
	return out
}

// Register validates and registers a scenario and returns its Ginkgo
// labels (the id itself is a label too). It panics, failing the suite while
// the spec tree is built and before anything runs, on an unknown id, a
// duplicate id, an unknown label or a missing kind.
func Register(id, title string, labels ...Label) ginkgo.Labels {
	if err := validate(id, labels); err != nil {
		panic(fmt.Sprintf("harness: scenario %s: %v", id, err))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := scenarios[id]; dup {
		panic(fmt.Sprintf("harness: scenario %s registered twice", id))
	}
	scenarios[id] = Scenario{ID: id, Title: title, Labels: append([]Label(nil), labels...)}
	out := ginkgo.Labels{id}
	for _, l := range labels {
		out = append(out, string(l))
	}
	return out
}

func validate(id string, labels []Label) error {
	if !scenarioID.MatchString(id) {
		return fmt.Errorf("id %q is not ATK-01..ATK-40 or CTL-01..CTL-15", id)
	}
	kinds := 0
	for _, l := range labels {
		dim, v, ok := strings.Cut(string(l), ":")
		if !ok {
			return fmt.Errorf("label %q has no dimension (kind:, technique:, area:, lifecycle:, target:, needs:)", l)
		}
		var err error
		switch dim {
		case "kind":
			kinds++
			err = oneOf(dim, v, Kinds)
		case "technique":
			err = attck.CheckTechnique(v)
		case "area":
			err = oneOf(dim, v, Areas)
		case "lifecycle":
			err = oneOf(dim, v, Lifecycles)
		case "target":
			err = oneOf(dim, v, Targets)
		case "needs":
			err = oneOf(dim, v, Needs)
		default:
			err = fmt.Errorf("label %q: unknown dimension %q", l, dim)
		}
		if err != nil {
			return err
		}
	}
	if kinds != 1 {
		return fmt.Errorf("needs exactly one kind label, has %d", kinds)
	}
	want := "control"
	if strings.HasPrefix(id, "ATK-") {
		want = "attack"
	}
	for _, l := range labels {
		if string(l) == "kind:"+oppositeKind(want) {
			return fmt.Errorf("id %s is a%s scenario but labelled %s", id, map[string]string{"attack": "n attack", "control": " control"}[want], l)
		}
	}
	return nil
}

func oppositeKind(k string) string {
	if k == "attack" {
		return "control"
	}
	return "attack"
}

func oneOf(dim, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %q is not one of %v", dim, v, allowed)
}

// Scenarios returns the registered scenarios sorted by id.
func Scenarios() []Scenario {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]Scenario, 0, len(scenarios))
	for _, s := range scenarios {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
