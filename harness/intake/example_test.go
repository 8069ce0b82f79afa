package intake_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pumplab/pumplab/harness/intake"
	"github.com/pumplab/pumplab/harness/score"
)

func Example() {
	ctx := context.Background()
	in := intake.New(intake.Config{
		SyslogUDPAddr: intake.Disabled,
		OnAlert:       func(a score.Alert) { fmt.Println("alert from", a.Tool, "via", a.Source, a.Techniques) },
	})
	if err := in.Start(ctx); err != nil {
		panic(err)
	}
	defer in.Close()

	body := `{"tool":"pumpguard","assets":["PUMP-0007"],"techniques":["T0831"]}`
	resp, err := http.Post(in.HTTPURL()+"/v1/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := in.Wait(ctx, func(as []score.Alert) bool { return len(as) == 1 }); err != nil {
		panic(err)
	}
	fmt.Println(in.Alerts()[0].Assets, in.Stats().HTTP.Accepted)
	// Output:
	// alert from pumpguard via http [T0831]
	// 202 Accepted
	// [PUMP-0007] 1
}
