// Command msp-bench measures the platform on this machine: it starts a real kcp, creates
// W tenant workspaces bound to a provider's export, R runtimes with servicelets on the
// test driver, and measures the scheduler against C capabilities: assignment throughput
// next to a plain client-go ceiling doing the same writes, create→assigned and
// create→Ready latencies in a burst and at a steady churn, peak memory, writes per
// decision and per idle runtime-minute, and a cold restart of the coordinator.
//
// It prints a markdown table and writes it with JSON and an SVG plot under --out.
// `make bench` runs the full preset, `make bench-quick` a few-minute one.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

type options struct {
	Workspaces, Runtimes, Capabilities int
	ChurnRate, LowChurnRate            int
	ServiceletLoad                     int
	ChurnFor                           time.Duration
	IdleFor                            time.Duration
	Out                                string
	Bin                                string
	KCP                                string
	CeilingOnly                        bool
	Keep                               bool
	Profile                            time.Duration
	Shards                             int
}

func main() {
	o := options{Workspaces: 1000, Runtimes: 100, Capabilities: 10000, ChurnRate: 20, LowChurnRate: 5, ServiceletLoad: 1000, ChurnFor: time.Minute, IdleFor: 2 * time.Minute, Out: "_bench"}
	quick := false
	fs := pflag.CommandLine
	fs.IntVar(&o.Workspaces, "workspaces", o.Workspaces, "W: tenant workspaces bound to the export.")
	fs.IntVar(&o.Runtimes, "runtimes", o.Runtimes, "R: ServiceRuntimes, each with its servicelet on the test driver.")
	fs.IntVar(&o.Capabilities, "capabilities", o.Capabilities, "C: capabilities in the burst.")
	fs.IntVar(&o.ChurnRate, "churn-rate", o.ChurnRate, "Capabilities created per second in the steady phase.")
	fs.IntVar(&o.LowChurnRate, "low-churn-rate", o.LowChurnRate, "Capabilities created per second in a second steady phase, one this kcp can sustain; 0 skips it.")
	fs.IntVar(&o.ServiceletLoad, "servicelet-load", o.ServiceletLoad, "Capabilities placed on one more runtime to measure its servicelet's memory; 0 skips it.")
	fs.DurationVar(&o.ChurnFor, "churn-for", o.ChurnFor, "Length of each steady phase.")
	fs.DurationVar(&o.IdleFor, "idle-for", o.IdleFor, "Length of the idle window that counts the runtimes' writes.")
	fs.StringVar(&o.Out, "out", o.Out, "Folder for results.md, results.json and latency.svg.")
	fs.StringVar(&o.Bin, "bin", o.Bin, "Folder with kcp and msp's binaries (default: next to msp-bench).")
	fs.StringVar(&o.KCP, "kcp", o.KCP, "The kcp binary to run (default: kcp in --bin); e.g. another kcp version, to compare ceilings.")
	fs.BoolVar(&o.CeilingOnly, "ceiling-only", o.CeilingOnly, "Set up W and R, measure kcp's ceilings and stop: no msp component runs.")
	fs.BoolVar(&o.Keep, "keep", o.Keep, "Keep kcp's data folder.")
	fs.IntVar(&o.Shards, "shards", 1, "kcp shards behind kcp's front proxy (1: one kcp, as make run); tenant workspaces land on the shards as kcp places them.")
	fs.DurationVar(&o.Profile, "profile", o.Profile, "When set, capture CPU profiles of kcp and the coordinator over this long from the start of the burst, into --out.")
	fs.BoolVar(&quick, "quick", quick, "A shorter preset (about ten minutes): W=20, R=5, C=1000, churn phases of 30s, idle 1m.")
	pflag.Parse()
	if quick {
		o.Workspaces, o.Runtimes, o.Capabilities, o.ChurnFor, o.IdleFor = 20, 5, 1000, 30*time.Second, time.Minute
	}
	if o.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			fail(err)
		}
		o.Bin = filepath.Dir(exe)
	}
	if o.KCP == "" {
		o.KCP = filepath.Join(o.Bin, "kcp")
	}
	if abs, err := filepath.Abs(o.KCP); err == nil {
		o.KCP = abs // kcp runs in its data folder
	}
	if o.Workspaces < 1 || o.Runtimes < 1 || o.Capabilities < 1 || o.ChurnRate < 1 || o.LowChurnRate < 0 || o.ServiceletLoad < 0 {
		fail(fmt.Errorf("--workspaces, --runtimes, --capabilities and --churn-rate must be positive"))
	}
	if o.Shards < 1 || o.Shards > 4 {
		fail(fmt.Errorf("--shards must be between 1 and 4"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if err != nil {
		fail(err)
	}
	if err := report(o, res); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "msp-bench:", err)
	os.Exit(1)
}
