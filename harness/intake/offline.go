package intake

import (
	"github.com/pumplab/pumplab/harness/score"
)

// AddOffline stores the alerts of an offline tool: one that analysed the
// run's traffic capture after the run (Suricata with -r). Each alert keeps
// the time it reports, which is the time of the packets it alerts on, as
// its Time, so that it is matched against the step those packets belong
// to; an alert without a reported time gets the receive time. Source is
// SourceFile. It calls OnAlert like the live transports.
func (in *Intake) AddOffline(as []score.Alert) {
	if len(as) == 0 {
		return
	}
	in.deliver.Lock()
	defer in.deliver.Unlock()
	now := in.now()
	in.mu.Lock()
	for i := range as {
		as[i].Time = as[i].Reported
		if as[i].Time.IsZero() {
			as[i].Time = now
		}
		as[i].Source = SourceFile
	}
	in.alerts = append(in.alerts, as...)
	in.transport(SourceFile).Accepted += int64(len(as))
	in.notifyLocked()
	in.mu.Unlock()
	if in.cfg.OnAlert != nil {
		for _, a := range as {
			in.cfg.OnAlert(a)
		}
	}
}
