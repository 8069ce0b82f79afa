package score

import (
	"strings"
	"testing"

	"github.com/pumplab/pumplab/internal/doctest"
)

// TestDocExample checks that docs/scoring.md shows the Example's code and
// its verified output.
func TestDocExample(t *testing.T) {
	doc := doctest.Doc(t, "../../docs/scoring.md")
	doctest.ExampleShown(t, doc, "docs/scoring.md", 5)
	for _, want := range []string{ScoreFormula, "30 s", "30 min", "5 min"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/scoring.md does not mention %q", want)
		}
	}
}
