package posture

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCases(t *testing.T) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			p, err := Parse([]byte(c.YAML), "case.yaml")
			if c.Err == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if p.Validate() != nil {
					t.Fatalf("parsed posture does not validate: %v", p.Validate())
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted %q; want error containing %q", c.YAML, c.Err)
			}
			if !strings.Contains(err.Error(), c.Err) {
				t.Fatalf("error:\n%v\nwant it to contain %q", err, c.Err)
			}
			if !strings.HasPrefix(err.Error(), "posture: case.yaml") {
				t.Errorf("error %q does not start with the component and the file", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.File != "case.yaml" {
				t.Errorf("errors.As *FieldError: %v, %+v", err, fe)
			}
		})
	}
}

// The error format of the issue, on a file loaded from disk.
func TestLoadErrorNamesFileLineField(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nccoe.yaml")
	data, err := builtinFS.ReadFile("postures/nccoe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "per_second: 50", "per_second: -3", 1)
	if text == string(data) {
		t.Fatal("nccoe.yaml has no per_second: 50 line to break")
	}
	line := 0
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "per_second: -3") {
			line = i + 1
		}
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	want := "posture: " + path + ":" + strconv.Itoa(line) + ": controls.rate-limit.per_second: -3 must be > 0"
	if err == nil || err.Error() != want {
		t.Fatalf("Load error\n got %v\nwant %s", err, want)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "posture: load:") {
		t.Errorf("missing file: %v", err)
	}
}

func TestManyProblemsReportedInLineOrder(t *testing.T) {
	doc := "name: x\ncontrols:\n  rate-limit:\n    bogus: 1\n  pki: 3\n  pki: true\nfoo: 1\n"
	_, err := Parse([]byte(doc), "m.yaml")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	var lines []int
	for _, p := range ve.Problems {
		lines = append(lines, p.Line)
	}
	if want := []int{4, 5, 6, 7}; !slices.Equal(lines, want) {
		t.Fatalf("problem lines %v, want %v:\n%v", lines, want, err)
	}
}

func TestTooManyProblemsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: x\n")
	for i := 0; i < 50; i++ {
		b.WriteString("f" + strconv.Itoa(i) + ": 1\n")
	}
	_, err := Parse([]byte(b.String()), "big.yaml")
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != maxProblems {
		t.Fatalf("want %d problems, got %v", maxProblems, err)
	}
}

func TestOversizeRefused(t *testing.T) {
	_, err := Parse(make([]byte, MaxBytes+1), "huge.yaml")
	if err == nil || !strings.Contains(err.Error(), "byte limit") {
		t.Fatalf("oversize: %v", err)
	}
}

func TestNameFromFile(t *testing.T) {
	p, err := Parse([]byte("description: d\n"), "dir/my-posture.yaml")
	if err != nil || p.Name != "my-posture" {
		t.Fatalf("got %v, %v", p, err)
	}
}

func TestDefaultsKeptForMissingParams(t *testing.T) {
	p, err := Parse([]byte("name: x\ncontrols:\n  rate-limit:\n    per_second: 7\n  alarm-heartbeat: true\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	if p.Controls.RateLimit.PerSecond != 7 || p.Controls.RateLimit.Burst != d.Controls.RateLimit.Burst || p.Controls.RateLimit.Enabled {
		t.Errorf("rate-limit = %+v", p.Controls.RateLimit)
	}
	if !p.Controls.AlarmHeartbeat.Enabled || p.Controls.AlarmHeartbeat.Interval != 30*time.Second {
		t.Errorf("alarm-heartbeat = %+v", p.Controls.AlarmHeartbeat)
	}
}

func TestControlAndWeaknessNames(t *testing.T) {
	want := []string{"pki", "mtls-mqtt", "mtls-mllp", "broker-acl", "signed-commands", "signed-library",
		"signed-firmware", "order-crosscheck", "access-codes", "service-mode-audit", "alarm-heartbeat",
		"rate-limit", "decommission-wipe", "segmentation"}
	if got := ControlNames(); !slices.Equal(got, want) {
		t.Errorf("ControlNames = %v\nwant %v", got, want)
	}
	if got := WeaknessNames(); !slices.Equal(got, []string{"shared-credentials", "service-port", "remote-start"}) {
		t.Errorf("WeaknessNames = %v", got)
	}
	// Every control and weakness struct has an Enabled switch first.
	for _, f := range append(append([]switchField{}, controlFields...), weaknessFields...) {
		v := Defaults().value(f)
		if v.Type().Field(0).Name != "Enabled" || yamlName(v.Type().Field(0)) != "enabled" {
			t.Errorf("%s: first field is %s", f.name, v.Type().Field(0).Name)
		}
	}
}

func TestBuiltins(t *testing.T) {
	if got := Names(); !slices.Contains(got, "legacy") || !slices.Contains(got, "nccoe") {
		t.Fatalf("Names = %v", got)
	}
	for _, n := range Names() {
		p, err := Builtin(n)
		if err != nil {
			t.Fatalf("Builtin(%s): %v", n, err)
		}
		if p.Name != n || p.Source != "builtin:"+n || p.Description == "" {
			t.Errorf("%s: name %q source %q description %q", n, p.Name, p.Source, p.Description)
		}
	}
	legacy, _ := Builtin("legacy")
	if got := legacy.Enabled(); len(got) != 0 {
		t.Errorf("legacy enables %v", got)
	}
	if got := legacy.EnabledWeaknesses(); !slices.Equal(got, []string{"remote-start", "service-port", "shared-credentials"}) {
		t.Errorf("legacy weaknesses %v", got)
	}
	nccoe, _ := Builtin("nccoe")
	all := ControlNames()
	slices.Sort(all)
	if got := nccoe.Enabled(); !slices.Equal(got, all) {
		t.Errorf("nccoe enables %v, want every control %v", got, all)
	}
	if got := nccoe.EnabledWeaknesses(); len(got) != 0 {
		t.Errorf("nccoe weaknesses %v", got)
	}
	if !nccoe.On(OrderCrosscheck) || legacy.On(OrderCrosscheck) || !legacy.On(ServicePort) || nccoe.On("nonsense") {
		t.Error("On disagrees with the files")
	}
	if _, err := Builtin("hardened"); err == nil || !strings.Contains(err.Error(), "legacy") {
		t.Errorf("unknown builtin: %v", err)
	}
	if _, err := Builtin("../x"); err == nil {
		t.Error("path-like builtin name accepted")
	}
	// Builtin returns a fresh copy each time.
	nccoe.Controls.MTLSMLLP.AllowedSources["ehr"][0] = "mallory"
	again, _ := Builtin("nccoe")
	if again.Controls.MTLSMLLP.AllowedSources["ehr"][0] == "mallory" {
		t.Error("Builtin shares state between calls")
	}
}

func TestResolve(t *testing.T) {
	p, err := Resolve("nccoe")
	if err != nil || p.Source != "builtin:nccoe" {
		t.Fatalf("Resolve(nccoe) = %v, %v", p, err)
	}
	path := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(path, []byte("name: mine\ncontrols:\n  order-crosscheck: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err = Resolve(path)
	if err != nil || p.Name != "mine" || p.Source != path || !p.On(OrderCrosscheck) {
		t.Fatalf("Resolve(file) = %+v, %v", p, err)
	}
	if _, err := Resolve("nonesuch"); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("Resolve(nonesuch) = %v", err)
	}
}

func TestApply(t *testing.T) {
	base, err := Builtin("nccoe")
	if err != nil {
		t.Fatal(err)
	}
	p, err := base.Apply([]string{"order-crosscheck=off", " rate-limit.per_second = 10 ", "remote-start=ON",
		"mtls-mllp.allowed_sources={ehr: [pumpserver]}", "alarm-heartbeat.interval=1m"})
	if err != nil {
		t.Fatal(err)
	}
	wantName := "nccoe+order-crosscheck=off+rate-limit.per_second=10+remote-start=on" +
		"+mtls-mllp.allowed_sources={ehr: [pumpserver]}+alarm-heartbeat.interval=1m"
	if p.Name != wantName {
		t.Errorf("Name = %q\nwant %q", p.Name, wantName)
	}
	if len(p.Overrides) != 5 || p.Overrides[0] != "order-crosscheck=off" {
		t.Errorf("Overrides = %q", p.Overrides)
	}
	if p.On(OrderCrosscheck) || !p.On(RemoteStart) || p.Controls.RateLimit.PerSecond != 10 ||
		p.Controls.AlarmHeartbeat.Interval != time.Minute ||
		!reflect.DeepEqual(p.Controls.MTLSMLLP.AllowedSources, map[string][]string{"ehr": {"pumpserver"}}) {
		t.Errorf("overrides not applied: %+v", p.Controls)
	}
	if slices.Contains(p.Enabled(), OrderCrosscheck) || len(p.Enabled()) != len(ControlNames())-1 {
		t.Errorf("Enabled = %v", p.Enabled())
	}
	// The base is untouched.
	if !base.On(OrderCrosscheck) || base.Name != "nccoe" || base.Controls.RateLimit.PerSecond != 50 ||
		len(base.Controls.MTLSMLLP.AllowedSources) != 4 {
		t.Errorf("Apply changed its receiver: %+v", base)
	}
	// A later override wins.
	p, err = base.Apply([]string{"pki=off", "pki=on"})
	if err != nil || !p.On(PKI) {
		t.Errorf("pki=off,pki=on: %v", err)
	}
	// No overrides: same posture, same name.
	p, err = base.Apply(nil)
	if err != nil || p.Name != "nccoe" || len(p.Overrides) != 0 {
		t.Errorf("Apply(nil) = %v, %v", p.Name, err)
	}
}

func TestApplyErrors(t *testing.T) {
	nccoe, _ := Builtin("nccoe")
	legacy, _ := Builtin("legacy")
	cases := []struct {
		base *Posture
		in   []string
		want string
	}{
		{nccoe, []string{"firewall=off"}, `posture: --control firewall=off: unknown control "firewall" (controls: pki, mtls-mqtt`},
		{nccoe, []string{"pki=maybe"}, `posture: --control pki=maybe: value "maybe" must be on or off`},
		{nccoe, []string{"pki"}, `posture: --control pki: want NAME=on|off or NAME.PARAM=VALUE`},
		{nccoe, []string{"=on"}, `want NAME=on|off`},
		{nccoe, []string{"rate-limit.speed=3"}, `rate-limit has no parameter "speed" (parameters: enabled, per_second, burst, targets)`},
		{nccoe, []string{"rate-limit.per_second=fast"}, `controls.rate-limit.per_second: expected a number, got "fast"`},
		{nccoe, []string{"rate-limit.per_second="}, `rate-limit.per_second=: missing value`},
		{nccoe, []string{"rate-limit.targets=[mqtt"}, `is not valid YAML`},
		{nccoe, []string{"rate-limit.per_second=-3"},
			`posture: nccoe+rate-limit.per_second=-3: controls.rate-limit.per_second: -3 must be > 0`},
		{nccoe, []string{"pki=off"}, `posture: nccoe+pki=off: controls.mtls-mqtt: needs pki, which is off`},
		{legacy, []string{"mtls-mqtt=on"}, `posture: legacy+mtls-mqtt=on: controls.mtls-mqtt: needs pki, which is off`},
		{legacy, []string{"signed-library=on"}, `controls.signed-library: needs pki`},
	}
	for _, c := range cases {
		_, err := c.base.Apply(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Apply(%q):\n got %v\nwant %q", c.in, err, c.want)
		}
	}
	// pki=off names every dependent control.
	_, err := nccoe.Apply([]string{"pki=off"})
	for _, n := range []string{MTLSMQTT, MTLSMLLP, SignedCommands, SignedLibrary, SignedFirmware, DecommissionWipe} {
		if !strings.Contains(err.Error(), "controls."+n) {
			t.Errorf("pki=off error does not name %s:\n%v", n, err)
		}
	}
	// ...and switching the dependents off too is accepted.
	p, err := nccoe.Apply([]string{"pki=off", "mtls-mqtt=off", "mtls-mllp=off", "signed-commands=off",
		"signed-library=off", "signed-firmware=off", "decommission-wipe.revoke_certificate=false"})
	if err != nil {
		t.Fatalf("consistent overrides refused: %v", err)
	}
	if p.On(PKI) || !p.On(DecommissionWipe) {
		t.Errorf("Enabled = %v", p.Enabled())
	}
	// Every single control of legacy can be switched on alone, except
	// those that need pki; every single control of nccoe can be switched
	// off alone, except pki.
	for _, n := range ControlNames() {
		_, err := legacy.Apply([]string{n + "=on"})
		needsPKI := strings.HasPrefix(n, "mtls-") || strings.HasPrefix(n, "signed-") || n == DecommissionWipe
		if (err != nil) != needsPKI {
			t.Errorf("legacy+%s=on: %v", n, err)
		}
		_, err = nccoe.Apply([]string{n + "=off"})
		if (err != nil) != (n == PKI) {
			t.Errorf("nccoe+%s=off: %v", n, err)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, n := range Names() {
		p, _ := Builtin(n)
		q, err := p.Apply([]string{"rate-limit.per_second=0.25", "access-codes.rotate_every=90m",
			"shared-credentials.password=\"true\"", "signed-firmware.min_version=4.2.0"})
		if err != nil {
			t.Fatal(err)
		}
		data, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r, err := Parse(data, "round.yaml")
		if err != nil {
			t.Fatalf("%s: Parse(Marshal) failed: %v\n%s", n, err, data)
		}
		if r.Name != q.Name {
			t.Errorf("name %q read back as %q", q.Name, r.Name)
		}
		r.Source, r.Overrides = q.Source, q.Overrides
		if !reflect.DeepEqual(r, q) {
			t.Errorf("%s: round trip differs:\n%+v\n%+v\n%s", n, r, q, data)
		}
		if !strings.Contains(string(data), "rotate_every: 1h30m\n") || !strings.Contains(string(data), "password: \"true\"") {
			t.Errorf("%s: marshalled text:\n%s", n, data)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{720 * time.Hour: "720h", 10 * time.Minute: "10m",
		90 * time.Minute: "1h30m", 30 * time.Second: "30s", 1500 * time.Millisecond: "1.5s", 0: "0s",
		time.Hour + time.Second: "1h0m1s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
