package containers

import (
	"context"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/labapi"
)

// nursePoll is the wall period at which the host looks for alarms a nurse
// accepted on her phone.
const nursePoll = 50 * time.Millisecond

// walkToPump is the nurse's last step, run from the host because the phone
// (alarms container, servers zone) and the pump (fleet container, device
// zone) are in different zones: once she accepted an alarm on her phone she
// clears it at the pump and resumes the channel, as the in-process nurse
// does right after accepting.
func (l *Lab) walkToPump() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		handled := map[string]bool{}
		t := time.NewTicker(nursePoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			recs, err := alarmsView{l}.Records(ctx)
			if err != nil {
				continue
			}
			for _, r := range recs {
				if r.Accepted.IsZero() || !r.Ended.IsZero() || handled[r.AlertID] {
					continue
				}
				handled[r.AlertID] = true
				l.clearAtPump(ctx, r)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (l *Lab) clearAtPump(ctx context.Context, r lab.AlarmRecord) {
	user := r.AcceptedBy
	if user == "" {
		user = "RN0042"
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.call(cctx, "fleet", "clear-alarm", labapi.ChannelReq{PumpID: r.PumpID, AlarmID: r.AlertID, User: user}, nil); err != nil {
		l.log.Info("nurse: alarm not cleared at the pump", "pump", r.PumpID, "alert", r.AlertID, "err", err)
	}
}
