package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pumplab/pumplab/harness"
)

func init() {
	register("scenarios", "list the scenarios the binary carries, with their labels", cmdScenarios)
}

func cmdScenarios(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("scenarios", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tTECHNIQUES\tAREAS\tLIFECYCLE\tTARGETS\tNEEDS\tTITLE")
	for _, s := range harness.Scenarios() {
		dash := func(v []string) string {
			if len(v) == 0 {
				return "-"
			}
			return strings.Join(v, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Kind(), dash(s.Values("technique")), dash(s.Values("area")),
			dash(s.Values("lifecycle")), dash(s.Values("target")), dash(s.Values("needs")), s.Title)
	}
	return tw.Flush()
}
