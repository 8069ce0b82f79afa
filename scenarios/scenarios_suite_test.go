package scenarios_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/lab"
	_ "github.com/pumplab/pumplab/lab/inproc" // the provider of this suite
	_ "github.com/pumplab/pumplab/scenarios"
)

// TestScenarios runs the scenario suite on the in-process lab with the
// embedded broker (PUMPLAB_BROKER overrides: mosquitto or a loopback URL).
func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	harness.Use("inproc", lab.Topology{Pumps: 20, Speed: 300, Broker: os.Getenv("PUMPLAB_BROKER")})
	RunSpecs(t, "pumplab scenarios (inproc)")
}
