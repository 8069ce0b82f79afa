package attack

import (
	"strings"
	"testing"

	"github.com/pumplab/pumplab/internal/doctest"
)

// TestDocExample checks that docs/attack-toolkit.md shows the Example's
// code and its verified output.
func TestDocExample(t *testing.T) {
	doc := doctest.Doc(t, "../../docs/attack-toolkit.md")
	doctest.ExampleShown(t, doc, "docs/attack-toolkit.md", 3)
	for _, want := range []string{"ErrRefused", "AddLab", "MaxFloodCount", "100,000", "60 s", "before", "FuzzMQTTPacket"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/attack-toolkit.md does not mention %q", want)
		}
	}
}
