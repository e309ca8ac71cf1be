package shards

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/servicelet/testdriver"
)

type tenant struct {
	index       int
	name, shard string
	c           client.Client
}

// msp on two kcp shards behind the front proxy. The coordinator follows both shards'
// virtual workspaces from the endpoint slice, the servicelet both through the
// provider's front door (one /shards/<token> path per shard): capabilities of tenants
// on root and on shard-1 become Ready with their connection Secrets. With shard-1
// stopped, the root tenants' capabilities keep being placed and reconciled; with shard-1
// back, what was created there converges, and nothing was lost or created twice.
func TestCapabilitiesOnTwoShards(t *testing.T) {
	env := framework.Current(t)
	p := env.NewProvider(t)
	sl := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "rt-shards", Region: "eu-de", Country: "DE", Capabilities: 1000})
	var tenants []tenant
	add := func(shard string) {
		ws := p.NewTenantOnShard(t, shard)
		tenants = append(tenants, tenant{index: len(tenants), name: ws.Path, shard: shard, c: ws.Client(t)})
	}
	add("root")
	add("root")
	env.SetShardSchedulable(t, "shard-1", true)
	add("shard-1")
	add("shard-1")
	env.SetShardSchedulable(t, "shard-1", false)
	for _, tn := range tenants {
		if got := env.ShardOf(t, env.In(tn.name)); got != tn.shard {
			t.Fatalf("workspace %s is on shard %q, want %s", tn.name, got, tn.shard)
		}
	}
	co := p.StartCoordinator(t)

	created := map[string]bool{} // every database made, by name (unique across tenants)
	createIn := func(tn tenant, phase string, n int) {
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("%s-t%d-%02d", phase, tn.index, i)
			db := &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
			if err := tn.c.Create(context.Background(), db); err != nil {
				t.Fatalf("failed to create %s in %s (%s): %v", name, tn.name, tn.shard, err)
			}
			created[name] = true
		}
	}
	// ready counts the databases that are Ready with their connection Secret.
	ready := func(ctx context.Context, tn tenant) (int, int, error) {
		var list postgresv1alpha1.PostgresDatabaseList
		if err := tn.c.List(ctx, &list); err != nil {
			return 0, 0, err
		}
		n := 0
		for _, db := range list.Items {
			if !meta.IsStatusConditionTrue(db.Status.Conditions, platformv1alpha1.ConditionReady) || db.Status.ConnectionSecretRef == nil {
				continue
			}
			secret := &corev1.Secret{}
			if err := tn.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: db.Status.ConnectionSecretRef.Name}, secret); err != nil || len(secret.Data["token"]) == 0 {
				continue
			}
			n++
		}
		return n, len(list.Items), nil
	}
	waitReady := func(tn tenant, want int) {
		t.Helper()
		framework.Eventually(t, 3*time.Minute, fmt.Sprintf("%d databases Ready with Secrets in %s (%s)", want, tn.name, tn.shard), func(ctx context.Context) (bool, string, error) {
			n, total, err := ready(ctx, tn)
			return n == want && total == want, fmt.Sprintf("%d of %d Ready with a Secret", n, total), err
		})
	}

	start := time.Now()
	for _, tn := range tenants {
		createIn(tn, "first", 5)
	}
	for _, tn := range tenants {
		waitReady(tn, 5)
	}
	t.Logf("20 databases in 4 workspaces on two shards Ready with their Secrets %s after their creation", time.Since(start).Round(time.Millisecond))

	// shard-1 stops: root's tenants keep being served.
	if err := env.Server.StopShard("shard-1"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	for _, tn := range tenants[:2] {
		createIn(tn, "during", 5)
	}
	for _, tn := range tenants[:2] {
		waitReady(tn, 10)
	}
	t.Logf("shard-1 stopped: 10 more databases on root Ready %s after the stop", time.Since(stopped).Round(time.Millisecond))
	// Created while shard-1 is down, in a root tenant, deleted again: the servicelet deletes it.
	createIn(tenants[0], "gone", 1)
	waitReady(tenants[0], 11)
	gone := &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "gone-t0-00"}}
	if err := tenants[0].c.Delete(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	delete(created, gone.Name)
	framework.Eventually(t, time.Minute, "gone-t0-00 deleted by the servicelet", func(ctx context.Context) (bool, string, error) {
		n := testdriver.Calls(sl.StateDir, "deletes.log", "default", gone.Name)
		return n == 1, fmt.Sprintf("%d deletes", n), nil
	})

	// shard-1 is back: its capabilities converge, new ones become Ready.
	if err := env.Server.StartShard(context.Background(), "shard-1"); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for _, tn := range tenants[2:] {
		createIn(tn, "after", 5)
	}
	for _, tn := range tenants {
		waitReady(tn, 10)
	}
	t.Logf("shard-1 back: its 10 new databases Ready %s after its start", time.Since(back).Round(time.Millisecond))

	// Nothing lost, nothing doubled: each database was created once on the runtime and
	// assigned by one write.
	for name := range created {
		if n := testdriver.Calls(sl.StateDir, "creates.log", "default", name); n != 1 {
			t.Errorf("%s was created %d times on the runtime, want 1", name, n)
		}
	}
	framework.Eventually(t, 30*time.Second, "41 assignments written", func(ctx context.Context) (bool, string, error) {
		m, err := framework.Scrape(ctx, co.MetricsAddr)
		n := m[`msp_scheduler_attempts_total{result="scheduled"}`]
		return n == 41, fmt.Sprintf("%v assignments written", n), err
	})
}
