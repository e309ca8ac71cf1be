package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/child"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/launcher"
	"github.com/msp-dev/msp/pkg/onboarding"
	"github.com/msp-dev/msp/pkg/ports"
)

const (
	provider = "root:providers:postgres"
	export   = "postgres.msp.dev"
)

var (
	pgdbGVR      = schema.GroupVersionResource{Group: "postgres.msp.dev", Version: "v1alpha1", Resource: "postgresdatabases"}
	workspaceGVR = schema.GroupVersionResource{Group: "tenancy.kcp.io", Version: "v1alpha1", Resource: "workspaces"}
	runtimeGVR   = schema.GroupVersionResource{Group: "platform.msp.dev", Version: "v1alpha1", Resource: "serviceruntimes"}
	secretGVR    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

// results are the figures of one run.
type results struct {
	Machine          string             `json:"machine"`
	Params           map[string]string  `json:"params"`
	SetupSeconds     float64            `json:"setupSeconds"`
	CeilingPerSec    float64            `json:"ceilingAssignmentsPerSecond"`
	LifecyclePerSec  float64            `json:"ceilingLifecyclePerSecond"`
	CeilingSample    int                `json:"ceilingSample"`
	BurstReadyPerSec float64            `json:"burstReadyPerSecond"`
	BurstPerSec      float64            `json:"burstAssignmentsPerSecond"`
	BurstAssigned    latencies          `json:"burstCreateToAssigned"`
	BurstReady       latencies          `json:"burstCreateToReady"`
	ChurnAssigned    latencies          `json:"churnCreateToAssigned"`
	ChurnReady       latencies          `json:"churnCreateToReady"`
	CoordinatorMB    float64            `json:"coordinatorPeakRSSMB"`
	ServiceletIdle   float64            `json:"serviceletIdleRSSMB"`
	ServiceletPeak   float64            `json:"serviceletPeakRSSMB"`
	ServiceletCaps   int                `json:"serviceletPeakCapabilities"`
	WritesPerDec     float64            `json:"coordinatorWritesPerDecision"`
	IdleWritesMin    float64            `json:"writesPerIdleRuntimeMinute"`
	RestartSeconds   float64            `json:"coldRestartCatchUpSeconds"`
	RestartWrites    float64            `json:"coldRestartWrites"`
	BurstCPU         cpuUse             `json:"burstCPU"`
	WritesPerCap     map[string]float64 `json:"burstKCPWritesPerCapability"`
	ChurnCPU         cpuUse             `json:"churnCPU"`
	LowAssigned      latencies          `json:"lowChurnCreateToAssigned"`
	LowReady         latencies          `json:"lowChurnCreateToReady"`
	LoadCaps         int                `json:"serviceletLoadCapabilities"`
	LoadRSS          float64            `json:"serviceletLoadPeakRSSMB"`
	Timeline         []point            `json:"assignedTimeline"`
	burstSamples     []time.Duration
}

type point struct {
	Seconds  float64 `json:"seconds"`
	Assigned int     `json:"assigned"`
}

func run(ctx context.Context, o options) (*results, error) {
	res := &results{Machine: machine(), Params: map[string]string{
		"W": fmt.Sprint(o.Workspaces), "R": fmt.Sprint(o.Runtimes), "C": fmt.Sprint(o.Capabilities),
		"churn": fmt.Sprintf("%d/s for %s", o.ChurnRate, o.ChurnFor), "kcp": o.KCP, "shards": fmt.Sprint(o.Shards), "lowChurn": fmt.Sprintf("%d/s for %s", o.LowChurnRate, o.ChurnFor),
	}}
	dataDir, err := os.MkdirTemp("", "msp-bench-")
	if err != nil {
		return nil, err
	}
	if !o.Keep {
		defer os.RemoveAll(dataDir)
	}
	start := time.Now()
	say("starting kcp (data: %s)", dataDir)
	kcpOpts := launcher.Options{Binary: o.KCP, DataDir: filepath.Join(dataDir, "kcp"), Shards: o.Shards}
	profiles := map[string]string{}
	if o.Profile > 0 && o.Shards > 1 {
		return nil, fmt.Errorf("--profile profiles one kcp: not with --shards %d", o.Shards)
	}
	if o.Profile > 0 {
		port, err := ports.Free("127.0.0.1")
		if err != nil {
			return nil, err
		}
		kcpOpts.ExtraArgs = []string{fmt.Sprintf("--profiler-address=127.0.0.1:%d", port)}
		profiles["kcp"] = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	server, err := launcher.Start(ctx, kcpOpts)
	if err != nil {
		return nil, err
	}
	defer server.Stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", server.PlatformKubeconfigPath())
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 2000, 4000
	if _, err := bootstrap.Run(ctx, bootstrap.Options{Config: cfg}); err != nil {
		return nil, err
	}
	// The PostgreSQL provider joins as in make run: msp-providers, with its own identity,
	// reconciles its ServiceProvider (the workspace, and the tenant type's default
	// binding, so that every tenant workspace below gets the export).
	kcpCA, err := server.ServingCA()
	if err != nil {
		return nil, err
	}
	providersKubeconfig := filepath.Join(dataDir, "msp-providers.kubeconfig")
	if err := bootstrap.IssueProvidersController(server.CA(), server.URL(), kcpCA, providersKubeconfig); err != nil {
		return nil, err
	}
	providers, err := child.Start(filepath.Join(o.Bin, "msp-providers"), []string{"--kubeconfig", providersKubeconfig}, filepath.Join(dataDir, "msp-providers.log"))
	if err != nil {
		return nil, err
	}
	defer providers.Stop(10 * time.Second)
	exportObjs, err := bootstrap.ExportObjects(nil, "postgres.msp.dev")
	if err != nil {
		return nil, err
	}
	sp := &onboardingv1alpha1.ServiceProvider{Spec: onboardingv1alpha1.ServiceProviderSpec{Export: "postgres.msp.dev"}}
	sp.Name = "postgres"
	if err := onboarding.Register(ctx, cfg, sp, exportObjs, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("registering the postgres provider: %w (log: %s)", err, filepath.Join(dataDir, "msp-providers.log"))
	}

	say("creating %d tenant workspaces", o.Workspaces)
	tenants, err := createTenants(ctx, cfg, o.Workspaces)
	if err != nil {
		return nil, err
	}
	capacity := int64(float64(o.Capabilities+(o.ChurnRate+o.LowChurnRate)*int(o.ChurnFor.Seconds()))*1.2)/int64(o.Runtimes) + 1
	say("registering %d runtimes with capacity %d each", o.Runtimes, capacity)
	runtimes, err := createRuntimes(ctx, cfg, o.Runtimes, capacity)
	if err != nil {
		return nil, err
	}
	res.SetupSeconds = time.Since(start).Seconds()

	// Every component its own identity, as in make run: the front door's and the
	// coordinator's certificates, a token per servicelet.
	fdPort, err := ports.Free("127.0.0.1")
	if err != nil {
		return nil, err
	}
	const providerWS = "root:providers:postgres"
	ids, err := bootstrap.IssueProvider(ctx, bootstrap.Options{Config: cfg}, server.CA(), bootstrap.ProviderOptions{
		Workspace: providerWS, Export: "postgres.msp.dev", Server: server.URL(), KCPCA: kcpCA,
		FrontDoorAddr: fmt.Sprintf("127.0.0.1:%d", fdPort), Dir: filepath.Join(dataDir, "identities"),
	})
	if err != nil {
		return nil, err
	}
	// What the scheduler writes through the virtual workspaces, it writes as the
	// coordinator; the ceiling and the watcher read and write as it too.
	vwCfg, err := clientcmd.BuildConfigFromFlags("", ids.CoordinatorKubeconfig)
	if err != nil {
		return nil, err
	}
	vwCfg.QPS, vwCfg.Burst = cfg.QPS, cfg.Burst

	// The ceiling: the same creates and the same write per assignment, by a plain
	// client as fast as kcp takes them, before any msp component runs. Its objects are
	// deleted again, and the deletions are done before the burst starts.
	// A rate needs no more than a few thousand samples.
	res.CeilingSample = min(o.Capabilities, 2000)
	say("measuring the ceiling on %d capabilities: the scheduler's writes", res.CeilingSample)
	if res.CeilingPerSec, err = ceiling(ctx, cfg, vwCfg, o.Shards, tenants, runtimes, res.CeilingSample, false); err != nil {
		return nil, err
	}
	say("measuring the ceiling on %d capabilities: the scheduler's and the servicelet's writes", res.CeilingSample)
	if res.LifecyclePerSec, err = ceiling(ctx, cfg, vwCfg, o.Shards, tenants, runtimes, res.CeilingSample, true); err != nil {
		return nil, err
	}
	if o.CeilingOnly {
		return res, nil
	}

	issue := func(runtime, dir string) (string, error) {
		return identity.IssueServiceletAccess(ctx, kcpconfig.ForWorkspace(cfg, providerWS), runtime, dir, ids.FrontDoorURL, server.CA().CertPEM(), identity.DefaultAudience, time.Hour)
	}
	procs := &processes{bin: o.Bin, dir: dataDir, ids: ids, issue: issue, pprof: o.Profile > 0}
	defer procs.stopAll()
	if _, err := procs.frontDoor(); err != nil {
		return nil, err
	}
	for _, rt := range runtimes {
		if _, err := procs.servicelet(rt); err != nil {
			return nil, err
		}
	}
	coord, err := procs.coordinator()
	if err != nil {
		return nil, err
	}
	if coord.pprof != "" {
		profiles["coordinator"] = "http://" + coord.pprof
	}
	cpu := &cpuMeter{kcpPids: server.Pids(), procs: procs, coord: func() *proc { return coord }}
	w, err := newWatcher(ctx, cfg, vwCfg, o.Shards)
	if err != nil {
		return nil, err
	}
	say("waiting for the %d runtimes to report Ready", len(runtimes))
	if err := waitRuntimesReady(ctx, cfg, len(runtimes)); err != nil {
		return nil, err
	}
	res.ServiceletIdle = procs.maxRSS(false)

	say("burst: %d capabilities", o.Capabilities)
	if o.Profile > 0 {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return nil, err
		}
		captureProfiles(ctx, o.Out, profiles, o.Profile)
	}
	writesBefore, err := kcpWriteCounts(ctx, shardKubeconfigs(server))
	if err != nil {
		return nil, err
	}
	burstStart, cpuBefore := time.Now(), cpu.sample()
	names := createCapabilities(ctx, cfg, tenants, "burst", o.Capabilities, 0, w)
	if err := w.waitAssigned(ctx, names, patience(len(names))); err != nil {
		return nil, err
	}
	assignedAt := time.Since(burstStart)
	res.BurstPerSec = float64(len(names)) / assignedAt.Seconds()
	if err := w.waitReady(ctx, names, patience(len(names))); err != nil {
		return nil, err
	}
	res.BurstReadyPerSec = float64(len(names)) / time.Since(burstStart).Seconds()
	res.BurstCPU = cpu.since(cpuBefore, burstStart)
	writesAfter, err := kcpWriteCounts(ctx, shardKubeconfigs(server))
	if err != nil {
		return nil, err
	}
	res.WritesPerCap = map[string]float64{}
	for k, v := range writesAfter {
		res.WritesPerCap[k] = (v - writesBefore[k]) / float64(len(names))
	}
	res.BurstAssigned, res.BurstReady = w.latencies(names)
	res.Timeline = w.timeline(names, burstStart)
	scheduled, writes := coordinatorWrites(ctx, coord)
	if scheduled > 0 {
		res.WritesPerDec = writes / scheduled
	}

	say("steady churn: %d/s for %s", o.ChurnRate, o.ChurnFor)
	churnStart, cpuBefore := time.Now(), cpu.sample()
	churn := createCapabilities(ctx, cfg, tenants, "churn", o.ChurnRate*int(o.ChurnFor.Seconds()), o.ChurnRate, w)
	if err := w.waitReady(ctx, churn, patience(len(churn))); err != nil {
		return nil, err
	}
	res.ChurnCPU = cpu.since(cpuBefore, churnStart)
	res.ChurnAssigned, res.ChurnReady = w.latencies(churn)
	res.CoordinatorMB = rssMB(coord.Pid(), true)
	if o.Profile > 0 && coord.pprof != "" {
		captureHeap(ctx, o.Out, "coordinator", "http://"+coord.pprof)
	}
	if o.LowChurnRate > 0 {
		say("steady churn: %d/s for %s", o.LowChurnRate, o.ChurnFor)
		low := createCapabilities(ctx, cfg, tenants, "low", o.LowChurnRate*int(o.ChurnFor.Seconds()), o.LowChurnRate, w)
		if err := w.waitReady(ctx, low, patience(len(low))); err != nil {
			return nil, err
		}
		res.LowAssigned, res.LowReady = w.latencies(low)
		churn = append(churn, low...)
	}
	res.ServiceletPeak, res.ServiceletCaps = procs.maxRSS(true), (o.Capabilities+len(churn))/o.Runtimes

	if o.ServiceletLoad > 0 {
		say("one more runtime and its servicelet with %d capabilities", o.ServiceletLoad)
		p, err := loadServicelet(ctx, cfg, procs, tenants, o.ServiceletLoad, w)
		if err != nil {
			return nil, err
		}
		res.LoadCaps, res.LoadRSS = o.ServiceletLoad, rssMB(p.Pid(), true)
		runtimes = append(runtimes, loadRuntime)
		churn = append(churn, make([]string, o.ServiceletLoad)...) // counted in the restart
	}

	say("idle: counting the runtimes' writes for %s", o.IdleFor)
	before, err := storedWrites(ctx, shardKubeconfigs(server), "serviceruntimes.platform.msp.dev")
	if err != nil {
		return nil, err
	}
	time.Sleep(o.IdleFor)
	after, err := storedWrites(ctx, shardKubeconfigs(server), "serviceruntimes.platform.msp.dev")
	if err != nil {
		return nil, err
	}
	res.IdleWritesMin = (after - before) / float64(len(runtimes)) / o.IdleFor.Minutes()

	say("cold restart of the coordinator with %d capabilities placed", len(names)+len(churn))
	coord.Kill()
	restart := time.Now()
	coord, err = procs.coordinator()
	if err != nil {
		return nil, err
	}
	if res.RestartSeconds, res.RestartWrites, err = caughtUp(ctx, coord, len(names)+len(churn), restart); err != nil {
		return nil, err
	}
	return res, nil
}

// patience is how long the bench waits for n capabilities: at least 10 minutes, and
// one second per capability (a busy two-core kcp brings a few per second to Ready).
func patience(n int) time.Duration {
	return max(10*time.Minute, time.Duration(n)*time.Second)
}

func say(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// parallel runs fn for 0..n-1 on workers goroutines and returns the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// tenant is one bench workspace: a client for it, and its logical cluster's name (how
// the provider's virtual workspace addresses it).
type tenant struct {
	client  dynamic.Interface
	cluster string
}

func createTenants(ctx context.Context, cfg *rest.Config, n int) ([]tenant, error) {
	tenants := make([]tenant, n)
	var done atomic.Int64
	// Each worker creates one workspace and waits for it before the next: with a
	// thousand created at once, kcp's controllers spend their time on conflicts.
	err := parallel(n, 16, func(i int) error {
		name := fmt.Sprintf("bench-%04d", i)
		cluster, err := bootstrap.CreateWorkspace(ctx, bootstrap.Options{Config: cfg}, "root:tenants", name,
			map[string]any{"name": "tenant", "path": "root:platform"})
		if err != nil {
			return fmt.Errorf("failed to create tenant workspace %s: %w", name, err)
		}
		tenants[i].cluster = cluster
		defer func() {
			if d := done.Add(1); d%100 == 0 {
				say("%d/%d tenant workspaces ready", d, n)
			}
		}()
		c := dynamic.NewForConfigOrDie(kcpconfig.ForWorkspace(cfg, "root:tenants:"+name))
		for { // the default binding lands right after Ready
			if _, err := c.Resource(pgdbGVR).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		tenants[i].client = c
		return nil
	})
	return tenants, err
}

func createRuntimes(ctx context.Context, cfg *rest.Config, n int, capacity int64) ([]string, error) {
	c := dynamic.NewForConfigOrDie(kcpconfig.ForWorkspace(cfg, provider))
	regions := []struct{ region, country string }{{"eu-de", "DE"}, {"eu-fr", "FR"}, {"us-east", "US"}, {"eu-nl", "NL"}, {"ap-jp", "JP"}}
	names := make([]string, n)
	err := parallel(n, 8, func(i int) error {
		r := regions[i%len(regions)]
		names[i] = fmt.Sprintf("rt-%03d", i)
		rt := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "platform.msp.dev/v1alpha1", "kind": "ServiceRuntime",
			"metadata": map[string]any{"name": names[i]},
			"spec": map[string]any{
				"location":     map[string]any{"region": r.region, "country": r.country, "zone": fmt.Sprintf("%s-%d", r.region, i%3)},
				"capabilities": []any{map[string]any{"group": "postgres.msp.dev", "kind": "PostgresDatabase"}},
				"capacity":     map[string]any{"capabilities": fmt.Sprint(capacity)},
			},
		}}
		_, err := c.Resource(runtimeGVR).Create(ctx, rt, metav1.CreateOptions{})
		return err
	})
	return names, err
}

// loadRuntime is the runtime that measures a servicelet's memory with many capabilities.
const loadRuntime = "rt-load"

// loadServicelet registers loadRuntime with its servicelet and places n capabilities on
// it (named by the tenants, so the scheduler only checks and labels them), and returns
// the servicelet once they are all Ready.
func loadServicelet(ctx context.Context, cfg *rest.Config, procs *processes, tenants []tenant, n int, w *watcher) (*proc, error) {
	c := dynamic.NewForConfigOrDie(kcpconfig.ForWorkspace(cfg, provider))
	rt := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "platform.msp.dev/v1alpha1", "kind": "ServiceRuntime",
		"metadata": map[string]any{"name": loadRuntime},
		"spec": map[string]any{
			"location":     map[string]any{"region": "eu-de", "country": "DE", "zone": "eu-de-load"},
			"capabilities": []any{map[string]any{"group": "postgres.msp.dev", "kind": "PostgresDatabase"}},
			"capacity":     map[string]any{"capabilities": fmt.Sprint(n)},
		},
	}}
	if _, err := c.Resource(runtimeGVR).Create(ctx, rt, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	// The tenants name the runtime, so the provider lets them use it.
	var grants []*unstructured.Unstructured
	for _, t := range tenants {
		grants = append(grants, bootstrap.UseRuntimes(t.cluster, loadRuntime)...)
	}
	if _, err := bootstrap.Apply(ctx, bootstrap.Options{Config: cfg}, provider, grants...); err != nil {
		return nil, err
	}
	p, err := procs.servicelet(loadRuntime)
	if err != nil {
		return nil, err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("load-%05d", i)
	}
	err = parallel(n, 32, func(i int) error {
		obj := newCapability(names[i])
		obj.Object["spec"].(map[string]any)["runtimeName"] = loadRuntime
		w.created(names[i])
		_, err := tenants[i%len(tenants)].client.Resource(pgdbGVR).Namespace("default").Create(ctx, obj, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, w.waitReady(ctx, names, patience(n))
}

func newCapability(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "postgres.msp.dev/v1alpha1", "kind": "PostgresDatabase",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec":     map[string]any{"size": "16Mi"},
	}}
}

// ceiling does, for n capabilities, what a tenant and the scheduler do together: the
// create in the tenant's workspace, then through the export's virtual workspace the
// scheduler's one write, the merge patch with the runtime, its label and the
// servicelet's finalizer, one capability after the other on each of 32 workers (msp's
// scheduler works on 32 at once), as fast as kcp accepts. It returns the capabilities
// per second, and deletes them again.
//
// With lifecycle it also does what a servicelet does for each: the connection Secret's
// apply and the one status apply of Scheduled, Ready, Synced and the Secret's reference.
func ceiling(ctx context.Context, cfg, vwCfg *rest.Config, shards int, tenants []tenant, runtimes []string, n int, lifecycle bool) (float64, error) {
	urls, err := endpointURLs(ctx, cfg, shards)
	if err != nil {
		return 0, err
	}
	// The scheduler writes through the export's virtual workspace of each tenant's shard,
	// as the coordinator; so does the ceiling.
	vw := make([]dynamic.Interface, len(tenants))
	for i, t := range tenants {
		url, err := endpointOf(ctx, vwCfg, urls, t.cluster)
		if err != nil {
			return 0, err
		}
		c := rest.CopyConfig(vwCfg)
		c.Host = url + "/clusters/" + t.cluster
		if vw[i], err = dynamic.NewForConfig(c); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	err = parallel(n, 32, func(i int) error {
		name, rt := fmt.Sprintf("ceiling-%05d", i), runtimes[i%len(runtimes)]
		obj, err := tenants[i%len(tenants)].client.Resource(pgdbGVR).Namespace("default").Create(ctx, newCapability(name), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		c := vw[i%len(tenants)].Resource(pgdbGVR).Namespace("default")
		patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,"labels":{"platform.msp.dev/runtime":%q},"finalizers":["platform.msp.dev/servicelet"]},"spec":{"runtimeName":%q}}`, obj.GetResourceVersion(), rt, rt)
		if _, err := c.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil || !lifecycle {
			return err
		}
		secret := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{"name": "postgresdatabase-" + name, "namespace": "default"},
			"type":     "Opaque",
			"data":     map[string]any{"endpoint": "dGVzdDovL2NlaWxpbmc=", "token": "MDAwMDAwMDAwMDAwMDAwMA=="},
		}}
		if _, err := vw[i%len(tenants)].Resource(secretGVR).Namespace("default").Apply(ctx, secret.GetName(), secret, metav1.ApplyOptions{FieldManager: "bench-ceiling", Force: true}); err != nil {
			return err
		}
		now := time.Now().UTC().Format(time.RFC3339)
		st := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "postgres.msp.dev/v1alpha1", "kind": "PostgresDatabase",
			"metadata": map[string]any{"name": name, "namespace": "default"},
			"status": map[string]any{
				"conditions": []any{
					map[string]any{"type": "Scheduled", "status": "True", "reason": "Assigned", "message": "assigned to runtime " + rt, "lastTransitionTime": now},
					map[string]any{"type": "Ready", "status": "True", "reason": "Available", "message": "available on runtime " + rt, "lastTransitionTime": now},
					map[string]any{"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "message": "", "lastTransitionTime": now},
				},
				"connectionSecretRef": map[string]any{"name": secret.GetName()},
			},
		}}
		_, err = c.ApplyStatus(ctx, name, st, metav1.ApplyOptions{FieldManager: "bench-ceiling-servicelet", Force: true})
		return err
	})
	if err != nil {
		return 0, err
	}
	perSec := float64(n) / time.Since(start).Seconds()
	err = parallel(n, 32, func(i int) error {
		name := fmt.Sprintf("ceiling-%05d", i)
		c := tenants[i%len(tenants)].client
		if _, err := c.Resource(pgdbGVR).Namespace("default").Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
			return err
		}
		if lifecycle {
			if err := c.Resource(secretGVR).Namespace("default").Delete(ctx, "postgresdatabase-"+name, metav1.DeleteOptions{}); err != nil {
				return err
			}
		}
		return c.Resource(pgdbGVR).Namespace("default").Delete(ctx, name, metav1.DeleteOptions{})
	})
	return perSec, err
}

// createCapabilities creates n capabilities named prefix-i across the tenants, at rate
// per second (0: as fast as possible), and records their creation in w. A create that
// kcp refuses for a passing reason (overloaded: a timeout, an internal error, too many
// requests) is retried, as a tenant would; its latencies count from the first attempt.
// It returns the names that were created; one that still failed is reported and left
// out, so that the waits do not wait for it.
func createCapabilities(ctx context.Context, cfg *rest.Config, tenants []tenant, prefix string, n, rate int, w *watcher) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	failed := make([]bool, n)
	create := func(i int) {
		w.created(names[i])
		c := tenants[i%len(tenants)].client.Resource(pgdbGVR).Namespace("default")
		backoff := wait.Backoff{Duration: time.Second, Factor: 2, Steps: 6, Cap: 30 * time.Second}
		err := retry.OnError(backoff, transient, func() error {
			_, err := c.Create(ctx, newCapability(names[i]), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil // an earlier attempt landed after all
			}
			if err != nil {
				say("create %s: %v (retrying)", names[i], err)
			}
			return err
		})
		if err != nil {
			say("create %s failed, left out of the figures: %v", names[i], err)
			failed[i] = true
		}
	}
	if rate == 0 {
		_ = parallel(n, 32, func(i int) error {
			create(i)
			return nil
		})
	} else {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		var wg sync.WaitGroup
		for i := range names {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				create(i)
			}()
		}
		wg.Wait()
	}
	created := names[:0]
	for i, name := range names {
		if !failed[i] {
			created = append(created, name)
		}
	}
	return created
}

// transient tells a refusal worth retrying (kcp busy) from one that is final.
func transient(err error) bool {
	return apierrors.IsInternalError(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err)
}

func machine() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	model := ""
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "model name") {
			model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
			break
		}
	}
	mem := ""
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(raw), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%d cores (%s), %s memory", numCPU(), model, mem)
}

// waitRuntimesReady waits until n runtimes report Ready (their servicelets are up).
func waitRuntimesReady(ctx context.Context, cfg *rest.Config, n int) error {
	c := dynamic.NewForConfigOrDie(kcpconfig.ForWorkspace(cfg, provider))
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		list, err := c.Resource(runtimeGVR).List(ctx, metav1.ListOptions{})
		if err == nil {
			ready := 0
			for _, rt := range list.Items {
				conds, _, _ := unstructured.NestedSlice(rt.Object, "status", "conditions")
				for _, cond := range conds {
					if m, ok := cond.(map[string]any); ok && m["type"] == "Ready" && m["status"] == "True" {
						ready++
					}
				}
			}
			if ready >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("the runtimes did not all report Ready within 5 minutes")
}
