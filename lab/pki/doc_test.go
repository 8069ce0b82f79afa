package pki

import (
	"strings"
	"testing"

	"github.com/pumplab/pumplab/internal/doctest"
)

// TestDocs checks that docs/pki.md shows the Example's code and output.
func TestDocs(t *testing.T) {
	doc := doctest.Doc(t, "../../docs/pki.md")
	doctest.ExampleShown(t, doc, "docs/pki.md", 1)
	for _, want := range []string{"ca.pem", "crl.pem", "-key.pem", "0600", "RequireAndVerifyClientCert", "crypto/rand", "ErrRevoked"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/pki.md does not mention %q", want)
		}
	}
}
