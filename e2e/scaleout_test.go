package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/scheduler"
)

// Two active coordinator replicas (--shard-workspaces) over 200 capabilities in 20
// tenant workspaces. Both own a share of the workspaces and place capabilities there;
// every capability is assigned by exactly one write; no runtime holds more than its
// capacity, although the first 100 capabilities fill the runtimes exactly. Then one
// replica is killed with SIGKILL: the other takes its workspaces over once the dead
// one's Lease expires and places the second 100 alone.
func TestShardedCoordinatorsSplitTheWorkspaces(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	const tenants, perRuntime = 20, 25
	for i := 0; i < 4; i++ {
		p.AddRuntime(t, framework.RuntimeSpec{Name: fmt.Sprintf("rt-%d", i), Region: fmt.Sprintf("region-%d", i%2), Country: "DE", Capabilities: perRuntime})
	}
	var clients []client.Client
	for i := 0; i < tenants; i++ {
		clients = append(clients, p.NewTenant(t).Client(t))
	}
	shard := func(id string) *framework.Coordinator {
		return p.StartCoordinator(t, "--shard-workspaces", "--replica-id="+id, "--replica-lease-duration=10s")
	}
	a, b := shard("replica-a"), shard("replica-b")
	owned := func(ctx context.Context, c *framework.Coordinator) (float64, error) {
		m, err := framework.Scrape(ctx, c.MetricsAddr)
		return m["msp_coordinator_owned_workspaces"], err
	}
	framework.Eventually(t, time.Minute, "the replicas to split the 20 workspaces", func(ctx context.Context) (bool, string, error) {
		na, err := owned(ctx, a)
		if err != nil {
			return false, "", err
		}
		nb, err := owned(ctx, b)
		if err != nil {
			return false, "", err
		}
		return na > 0 && nb > 0 && na+nb == tenants, fmt.Sprintf("replica-a owns %v, replica-b %v", na, nb), nil
	})

	// The first 100 fill the four runtimes exactly.
	start := time.Now()
	createDatabases(t, clients, "first", 100)
	framework.Eventually(t, 3*time.Minute, "the first 100 databases placed", func(context.Context) (bool, string, error) {
		counts, pending := placement(t, clients)
		return counts[""] == 0, fmt.Sprintf("per runtime %v, pending %v", counts, pending), nil
	})
	t.Logf("100 databases placed by two replicas in %s", time.Since(start).Round(time.Millisecond))
	scheduled := func(ctx context.Context, c *framework.Coordinator) (placed, conflicts float64, err error) {
		m, err := framework.Scrape(ctx, c.MetricsAddr)
		return m[`msp_scheduler_attempts_total{result="scheduled"}`], m[`msp_scheduler_attempts_total{result="conflict"}`], err
	}
	var placedA, placedB, conflictsA, conflictsB float64
	framework.Eventually(t, 30*time.Second, "the replicas' assignments to add up to 100", func(ctx context.Context) (bool, string, error) {
		var err error
		if placedA, conflictsA, err = scheduled(ctx, a); err != nil {
			return false, "", err
		}
		if placedB, conflictsB, err = scheduled(ctx, b); err != nil {
			return false, "", err
		}
		return placedA+placedB == 100, fmt.Sprintf("replica-a wrote %v assignments, replica-b %v", placedA, placedB), nil
	})
	if placedA == 0 || placedB == 0 {
		t.Errorf("replica-a placed %v and replica-b %v: want both to place a share", placedA, placedB)
	}
	t.Logf("replica-a placed %v (%v refused reservations or conflicts), replica-b %v (%v)", placedA, conflictsA, placedB, conflictsB)
	checkCapacity(t, clients, perRuntime, 100)
	reserved := 0
	var twins platformv1alpha1.ServiceRuntimeList
	if err := p.Client(t).List(context.Background(), &twins); err != nil {
		t.Fatal(err)
	}
	for _, rt := range twins.Items {
		entries, err := scheduler.ParseReservations(&rt)
		if err != nil {
			t.Errorf("runtime %s: %v", rt.Name, err)
		}
		reserved += len(entries)
	}
	if reserved == 0 {
		t.Errorf("no reservations on the runtimes' twins: the replicas placed without them")
	}

	// replica-b dies; four more runtimes; the second 100 are placed by replica-a alone.
	b.Kill()
	killed := time.Now()
	for i := 4; i < 8; i++ {
		p.AddRuntime(t, framework.RuntimeSpec{Name: fmt.Sprintf("rt-%d", i), Region: fmt.Sprintf("region-%d", i%2), Country: "DE", Capabilities: perRuntime})
	}
	createDatabases(t, clients, "second", 100)
	var tookOver time.Duration
	framework.Eventually(t, 2*time.Minute, "replica-a to own every workspace", func(ctx context.Context) (bool, string, error) {
		n, err := owned(ctx, a)
		tookOver = time.Since(killed)
		return n == tenants, fmt.Sprintf("replica-a owns %v", n), err
	})
	framework.Eventually(t, 3*time.Minute, "all 200 databases placed", func(context.Context) (bool, string, error) {
		counts, pending := placement(t, clients)
		return counts[""] == 0, fmt.Sprintf("per runtime %v, pending %v", counts, pending), nil
	})
	finished := time.Since(killed)
	framework.Eventually(t, 30*time.Second, "replica-a's assignments to add up", func(ctx context.Context) (bool, string, error) {
		after, _, err := scheduled(ctx, a)
		return placedA+placedB+(after-placedA) == 200, fmt.Sprintf("replica-a wrote %v assignments in all (%v before the kill), replica-b %v", after, placedA, placedB), err
	})
	checkCapacity(t, clients, perRuntime, 200)
	t.Logf("replica-b killed (SIGKILL, lease 10s): replica-a owned all %d workspaces %s later and had placed all 200 databases %s after the kill",
		tenants, tookOver.Round(100*time.Millisecond), finished.Round(100*time.Millisecond))
}

// createDatabases creates n databases named prefix-NNN, spread over the clients.
func createDatabases(t *testing.T, clients []client.Client, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := clients[i%len(clients)].Create(context.Background(), database(fmt.Sprintf("%s-%03d", prefix, i), platformv1alpha1.Placement{})); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("failed to create a database: %v", err)
	}
}

// checkCapacity fails when a runtime hosts more than capacity databases or the total
// is not want.
func checkCapacity(t *testing.T, clients []client.Client, capacity, want int) {
	t.Helper()
	counts, _ := placement(t, clients)
	total := 0
	for rt, n := range counts {
		if rt != "" && n > capacity {
			t.Errorf("%s hosts %d databases, over its capacity of %d", rt, n, capacity)
		}
		total += n
	}
	if total != want {
		t.Errorf("%d databases counted, want %d", total, want)
	}
	t.Logf("placement %v", counts)
}
