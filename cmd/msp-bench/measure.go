package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	kcpinformers "github.com/kcp-dev/apimachinery/v2/third_party/informers"

	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/child"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/launcher"
	"github.com/msp-dev/msp/pkg/metrics"
	"github.com/msp-dev/msp/pkg/ports"
	"github.com/msp-dev/msp/sdk/launch"
)

// watcher records, per capability name, when the bench created it and when the
// provider's virtual workspace first showed it assigned and Ready.
type watcher struct {
	mu       sync.Mutex
	createAt map[string]time.Time
	assigned map[string]time.Time
	ready    map[string]time.Time
}

// newWatcher follows every capability through the export's virtual workspaces (one per
// kcp shard), as vwCfg (the coordinator's identity: an admin of one shard is not one
// of another shard's virtual workspace) sees them.
func newWatcher(ctx context.Context, cfg, vwCfg *rest.Config, shards int) (*watcher, error) {
	w := &watcher{createAt: map[string]time.Time{}, assigned: map[string]time.Time{}, ready: map[string]time.Time{}}
	urls, err := endpointURLs(ctx, cfg, shards)
	if err != nil {
		return nil, err
	}
	seen := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		now := time.Now()
		rt, _, _ := unstructured.NestedString(u.Object, "spec", "runtimeName")
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		ready := false
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Ready" && m["status"] == "True" {
				ready = true
			}
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.assigned[u.GetName()]; !ok && rt != "" {
			w.assigned[u.GetName()] = now
		}
		if _, ok := w.ready[u.GetName()]; !ok && ready {
			w.ready[u.GetName()] = now
		}
	}
	for _, url := range urls {
		vw := rest.CopyConfig(vwCfg)
		vw.Host = url + "/clusters/*"
		dyn, err := dynamic.NewForConfig(vw)
		if err != nil {
			return nil, err
		}
		ri := dyn.Resource(pgdbGVR)
		lw := &toolscache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (k8sruntime.Object, error) {
				return ri.List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return ri.Watch(ctx, o)
			},
		}
		inf := kcpinformers.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, toolscache.Indexers{})
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: seen, UpdateFunc: func(_, o any) { seen(o) }}); err != nil {
			return nil, err
		}
		go inf.RunWithContext(ctx)
	}
	return w, nil
}

// endpointURLs waits for the export's endpoint slice to list an endpoint per shard (or
// at least one, after half a minute) and returns them.
func endpointURLs(ctx context.Context, cfg *rest.Config, shards int) ([]string, error) {
	dyn := dynamic.NewForConfigOrDie(kcpconfig.ForWorkspace(cfg, provider))
	gvr := workspaceGVR.GroupVersion().WithResource("x")
	gvr.Group, gvr.Version, gvr.Resource = "apis.kcp.io", "v1alpha1", "apiexportendpointslices"
	patience := time.Now().Add(30 * time.Second)
	for {
		slice, err := dyn.Resource(gvr).Get(ctx, export, metav1.GetOptions{})
		if err == nil {
			eps, _, _ := unstructured.NestedSlice(slice.Object, "status", "endpoints")
			var urls []string
			for _, e := range eps {
				if u, _ := e.(map[string]any)["url"].(string); u != "" {
					urls = append(urls, u)
				}
			}
			if len(urls) >= shards || len(urls) > 0 && time.Now().After(patience) {
				return urls, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// endpointOf returns the endpoint (of urls) whose virtual workspace serves the tenant's
// logical cluster: its own shard's.
func endpointOf(ctx context.Context, vwCfg *rest.Config, urls []string, cluster string) (string, error) {
	var last error
	for _, url := range urls {
		c := rest.CopyConfig(vwCfg)
		c.Host = url + "/clusters/" + cluster
		dyn, err := dynamic.NewForConfig(c)
		if err != nil {
			return "", err
		}
		if _, err := dyn.Resource(pgdbGVR).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			last = err
			continue
		}
		return url, nil
	}
	return "", fmt.Errorf("no virtual workspace of %v serves workspace %s: %v", urls, cluster, last)
}

func (w *watcher) created(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.createAt[name] = time.Now()
}

func (w *watcher) wait(ctx context.Context, names []string, what map[string]time.Time, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		missing := 0
		for _, n := range names {
			if _, ok := what[n]; !ok {
				missing++
			}
		}
		w.mu.Unlock()
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d capabilities did not get there within %s", missing, len(names), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *watcher) waitAssigned(ctx context.Context, names []string, timeout time.Duration) error {
	return w.wait(ctx, names, w.assigned, timeout)
}

func (w *watcher) waitReady(ctx context.Context, names []string, timeout time.Duration) error {
	return w.wait(ctx, names, w.ready, timeout)
}

// latencies are percentiles in milliseconds.
type latencies struct {
	P50 float64 `json:"p50ms"`
	P90 float64 `json:"p90ms"`
	P99 float64 `json:"p99ms"`
	Max float64 `json:"maxms"`
	N   int     `json:"n"`
	raw []time.Duration
}

func percentiles(d []time.Duration) latencies {
	if len(d) == 0 {
		return latencies{}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(p float64) float64 {
		i := int(float64(len(d)-1) * p)
		return float64(d[i].Microseconds()) / 1000
	}
	return latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1), N: len(d), raw: d}
}

func (w *watcher) latencies(names []string) (assigned, ready latencies) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var a, r []time.Duration
	for _, n := range names {
		c := w.createAt[n]
		if t, ok := w.assigned[n]; ok {
			a = append(a, t.Sub(c))
		}
		if t, ok := w.ready[n]; ok {
			r = append(r, t.Sub(c))
		}
	}
	return percentiles(a), percentiles(r)
}

// timeline counts assigned capabilities per 250ms since start.
func (w *watcher) timeline(names []string, start time.Time) []point {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ts []float64
	for _, n := range names {
		if t, ok := w.assigned[n]; ok {
			ts = append(ts, t.Sub(start).Seconds())
		}
	}
	sort.Float64s(ts)
	var out []point
	for i, s := range ts {
		if len(out) == 0 || s-out[len(out)-1].Seconds >= 0.25 || i == len(ts)-1 {
			out = append(out, point{Seconds: s, Assigned: i + 1})
		}
	}
	return out
}

// processes runs msp's components for the bench.
type processes struct {
	bin, dir string
	pprof    bool
	// ids are the provider's identities; issue hands a runtime's servicelet its own
	// credential (a kubeconfig for the front door).
	ids         bootstrap.ProviderIdentities
	issue       func(runtime, dir string) (string, error)
	mu          sync.Mutex
	servicelets []*proc
}

type proc struct {
	*child.Process
	metrics string
	pprof   string
}

func (p *proc) stop() { p.Stop(15 * time.Second) }

func (ps *processes) start(name string, args ...string) (*proc, error) {
	p, err := child.Start(filepath.Join(ps.bin, args[0]), args[1:], filepath.Join(ps.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	return &proc{Process: p}, nil
}

func (ps *processes) servicelet(runtime string) (*proc, error) {
	dir := filepath.Join(ps.dir, "runtimes", runtime)
	kubeconfig, err := ps.issue(runtime, dir)
	if err != nil {
		return nil, err
	}
	p, err := ps.start("servicelet-"+runtime, append([]string{"msp-servicelet"}, launch.Servicelet{
		Kubeconfig: kubeconfig, Runtime: runtime, Extra: []string{"--state-dir", filepath.Join(ps.dir, "runtimes", runtime)},
	}.Args()...)...)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	ps.servicelets = append(ps.servicelets, p)
	ps.mu.Unlock()
	return p, nil
}

func (ps *processes) coordinator() (*proc, error) {
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	co := ps.ids.Coordinator()
	co.MetricsAddr = addr
	if ps.pprof {
		pp, err := ports.Free("127.0.0.1")
		if err != nil {
			return nil, err
		}
		co.PprofAddr = fmt.Sprintf("127.0.0.1:%d", pp)
	}
	pprofAddr := co.PprofAddr
	args := append([]string{"postgres-coordinator"}, co.Args()...)
	p, err := ps.start(fmt.Sprintf("coordinator-%d", port), args...)
	if err != nil {
		return nil, err
	}
	p.metrics, p.pprof = addr, pprofAddr
	ps.mu.Lock()
	ps.servicelets = append(ps.servicelets, p) // stopped with the rest
	ps.mu.Unlock()
	return p, nil
}

// frontDoor starts the provider's front door, which the servicelets dial.
func (ps *processes) frontDoor() (*proc, error) {
	p, err := ps.start("frontdoor", append([]string{"msp-frontdoor"}, ps.ids.FrontDoorArgs()...)...)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	ps.servicelets = append(ps.servicelets, p) // stopped with the rest
	ps.mu.Unlock()
	return p, nil
}

func (ps *processes) stopAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.servicelets {
		p.stop()
	}
}

// maxRSS is the largest resident set (peak: high-water mark) of the servicelets, in MB.
func (ps *processes) maxRSS(peak bool) float64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	max := 0.0
	for _, p := range ps.servicelets {
		if filepath.Base(p.Path()) != "msp-servicelet" {
			continue
		}
		if v := rssMB(p.Pid(), peak); v > max {
			max = v
		}
	}
	return max
}

// rssMB reads VmRSS (or VmHWM, the peak) of a process.
func rssMB(pid int, peak bool) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	key := "VmRSS:"
	if peak {
		key = "VmHWM:"
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, key) {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, key)), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

// sum adds the samples whose name starts with prefix and contains every part.
func sum(m map[string]float64, prefix string, parts ...string) float64 {
	total := 0.0
	for k, v := range m {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		ok := true
		for _, p := range parts {
			if !strings.Contains(k, p) {
				ok = false
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

func clientWrites(m map[string]float64) float64 {
	w := 0.0
	for _, method := range []string{`method="POST"`, `method="PUT"`, `method="PATCH"`, `method="DELETE"`} {
		w += sum(m, "rest_client_requests_total", method)
	}
	return w
}

// coordinatorWrites returns how many assignments the coordinator wrote and how many
// write requests it sent in all.
func coordinatorWrites(ctx context.Context, p *proc) (scheduled, writes float64) {
	m, err := metrics.Scrape(ctx, http.DefaultClient, "http://"+p.metrics+"/metrics")
	if err != nil {
		return 0, 0
	}
	return sum(m, "msp_scheduler_attempts_total", `result="scheduled"`), clientWrites(m)
}

// caughtUp waits until a freshly started coordinator has reconciled every capability and
// its queues are empty, and returns how long that took and the writes it sent.
func caughtUp(ctx context.Context, p *proc, n int, start time.Time) (float64, float64, error) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		m, err := metrics.Scrape(ctx, http.DefaultClient, "http://"+p.metrics+"/metrics")
		if err == nil {
			reconciled := sum(m, "controller_runtime_reconcile_total", "msp-scheduler")
			depth := sum(m, "workqueue_depth", "msp-scheduler")
			if reconciled >= float64(n) && depth == 0 {
				return time.Since(start).Seconds(), clientWrites(m), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, 0, fmt.Errorf("the restarted coordinator did not catch up within 10 minutes")
}

// storedWrites reads how many writes kcp stored for a type (resource.group).
func storedWrites(ctx context.Context, adminKubeconfigs []string, typ string) (float64, error) {
	m, err := kcpMetrics(ctx, adminKubeconfigs)
	if err != nil {
		return 0, err
	}
	return stored(m, typ), nil
}

// stored counts kcp's stored writes of typ (resource.group, or a core resource): kcp
// v0.28 labels etcd_requests_total with type="resource.group", v0.30 (Kubernetes 1.33
// and later) with group and resource apart.
func stored(m map[string]float64, typ string) float64 {
	resource, group, _ := strings.Cut(typ, ".")
	n := 0.0
	for _, op := range []string{"create", "update", "delete"} {
		n += sum(m, "etcd_requests_total", `operation="`+op+`"`, `type="`+typ+`"`)
		n += sum(m, "etcd_requests_total", `operation="`+op+`"`, `group="`+group+`"`, `resource="`+resource+`"`)
	}
	return n
}

// countedResources are what a capability causes kcp to do: the writes kcp stores for
// the capability (create, assignment with the finalizer, status), its connection Secret and its
// events (counted at the storage, so a write through the virtual workspace counts once),
// the runtimes' twins written meanwhile (their share of the whole cost), and the
// SubjectAccessReviews kcp makes to authorize each request through the virtual workspace.
var countedResources = []string{"capability", "secret", "event", "twin", "subjectaccessreview"}

var storageTypes = map[string]string{
	"capability": "postgresdatabases.postgres.msp.dev",
	"secret":     "secrets",
	"event":      "events",
	"twin":       "serviceruntimes.platform.msp.dev",
}

// kcpWriteCounts reads kcp's counters for each counted resource.
func kcpWriteCounts(ctx context.Context, adminKubeconfigs []string) (map[string]float64, error) {
	m, err := kcpMetrics(ctx, adminKubeconfigs)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, r := range countedResources {
		if typ, ok := storageTypes[r]; ok {
			out[r] = stored(m, typ)
			continue
		}
		out[r] = sum(m, "apiserver_request_total", `verb="POST"`, `resource="subjectaccessreviews"`)
	}
	return out, nil
}

// shardKubeconfigs are the admin kubeconfigs of kcp's shards (one for one kcp).
func shardKubeconfigs(server *launcher.Server) []string {
	var out []string
	for _, sh := range server.Shards() {
		out = append(out, sh.KubeconfigPath)
	}
	return out
}

// kcpMetrics scrapes every shard's /metrics, which needs the shard's admin (the platform
// token may not read it), and sums the counters.
func kcpMetrics(ctx context.Context, adminKubeconfigs []string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, file := range adminKubeconfigs {
		raw, err := clientcmd.LoadFromFile(file)
		if err != nil {
			return nil, err
		}
		overrides := &clientcmd.ConfigOverrides{}
		if _, ok := raw.Contexts["shard-base"]; ok {
			overrides.CurrentContext = "shard-base" // one kcp: its admin kubeconfig's base
		}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: file}, overrides).ClientConfig()
		if err != nil {
			return nil, err
		}
		base := kcpconfig.Base(cfg)
		client, err := rest.HTTPClientFor(base)
		if err != nil {
			return nil, err
		}
		m, err := metrics.Scrape(ctx, client, base.Host+"/metrics")
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] += v
		}
	}
	return out, nil
}

func numCPU() int { return runtime.NumCPU() }
