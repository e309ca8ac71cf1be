// Package resilience stops and starts its own kcp under a running platform. It is a
// test binary of its own because no other test could share a kcp that goes away.
package resilience

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/servicelet/testdriver"
	"github.com/msp-dev/msp/sdk/launch"
)

func TestMain(m *testing.M) { framework.Main(m) }

func ready(t *testing.T, c client.Client, name string, timeout time.Duration) *postgresv1alpha1.PostgresDatabase {
	t.Helper()
	db := &postgresv1alpha1.PostgresDatabase{}
	framework.Eventually(t, timeout, name+" to be Ready", func(ctx context.Context) (bool, string, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, db); err != nil {
			return false, "", err
		}
		cond := meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionReady)
		return cond != nil && cond.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", cond), nil
	})
	return db
}

// kcp stopped for 20 seconds and started again: the servicelet and the coordinator
// reconnect by themselves, leave what runs alone, and go on with new capabilities; a
// coordinator started while kcp is away waits for it.
func TestPlatformSurvivesKCPRestart(t *testing.T) {
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	sl := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "local-1", Region: "eu-de", Country: "DE"})
	c := p.NewTenant(t).Client(t)

	before := &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Name: "before", Namespace: "default"}}
	if err := c.Create(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	ready(t, c, "before", time.Minute)

	// A second coordinator starts while kcp is away: it waits for kcp rather than exit
	// (two active coordinators never assign twice, see the scheduler's tests).
	start := time.Now()
	var late *framework.Coordinator
	env.RestartKCPWhile(t, 20*time.Second, func() { late = p.StartCoordinator(t) })
	t.Logf("kcp was away for %s", time.Since(start).Round(time.Second))

	after := &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Name: "after", Namespace: "default"}}
	framework.Eventually(t, time.Minute, "kcp to accept a new capability", func(ctx context.Context) (bool, string, error) {
		err := c.Create(ctx, after)
		return err == nil, "", err
	})
	reconnected := time.Now()
	ready(t, c, "after", 2*time.Minute)
	t.Logf("a capability created after the restart was Ready %s later", time.Since(reconnected).Round(100*time.Millisecond))
	if !late.Running() {
		t.Errorf("the coordinator started while kcp was away exited instead of waiting for it")
	}

	ready(t, c, "before", time.Minute)
	if n := testdriver.Calls(sl.StateDir, "creates.log", "default", "before"); n != 1 {
		t.Errorf("the driver's create ran %d times for the capability that existed before the restart, want 1", n)
	}
	if n := testdriver.Calls(sl.StateDir, "deletes.log", "default", "before"); n != 0 {
		t.Errorf("the driver's delete ran %d times while kcp was away", n)
	}
	framework.Eventually(t, time.Minute, "the runtime to report Ready again", func(ctx context.Context) (bool, string, error) {
		rt := &platformv1alpha1.ServiceRuntime{}
		if err := p.Client(t).Get(ctx, client.ObjectKey{Name: "local-1"}, rt); err != nil {
			return false, "", err
		}
		cond := meta.FindStatusCondition(rt.Status.Conditions, platformv1alpha1.ConditionReady)
		return cond != nil && cond.Status == metav1.ConditionTrue && rt.Status.LastHeartbeatTime.After(reconnected), fmt.Sprintf("%+v", cond), nil
	})
}

// A coordinator killed with SIGKILL and started again under the same --replica-id (a
// pod's container restarted after a crash) takes its leader Lease back at once: it
// places a new capability before the Lease the dead process held would have run out.
func TestRestartedCoordinatorTakesItsLeaseBack(t *testing.T) {
	env := framework.Current(t)
	p := env.NewProvider(t)
	opts := launch.Coordinator{LeaderElect: true, ReplicaID: "coordinator-0"}
	co := p.StartCoordinatorWith(t, opts)
	p.StartServicelet(t, framework.ServiceletSpec{Runtime: "local-1", Region: "eu-de", Country: "DE"})
	c := p.NewTenant(t).Client(t)
	pc := p.Client(t)
	ctx := context.Background()

	first := &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Name: "first", Namespace: "default"}}
	if err := c.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	ready(t, c, "first", time.Minute)

	co.Kill()
	lease := &coordinationv1.Lease{}
	if err := pc.Get(ctx, client.ObjectKey{Namespace: "default", Name: "msp-coordinator-" + p.Export}, lease); err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "coordinator-0" {
		t.Fatalf("the Lease is held by %v, want coordinator-0", lease.Spec.HolderIdentity)
	}
	expires := lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second)
	t.Logf("the killed coordinator's Lease runs out at %s", expires.Format(time.RFC3339Nano))

	p.StartCoordinatorWith(t, opts)
	second := &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: "default"}}
	if err := c.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "second to be placed", func(ctx context.Context) (bool, string, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(second), second); err != nil {
			return false, "", err
		}
		return second.Spec.RuntimeName != "", "not placed yet", nil
	})
	placed := time.Now()
	t.Logf("second placed %s before the old Lease would have run out", expires.Sub(placed).Round(100*time.Millisecond))
	if !placed.Before(expires) {
		t.Errorf("second was placed at %s, after the killed coordinator's Lease ran out (%s): the restarted one waited for it", placed.Format(time.RFC3339Nano), expires.Format(time.RFC3339Nano))
	}
	ready(t, c, "second", time.Minute)
}
