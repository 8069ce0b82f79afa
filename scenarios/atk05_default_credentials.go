package scenarios

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/attack"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
)

// factoryCode is the vendor-wide keypad and service-port code every pump
// ships with (the posture's shared-credentials access_code, "1234" unless
// the posture says otherwise): published in the service manual.
func factoryCode() string {
	if _, t := harness.Current(); t.Posture != nil && t.Posture.Weaknesses.SharedCredentials.AccessCode != "" {
		return t.Posture.Weaknesses.SharedCredentials.AccessCode
	}
	return "1234"
}

// servicePortSession is an attacker's connection to a pump's telnet-style
// service port (docs/pump.md "Service port").
type servicePortSession struct {
	conn   net.Conn
	r      *bufio.Reader
	Banner string
}

// dialServicePort connects to addr through the loopback safety rail and
// reads the banner.
func dialServicePort(ctx context.Context, addr string) (*servicePortSession, error) {
	c, err := attack.Loopback().Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("service port %s: %w", addr, err)
	}
	attack.Correlate(ctx, "tcp:"+c.LocalAddr().String()+"->"+addr)
	s := &servicePortSession{conn: c, r: bufio.NewReader(c)}
	if s.Banner, err = s.line(); err != nil {
		c.Close()
		return nil, fmt.Errorf("service port %s banner: %w", addr, err)
	}
	return s, nil
}

func (s *servicePortSession) line() (string, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := s.r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// Do sends one command and returns its reply lines: one line, or for SHOW
// CONFIG the "OK-" lines up to the closing "OK config N lines". An "ERR"
// reply is returned as an error naming the pump's code.
func (s *servicePortSession) Do(cmd string) ([]string, error) {
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(s.conn, "%s\r\n", cmd); err != nil {
		return nil, err
	}
	var out []string
	for {
		l, err := s.line()
		if err != nil {
			return out, fmt.Errorf("%s: %w", cmd, err)
		}
		switch {
		case strings.HasPrefix(l, "ERR "):
			return out, fmt.Errorf("%s: pump answered %s", strings.Fields(cmd)[0], l)
		case strings.HasPrefix(l, "OK-"):
			out = append(out, strings.TrimPrefix(l, "OK-"))
		case strings.HasPrefix(l, "OK"):
			return append(out, l), nil
		default:
			return out, fmt.Errorf("%s: unexpected reply %q", cmd, l)
		}
	}
}

func (s *servicePortSession) Close() error { return s.conn.Close() }

// configLoot is what SHOW CONFIG gave away.
type configLoot struct {
	Secrets  map[string]string // broker_password, wifi_psk, client_key_pem (size) when present
	Patients []string
}

// lootOf reads the secrets and patient ids out of SHOW CONFIG lines.
func lootOf(lines []string) configLoot {
	l := configLoot{Secrets: map[string]string{}}
	for _, ln := range lines {
		k, v, _ := strings.Cut(ln, " ")
		switch k {
		case "broker_username", "broker_password", "wifi_psk":
			if v != "" {
				l.Secrets[k] = v
			}
		case "client_key_pem":
			if n, _ := strconv.Atoi(strings.TrimSuffix(v, " bytes")); n > 0 {
				l.Secrets[k] = v
			}
		case "recent_patients":
			for _, id := range strings.Split(v, ",") {
				if id != "" {
					l.Patients = append(l.Patients, id)
				}
			}
		}
	}
	return l
}

// ATK-05 Hard-coded / default credentials on the pump comm module
// (REFERENCE.md §3.1): an attacker who reaches a pump's service port logs
// in with the vendor's factory code and reads the stored credentials and
// recent patient ids with SHOW CONFIG.
var _ = Describe("ATK-05 default credentials on the pump comm module", harness.Register("ATK-05", "Hard-coded / default credentials on the pump comm module (service port)",
	harness.Kind("attack"), harness.Technique("T0891"), harness.Technique("T0812"), harness.Technique("T0886"), harness.Technique("T0807"),
	harness.Area("AC"), harness.Area("AU"), harness.Area("MU"), harness.Lifecycle("use"), harness.Target("pump")), func() {
	f := harness.New("atk-05-default-credentials")

	It("reads a pump's stored credentials and patient ids with the factory code", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		bm := harness.LabAs[lab.Biomed](f, "biomed access to pumps (service ports)")
		pumpID := f.Lab.Pumps()[2]

		By("a patient on the pump, so that its recent-patients list holds a patient id")
		_, err := startNorepinephrine(w, f.Lab, pumpID, "MRN5505", 250)
		Expect(err).NotTo(HaveOccurred())
		addr, err := bm.ServicePort(w, pumpID)
		Expect(err).NotTo(HaveOccurred())

		// Position: a host that reaches the pump's service port (in process
		// everything is loopback; the container lab's segmentation scenarios
		// test reachability from each zone). The only thing between it and
		// the comm module is the login, i.e. access-codes.
		By("the attacker logging in to the service port with the vendor factory code and reading SHOW CONFIG")
		var loot configLoot
		var refused error
		step := attack.Step{ScenarioID: "ATK-05", StepID: "ATK-05/1", Techniques: []string{"T0891", "T0812", "T0886", "T0807"},
			Tactic: "TA0108", Assets: []string{pumpID}, Correlation: []string{"service-port:" + addr},
			Criteria: "the factory code opens a service-port session and SHOW CONFIG prints the stored credentials",
			Control:  "access-codes", Window: 5 * time.Minute}
		err = f.Attack(w, step, func(ctx context.Context) error {
			s, err := dialServicePort(ctx, addr)
			if err != nil {
				return err
			}
			defer s.Close()
			if _, err := s.Do("LOGIN service " + factoryCode()); err != nil {
				refused = err
				return nil
			}
			lines, err := s.Do("SHOW CONFIG")
			if err != nil {
				return err
			}
			loot = lootOf(lines)
			_, _ = s.Do("QUIT")
			return nil
		})
		Expect(err).NotTo(HaveOccurred())

		if f.ControlOn("access-codes") {
			By("the pump refusing the factory code: only per-user codes log in")
			Expect(refused).To(MatchError(ContainSubstring("SVC-FACTORY")))
			ev := expectBlocked(w, f.Lab, "access-codes")
			AddReportEntry("access-codes evidence", ev.Reason)
			harm := score.Harm{CredsExposed: len(loot.Secrets), PHIExposed: len(loot.Patients)}
			f.Observe(step.StepID, score.Observed{Effect: false, Harm: harm})
			Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
			return
		}

		By("the attacker holding the pump's broker login, Wi-Fi key and patient ids")
		Expect(refused).NotTo(HaveOccurred(), "without per-user codes the factory code logs in")
		harm := score.Harm{CredsExposed: len(loot.Secrets), PHIExposed: len(loot.Patients)}
		f.Observe(step.StepID, score.Observed{Effect: true, Harm: harm})
		AddReportEntry("credentials read", fmt.Sprint(len(loot.Secrets)))
		AddReportEntry("patient ids read", strings.Join(loot.Patients, ","))
		Expect(loot.Secrets).To(HaveKey("broker_password"))
		Expect(loot.Secrets).To(HaveKey("wifi_psk"))
		Expect(loot.Patients).To(ContainElement("MRN5505"))
		Expect(oracle.Harmful(harm)).To(BeTrue())
	})
})
