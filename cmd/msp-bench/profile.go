package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// it is 100 on every Linux this runs on.
const clockTicks = 100

// cpuSeconds is the CPU time (user + system) a process has used so far.
func cpuSeconds(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after it are plain.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// cpuUse is the CPU time each component used in a window.
type cpuUse struct {
	Seconds     float64 `json:"seconds"`
	KCP         float64 `json:"kcpCPUSeconds"`
	Coordinator float64 `json:"coordinatorCPUSeconds"`
	Servicelets float64 `json:"serviceletsCPUSeconds"`
}

// cpuMeter samples the CPU time of kcp, the coordinator and the servicelets.
type cpuMeter struct {
	kcpPids []int // every shard, the front proxy and the cache server
	procs   *processes
	coord   func() *proc
}

func (m *cpuMeter) sample() cpuUse {
	u := cpuUse{}
	for _, pid := range m.kcpPids {
		u.KCP += cpuSeconds(pid)
	}
	if c := m.coord(); c != nil {
		u.Coordinator = cpuSeconds(c.Pid())
	}
	m.procs.mu.Lock()
	for _, p := range m.procs.servicelets {
		if filepath.Base(p.Path()) == "msp-servicelet" {
			u.Servicelets += cpuSeconds(p.Pid())
		}
	}
	m.procs.mu.Unlock()
	return u
}

// since returns the use between an earlier sample and now.
func (m *cpuMeter) since(before cpuUse, start time.Time) cpuUse {
	now := m.sample()
	return cpuUse{
		Seconds:     time.Since(start).Seconds(),
		KCP:         now.KCP - before.KCP,
		Coordinator: now.Coordinator - before.Coordinator,
		Servicelets: now.Servicelets - before.Servicelets,
	}
}

func (u cpuUse) String() string {
	if u.Seconds == 0 {
		return "n/a"
	}
	pct := func(v float64) float64 { return 100 * v / u.Seconds }
	return fmt.Sprintf("kcp %.0f%%, coordinator %.0f%%, servicelets %.0f%% (of one core, over %.0f s)",
		pct(u.KCP), pct(u.Coordinator), pct(u.Servicelets), u.Seconds)
}

// captureProfiles fetches a CPU profile of every endpoint in parallel (name → base URL
// of a /debug/pprof handler) into dir, each over the given duration.
func captureProfiles(ctx context.Context, dir string, endpoints map[string]string, d time.Duration) {
	for name, base := range endpoints {
		go fetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(d.Seconds())), filepath.Join(dir, name+".cpu.pprof"), d+time.Minute)
	}
}

// captureHeap fetches a heap profile (what is in use after a collection) from the
// /debug/pprof handler at base into dir.
func captureHeap(ctx context.Context, dir, name, base string) {
	fetchProfile(ctx, base+"/debug/pprof/heap?gc=1", filepath.Join(dir, name+".heap.pprof"), time.Minute)
}

// fetchProfile writes what url answers to path, and says where.
func fetchProfile(ctx context.Context, url, path string, timeout time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		say("profile %s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err == nil {
		say("wrote %s (go tool pprof -top %s)", path, path)
	}
}
