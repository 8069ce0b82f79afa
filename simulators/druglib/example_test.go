package druglib_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log"

	"github.com/pumplab/pumplab/simulators/druglib"
)

// A pharmacy publishes the default library through the two-person
// workflow; a pump server downloads it and checks hash and signature.
func Example() {
	pub, priv, _ := ed25519.GenerateKey(nil)
	store := druglib.NewStore(druglib.StoreConfig{SigningKey: priv, KeyID: "pharmacy-2026"})
	srv := druglib.NewServer(druglib.ServerConfig{Store: store})
	if err := srv.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	lib := druglib.Default()
	if _, err := store.Draft(lib, "rph.alvarez"); err != nil {
		log.Fatal(err)
	}
	if _, err := store.Finalize(lib.Version, "rph.alvarez"); err != nil {
		log.Fatal(err)
	}
	_, err := store.Approve(lib.Version, "rph.alvarez")
	fmt.Println("self-approval:", err)
	if _, err := store.Approve(lib.Version, "rph.chen"); err != nil {
		log.Fatal(err)
	}
	if _, err := store.Publish(lib.Version, "rph.chen"); err != nil {
		log.Fatal(err)
	}

	c := &druglib.Client{BaseURL: srv.URL()}
	b, err := c.Current(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("current:", b.Version(), "seq", b.Seq(), "approved by", b.Approval.Approver)
	fmt.Println("verify:", b.Verify(pub))

	e, _ := b.Library.Lookup("NOREPI-4-250", "Adult ICU")
	rate, _ := e.RateMLH(0.05, 70)
	fmt.Printf("%s: 0.05 %s for 70 kg = %.3f mL/h, check %s\n", e.Name, e.DoseUnit, rate, e.CheckDose(0.05))
	fmt.Println("1.5 mcg/kg/min:", e.CheckDose(1.5), e.CheckDose(1.5).Code())
	// Output:
	// self-approval: druglib: approve ADULT-2026.01: approver must differ from the author and the finalizer: rph.alvarez edited or finalized it
	// current: ADULT-2026.01 seq 1 approved by rph.chen
	// verify: <nil>
	// Norepinephrine 4 mg/250 mL: 0.05 mcg/kg/min for 70 kg = 13.125 mL/h, check within
	// 1.5 mcg/kg/min: hard-high LIB-HARDMAX
}

// Parse reports the file, line and field of every problem.
func ExampleParse() {
	doc := []byte(`version: LAB-1
care_areas:
  - name: ICU
    max_rate_ml_h: 999
    callback_min: 2
    kvo_rate_ml_h: 1
entries:
  - id: NS
    name: Saline
    channels: [lvp, iv]
    dose_unit: mL/h
    dose: {soft_max: 500, hard_max: 300}
`)
	_, err := druglib.Parse(doc, "lab.yaml")
	fmt.Println(err)
	// Output:
	// druglib: lab.yaml:10: entries[0].channels[1]: unknown channel "iv" (want lvp, syringe or pca)
	// druglib: lab.yaml:12: entries[0].dose.hard_max: 300 is below soft_max 500
}
