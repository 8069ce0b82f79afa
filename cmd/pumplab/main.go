// Command pumplab is the one binary of the lab: it runs the scenario suite,
// brings the hospital up for scripting, serves single roles, and benchmarks
// the fleet.
//
//	pumplab run       run the scenario suite and write the reports
//	pumplab up        start the in-process hospital and print its endpoints
//	pumplab serve     run one role (fleet) against a broker
//	pumplab bench     fleet benchmark: N pumps, one status per pump per second
//
// Not for clinical use.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"syscall"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	commands[name] = command{summary, run}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pumplab COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'pumplab COMMAND -h' for a command's flags. Not for clinical use.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks an error whose message already went out with the usage.
var errUsage = errors.New("usage")

var flagErrHelp = flag.ErrHelp

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "pumplab: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// PUMPLAB_CPUPROFILE=prefix writes a CPU profile per process
	// (prefix.<command>.<pid>), for the benchmark figures in docs/performance.md.
	if pre := os.Getenv("PUMPLAB_CPUPROFILE"); pre != "" {
		if f, err := os.Create(fmt.Sprintf("%s.%s.%d", pre, args[0], os.Getpid())); err == nil {
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errRegressed) {
			return 1
		}
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "pumplab %s: %v\n", args[0], err)
		}
		return 1
	}
	return 0
}

// newFlags returns a flag set that reports errors to stderr and returns them.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("pumplab "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags and refuses positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}
