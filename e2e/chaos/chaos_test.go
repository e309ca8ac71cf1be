//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/metrics"
	"github.com/msp-dev/msp/pkg/servicelet/testdriver"
	"github.com/msp-dev/msp/sdk/launch"
)

// config is the run's shape, from the environment (MSP_CHAOS_*).
type config struct {
	seed       int64
	tenants    int
	burst      int
	churnFor   time.Duration
	faultEvery time.Duration
	capacity   int
	out        string
}

func loadConfig(t *testing.T) config {
	c := config{seed: time.Now().UnixNano() % 1_000_000, tenants: 6, burst: 40, churnFor: 6 * time.Minute, faultEvery: 25 * time.Second, capacity: 60, out: "_chaos"}
	envInt := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive whole number", name, v)
			}
			*dst = n
		}
	}
	envDur := func(name string, dst *time.Duration) {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				t.Fatalf("%s=%q: want a positive duration such as 6m", name, v)
			}
			*dst = d
		}
	}
	if v := os.Getenv("MSP_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("MSP_CHAOS_SEED=%q: want a whole number", v)
		}
		c.seed = s
	}
	envInt("MSP_CHAOS_TENANTS", &c.tenants)
	envInt("MSP_CHAOS_BURST", &c.burst)
	envInt("MSP_CHAOS_CAPACITY", &c.capacity)
	envDur("MSP_CHAOS_CHURN", &c.churnFor)
	envDur("MSP_CHAOS_FAULT_EVERY", &c.faultEvery)
	if v := os.Getenv("MSP_CHAOS_OUT"); v != "" {
		c.out = v
	}
	return c
}

// Fault kinds.
const (
	faultCoordinator = "coordinator SIGKILL"
	faultServicelet  = "servicelet SIGKILL"
	faultKCP         = "kcp SIGKILL"
	faultPostgres    = "PostgreSQL SIGKILL"
	faultPause       = "servicelet SIGSTOP > heartbeat timeout"
	faultRace        = "second coordinator racing"
	faultProcurement = "coordinator SIGKILL while ordering a runtime"
)

var faultKinds = []string{faultCoordinator, faultServicelet, faultKCP, faultPostgres, faultPause, faultRace, faultProcurement}

// fault is one entry of the schedule.
type fault struct {
	At     time.Duration // after the churn began
	Kind   string
	Target string
	Hold   time.Duration // how long the component stays down (or paused, or racing)
	// filled in by the run
	started, recovered time.Time
	converged          time.Duration // from recovered until every capability older than it converged; -1: not within the wait
	done               chan struct{} // closed once converged is known
}

// schedule draws the faults from the seed: one every faultEvery (±30%), every kind in
// turn in a shuffled order, each with a target and a hold.
func schedule(c config, rng *rand.Rand, runtimes, pgRuntimes []string) []*fault {
	var out []*fault
	var bag []string
	for at := c.faultEvery; at < c.churnFor-10*time.Second; {
		if len(bag) == 0 {
			bag = append([]string(nil), faultKinds...)
			rng.Shuffle(len(bag), func(i, j int) { bag[i], bag[j] = bag[j], bag[i] })
		}
		kind := bag[0]
		bag = bag[1:]
		f := &fault{At: at, Kind: kind, Hold: time.Duration(3+rng.Intn(8)) * time.Second}
		switch kind {
		case faultServicelet, faultPause:
			f.Target = runtimes[rng.Intn(len(runtimes))]
		case faultPostgres:
			f.Target = pgRuntimes[rng.Intn(len(pgRuntimes))]
		case faultKCP:
			f.Target = "kcp"
		default:
			f.Target = "coordinator"
		}
		if kind == faultPause {
			f.Hold = heartbeatTimeout + time.Duration(5+rng.Intn(10))*time.Second
		}
		if kind == faultRace {
			f.Hold = time.Duration(20+rng.Intn(20)) * time.Second
		}
		out = append(out, f)
		jitter := time.Duration(float64(c.faultEvery) * (0.7 + 0.6*rng.Float64()))
		at += jitter
	}
	return out
}

// faultSettle is the longest a fault waits for the platform to converge from the one
// before it.
const faultSettle = 90 * time.Second

// heartbeatTimeout is the coordinator's: a paused servicelet's runtime turns not Ready.
const heartbeatTimeout = 15 * time.Second

// record is what the run knows of one capability.
type record struct {
	tenant    int
	name      string
	policy    platformv1alpha1.DeletionPolicy
	placement []string
	created   time.Time
	deleteAt  time.Time // when the run deleted it; zero: not deleted
	readyAt   time.Time // first seen Ready
	lastReady time.Time // last seen Ready
	// reappeared counts the lists that missed it while it existed
	reappeared int
	goneAt     time.Time // first seen gone
	runtimes   []string  // distinct runtimes it was seen assigned to, in order
	ready      bool      // Ready, observed generation current
	secret     string
	database   string // PostgreSQL: the database its Secret names
	lastRT     string
}

func (r *record) key() string { return fmt.Sprintf("t%d/%s", r.tenant, r.name) }

// ledger holds every capability the run made, and the capacity samples.
type ledger struct {
	mu      sync.Mutex
	recs    map[string]*record
	maxLoad map[string]int // most capabilities seen assigned to a runtime at once
}

func (l *ledger) add(r *record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs[r.key()] = r
}

func (l *ledger) snapshot() []*record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*record, 0, len(l.recs))
	for _, r := range l.recs {
		c := *r
		c.runtimes = append([]string(nil), r.runtimes...)
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// converged tells whether every capability created before since has been seen Ready since
// (live) or gone (deleted before since): the platform caught up with everything that
// happened before. What a later fault or the churn does to it afterwards is that
// fault's, or the churn's.
func (l *ledger) converged(before time.Time) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	waiting := 0
	example := ""
	for _, r := range l.recs {
		if !r.created.Before(before) {
			continue
		}
		switch {
		case !r.deleteAt.IsZero() && r.deleteAt.Before(before):
			if r.goneAt.IsZero() {
				waiting++
				example = r.key() + " not gone"
			}
		case r.deleteAt.IsZero() || r.deleteAt.After(before):
			if !r.lastReady.After(before) && r.goneAt.IsZero() {
				waiting++
				example = r.key() + " not Ready"
			}
		}
	}
	return waiting == 0, fmt.Sprintf("%d not converged (e.g. %s)", waiting, example)
}

// observe lists every tenant's capabilities and updates the ledger: Ready, runtime
// history, gone; and the most capabilities each runtime held at once.
func (l *ledger) observe(ctx context.Context, tenants []client.Client) error {
	now := time.Now()
	seen := map[string]*postgresv1alpha1.PostgresDatabase{}
	// When each tenant's list came back: a capability absent from it was gone by then,
	// which a delete issued while the list was under way explains.
	listed := make([]time.Time, len(tenants))
	for i, c := range tenants {
		var list postgresv1alpha1.PostgresDatabaseList
		if err := c.List(ctx, &list); err != nil {
			return err
		}
		listed[i] = time.Now()
		for j := range list.Items {
			seen[fmt.Sprintf("t%d/%s", i, list.Items[j].Name)] = &list.Items[j]
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	load := map[string]int{}
	for key, r := range l.recs {
		db, ok := seen[key]
		if !ok {
			if r.goneAt.IsZero() && now.Sub(r.created) > 5*time.Second {
				r.goneAt = listed[r.tenant]
			}
			r.ready = false
			continue
		}
		if !r.goneAt.IsZero() {
			// Missing from one list, there again in a later one.
			r.reappeared++
			r.goneAt = time.Time{}
		}
		if rt := db.Spec.RuntimeName; rt != "" {
			load[rt]++
			if len(r.runtimes) == 0 || r.runtimes[len(r.runtimes)-1] != rt {
				r.runtimes = append(r.runtimes, rt)
			}
			r.lastRT = rt
		}
		r.ready = meta.IsStatusConditionTrue(db.Status.Conditions, platformv1alpha1.ConditionReady) && db.Status.ObservedGeneration == db.Generation
		if r.ready && r.readyAt.IsZero() {
			r.readyAt = now
		}
		if r.ready {
			r.lastReady = now
		}
		if db.Status.ConnectionSecretRef != nil {
			r.secret = db.Status.ConnectionSecretRef.Name
		}
		if db.Status.DatabaseName != "" {
			r.database = db.Status.DatabaseName
		}
	}
	for rt, n := range load {
		if n > l.maxLoad[rt] {
			l.maxLoad[rt] = n
		}
	}
	return nil
}

// runtimeHandle is a runtime the run can break.
type runtimeHandle struct {
	name     string
	sl       *framework.Servicelet
	pg       *framework.PostgresRuntime
	capacity int
}

// TestChaos runs the platform under a burst and a steady churn of creates, updates and
// deletes while a seeded schedule kills and pauses its parts, then audits what is left
// against the ground truth: the PostgreSQL servers' catalogs, the test driver's files
// and logs, and kcp's objects. It prints the seed, the schedule and a table of figures
// with their goals; it fails only when the run itself cannot proceed.
func TestChaos(t *testing.T) {
	cfg := loadConfig(t)
	rng := rand.New(rand.NewSource(cfg.seed))
	env := framework.Current(t)
	t.Logf("msp-chaos seed %d (replay: MSP_CHAOS_SEED=%d make chaos)", cfg.seed, cfg.seed)
	runStart := time.Now()

	// The platform: the postgres provider with two PostgreSQL runtimes on real servers
	// and two test-driver runtimes, a coordinator with the runtime manager (a class
	// whose runtimes are test-driver servicelets in region eu-x), tenants.
	p := env.NewProvider(t)
	pc := p.Client(t)
	var runtimes []*runtimeHandle
	for i, region := range []string{"eu-de", "eu-fr"} {
		name := fmt.Sprintf("pg-%d", i)
		pg := p.StartPostgresRuntime(t, framework.ServiceletSpec{Runtime: name, Region: region, Country: strings.ToUpper(region[3:]), Capabilities: cfg.capacity})
		runtimes = append(runtimes, &runtimeHandle{name: name, sl: pg.Servicelet, pg: pg, capacity: cfg.capacity})
	}
	for i, region := range []string{"eu-de", "eu-fr"} {
		name := fmt.Sprintf("files-%d", i)
		sl := p.StartServicelet(t, framework.ServiceletSpec{Runtime: name, Region: region, Country: strings.ToUpper(region[3:]), Capabilities: cfg.capacity})
		runtimes = append(runtimes, &runtimeHandle{name: name, sl: sl, capacity: cfg.capacity})
	}
	class := &platformv1alpha1.ServiceRuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "ordered"},
		Spec: platformv1alpha1.ServiceRuntimeClassSpec{
			Capabilities:   []platformv1alpha1.CapabilityKind{{Group: "postgres.msp.dev", Kind: "PostgresDatabase"}},
			Locations:      []platformv1alpha1.Location{{Region: "eu-x", Country: "XX"}},
			Capacity:       corev1.ResourceList{platformv1alpha1.ResourceCapabilities: *resource.NewQuantity(10, resource.DecimalSI)},
			MaxRuntimes:    2,
			ScaleDownAfter: metav1.Duration{Duration: 20 * time.Second},
			Driver:         platformv1alpha1.RuntimeDriver{Name: "local"},
		},
	}
	if err := pc.Create(context.Background(), class); err != nil {
		t.Fatal(err)
	}
	localDir := t.TempDir()
	startCoordinator := func() *framework.Coordinator {
		// Started again under the same name, as a pod's container is after a crash.
		return p.StartCoordinatorWith(t, launch.Coordinator{LeaderElect: true, ReplicaID: "coordinator-0", HeartbeatTimeout: heartbeatTimeout, RuntimeManager: &launch.RuntimeManager{
			Interval: time.Second, Cooldown: 5 * time.Second, LocalDir: localDir, LocalDriver: "test",
			ServiceletArgs: []string{"--heartbeat-interval=2s"},
		}})
	}
	var coMu sync.Mutex
	co := startCoordinator()
	// As the kubelet restarts a pod's container: a coordinator that exits by itself (it
	// lost its leader Lease while kcp was away, as Kubernetes' controllers do) is started
	// again after a second. The faults' own kills are theirs; they replace co under coMu.
	var selfExits atomic.Int64
	superviseCtx, stopSupervising := context.WithCancel(context.Background())
	defer stopSupervising()
	go func() {
		for {
			coMu.Lock()
			cur := co
			coMu.Unlock()
			select {
			case <-superviseCtx.Done():
				return
			case <-cur.Done():
			}
			coMu.Lock()
			if co == cur && superviseCtx.Err() == nil {
				selfExits.Add(1)
				t.Logf("the coordinator exited by itself (see its log); started again")
				time.Sleep(time.Second)
				co = startCoordinator()
			}
			coMu.Unlock()
		}
	}()
	var tenants []client.Client
	var clusters []string
	for i := 0; i < cfg.tenants; i++ {
		ws := p.NewTenant(t)
		tenants = append(tenants, ws.Client(t))
		clusters = append(clusters, ws.ClusterName(t))
	}
	var names, pgNames []string
	for _, rt := range runtimes {
		names = append(names, rt.name)
		if rt.pg != nil {
			pgNames = append(pgNames, rt.name)
		}
	}
	faults := schedule(cfg, rng, names, pgNames)
	var plan strings.Builder
	for _, f := range faults {
		fmt.Fprintf(&plan, "  +%-5s %-45s %-12s hold %s\n", f.At.Round(time.Second), f.Kind, f.Target, f.Hold)
	}
	t.Logf("fault schedule (seed %d):\n%s", cfg.seed, plan.String())

	l := &ledger{recs: map[string]*record{}, maxLoad: map[string]int{}}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	// kcp's counters start again at 0 when it restarts: the run adds what each life of
	// kcp counted.
	writes := &writeCounter{env: env}
	writes.begin(ctx)

	// The observer: every second, what the tenants see.
	var obsWG sync.WaitGroup
	obsWG.Add(1)
	go func() {
		defer obsWG.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = l.observe(ctx, tenants) // kcp may be down: the next tick sees it
			}
		}
	}()

	// Writers: the run's own tenant writes, retried while kcp is down.
	seq := 0
	var seqMu sync.Mutex
	placements := [][]string{nil, nil, {"eu-de"}, {"eu-fr"}}
	create := func(tenant int, regions []string) *record {
		seqMu.Lock()
		seq++
		name := fmt.Sprintf("db-%04d", seq)
		policy := platformv1alpha1.DeletionPolicyDelete
		if rng.Intn(5) == 0 {
			policy = platformv1alpha1.DeletionPolicyOrphan
		}
		seqMu.Unlock()
		db := &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		db.Spec.Placement.Regions = regions
		db.Spec.DeletionPolicy = policy
		db.Spec.Size = "1Gi"
		r := &record{tenant: tenant, name: name, policy: policy, placement: regions, created: time.Now()}
		// A create whose answer was lost (kcp killed) is retried and finds it made.
		if err := retry(ctx, func() error { return tenants[tenant].Create(ctx, db) }); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Logf("create %s: %v", r.key(), err)
			return nil
		}
		l.add(r)
		return r
	}
	update := func(r *record) {
		c := tenants[r.tenant]
		_ = retry(ctx, func() error {
			db := &postgresv1alpha1.PostgresDatabase{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: r.name}, db); err != nil {
				return err
			}
			sizes := []string{"1Gi", "2Gi", "4Gi"}
			db.Spec.Size = sizes[(slicesIndex(sizes, db.Spec.Size)+1)%len(sizes)]
			return c.Update(ctx, db)
		})
	}
	remove := func(r *record) {
		l.mu.Lock()
		r.deleteAt = time.Now()
		l.mu.Unlock()
		db := &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: r.name}}
		_ = retry(ctx, func() error {
			err := tenants[r.tenant].Delete(ctx, db)
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
	}

	// The burst.
	t.Logf("burst: %d capabilities in %d tenants", cfg.burst, cfg.tenants)
	var wg sync.WaitGroup
	for i := 0; i < cfg.burst; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			create(i%cfg.tenants, placements[i%len(placements)])
		}(i)
	}
	wg.Wait()

	// The churn, with the faults on their schedule.
	churnStart := time.Now()
	// The churn goes on until the last fault was injected, at least for churnFor.
	var faultsLeft atomic.Bool
	faultsLeft.Store(len(faults) > 0)
	var ops map[string]int = map[string]int{}
	var opsMu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for time.Since(churnStart) < cfg.churnFor || faultsLeft.Load() {
			<-tick.C
			seqMu.Lock()
			dice := rng.Intn(10)
			tenant := rng.Intn(cfg.tenants)
			place := placements[rng.Intn(len(placements))]
			seqMu.Unlock()
			live := liveRecords(l)
			switch {
			case dice < 4 || len(live) < 10:
				create(tenant, place)
				opsMu.Lock()
				ops["create"]++
				opsMu.Unlock()
			case dice < 7:
				seqMu.Lock()
				r := live[rng.Intn(len(live))]
				seqMu.Unlock()
				update(r)
				opsMu.Lock()
				ops["update"]++
				opsMu.Unlock()
			default:
				seqMu.Lock()
				r := live[rng.Intn(len(live))]
				seqMu.Unlock()
				remove(r)
				opsMu.Lock()
				ops["delete"]++
				opsMu.Unlock()
			}
		}
	}()

	byName := map[string]*runtimeHandle{}
	for _, rt := range runtimes {
		byName[rt.name] = rt
	}
	var convWG sync.WaitGroup
	for i, f := range faults {
		if wait := time.Until(churnStart.Add(f.At)); wait > 0 {
			time.Sleep(wait)
		}
		// Each fault on a platform that converged from the one before (or 90s after it),
		// so that every figure is its own fault's.
		if i > 0 {
			select {
			case <-faults[i-1].done:
			case <-time.After(time.Until(faults[i-1].recovered.Add(faultSettle))):
			}
		}
		f.started = time.Now()
		t.Logf("fault at +%s: %s (%s, hold %s)", time.Since(churnStart).Round(time.Second), f.Kind, f.Target, f.Hold)
		switch f.Kind {
		case faultCoordinator:
			coMu.Lock()
			co.Kill()
			time.Sleep(f.Hold)
			co = startCoordinator()
			coMu.Unlock()
		case faultProcurement:
			// A capability only the class's region fits: the runtime manager orders a
			// runtime; the coordinator dies while the runtime is being made.
			r := create(rng.Intn(cfg.tenants), []string{"eu-x"})
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) && len(framework.ClassRuntimes(t, pc, "ordered")) == 0 {
				time.Sleep(200 * time.Millisecond)
			}
			coMu.Lock()
			co.Kill()
			time.Sleep(f.Hold)
			co = startCoordinator()
			coMu.Unlock()
			if r != nil {
				// Its runtime goes again once it is deleted (the class's grace is 20s).
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(40 * time.Second)
					remove(r)
				}()
			}
		case faultServicelet:
			rt := byName[f.Target]
			rt.sl.Kill()
			time.Sleep(f.Hold)
			rt.sl.Restart(t)
		case faultPause:
			rt := byName[f.Target]
			_ = syscall.Kill(rt.sl.Pid(), syscall.SIGSTOP)
			time.Sleep(f.Hold)
			_ = syscall.Kill(rt.sl.Pid(), syscall.SIGCONT)
		case faultKCP:
			writes.end(ctx)
			env.KillKCP(t, f.Hold)
			writes.begin(ctx)
		case faultPostgres:
			rt := byName[f.Target]
			killPostgres(t, rt.pg)
			time.Sleep(f.Hold)
			rt.pg.StartServerAgain(t)
		case faultRace:
			second := p.StartCoordinatorWith(t, launch.Coordinator{HeartbeatTimeout: heartbeatTimeout})
			time.Sleep(f.Hold)
			second.Kill()
		}
		f.recovered = time.Now()
		f.done = make(chan struct{})
		convWG.Add(1)
		go func(f *fault) {
			defer convWG.Done()
			defer close(f.done)
			f.converged = -1
			deadline := f.recovered.Add(5 * time.Minute)
			for time.Now().Before(deadline) {
				if ok, _ := l.converged(f.recovered); ok {
					f.converged = time.Since(f.recovered)
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		}(f)
	}
	faultsLeft.Store(false)
	wg.Wait()
	lastFault := churnStart
	if len(faults) > 0 {
		lastFault = faults[len(faults)-1].recovered
	}
	t.Logf("churn over after %s (%v); waiting for convergence", time.Since(churnStart).Round(time.Second), ops)

	// Convergence: everything created is Ready or, when deleted, gone.
	end := time.Now()
	converged := time.Duration(-1)
	var why string
	for time.Since(end) < 5*time.Minute {
		var ok bool
		// Every capability, the last ones made too, seen Ready (or gone) since the end.
		if ok, why = l.converged(end); ok {
			converged = time.Since(lastFault)
			break
		}
		time.Sleep(time.Second)
	}
	if converged < 0 {
		t.Logf("not converged 5m after the churn: %s", why)
	}
	// The runtimes ordered for the class's region go again once nothing is on them (grace
	// 20s): one left empty is an orphan of the procurement. Capabilities placed anywhere
	// may have landed on one and still live there; that one stays, rightly.
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && len(emptyOrdered(t, l, pc)) > 0; {
		time.Sleep(2 * time.Second)
	}
	convWG.Wait()
	stopSupervising()
	stop()
	obsWG.Wait()
	writes.end(context.Background())

	// The audit, from the ground truth.
	a := audit(t, env, l, runtimes, clusters, tenants, pc)
	a.seed, a.faults, a.ops, a.writes, a.converged, a.took = cfg.seed, faults, ops, writes.total, converged, time.Since(runStart)
	a.selfExits = int(selfExits.Load())
	a.schedule = plan.String()
	report := a.table()
	t.Log("\n" + report)
	if err := os.MkdirAll(cfg.out, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(cfg.out, "results.md"), []byte(report), 0o644)
	}
}

// refusedWhileWarming counts tenant requests kcp refused with "access denied" (403)
// that went through when retried: kcp answers so for a while after a restart, before
// its authorization caches hold the workspaces' bindings.
var refusedWhileWarming int64

// retry runs op until it succeeds, the error is not a transient one, or a minute passed.
// A 403 is retried too (see refusedWhileWarming).
func retry(ctx context.Context, op func() error) error {
	deadline := time.Now().Add(time.Minute)
	forbidden := 0
	for {
		err := op()
		if err == nil && forbidden > 0 {
			atomic.AddInt64(&refusedWhileWarming, int64(forbidden))
		}
		if err == nil || apierrors.IsAlreadyExists(err) || apierrors.IsInvalid(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		if apierrors.IsForbidden(err) {
			forbidden++
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func slicesIndex(list []string, v string) int {
	for i, s := range list {
		if s == v {
			return i
		}
	}
	return 0
}

// liveRecords are the capabilities the run has not deleted and that are Ready, but for
// those of the ordered class's region (the procurement fault deletes them itself).
func liveRecords(l *ledger) []*record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*record
	for _, r := range l.recs {
		ordered := len(r.placement) == 1 && r.placement[0] == "eu-x"
		if r.deleteAt.IsZero() && r.ready && !ordered {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// killPostgres kills the runtime's PostgreSQL server with SIGKILL (its postmaster, as
// a crash would; the server's own children follow it).
func killPostgres(t *testing.T, pg *framework.PostgresRuntime) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(pg.Server.DataDir(), "postmaster.pid"))
	if err != nil {
		t.Logf("no postmaster.pid: %v", err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
	if err != nil {
		t.Logf("postmaster.pid: %v", err)
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	_ = pg.Server.Stop() // clean up what is left (its own state)
}

// writeCounter adds up kcp's write requests over its lives.
type writeCounter struct {
	env          *framework.Env
	start, total float64
}

func (w *writeCounter) begin(ctx context.Context) { w.start = kcpWrites(ctx, w.env) }

// end adds what this life of kcp counted since begin (kcp is about to be killed: a
// write between this read and the kill is not counted).
func (w *writeCounter) end(ctx context.Context) { w.total += kcpWrites(ctx, w.env) - w.start }

// kcpWrites sums kcp's write requests (POST, PUT, PATCH, DELETE) from every shard's
// /metrics, read as the shard's admin (the platform's token may not read them).
func kcpWrites(ctx context.Context, env *framework.Env) float64 {
	sum := 0.0
	for _, sh := range env.Server.Shards() {
		raw, err := clientcmd.LoadFromFile(sh.KubeconfigPath)
		if err != nil {
			continue
		}
		overrides := &clientcmd.ConfigOverrides{}
		if _, ok := raw.Contexts["shard-base"]; ok {
			overrides.CurrentContext = "shard-base"
		}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: sh.KubeconfigPath}, overrides).ClientConfig()
		if err != nil {
			continue
		}
		base := kcpconfig.Base(cfg)
		hc, err := rest.HTTPClientFor(base)
		if err != nil {
			continue
		}
		m, err := metrics.Scrape(ctx, hc, base.Host+"/metrics")
		if err != nil {
			continue
		}
		for k, v := range m {
			if !strings.HasPrefix(k, "apiserver_request_total{") {
				continue
			}
			for _, verb := range []string{`verb="POST"`, `verb="PUT"`, `verb="PATCH"`, `verb="DELETE"`} {
				if strings.Contains(k, verb) {
					sum += v
				}
			}
		}
	}
	return sum
}

// findings is the audit's outcome.
type findings struct {
	seed                          int64
	schedule                      string
	faults                        []*fault
	ops                           map[string]int
	writes                        float64
	converged, took               time.Duration
	created, ready, deleted       int
	lost, moved, createdTwice     []string
	orphans, overCapacity, badSec []string
	orderedRuntimes               int
	selfExits                     int
	leftRuntimes, orderedKept     []string
	reappeared                    []string
}

// audit compares what the run made with the ground truth.
func audit(t *testing.T, env *framework.Env, l *ledger, runtimes []*runtimeHandle, clusters []string, tenants []client.Client, pc client.Client) *findings {
	ctx := context.Background()
	a := &findings{}
	recs := l.snapshot()
	// Databases on the PostgreSQL servers, by runtime.
	dbs := map[string]map[string]bool{}
	for _, rt := range runtimes {
		if rt.pg == nil {
			continue
		}
		dbs[rt.name] = map[string]bool{}
		conn, err := pgx.Connect(ctx, rt.pg.Server.AdminURL())
		if err != nil {
			t.Logf("audit: cannot reach %s: %v", rt.name, err)
			continue
		}
		rows, err := conn.Query(ctx, "select datname from pg_database where datname not in ('postgres','template0','template1')")
		if err == nil {
			for rows.Next() {
				var n string
				if rows.Scan(&n) == nil {
					dbs[rt.name][n] = true
				}
			}
			rows.Close()
		}
		conn.Close(ctx)
	}
	expectedDB := map[string]map[string]bool{}
	for _, r := range recs {
		a.created++
		if !r.readyAt.IsZero() {
			a.ready++
		}
		if !r.deleteAt.IsZero() {
			a.deleted++
		}
		switch {
		case r.readyAt.IsZero() && r.deleteAt.IsZero():
			a.lost = append(a.lost, r.key()+": never Ready")
		case !r.goneAt.IsZero() && (r.deleteAt.IsZero() || r.goneAt.Before(r.deleteAt)):
			a.lost = append(a.lost, fmt.Sprintf("%s: gone without a delete (created %s, first Ready %s, missing from a list that returned at %s, delete issued %s, runtimes %v)",
				r.key(), clock(r.created), clock(r.readyAt), clock(r.goneAt), clock(r.deleteAt), r.runtimes))
		case r.deleteAt.IsZero() && !r.ready:
			a.lost = append(a.lost, r.key()+": not Ready at the end")
		}
		if r.reappeared > 0 {
			a.reappeared = append(a.reappeared, fmt.Sprintf("%s: missing from a tenant's list %d times, then there again", r.key(), r.reappeared))
		}
		if len(r.runtimes) > 1 {
			a.moved = append(a.moved, fmt.Sprintf("%s: %s", r.key(), strings.Join(r.runtimes, " → ")))
		}
		rt := byRuntime(runtimes, r.lastRT)
		if rt == nil {
			continue
		}
		// The test driver's log counts every create of a thing.
		if rt.pg == nil {
			if n := testdriver.Calls(rt.sl.StateDir, "creates.log", "default", r.name); n > 1 {
				a.createdTwice = append(a.createdTwice, fmt.Sprintf("%s: %d creates on %s", r.key(), n, rt.name))
			}
		}
		live := r.deleteAt.IsZero()
		// Secrets: a live capability's Secret holds what works.
		if live && r.ready {
			if msg := checkSecret(ctx, tenants[r.tenant], r, rt, clusters[r.tenant]); msg != "" {
				a.badSec = append(a.badSec, r.key()+": "+msg)
			}
		}
		if rt.pg != nil && (live || r.policy == platformv1alpha1.DeletionPolicyOrphan) {
			db := dbName(ctx, tenants[r.tenant], r)
			if db != "" {
				if expectedDB[rt.name] == nil {
					expectedDB[rt.name] = map[string]bool{}
				}
				expectedDB[rt.name][db] = true
			}
		}
		if rt.pg == nil && !live && r.policy == platformv1alpha1.DeletionPolicyDelete {
			if _, err := os.Stat(thingFile(rt.sl.StateDir, clusters[r.tenant], r.name)); err == nil {
				a.orphans = append(a.orphans, fmt.Sprintf("%s: its file is still on %s", r.key(), rt.name))
			}
		}
	}
	for rt, names := range dbs {
		for n := range names {
			if !expectedDB[rt][n] {
				a.orphans = append(a.orphans, fmt.Sprintf("database %s on %s belongs to no capability", n, rt))
			}
		}
		for n := range expectedDB[rt] {
			if !names[n] {
				a.lost = append(a.lost, fmt.Sprintf("database %s missing on %s", n, rt))
			}
		}
	}
	// A database on two servers was created twice.
	where := map[string][]string{}
	for rt, names := range dbs {
		for n := range names {
			where[n] = append(where[n], rt)
		}
	}
	for n, rts := range where {
		if len(rts) > 1 {
			a.createdTwice = append(a.createdTwice, fmt.Sprintf("database %s on %s", n, strings.Join(rts, ", ")))
		}
	}
	l.mu.Lock()
	for _, rt := range runtimes {
		if n := l.maxLoad[rt.name]; n > rt.capacity {
			a.overCapacity = append(a.overCapacity, fmt.Sprintf("%s held %d of %d", rt.name, n, rt.capacity))
		}
	}
	l.mu.Unlock()
	for _, rt := range framework.ClassRuntimes(t, pc, "ordered") {
		hosted := hostedOn(l, rt.Name)
		if hosted > 0 {
			a.orderedKept = append(a.orderedKept, fmt.Sprintf("%s: hosts %d live capabilities", rt.Name, hosted))
			continue
		}
		// What kept it: its readiness, cordon and finalizers.
		a.orderedRuntimes++
		ready := meta.FindStatusCondition(rt.Status.Conditions, platformv1alpha1.ConditionReady)
		a.leftRuntimes = append(a.leftRuntimes, fmt.Sprintf("%s: Ready %v, unschedulable %v, annotations %v, finalizers %v, heartbeat %v", rt.Name, ready, rt.Spec.Unschedulable, rt.Annotations, rt.Finalizers, rt.Status.LastHeartbeatTime))
	}
	for _, list := range [][]string{a.lost, a.moved, a.createdTwice, a.orphans, a.overCapacity, a.badSec} {
		sort.Strings(list)
	}
	return a
}

// clock is a moment of the run as the components' logs write it, or "never".
func clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("15:04:05.000")
}

// hostedOn counts the run's live capabilities last seen assigned to runtime.
func hostedOn(l *ledger, runtime string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.goneAt.IsZero() && r.lastRT == runtime {
			n++
		}
	}
	return n
}

// emptyOrdered returns the runtimes of the ordered class that host none of the run's
// live capabilities.
func emptyOrdered(t *testing.T, l *ledger, pc client.Client) []string {
	var out []string
	for _, rt := range framework.ClassRuntimes(t, pc, "ordered") {
		if hostedOn(l, rt.Name) == 0 {
			out = append(out, rt.Name)
		}
	}
	return out
}

func byRuntime(runtimes []*runtimeHandle, name string) *runtimeHandle {
	for _, rt := range runtimes {
		if rt.name == name {
			return rt
		}
	}
	return nil
}

// thingFile is where the test driver keeps a capability's thing.
func thingFile(stateDir, cluster, name string) string {
	return filepath.Join(stateDir, "things", cluster+"_PostgresDatabase_default_"+name+".json")
}

// dbName is the database a PostgreSQL capability's status names.
func dbName(ctx context.Context, c client.Client, r *record) string {
	db := &postgresv1alpha1.PostgresDatabase{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: r.name}, db); err == nil && db.Status.DatabaseName != "" {
		return db.Status.DatabaseName
	}
	return r.database
}

// checkSecret says what is wrong with a Ready capability's connection Secret: missing,
// or (PostgreSQL) its credentials do not log in, or (test driver) its token is not the
// thing's.
func checkSecret(ctx context.Context, c client.Client, r *record, rt *runtimeHandle, cluster string) string {
	if r.secret == "" {
		return "no status.connectionSecretRef"
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: r.secret}, s); err != nil {
		return "Secret: " + err.Error()
	}
	if rt.pg != nil {
		uri := string(s.Data["uri"])
		if uri == "" {
			return "no uri"
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, uri)
		if err != nil {
			return "cannot log in: " + err.Error()
		}
		defer conn.Close(cctx)
		var one int
		if err := conn.QueryRow(cctx, "select 1").Scan(&one); err != nil {
			return "cannot query: " + err.Error()
		}
		return ""
	}
	raw, err := os.ReadFile(thingFile(rt.sl.StateDir, cluster, r.name))
	if err != nil {
		return "no thing on " + rt.name
	}
	var thing struct{ Token string }
	if err := json.Unmarshal(raw, &thing); err != nil {
		return "thing unreadable"
	}
	if string(s.Data["token"]) != thing.Token {
		return "token is not the thing's"
	}
	return ""
}

// table renders the findings with their goals.
func (a *findings) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "msp-chaos, seed %d, took %s\n\n", a.seed, a.took.Round(time.Second))
	fmt.Fprintf(&b, "Fault schedule:\n```\n%s```\n\n", a.schedule)
	row := func(figure string, value any, goal string) {
		fmt.Fprintf(&b, "| %s | %v | %s |\n", figure, value, goal)
	}
	b.WriteString("| figure | value | goal |\n| --- | --- | --- |\n")
	row("capabilities created / ever Ready / deleted by the run", fmt.Sprintf("%d / %d / %d", a.created, a.ready, a.deleted), "")
	row("tenant operations in the churn", fmt.Sprintf("%v", a.ops), "")
	row("lost (never Ready, gone without a delete, not Ready at the end, database missing)", len(a.lost), "0")
	row("assigned twice or moved", len(a.moved), "0")
	row("missing from a tenant's list and there again (a list that was wrong)", len(a.reappeared), "0")
	row("created twice on a runtime", len(a.createdTwice), "0")
	row("orphans on a runtime (Orphan policy excluded)", len(a.orphans), "0")
	row("runtimes ever over capacity (sampled every second)", len(a.overCapacity), "0")
	row("Secrets wrong or missing", len(a.badSec), "0")
	if a.converged >= 0 {
		row("convergence after the last fault", a.converged.Round(100*time.Millisecond), "≤ 30s")
	} else {
		row("convergence after the last fault", "not within 5m", "≤ 30s")
	}
	row("kcp write requests during the run (all clients)", int(a.writes), "")
	row("tenant requests refused with 403 while kcp warmed up after a restart, then retried", atomic.LoadInt64(&refusedWhileWarming), "")
	row("coordinator exits on its own (leader Lease lost while kcp was away), restarted as the kubelet would", a.selfExits, "")
	row("runtimes of the ordered class left empty 2m after the run (grace 20s)", a.orderedRuntimes, "0")
	row("runtimes of the ordered class kept because capabilities live on them", len(a.orderedKept), "")
	kinds := map[string][]time.Duration{}
	missed := map[string]int{}
	for _, f := range a.faults {
		if f.converged < 0 {
			missed[f.Kind]++
			continue
		}
		kinds[f.Kind] = append(kinds[f.Kind], f.converged)
	}
	b.WriteString("\n| fault | count | convergence p50 | max | goal |\n| --- | --- | --- | --- | --- |\n")
	for _, k := range faultKinds {
		ds := kinds[k]
		n := len(ds) + missed[k]
		if n == 0 {
			continue
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		// The median by nearest rank: of two, the smaller.
		p50, max := "-", "-"
		if len(ds) > 0 {
			p50, max = ds[(len(ds)+1)/2-1].Round(100*time.Millisecond).String(), ds[len(ds)-1].Round(100*time.Millisecond).String()
		}
		if missed[k] > 0 {
			max = fmt.Sprintf("%d not within 5m", missed[k])
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | ≤ 30s |\n", k, n, p50, max)
	}
	for _, sec := range []struct {
		title string
		list  []string
	}{{"lost", a.lost}, {"moved", a.moved}, {"missing from a list", a.reappeared}, {"created twice", a.createdTwice}, {"orphans", a.orphans}, {"over capacity", a.overCapacity}, {"Secrets", a.badSec}, {"ordered runtimes left empty", a.leftRuntimes}, {"ordered runtimes kept", a.orderedKept}} {
		if len(sec.list) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", sec.title)
		for i, s := range sec.list {
			if i == 20 {
				fmt.Fprintf(&b, "  … %d more\n", len(sec.list)-20)
				break
			}
			fmt.Fprintf(&b, "  - %s\n", s)
		}
	}
	return b.String()
}
