package containers_test

import (
	"fmt"
	"strings"

	"github.com/pumplab/pumplab/lab"
	"github.com/pumplab/pumplab/lab/containers"
	"github.com/pumplab/pumplab/lab/posture"
)

func Example() {
	nccoe, _ := posture.Builtin("nccoe") // segmentation on
	t := lab.Topology{Pumps: 100, Posture: nccoe}.WithDefaults()
	for _, s := range containers.Layout(t) {
		var names []string
		for _, z := range lab.Zones {
			if a, ok := s.Aliases[z]; ok {
				names = append(names, fmt.Sprintf("%s=%s", z, strings.Join(a, ",")))
			}
		}
		var routes []string
		for _, r := range s.Routes {
			routes = append(routes, fmt.Sprintf("%s:%d->%s/%s", r.Name, r.Port, r.Upstream, r.Protocol))
		}
		line := fmt.Sprintf("%-10s serve %-10s home %-8s %s", s.Name, s.Role, s.Home, strings.Join(append(names, routes...), " "))
		fmt.Println(strings.TrimSpace(line))
	}
	// Output:
	// broker     serve broker     home servers  servers=broker
	// druglib    serve druglib    home servers  servers=druglib
	// ehr        serve ehr        home clinical clinical=ehr
	// emar       serve emar       home clinical clinical=emar
	// pumpserver serve pumpserver home servers  servers=pumpserver
	// alarms     serve alarms     home servers  servers=alarms
	// gw-mllp    serve gateway    home clinical clinical=pumpserver servers=ehr,emar ioc:2577->pumpserver/mllp ehr:2575->ehr/mllp emar:2576->emar/mllp
	// gw-mqtt    serve gateway    home device   servers= device=broker,druglib mqtt:1883->broker/mqtt druglib:8080->druglib/http
	// fleet      serve fleet      home device   device=fleet
}
