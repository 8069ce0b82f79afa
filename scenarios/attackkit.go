package scenarios

import (
	"context"
	"errors"
	"fmt"
	"time"

	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/harness/oracle"
	"github.com/pumplab/pumplab/harness/score"
	"github.com/pumplab/pumplab/lab"
)

// expectBlocked waits until control recorded a "blocked" decision in the
// lab's evidence and returns it.
func expectBlocked(ctx context.Context, l lab.Lab, control string) lab.Evidence {
	var got lab.Evidence
	Eventually(func(g Gomega) {
		ev, err := l.Evidence(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		found := false
		for _, e := range ev {
			if e.Control == control && e.Action == "blocked" {
				got, found = e, true
			}
		}
		g.Expect(found).To(BeTrue(), "no blocked evidence from %s yet", control)
	}).WithContext(ctx).WithPolling(20 * time.Millisecond).Should(Succeed())
	return got
}

// harmOver lets the lab run for d of lab time on the therapy's channel and
// measures the harm over that window.
func harmOver(ctx context.Context, l lab.Lab, th therapy, d time.Duration) (score.Harm, error) {
	from := l.Clock().Now()
	if err := clock.Sleep(ctx, l.Clock(), d); err != nil {
		return score.Harm{}, err
	}
	return oracle.Measure(ctx, l, oracle.Window{PumpID: th.PumpID, Channel: th.Channel, From: from, To: l.Clock().Now(),
		OrderID: th.OrderID, HighAlert: true})
}

// observeBlocked records a blocked step (the control acted, no effect) and
// checks that nothing harmful reached the patient.
func observeBlocked(ctx context.Context, f *harness.Framework, stepID string, th therapy, d time.Duration) {
	harm, err := harmOver(ctx, f.Lab, th, d)
	Expect(err).NotTo(HaveOccurred())
	t, err := f.Lab.Devices().Truth(ctx, th.PumpID, th.Channel)
	Expect(err).NotTo(HaveOccurred())
	effect := th.RateMLH > 0 && (t.Delivered.RateMLH > 1.1*th.RateMLH || t.Delivered.RateMLH < 0.9*th.RateMLH) && t.Delivered.State == "infusing"
	f.Observe(stepID, score.Observed{Effect: effect, Harm: harm})
	Expect(effect).To(BeFalse(), "the pump runs %.4g mL/h, ordered %.4g mL/h", t.Delivered.RateMLH, th.RateMLH)
	Expect(oracle.Harmful(harm)).To(BeFalse(), "harm %+v", harm)
}

// sendHL7Plain sends m without TLS, then, if the listener speaks TLS, with
// a TLS client without a certificate: what a rogue host without a foothold
// can try. It returns the reply of whichever worked.
func sendHL7Plain(ctx context.Context, send func(ctx context.Context, tlsOn bool) (string, error)) (string, error) {
	code, err := send(ctx, false)
	if err == nil {
		return code, nil
	}
	code2, err2 := send(ctx, true)
	if err2 == nil {
		return code2, nil
	}
	return "", fmt.Errorf("plain: %v; TLS without a certificate: %v", err, err2)
}

func clockSleep(ctx context.Context, l lab.Lab, d time.Duration) error {
	return clock.Sleep(ctx, l.Clock(), d)
}

func deliveredIn(segs []lab.Segment, from, to time.Time) (float64, float64) {
	return oracle.Delivered(segs, from, to)
}

// notApplicableIfUnsupported reports the spec Not Applicable when the lab
// cannot give the attacker the on-path position the scenario needs (the
// container lab cannot route a link through a proxy on the host).
func notApplicableIfUnsupported(f *harness.Framework, err error) {
	if errors.Is(err, lab.ErrInterposeUnsupported) {
		f.NotApplicable(fmt.Sprintf("the %s lab cannot place an on-path proxy here: %v", f.Lab.Provider(), err))
	}
}
