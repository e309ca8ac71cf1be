package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/msp-dev/msp/sdk/launch"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jackc/pgx/v5"

	hostingv1alpha1 "github.com/msp-dev/msp/apis/hosting/v1alpha1"
	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/runtimemanager"
)

func runtimeClass(name string, capacity int64, min, max int32, grace time.Duration, locs ...platformv1alpha1.Location) *platformv1alpha1.ServiceRuntimeClass {
	return &platformv1alpha1.ServiceRuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: platformv1alpha1.ServiceRuntimeClassSpec{
			Capabilities:   []platformv1alpha1.CapabilityKind{{Group: "postgres.msp.dev", Kind: "PostgresDatabase"}},
			Locations:      locs,
			Capacity:       corev1.ResourceList{platformv1alpha1.ResourceCapabilities: *resource.NewQuantity(capacity, resource.DecimalSI)},
			MinRuntimes:    min,
			MaxRuntimes:    max,
			ScaleDownAfter: metav1.Duration{Duration: grace},
			Driver:         platformv1alpha1.RuntimeDriver{Name: "local"},
		},
	}
}

// startManagingCoordinator runs a coordinator with the runtime manager and the local
// procurement driver, whose servicelets are the provider's own ("provider") or the test
// driver's ("test").
func startManagingCoordinator(t *testing.T, p *framework.Provider, servicelets string) {
	t.Helper()
	p.StartCoordinatorWith(t, launch.Coordinator{HeartbeatTimeout: 20 * time.Second, RuntimeManager: &launch.RuntimeManager{
		Interval: time.Second, Cooldown: 2 * time.Second, LocalDir: t.TempDir(), LocalDriver: servicelets,
		ServiceletArgs: []string{"--heartbeat-interval=2s"},
	}})
}

// Zero runtimes and a class with min 0: a tenant orders a database in a region, a
// runtime of the class is ordered there (a new local PostgreSQL server with its
// servicelet), becomes Ready, and the database becomes Ready.
func TestRuntimeManagerScalesFromZero(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	pc := p.Client(t)
	create(t, pc, runtimeClass("pg", 5, 0, 3, time.Hour, platformv1alpha1.Location{Region: "eu-de", Country: "DE"}, platformv1alpha1.Location{Region: "eu-fr", Country: "FR"}))
	startManagingCoordinator(t, p, "provider")
	c := p.NewTenant(t).Client(t)
	if n := len(framework.ClassRuntimes(t, pc, "pg")); n != 0 {
		t.Fatalf("the class has %d runtimes before anything was ordered, want 0", n)
	}

	start := time.Now()
	create(t, c, database("in-france", platformv1alpha1.Placement{Countries: []string{"FR"}}))
	waiting := waitCondition(t, c, "in-france", platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, time.Minute)
	framework.Eventually(t, 30*time.Second, "the capability to say it waits for a runtime", func(ctx context.Context) (bool, string, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(waiting), waiting); err != nil {
			return false, "", err
		}
		cond := meta.FindStatusCondition(waiting.Status.Conditions, platformv1alpha1.ConditionScheduled)
		return cond.Status == metav1.ConditionTrue || cond.Reason == platformv1alpha1.ReasonWaitingForRuntime, cond.Reason + ": " + cond.Message, nil
	})
	db := waitCondition(t, c, "in-france", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 3*time.Minute)
	took := time.Since(start)

	rts := framework.ClassRuntimes(t, pc, "pg")
	if len(rts) != 1 {
		t.Fatalf("the class has %d runtimes, want exactly 1", len(rts))
	}
	if rts[0].Name != db.Spec.RuntimeName || rts[0].Spec.Location.Country != "FR" {
		t.Errorf("the database runs on %s; the ordered runtime is %s in %s", db.Spec.RuntimeName, rts[0].Name, rts[0].Spec.Location.Country)
	}
	t.Logf("from zero runtimes to a Ready database on a newly ordered runtime: %s", took.Round(100*time.Millisecond))
}

// A burst that needs three runtimes orders exactly three; when everything is deleted,
// the runtimes are removed after the grace period, and not before.
func TestRuntimeManagerOrdersFewestAndRemovesAfterGrace(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	pc := p.Client(t)
	grace := 10 * time.Second
	create(t, pc, runtimeClass("small", 2, 0, 10, grace, platformv1alpha1.Location{Region: "eu-de", Country: "DE"}))
	startManagingCoordinator(t, p, "test")
	c := p.NewTenant(t).Client(t)

	for i := 0; i < 6; i++ {
		create(t, c, database(fmt.Sprintf("db-%d", i), platformv1alpha1.Placement{}))
	}
	for i := 0; i < 6; i++ {
		waitCondition(t, c, fmt.Sprintf("db-%d", i), platformv1alpha1.ConditionReady, metav1.ConditionTrue, 3*time.Minute)
	}
	time.Sleep(3 * time.Second) // a few more passes: nothing more is ordered
	if rts := framework.ClassRuntimes(t, pc, "small"); len(rts) != 3 {
		t.Fatalf("%d runtimes were ordered for 6 databases of which 2 fit on one, want exactly 3", len(rts))
	}

	for i := 0; i < 6; i++ {
		if err := c.Delete(context.Background(), &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("db-%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 6; i++ {
		waitGone(t, c, &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("db-%d", i)}}, time.Minute)
	}
	emptied := time.Now()
	time.Sleep(grace / 2)
	if rts := framework.ClassRuntimes(t, pc, "small"); len(rts) != 3 {
		t.Fatalf("%d runtimes left %s after they emptied, before the grace period of %s ended; want all 3", len(rts), time.Since(emptied).Round(time.Second), grace)
	}
	framework.Eventually(t, 2*time.Minute, "the empty runtimes to be removed", func(ctx context.Context) (bool, string, error) {
		var list platformv1alpha1.ServiceRuntimeList
		if err := pc.List(ctx, &list, client.MatchingLabels{runtimemanager.LabelClass: "small"}); err != nil {
			return false, "", err
		}
		return len(list.Items) == 0, fmt.Sprintf("%d runtimes", len(list.Items)), nil
	})
	if took := time.Since(emptied); took < grace {
		t.Errorf("the runtimes were gone %s after they emptied, before the grace period of %s", took, grace)
	}
}

// The class's maximum reached: the capabilities that would need more runtimes stay
// pending, and say so.
func TestRuntimeManagerRespectsMaximum(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	pc := p.Client(t)
	create(t, pc, runtimeClass("tiny", 1, 0, 1, time.Hour, platformv1alpha1.Location{Region: "eu-de", Country: "DE"}))
	startManagingCoordinator(t, p, "test")
	c := p.NewTenant(t).Client(t)

	create(t, c, database("first", platformv1alpha1.Placement{}))
	waitCondition(t, c, "first", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 3*time.Minute)
	create(t, c, database("second", platformv1alpha1.Placement{}))
	db := &postgresv1alpha1.PostgresDatabase{}
	framework.Eventually(t, time.Minute, "second to say the class is at its maximum", func(ctx context.Context) (bool, string, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "second"}, db); err != nil {
			return false, "", err
		}
		cond := meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionScheduled)
		if cond == nil {
			return false, "no condition", nil
		}
		return cond.Status == metav1.ConditionFalse && strings.Contains(cond.Message, "runtime class tiny has reached its maximum of 1 runtimes"), cond.Message, nil
	})
	if rts := framework.ClassRuntimes(t, pc, "tiny"); len(rts) != 1 {
		t.Errorf("the class has %d runtimes, want its maximum of 1", len(rts))
	}
}

// Cascading: the postgres provider orders its runtime as a capability of another
// provider through kcp. Its workspace binds the hosting provider's export, so it is that
// provider's tenant: the PostgresServer it ordered is visible there, the hosting
// provider's scheduler and servicelet bring it to life, and its connection details become
// the new runtime's access.
func TestRuntimeManagerCascadesThroughHostingProvider(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	h := env.NewProviderFor(t, "hosting.msp.dev")
	h.StartCoordinator(t)
	h.StartProviderServicelet(t, "postgresserver-servicelet", framework.ServiceletSpec{Runtime: "host-de", Region: "eu-de", Country: "DE",
		Args: []string{"--servers-dir", t.TempDir()}})

	p := env.NewProvider(t)
	p.BindExport(t, h)
	pc := p.Client(t)
	class := runtimeClass("cascaded", 5, 0, 2, time.Hour, platformv1alpha1.Location{Region: "eu-de", Country: "DE"})
	class.Spec.Driver = platformv1alpha1.RuntimeDriver{Name: "cascading",
		Parameters: &runtime.RawExtension{Raw: []byte(`{"apiVersion":"hosting.msp.dev/v1alpha1","kind":"PostgresServer"}`)}}
	create(t, pc, class)
	p.StartCoordinatorWith(t, launch.Coordinator{RuntimeManager: &launch.RuntimeManager{
		Interval: time.Second, CascadingDir: t.TempDir(), ServiceletArgs: []string{"--heartbeat-interval=2s"},
	}})
	c := p.NewTenant(t).Client(t)

	start := time.Now()
	create(t, c, database("cascaded-db", platformv1alpha1.Placement{Countries: []string{"DE"}}))
	db := waitCondition(t, c, "cascaded-db", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 3*time.Minute)
	t.Logf("from zero runtimes to a Ready database on a runtime ordered through the hosting provider: %s", time.Since(start).Round(100*time.Millisecond))

	// The ordered runtime is a PostgresServer in the first provider's workspace, placed
	// by the hosting provider on its host.
	srv := &hostingv1alpha1.PostgresServer{}
	if err := pc.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: db.Spec.RuntimeName}, srv); err != nil {
		t.Fatalf("the runtime %s is not a PostgresServer in the provider's workspace: %v", db.Spec.RuntimeName, err)
	}
	if srv.Spec.RuntimeName != "host-de" {
		t.Errorf("the PostgresServer runs on %q, want the hosting provider's host-de", srv.Spec.RuntimeName)
	}
	if cond := meta.FindStatusCondition(srv.Status.Conditions, platformv1alpha1.ConditionReady); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Errorf("the PostgresServer is not Ready: %+v", cond)
	}
	uri := connectionURI(t, c, db)
	conn, err := pgx.Connect(context.Background(), uri)
	if err != nil {
		t.Fatalf("connecting to the database on the cascaded runtime: %v", err)
	}
	conn.Close(context.Background())
}
