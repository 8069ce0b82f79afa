package broker

import (
	"strings"
	"testing"

	"github.com/pumplab/pumplab/internal/doctest"
)

// TestDocs checks that docs/broker.md shows the Example and names every
// control field.
func TestDocs(t *testing.T) {
	doc := doctest.Doc(t, "../../docs/broker.md")
	doctest.ExampleShown(t, doc, "docs/broker.md", 3)
	for _, want := range []string{"IdentityFromCert", "Revoked", "Users", "RateLimit", "OnDecision", "LogDenials",
		"0x80", "ControlStats", ControlMTLS, ControlACL, ControlRateLimit, "ssl://127.0.0.1"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/broker.md does not mention %q", want)
		}
	}
}
