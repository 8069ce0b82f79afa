package containers

import (
	"fmt"
	"strconv"
	"time"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/posture"
)

// Service is one container of the lab's layout: the role it serves, its
// home zone, its aliases per zone (the names other containers dial), its
// arguments after `pumplab serve ROLE`, and for gateways the routes.
type Service struct {
	Name    string // container role name: broker, ehr, gw-mllp, fleet...
	Role    string // pumplab serve ROLE
	Home    lab.Zone
	Aliases map[lab.Zone][]string
	Args    []string
	Routes  []Route
	// Stage orders the start: services (0), gateways (1), fleet (2).
	Stage int
}

// Route is one flow a gateway relays: connections to Port are relayed to
// the Upstream service's Port in zone UpstreamZone when their first bytes
// are Protocol.
type Route struct {
	Name         string
	Port         int
	Upstream     string
	UpstreamZone lab.Zone
	Protocol     string
}

// RouteArg is the gateway's --route value for a route whose upstream
// listens at host.
func (r Route) RouteArg(host string) string {
	return fmt.Sprintf("%s=:%d>%s:%d/%s", r.Name, r.Port, host, r.Port, r.Protocol)
}

// Layout is the lab's containers for topology t (defaults filled in) and
// its posture: the same for the provider and for `pumplab compose`. With
// segmentation off every zone is one flat network and there are no
// gateways.
func Layout(t lab.Topology) []Service {
	seg := t.Posture != nil && t.Posture.On(posture.Segmentation)
	hp := func(s string, port int) string { return s + ":" + strconv.Itoa(port) }
	lp := func(port int) string { return ":" + strconv.Itoa(port) }
	svc := func(name string, zone lab.Zone, args ...string) Service {
		return Service{Name: name, Role: name, Home: zone, Aliases: map[lab.Zone][]string{zone: {name}}, Args: args}
	}
	out := []Service{
		svc("broker", lab.ZoneServers, "--listen", lp(PortMQTT)),
		svc("druglib", lab.ZoneServers, "--listen", lp(PortDruglib)),
		svc("ehr", lab.ZoneClinical, "--listen", lp(PortEHR), "--emar", hp("emar", PortEMAR)),
		svc("emar", lab.ZoneClinical, "--listen", lp(PortEMAR), "--ioc", hp("pumpserver", PortIOC), "--ehr", hp("ehr", PortEHR),
			"--rrg-timeout", max(30*time.Second, time.Duration(float64(15*time.Second)*t.Speed)).String()),
		svc("pumpserver", lab.ZoneServers, "--listen", lp(PortIOC), "--broker", "tcp://"+hp("broker", PortMQTT),
			"--iop", hp("emar", PortEMAR), "--doc", hp("ehr", PortEHR), "--am", hp("alarms", PortAM), "--pcd01-interval", t.PCD01Interval.String()),
		svc("alarms", lab.ZoneServers, "--listen", lp(PortAM), "--reporter", hp("pumpserver", PortIOC),
			"--nurses", strconv.Itoa(t.Nurses), "--nurse="+strconv.FormatBool(!t.Nurse.Disabled),
			"--nurse-accept", t.Nurse.AlarmAcceptMedian.String(), "--nurse-sigma", fmt.Sprint(t.Nurse.Sigma)),
	}
	if seg {
		// The application gateways: the eMAR dials "pumpserver" in the
		// clinical zone, the pump server dials "ehr" and "emar" in the
		// servers zone, the pumps dial "broker" and "druglib" in the device
		// zone; each name is the gateway there.
		out = append(out,
			Service{Name: "gw-mllp", Role: "gateway", Home: lab.ZoneClinical, Stage: 1,
				Aliases: map[lab.Zone][]string{lab.ZoneClinical: {"pumpserver"}, lab.ZoneServers: {"ehr", "emar"}},
				Routes: []Route{{"ioc", PortIOC, "pumpserver", lab.ZoneServers, "mllp"}, {"ehr", PortEHR, "ehr", lab.ZoneClinical, "mllp"},
					{"emar", PortEMAR, "emar", lab.ZoneClinical, "mllp"}}},
			Service{Name: "gw-mqtt", Role: "gateway", Home: lab.ZoneDevice, Stage: 1,
				Aliases: map[lab.Zone][]string{lab.ZoneDevice: {"broker", "druglib"}, lab.ZoneServers: {}},
				Routes:  []Route{{"mqtt", PortMQTT, "broker", lab.ZoneServers, "mqtt"}, {"druglib", PortDruglib, "druglib", lab.ZoneServers, "http"}}})
	}
	fleet := svc("fleet", lab.ZoneDevice, "--pumps", strconv.Itoa(t.Pumps), "--broker", "tcp://"+hp("broker", PortMQTT),
		"--status-interval", t.StatusInterval.String(), "--care-area", t.CareArea, "--await-server",
		"--druglib", "http://"+hp("druglib", PortDruglib),
		"--nurse="+strconv.FormatBool(!t.Nurse.Disabled), "--nurse-confirm", t.Nurse.ConfirmMedian.String(),
		"--nurse-alarm", t.Nurse.AlarmAcceptMedian.String(), "--nurse-sigma", fmt.Sprint(t.Nurse.Sigma),
		"--nurse-override-reason", t.Nurse.OverrideReason)
	if t.Posture != nil && t.Posture.Weaknesses.ServicePort.Enabled {
		fleet.Args = append(fleet.Args, "--service-port", strconv.Itoa(ServicePortBase))
	}
	if t.Posture != nil && t.Posture.Weaknesses.SharedCredentials.Enabled && t.Posture.Weaknesses.SharedCredentials.AccessCode != "" {
		fleet.Args = append(fleet.Args, "--factory-code", t.Posture.Weaknesses.SharedCredentials.AccessCode)
	}
	fleet.Stage = 2
	return append(out, fleet)
}
