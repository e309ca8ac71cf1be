package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// targets are the goals of issues #7 and #17, shown next to the figures; never asserted.
const (
	targetThroughput  = 500.0
	targetRatio       = 0.8
	targetChurnP99    = 250.0
	targetReadyP99    = 500.0
	targetCoordinator = 150.0
	targetServicelet  = 40.0
	targetRestart     = 30.0
	targetWritesCap   = 4.0
	targetIdleWrites  = 1.0
)

func report(o options, r *results) error {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	ratio := 0.0
	if r.CeilingPerSec > 0 {
		ratio = r.BurstPerSec / r.CeilingPerSec
	}
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s. Run: %s, W=%d, R=%d, C=%d, churn %d/s for %s, kcp shards %d (setup %.0fs).\n\n",
		r.Machine, time.Now().UTC().Format("2006-01-02 15:04 MST"), o.Workspaces, o.Runtimes, o.Capabilities, o.ChurnRate, o.ChurnFor, o.Shards, r.SetupSeconds)
	if o.CeilingOnly {
		fmt.Fprintf(&b, "kcp: %s\n\n| ceiling (plain client-go through the virtual workspace, %d capabilities, 32 in flight) | per second |\n| --- | --- |\n", o.KCP, r.CeilingSample)
		fmt.Fprintf(&b, "| create + the scheduler's write | %.1f |\n| create + the scheduler's and the servicelet's 3 writes | %.1f |\n", r.CeilingPerSec, r.LifecyclePerSec)
		return writeResults(o, r, b.String())
	}
	b.WriteString("| figure | value | target | |\n| --- | --- | --- | --- |\n")
	row := func(name, value, target string, ok bool) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, value, target, mark(ok))
	}
	info := func(name, value string) { fmt.Fprintf(&b, "| %s | %s | | |\n", name, value) }
	row("assignments/s (burst)", fmt.Sprintf("%.0f", r.BurstPerSec), fmt.Sprintf("≥ %.0f", targetThroughput), r.BurstPerSec >= targetThroughput)
	info("ceiling: plain client-go, create + the scheduler's write through the virtual workspace", fmt.Sprintf("%.0f/s (%d capabilities, 32 in flight)", r.CeilingPerSec, r.CeilingSample))
	row("ratio to the ceiling", fmt.Sprintf("%.2f", ratio), fmt.Sprintf("≥ %.1f", targetRatio), ratio >= targetRatio)
	if r.LifecyclePerSec > 0 {
		info("capabilities Ready/s (burst)", fmt.Sprintf("%.1f", r.BurstReadyPerSec))
		info("ceiling: plain client-go, create + the scheduler's and the servicelet's 3 writes", fmt.Sprintf("%.0f/s; ratio %.2f", r.LifecyclePerSec, r.BurstReadyPerSec/r.LifecyclePerSec))
	}
	info("create→assigned, burst p50 / p90 / p99", fmt.Sprintf("%.0f / %.0f / %.0f ms", r.BurstAssigned.P50, r.BurstAssigned.P90, r.BurstAssigned.P99))
	row("create→assigned at churn, p99", fmt.Sprintf("%.0f ms (p50 %.0f, p90 %.0f)", r.ChurnAssigned.P99, r.ChurnAssigned.P50, r.ChurnAssigned.P90), fmt.Sprintf("≤ %.0f ms", targetChurnP99), r.ChurnAssigned.P99 <= targetChurnP99)
	row("create→Ready at churn, p99", fmt.Sprintf("%.0f ms (p50 %.0f)", r.ChurnReady.P99, r.ChurnReady.P50), fmt.Sprintf("≤ %.0f ms", targetReadyP99), r.ChurnReady.P99 <= targetReadyP99)
	if r.LowReady.N > 0 {
		info(fmt.Sprintf("create→assigned / create→Ready at %s, p99", r.Params["lowChurn"]), fmt.Sprintf("%.0f ms (p50 %.0f) / %.0f ms (p50 %.0f)", r.LowAssigned.P99, r.LowAssigned.P50, r.LowReady.P99, r.LowReady.P50))
	}
	info("create→Ready, burst p50 / p99", fmt.Sprintf("%.0f / %.0f ms", r.BurstReady.P50, r.BurstReady.P99))
	row("coordinator peak RSS", fmt.Sprintf("%.0f MB", r.CoordinatorMB), fmt.Sprintf("≤ %.0f MB", targetCoordinator), r.CoordinatorMB <= targetCoordinator)
	row("servicelet RSS, idle", fmt.Sprintf("%.0f MB", r.ServiceletIdle), fmt.Sprintf("≤ %.0f MB", targetServicelet), r.ServiceletIdle <= targetServicelet)
	info("servicelet peak RSS", fmt.Sprintf("%.0f MB with ~%d capabilities", r.ServiceletPeak, r.ServiceletCaps))
	if r.LoadCaps > 0 {
		info("servicelet peak RSS, one runtime", fmt.Sprintf("%.0f MB with %d capabilities", r.LoadRSS, r.LoadCaps))
	}
	info("CPU during the burst", r.BurstCPU.String())
	info("CPU during the churn", r.ChurnCPU.String())
	if len(r.WritesPerCap) > 0 {
		w := r.WritesPerCap
		total := w["capability"] + w["secret"] + w["event"] + w["twin"]
		row("kcp's work per capability, burst (create → Ready)", fmt.Sprintf(
			"%.1f stored writes (capability %.1f, Secret %.1f, events %.1f, twins %.2f), %.1f SubjectAccessReviews",
			total, w["capability"], w["secret"], w["event"], w["twin"], w["subjectaccessreview"]), fmt.Sprintf("≤ %.0f stored writes", targetWritesCap), total <= targetWritesCap+0.05)
	}
	info("coordinator writes per decision", fmt.Sprintf("%.2f (the assignment patch; a status apply only for what waited)", r.WritesPerDec))
	row("stored writes per idle runtime-minute (the twin's heartbeat)", fmt.Sprintf("%.2f", r.IdleWritesMin), fmt.Sprintf("≤ %.0f", targetIdleWrites), r.IdleWritesMin <= targetIdleWrites)
	row("cold restart: caught up", fmt.Sprintf("%.1f s, %.0f writes", r.RestartSeconds, r.RestartWrites), fmt.Sprintf("≤ %.0f s, no redundant writes", targetRestart), r.RestartSeconds <= targetRestart)
	if err := writeResults(o, r, b.String()); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.Out, "latency.svg"), []byte(svg(r)), 0o644)
}

// writeResults prints the table and writes it and the raw results into --out.
func writeResults(o options, r *results, table string) error {
	fmt.Println()
	fmt.Print(table)
	if err := os.WriteFile(filepath.Join(o.Out, "results.md"), []byte(table), 0o644); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.Out, "results.json"), raw, 0o644)
}

// svg draws two panels: the create→assigned CDF of the burst and of the churn, and the
// assigned count over the burst.
func svg(r *results) string {
	const w, h, pad = 900, 360, 50
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, w, h)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>`)
	panel := func(x0 int, title, xlabel string) {
		fmt.Fprintf(&b, `<text x="%d" y="20" font-weight="bold">%s</text>`, x0+pad, title)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, x0+pad, h-pad, x0+w/2-10, h-pad)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, x0+pad, 30, x0+pad, h-pad)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, x0+pad, h-15, xlabel)
	}
	cdf := func(x0 int, d []time.Duration, maxMs float64, color string) {
		if len(d) == 0 || maxMs == 0 {
			return
		}
		var pts []string
		for i, v := range d {
			x := float64(x0+pad) + float64(v.Milliseconds())/maxMs*float64(w/2-pad-10)
			y := float64(h-pad) - float64(i+1)/float64(len(d))*float64(h-pad-30)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, color, strings.Join(pts, " "))
	}
	panel(0, "create→assigned (CDF)", fmt.Sprintf("ms (0–%.0f); blue: burst, red: churn", r.BurstAssigned.Max))
	cdf(0, r.BurstAssigned.raw, r.BurstAssigned.Max, "steelblue")
	cdf(0, r.ChurnAssigned.raw, r.BurstAssigned.Max, "firebrick")
	panel(w/2, "assigned over the burst", "seconds")
	if n := len(r.Timeline); n > 0 {
		last := r.Timeline[n-1]
		var pts []string
		for _, p := range r.Timeline {
			x := float64(w/2+pad) + p.Seconds/max(last.Seconds, 0.001)*float64(w/2-pad-10)
			y := float64(h-pad) - float64(p.Assigned)/float64(last.Assigned)*float64(h-pad-30)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="seagreen" stroke-width="2" points="%s"/>`, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="45">%d in %.1fs</text>`, w/2+pad+10, last.Assigned, last.Seconds)
	}
	b.WriteString(`</svg>`)
	return b.String()
}
