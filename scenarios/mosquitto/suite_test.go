package mosquitto_test

import (
	"errors"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/broker"
	_ "github.com/pumplab/pumplab/lab/inproc"
	_ "github.com/pumplab/pumplab/scenarios"
)

// TestOnMosquitto runs CTL-01 with the fleet on mosquitto. Without the
// binary it skips with the reason, unless PUMPLAB_REQUIRE_MOSQUITTO is set
// (as .ci/run does), where a missing broker is a failure.
func TestOnMosquitto(t *testing.T) {
	if _, err := broker.FindMosquitto(); errors.Is(err, broker.ErrNoMosquitto) {
		if os.Getenv("PUMPLAB_REQUIRE_MOSQUITTO") != "" {
			t.Fatal("PUMPLAB_REQUIRE_MOSQUITTO is set but mosquitto is not installed")
		}
		t.Skip("mosquitto not installed (apt-get install mosquitto); .ci/run installs it")
	}
	RegisterFailHandler(Fail)
	harness.Use("inproc", lab.Topology{Pumps: 20, Speed: 300, Broker: "mosquitto"})
	suite, reporter := GinkgoConfiguration()
	suite.LabelFilter = "CTL-01"
	RunSpecs(t, "pumplab scenarios on mosquitto", suite, reporter)
}
