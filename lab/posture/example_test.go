package posture_test

import (
	"fmt"

	"github.com/pumplab/pumplab/lab/posture"
)

func Example() {
	// A built-in posture with two overrides, as `--control` gives them.
	base, err := posture.Builtin("nccoe")
	if err != nil {
		panic(err)
	}
	p, err := base.Apply([]string{"order-crosscheck=off", "rate-limit.per_second=10"})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Name)
	fmt.Println(p.Enabled())
	fmt.Println(p.Controls.RateLimit.PerSecond, p.Controls.AlarmHeartbeat.Interval)

	// A dependency that the override breaks.
	_, err = base.Apply([]string{"pki=off", "signed-commands=off", "signed-library=off", "signed-firmware=off",
		"mtls-mllp=off", "decommission-wipe=off"})
	fmt.Println(err)

	// A posture file with a mistake: the error names the file, the line and the field.
	doc := "name: mine\ncontrols:\n  pki: true\n  rate-limit:\n    enabled: true\n    per_second: -3\n"
	_, err = posture.Parse([]byte(doc), "postures/mine.yaml")
	fmt.Println(err)
	// Output:
	// nccoe+order-crosscheck=off+rate-limit.per_second=10
	// [access-codes alarm-heartbeat broker-acl decommission-wipe mtls-mllp mtls-mqtt pki rate-limit segmentation service-mode-audit signed-commands signed-firmware signed-library]
	// 10 10s
	// posture: nccoe+pki=off+signed-commands=off+signed-library=off+signed-firmware=off+mtls-mllp=off+decommission-wipe=off: controls.mtls-mqtt: needs pki, which is off (certificates come from the lab CA); switch pki on or mtls-mqtt off
	// posture: postures/mine.yaml:6: controls.rate-limit.per_second: -3 must be > 0
}
