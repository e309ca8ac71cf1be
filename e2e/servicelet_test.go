package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/msp-dev/msp/sdk/launch"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/servicelet/testdriver"
)

func onRuntime(name, runtime string) *postgresv1alpha1.PostgresDatabase {
	db := database(name, platformv1alpha1.Placement{})
	db.Spec.RuntimeName = runtime
	return db
}

func waitGone(t *testing.T, c client.Client, obj client.Object, timeout time.Duration) {
	t.Helper()
	framework.Eventually(t, timeout, obj.GetName()+" to be gone", func(ctx context.Context) (bool, string, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, fmt.Sprintf("finalizers %v", obj.GetFinalizers()), err
	})
}

// An assigned capability becomes Ready with its connection Secret in the tenant's
// workspace; deleting it runs the driver's delete and removes the finalizer and the
// Secret; with deletionPolicy Orphan the driver's delete does not run; a paused one is
// left alone until unpaused.
func TestServiceletLifecycle(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	sl := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "local-1", Region: "eu-de", Country: "DE", Capabilities: 10})
	c := p.NewTenantUsingRuntimes(t).Client(t)
	ctx := context.Background()

	// Assigned → Ready, with the Secret present and referenced.
	create(t, c, database("orders", platformv1alpha1.Placement{Countries: []string{"DE"}}))
	db := waitCondition(t, c, "orders", platformv1alpha1.ConditionReady, metav1.ConditionTrue, time.Minute)
	if db.Spec.RuntimeName != "local-1" {
		t.Fatalf("orders runs on %q, want local-1", db.Spec.RuntimeName)
	}
	if db.Status.ConnectionSecretRef == nil {
		t.Fatalf("status.connectionSecretRef is not set: %+v", db.Status)
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: db.Status.ConnectionSecretRef.Name}, secret); err != nil {
		t.Fatalf("connection Secret %s: %v", db.Status.ConnectionSecretRef.Name, err)
	}
	if len(secret.Data["token"]) == 0 || !strings.Contains(string(secret.Data["endpoint"]), "local-1/default/orders") {
		t.Errorf("connection Secret lacks the details: %v", keys(secret.Data))
	}
	if !contains(db.Finalizers, platformv1alpha1.FinalizerServicelet) {
		t.Errorf("finalizers %v lack %s", db.Finalizers, platformv1alpha1.FinalizerServicelet)
	}
	synced := meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionSynced)
	if synced == nil || synced.Status != metav1.ConditionTrue || db.Status.ObservedGeneration != db.Generation {
		t.Errorf("Synced %+v, observedGeneration %d (generation %d)", synced, db.Status.ObservedGeneration, db.Generation)
	}

	// Delete → the driver's delete ran, the finalizer and the Secret are gone.
	if err := c.Delete(ctx, db); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "orders"}}, time.Minute)
	if n := testdriver.Calls(sl.StateDir, "deletes.log", "default", "orders"); n < 1 {
		t.Errorf("the driver's delete did not run for orders")
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(secret), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("the connection Secret is still there (err %v)", err)
	}

	// Orphan → the driver's delete does not run.
	orphan := onRuntime("keep-me", "local-1")
	orphan.Spec.DeletionPolicy = platformv1alpha1.DeletionPolicyOrphan
	create(t, c, orphan)
	waitCondition(t, c, "keep-me", platformv1alpha1.ConditionReady, metav1.ConditionTrue, time.Minute)
	if err := c.Delete(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, orphan, time.Minute)
	if n := testdriver.Calls(sl.StateDir, "deletes.log", "default", "keep-me"); n != 0 {
		t.Errorf("the driver's delete ran %d times for an orphaned capability", n)
	}

	// Paused → no reconcile until unpaused.
	paused := onRuntime("paused", "local-1")
	paused.Annotations = map[string]string{platformv1alpha1.AnnotationPaused: "true"}
	create(t, c, paused)
	got := waitCondition(t, c, "paused", platformv1alpha1.ConditionSynced, metav1.ConditionFalse, time.Minute)
	if cond := meta.FindStatusCondition(got.Status.Conditions, platformv1alpha1.ConditionSynced); cond.Reason != platformv1alpha1.ReasonReconcilePaused {
		t.Errorf("paused capability reports Synced reason %s, want %s", cond.Reason, platformv1alpha1.ReasonReconcilePaused)
	}
	time.Sleep(3 * time.Second) // a reconcile, had there been one, would have created it by now
	if n := testdriver.Calls(sl.StateDir, "creates.log", "default", "paused"); n != 0 {
		t.Fatalf("a paused capability was created (%d times)", n)
	}
	update(t, c, paused, func() { delete(paused.Annotations, platformv1alpha1.AnnotationPaused) })
	waitCondition(t, c, "paused", platformv1alpha1.ConditionReady, metav1.ConditionTrue, time.Minute)

	// A driver error reaches the tenant as Synced=False with its message.
	failing := onRuntime("failing", "local-1")
	failing.Annotations = map[string]string{testdriver.AnnotationFail: "quota for databases exceeded"}
	create(t, c, failing)
	got = waitCondition(t, c, "failing", platformv1alpha1.ConditionSynced, metav1.ConditionFalse, time.Minute)
	if cond := meta.FindStatusCondition(got.Status.Conditions, platformv1alpha1.ConditionSynced); cond.Reason != platformv1alpha1.ReasonReconcileError || cond.Message != "quota for databases exceeded" {
		t.Errorf("failing capability reports %s %q", cond.Reason, cond.Message)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The servicelet of runtime A never receives runtime B's capabilities: its cache holds
// exactly the ones labelled for A, across tenants.
func TestServiceletSeesOnlyItsRuntime(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	a := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "rt-a", Region: "eu-de", Country: "DE"})
	b := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "rt-b", Region: "eu-fr", Country: "FR"})
	t1, t2 := p.NewTenantUsingRuntimes(t).Client(t), p.NewTenantUsingRuntimes(t).Client(t)

	create(t, t1, onRuntime("a1", "rt-a"), onRuntime("b1", "rt-b"), database("a2", platformv1alpha1.Placement{Countries: []string{"DE"}}))
	create(t, t2, onRuntime("a3", "rt-a"), database("b2", platformv1alpha1.Placement{Countries: []string{"FR"}}))
	for _, tc := range []struct {
		c    client.Client
		name string
	}{{t1, "a1"}, {t1, "b1"}, {t1, "a2"}, {t2, "a3"}, {t2, "b2"}} {
		waitCondition(t, tc.c, tc.name, platformv1alpha1.ConditionReady, metav1.ConditionTrue, time.Minute)
	}
	for _, tc := range []struct {
		s    *framework.Servicelet
		want []string
	}{{a, []string{"a1", "a2", "a3"}}, {b, []string{"b1", "b2"}}} {
		cached, err := tc.s.Cached(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range cached {
			names = append(names, c.Name)
			if c.Runtime != tc.s.Runtime {
				t.Errorf("servicelet %s holds %s/%s labelled for %q", tc.s.Runtime, c.Cluster, c.Name, c.Runtime)
			}
		}
		sort.Strings(names)
		if strings.Join(names, ",") != strings.Join(tc.want, ",") {
			t.Errorf("servicelet %s holds %v, want %v", tc.s.Runtime, names, tc.want)
		}
	}
}

// Killed with SIGKILL in the middle of provisioning and started again, the servicelet
// converges, and the driver's create is not repeated for a thing that exists.
func TestServiceletKilledMidProvisioningConverges(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	sl := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "slow-1", Region: "eu-de", Country: "DE", Args: []string{"--provision-delay=6s"}})
	c := p.NewTenantUsingRuntimes(t).Client(t)

	create(t, c, onRuntime("crashy", "slow-1"))
	framework.Eventually(t, time.Minute, "the driver's create to run", func(context.Context) (bool, string, error) {
		return testdriver.Calls(sl.StateDir, "creates.log", "default", "crashy") == 1, "", nil
	})
	sl.Kill()
	db := &postgresv1alpha1.PostgresDatabase{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "crashy"}, db); err != nil {
		t.Fatal(err)
	}
	if cond := meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionReady); cond != nil && cond.Status == metav1.ConditionTrue {
		t.Fatalf("the capability was Ready before the kill; the test did not kill mid-provisioning")
	}
	sl.Restart(t)
	waitCondition(t, c, "crashy", platformv1alpha1.ConditionReady, metav1.ConditionTrue, time.Minute)
	if n := testdriver.Calls(sl.StateDir, "creates.log", "default", "crashy"); n != 1 {
		t.Errorf("the driver's create ran %d times, want 1", n)
	}
}

// A servicelet that stops reporting turns its runtime not Ready within two heartbeat
// bounds, and new capabilities go elsewhere; the ones already there stay.
func TestStoppedServiceletRuntimeTurnsNotReady(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	// The coordinator's bound is two heartbeat intervals.
	interval := 3 * time.Second
	p.StartCoordinatorWith(t, launch.Coordinator{HeartbeatTimeout: 2 * interval})
	args := []string{fmt.Sprintf("--heartbeat-interval=%s", interval)}
	first := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "first", Region: "eu-de", Country: "DE", Args: args})
	p.StartServicelet(t, framework.ServiceletSpec{Runtime: "second", Region: "eu-de", Country: "DE", Args: args})
	c := p.NewTenantUsingRuntimes(t).Client(t)
	create(t, c, onRuntime("stays", "first"))
	waitCondition(t, c, "stays", platformv1alpha1.ConditionReady, metav1.ConditionTrue, time.Minute)

	first.Stop()
	stopped := time.Now()
	pc := p.Client(t)
	// Polled every 100ms (not with Eventually's backoff): the time it took is asserted.
	var cond *metav1.Condition
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		rt := &platformv1alpha1.ServiceRuntime{}
		if err := pc.Get(context.Background(), client.ObjectKey{Name: "first"}, rt); err != nil {
			t.Fatal(err)
		}
		cond = meta.FindStatusCondition(rt.Status.Conditions, platformv1alpha1.ConditionReady)
		if cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == platformv1alpha1.ReasonHeartbeatMissed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runtime first did not turn not Ready within 20s of its servicelet stopping: %+v", cond)
		}
	}
	// Its last heartbeat was at most one interval before the stop; allow a second for
	// the status write to reach the test.
	if took := time.Since(stopped); took > 2*interval+time.Second {
		t.Errorf("runtime turned not Ready %s after its servicelet stopped, want within two heartbeat intervals (%s)", took.Round(100*time.Millisecond), 2*interval)
	} else {
		t.Logf("runtime turned not Ready %s after its servicelet stopped (heartbeat interval %s)", took.Round(100*time.Millisecond), interval)
	}

	for i := 0; i < 3; i++ {
		create(t, c, database(fmt.Sprintf("new-%d", i), platformv1alpha1.Placement{}))
	}
	for i := 0; i < 3; i++ {
		db := waitCondition(t, c, fmt.Sprintf("new-%d", i), platformv1alpha1.ConditionScheduled, metav1.ConditionTrue, time.Minute)
		if db.Spec.RuntimeName != "second" {
			t.Errorf("new-%d went to %s, want the runtime whose servicelet reports", i, db.Spec.RuntimeName)
		}
	}
	db := &postgresv1alpha1.PostgresDatabase{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "stays"}, db); err != nil {
		t.Fatal(err)
	}
	if db.Spec.RuntimeName != "first" {
		t.Errorf("the capability on the silent runtime moved to %s", db.Spec.RuntimeName)
	}
}

// The servicelet starts on a capability only once the scheduler has finished with it
// (Scheduled=True): a document that carries its runtime's name and label but no verdict
// yet is left alone, and is brought to life as soon as the scheduler reports.
func TestServiceletWaitsForTheScheduler(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	sl := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "waits-1", Region: "eu-de", Country: "DE"})
	c := p.NewTenantUsingRuntimes(t).Client(t)

	// Labelled by hand, as the scheduler's first write would leave it.
	db := onRuntime("early", "waits-1")
	db.Labels = map[string]string{platformv1alpha1.LabelRuntime: "waits-1"}
	// The label set by hand does not skip the constraints: this one wants France.
	sneaky := database("sneaky", platformv1alpha1.Placement{Countries: []string{"FR"}})
	sneaky.Spec.RuntimeName = "waits-1"
	sneaky.Labels = map[string]string{platformv1alpha1.LabelRuntime: "waits-1"}
	create(t, c, db, sneaky)
	framework.Eventually(t, time.Minute, "the servicelet to hold the capabilities", func(ctx context.Context) (bool, string, error) {
		cached, err := sl.Cached(ctx)
		if err != nil {
			return false, "", err
		}
		return len(cached) == 2, fmt.Sprintf("%d cached", len(cached)), nil
	})
	time.Sleep(3 * time.Second) // a reconcile, had there been one, would have created it by now
	if n := testdriver.Calls(sl.StateDir, "creates.log", "default", "early"); n != 0 {
		t.Fatalf("the driver's create ran %d times before the scheduler reported", n)
	}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(db), db); err != nil {
		t.Fatal(err)
	}
	if len(db.Finalizers) != 0 || len(db.Status.Conditions) != 0 {
		t.Fatalf("the servicelet wrote to a capability the scheduler had not reported on: finalizers %v, conditions %+v", db.Finalizers, db.Status.Conditions)
	}

	p.StartCoordinator(t)
	waitCondition(t, c, "early", platformv1alpha1.ConditionReady, metav1.ConditionTrue, time.Minute)
	if n := testdriver.Calls(sl.StateDir, "creates.log", "default", "early"); n != 1 {
		t.Errorf("the driver's create ran %d times, want 1", n)
	}
	got := waitCondition(t, c, "sneaky", platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, time.Minute)
	if cond := meta.FindStatusCondition(got.Status.Conditions, platformv1alpha1.ConditionScheduled); cond.Reason != platformv1alpha1.ReasonRuntimeDoesNotFit {
		t.Errorf("sneaky: Scheduled reason %s (%s), want %s", cond.Reason, cond.Message, platformv1alpha1.ReasonRuntimeDoesNotFit)
	}
	if n := testdriver.Calls(sl.StateDir, "creates.log", "default", "sneaky"); n != 0 {
		t.Errorf("a capability whose runtime does not fit was created %d times", n)
	}
}
