package scenarios

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pumplab/pumplab/harness"
	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/simulators/druglib"
)

// CTL-07 Drug-library rollout (REFERENCE.md §3.3): a pharmacist edits the
// library (propofol hard maximum 100 -> 200 mcg/kg/min for a seizure
// indication) as a new version over the drug-library server's HTTP API,
// finalizes it; self-approval is refused; a second pharmacist approves and
// publishes; the version is pushed to the fleet while three pumps infuse.
// Idle pumps activate at once; infusing pumps defer until their therapy
// ends. Pass: 17 of 20 accept and 3 defer, the infusing pumps keep the old
// version and keep infusing (DDR 1.00 ± 0.05) until stopped, every pump
// ends on the new version, and the time from push to 95% of the fleet is
// recorded (lab time).
var _ = Describe("CTL-07 drug-library rollout", harness.Register("CTL-07", "Drug-library rollout",
	harness.Kind("control"), harness.Area("DL"), harness.Area("MU"), harness.Lifecycle("configuration"),
	harness.Target("druglib"), harness.Target("pumpserver"), harness.Target("pump")), func() {
	f := harness.New("ctl-07-drug-library-rollout")
	harness.GuardControlScenario(f)

	It("rolls an approved library out to the fleet, deferring activation on infusing pumps", func(ctx SpecContext) {
		w, cancel := f.Context(ctx, f.Timeouts.Therapy)
		defer cancel()
		ph := harness.LabAs[lab.Pharmacy](f, "pharmacy (library push to the fleet)")
		clk, dev, ps := f.Lab.Clock(), f.Lab.Devices(), f.Lab.PumpServer()
		pumps := f.Lab.Pumps()
		url, err := endpoint(f.Lab, "druglib")
		Expect(err).NotTo(HaveOccurred())
		cl := &druglib.Client{BaseURL: url}

		By("three pumps infusing norepinephrine")
		busy := []string{pumps[0], pumps[1], pumps[2]}
		var ts []therapy
		for i, p := range busy {
			t, err := startDrip(w, f, p, fmt.Sprintf("MRN700%d", i+1), norepi)
			Expect(err).NotTo(HaveOccurred())
			ts = append(ts, t)
		}

		By("a pharmacist editing the library as a new version and finalizing it")
		cur, err := cl.Current(w)
		Expect(err).NotTo(HaveOccurred())
		old := cur.Library.Version
		lib := cur.Library.Clone()
		lib.Version = "ADULT-2026.02"
		edited := false
		for i := range lib.Entries {
			if lib.Entries[i].ID == "PROPOFOL-1000-100" {
				lib.Entries[i].Dose.HardMax = 200
				edited = true
			}
		}
		Expect(edited).To(BeTrue(), "the default library has a propofol entry")
		_, err = cl.Draft(w, lib, "rph.alvarez")
		Expect(err).NotTo(HaveOccurred())
		_, err = cl.Finalize(w, lib.Version, "rph.alvarez")
		Expect(err).NotTo(HaveOccurred())

		By("the editor's own approval refused; a second pharmacist approves and publishes")
		_, err = cl.Approve(w, lib.Version, "rph.alvarez")
		Expect(err).To(HaveOccurred(), "an editor must not approve their own version")
		_, err = cl.Approve(w, lib.Version, "rph.chen")
		Expect(err).NotTo(HaveOccurred())
		b, err := cl.Publish(w, lib.Version, "rph.chen")
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Library.Version).To(Equal(lib.Version))

		By("pushing the version to the fleet: idle pumps activate, infusing pumps defer")
		pushed := clk.Now()
		acks, err := ph.PushLibrary(w, lib.Version)
		Expect(err).NotTo(HaveOccurred())
		results := map[string]int{}
		for id, a := range acks {
			results[a.Result]++
			if isBusy(id, busy) {
				Expect(a.Result).To(Equal("deferred"), "%s infuses: activation must wait (%s %s)", id, a.Code, a.Reason)
			} else {
				Expect(a.Result).To(Equal("accepted"), "%s is idle (%s %s)", id, a.Code, a.Reason)
			}
		}
		Expect(results).To(Equal(map[string]int{"accepted": len(pumps) - len(busy), "deferred": len(busy)}))

		on := func(version string) (int, map[string]string, error) {
			infos, err := ps.Pumps(w)
			if err != nil {
				return 0, nil, err
			}
			n, by := 0, map[string]string{}
			for _, p := range infos {
				by[p.ID] = p.LibraryVersion
				if p.LibraryVersion == version {
					n++
				}
			}
			return n, by, nil
		}
		waitOn := func(n int) (time.Time, error) {
			err := poll(w, func() (bool, error) {
				got, _, err := on(lib.Version)
				return got >= n, err
			})
			return clk.Now(), err
		}
		_, err = waitOn(len(pumps) - len(busy))
		Expect(err).NotTo(HaveOccurred(), "the idle pumps did not report the new version")
		_, by, err := on(lib.Version)
		Expect(err).NotTo(HaveOccurred())
		for _, p := range busy {
			Expect(by[p]).To(Equal(old), "%s must keep %s while it infuses", p, old)
			Expect(dev.WaitState(w, p, "A", "infusing")).To(Succeed())
		}

		By("therapies ending one by one: each pump activates the new version once idle")
		want95 := (len(pumps)*95 + 99) / 100
		var at95 time.Time
		for i, t := range ts {
			Expect(until(w, clk, pushed.Add(time.Duration(i+1)*5*time.Minute))).To(Succeed())
			ddr, err := dev.DDR(w, t.PumpID, "A", t.Started, clk.Now())
			Expect(err).NotTo(HaveOccurred())
			Expect(ddr).To(BeNumerically("~", 1.0, 0.05), "the deferred library must not disturb %s", t.PumpID)
			Expect(dev.Stop(w, t.PumpID, "A", "RN0042")).To(Succeed())
			reached, err := waitOn(len(pumps) - len(busy) + i + 1)
			Expect(err).NotTo(HaveOccurred(), "%s did not activate %s after its therapy ended", t.PumpID, lib.Version)
			if at95.IsZero() && len(pumps)-len(busy)+i+1 >= want95 {
				at95 = reached
			}
		}
		Expect(at95).NotTo(BeZero())
		f.Latency(harness.MetricLibraryRollout, at95.Sub(pushed))
		AddReportEntry("library", fmt.Sprintf("%s -> %s: 95%% of %d pumps after %s (lab)", old, lib.Version, len(pumps), at95.Sub(pushed)))
	})
})

func isBusy(id string, busy []string) bool {
	for _, b := range busy {
		if b == id {
			return true
		}
	}
	return false
}
