package containers_test

import (
	"strings"
	"testing"

	"github.com/pumplab/pumplab/internal/doctest"
	"github.com/pumplab/pumplab/lab/containers"
)

// TestDocShowsLayout keeps docs/containers.md in step with the code: it
// shows the Example's layout and output, the Dockerfile and every role.
func TestDocShowsLayout(t *testing.T) {
	doc := doctest.Doc(t, "../../docs/containers.md")
	doctest.ExampleShown(t, doc, "docs/containers.md", 9)
	if !strings.Contains(doc, containers.Dockerfile) {
		t.Error("docs/containers.md does not show the Dockerfile")
	}
	for _, role := range []string{"broker", "druglib", "ehr", "emar", "pumpserver", "alarms", "fleet", "gateway", "attacker"} {
		if !strings.Contains(doc, "| `"+role+"` |") {
			t.Errorf("docs/containers.md has no row for role %s", role)
		}
	}
}
