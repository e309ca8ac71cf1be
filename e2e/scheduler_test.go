package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
)

func database(name string, placement platformv1alpha1.Placement) *postgresv1alpha1.PostgresDatabase {
	return &postgresv1alpha1.PostgresDatabase{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: postgresv1alpha1.PostgresDatabaseSpec{
			CapabilitySpec: platformv1alpha1.CapabilitySpec{Placement: placement},
		},
	}
}

func create(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("failed to create %s: %v", o.GetName(), err)
		}
	}
}

// update applies change to the object's latest version, as a tenant's tool would: the
// servicelet and the scheduler write the same document concurrently, so a plain
// read-modify-update can meet a conflict that says nothing about the platform.
func update(t *testing.T, c client.Client, obj client.Object, change func()) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		return c.Update(context.Background(), obj)
	})
	if err != nil {
		t.Fatalf("failed to update %s: %v", obj.GetName(), err)
	}
}

// waitCondition waits until the database's condition has the given status and returns it.
func waitCondition(t *testing.T, c client.Client, name, condType string, status metav1.ConditionStatus, timeout time.Duration) *postgresv1alpha1.PostgresDatabase {
	t.Helper()
	db := &postgresv1alpha1.PostgresDatabase{}
	framework.Eventually(t, timeout, fmt.Sprintf("%s of %s to be %s", condType, name, status), func(ctx context.Context) (bool, string, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, db); err != nil {
			return false, "", err
		}
		cond := meta.FindStatusCondition(db.Status.Conditions, condType)
		if cond == nil {
			return false, "no condition yet", nil
		}
		return cond.Status == status, fmt.Sprintf("%s %s: %s", cond.Status, cond.Reason, cond.Message), nil
	})
	return db
}

// waitAssigned waits until the scheduler has placed the database: its runtimeName, the
// runtime label and the servicelet's finalizer, which the scheduler writes in one patch
// (Scheduled=True then comes with the runtime's servicelet's first status write; these
// tests run no servicelets).
func waitAssigned(t *testing.T, c client.Client, name string, timeout time.Duration) *postgresv1alpha1.PostgresDatabase {
	t.Helper()
	db := &postgresv1alpha1.PostgresDatabase{}
	framework.Eventually(t, timeout, name+" to be assigned", func(ctx context.Context) (bool, string, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, db); err != nil {
			return false, "", err
		}
		return assigned(db), fmt.Sprintf("runtimeName %q, label %q, finalizers %v", db.Spec.RuntimeName, db.Labels[platformv1alpha1.LabelRuntime], db.Finalizers), nil
	})
	return db
}

func assigned(db *postgresv1alpha1.PostgresDatabase) bool {
	return db.Spec.RuntimeName != "" && db.Labels[platformv1alpha1.LabelRuntime] == db.Spec.RuntimeName &&
		slices.Contains(db.Finalizers, platformv1alpha1.FinalizerServicelet)
}

// Capabilities in three tenant workspaces each land on a runtime that satisfies their
// constraints; one that nothing satisfies waits with a summary; a runtime that fits,
// added later, takes it without anyone touching the capability.
func TestSchedulerPlacesCapabilitiesOfThreeTenants(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	for _, rt := range []framework.RuntimeSpec{
		{Name: "de-1", Region: "eu-de", Country: "DE", Zone: "eu-de-1", Capabilities: 10},
		{Name: "de-2", Region: "eu-de", Country: "DE", Zone: "eu-de-2", Capabilities: 10},
		{Name: "fr-1", Region: "eu-fr", Country: "FR", Zone: "eu-fr-1", Capabilities: 10},
		{Name: "us-1", Region: "us-east", Country: "US", Zone: "us-east-1", Capabilities: 10},
		{Name: "us-2", Region: "us-east", Country: "US", Zone: "us-east-2", Capabilities: 10,
			Labels: map[string]string{"tier": "premium"},
			Taints: []platformv1alpha1.Taint{{Key: "dedicated", Value: "premium", Effect: platformv1alpha1.TaintEffectNoSchedule}}},
	} {
		p.AddRuntime(t, rt)
	}
	p.StartCoordinator(t)
	acme, globex, initech := p.NewTenant(t).Client(t), p.NewTenant(t).Client(t), p.NewTenant(t).Client(t)

	create(t, acme,
		database("in-germany", platformv1alpha1.Placement{Countries: []string{"DE"}}),
		database("in-france", platformv1alpha1.Placement{Regions: []string{"eu-fr"}}),
	)
	create(t, globex,
		database("in-us", platformv1alpha1.Placement{Countries: []string{"US"}}),
		database("premium", platformv1alpha1.Placement{
			RuntimeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "premium"}},
			Tolerations:     []platformv1alpha1.Toleration{{Key: "dedicated", Operator: platformv1alpha1.TolerationOpExists}},
		}),
	)
	create(t, initech,
		database("prefers-france", platformv1alpha1.Placement{Regions: []string{"eu-de", "eu-fr"}, PreferredRegions: []string{"eu-fr"}}),
		database("in-switzerland", platformv1alpha1.Placement{Countries: []string{"CH"}}),
	)

	for _, tc := range []struct {
		c    client.Client
		name string
		want []string
	}{
		{acme, "in-germany", []string{"de-1", "de-2"}},
		{acme, "in-france", []string{"fr-1"}},
		{globex, "in-us", []string{"us-1"}}, // us-2's taint is not tolerated
		{globex, "premium", []string{"us-2"}},
		{initech, "prefers-france", []string{"fr-1"}},
	} {
		db := waitAssigned(t, tc.c, tc.name, time.Minute)
		if !contains(tc.want, db.Spec.RuntimeName) {
			t.Errorf("%s landed on %q, want one of %v", tc.name, db.Spec.RuntimeName, tc.want)
		}
		// Placed without waiting: the scheduler's one write, no status of its own.
		if cond := meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionScheduled); cond != nil {
			t.Errorf("%s: the scheduler wrote a Scheduled condition for a capability it placed at once: %+v", tc.name, cond)
		}
	}

	pending := waitCondition(t, initech, "in-switzerland", platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, time.Minute)
	cond := meta.FindStatusCondition(pending.Status.Conditions, platformv1alpha1.ConditionScheduled)
	// Tenants cannot list the runtimes: the message tells them where the provider is.
	wantMsg := "0/5 runtimes fit: 5 country not allowed; this provider offers regions eu-de, eu-fr, us-east and countries DE, FR, US"
	if cond.Reason != platformv1alpha1.ReasonUnschedulable || cond.Message != wantMsg {
		t.Errorf("pending capability reports %s %q, want Unschedulable %q", cond.Reason, cond.Message, wantMsg)
	}
	generation := pending.Generation

	// An operator asks where a capability would land, without creating it.
	manifest := framework.TempFile(t, "db.yaml", "apiVersion: postgres.msp.dev/v1alpha1\nkind: PostgresDatabase\nmetadata: {name: probe}\nspec:\n  placement: {countries: [CH]}\n")
	out, err := exec.Command(filepath.Join(env.Bin, "msp-explain"), "-f", manifest, "--kubeconfig", env.Kubeconfig(),
		"--workspace", p.Path, "--heartbeat-timeout", "1h").CombinedOutput()
	if err != nil {
		t.Fatalf("msp-explain: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), wantMsg) || !strings.Contains(string(out), "It would wait") {
		t.Errorf("msp-explain does not explain the pending capability:\n%s", out)
	}
	manifest = framework.TempFile(t, "db2.yaml", "apiVersion: postgres.msp.dev/v1alpha1\nkind: PostgresDatabase\nmetadata: {name: probe}\nspec:\n  placement: {regions: [eu-fr]}\n")
	out, err = exec.Command(filepath.Join(env.Bin, "msp-explain"), "-f", manifest, "--kubeconfig", env.Kubeconfig(),
		"--workspace", p.Path, "--heartbeat-timeout", "1h").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "It would land on fr-1") || !strings.Contains(string(out), "(6 capabilities already placed or pending)") {
		t.Errorf("msp-explain for eu-fr: %v\n%s", err, out)
	}

	p.AddRuntime(t, framework.RuntimeSpec{Name: "ch-1", Region: "eu-ch", Country: "CH", Capabilities: 10})
	// It waited: the scheduler says at once that the wait is over, with where it runs.
	db := waitCondition(t, initech, "in-switzerland", platformv1alpha1.ConditionScheduled, metav1.ConditionTrue, 30*time.Second)
	if db.Spec.RuntimeName != "ch-1" || !assigned(db) {
		t.Errorf("in-switzerland landed on %q (assigned %v), want ch-1", db.Spec.RuntimeName, assigned(db))
	}
	if db.Status.Location == nil || db.Status.Location.Country != "CH" {
		t.Errorf("in-switzerland: status.location %+v, want CH", db.Status.Location)
	}
	if db.Generation != generation+1 {
		t.Errorf("generation went from %d to %d: only the scheduler's assignment should have changed the spec", generation, db.Generation)
	}
}

// A runtime a consumer names is honoured when it fits; one that does not exist or does
// not fit gets a condition that says so, and the capability is not moved elsewhere.
func TestSchedulerChecksPrefilledRuntime(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.AddRuntime(t, framework.RuntimeSpec{Name: "de-1", Region: "eu-de", Country: "DE", Capabilities: 10})
	p.AddRuntime(t, framework.RuntimeSpec{Name: "fr-1", Region: "eu-fr", Country: "FR", Capabilities: 10})
	p.StartCoordinator(t)
	c := p.NewTenantUsingRuntimes(t).Client(t)

	valid := database("named-valid", platformv1alpha1.Placement{})
	valid.Spec.RuntimeName = "fr-1"
	unknown := database("named-unknown", platformv1alpha1.Placement{})
	unknown.Spec.RuntimeName = "nowhere"
	misfit := database("named-misfit", platformv1alpha1.Placement{Countries: []string{"FR"}})
	misfit.Spec.RuntimeName = "de-1"
	create(t, c, valid, unknown, misfit)

	db := waitAssigned(t, c, "named-valid", time.Minute)
	if db.Spec.RuntimeName != "fr-1" || db.Labels[platformv1alpha1.LabelRuntime] != "fr-1" {
		t.Errorf("named-valid: runtimeName %q, label %q; want fr-1 for both", db.Spec.RuntimeName, db.Labels[platformv1alpha1.LabelRuntime])
	}
	for _, tc := range []struct {
		name, reason, message, runtime string
	}{
		{"named-unknown", platformv1alpha1.ReasonRuntimeNotFound, "runtime nowhere does not exist", "nowhere"},
		{"named-misfit", platformv1alpha1.ReasonRuntimeDoesNotFit, "runtime de-1 does not fit: country not allowed", "de-1"},
	} {
		db := waitCondition(t, c, tc.name, platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, time.Minute)
		cond := meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionScheduled)
		if cond.Reason != tc.reason || !strings.Contains(cond.Message, tc.message) {
			t.Errorf("%s: %s %q, want %s containing %q", tc.name, cond.Reason, cond.Message, tc.reason, tc.message)
		}
		if db.Spec.RuntimeName != tc.runtime {
			t.Errorf("%s was moved to %q", tc.name, db.Spec.RuntimeName)
		}
		if _, labelled := db.Labels[platformv1alpha1.LabelRuntime]; labelled {
			t.Errorf("%s got the runtime label although its runtime does not fit", tc.name)
		}
	}
}

// burst creates n databases spread over the tenants' clients, with several writers.
func burst(t *testing.T, clients []client.Client, n int, placement platformv1alpha1.Placement) {
	t.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c := clients[i%len(clients)]
				if err := c.Create(context.Background(), database(fmt.Sprintf("db-%04d", i), placement)); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("failed to create a database: %v", err)
	}
	t.Logf("created %d databases in %s", n, time.Since(start).Round(time.Millisecond))
}

// placement counts the databases of all clients per runtime ("" for unassigned), and
// the messages of the unassigned ones.
func placement(t *testing.T, clients []client.Client) (perRuntime map[string]int, pendingMessages map[string]int) {
	t.Helper()
	perRuntime, pendingMessages = map[string]int{}, map[string]int{}
	for _, c := range clients {
		var list postgresv1alpha1.PostgresDatabaseList
		if err := c.List(context.Background(), &list); err != nil {
			t.Fatal(err)
		}
		for _, db := range list.Items {
			perRuntime[db.Spec.RuntimeName]++
			if db.Spec.RuntimeName == "" {
				if cond := meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionScheduled); cond != nil {
					pendingMessages[cond.Message]++
				}
			}
		}
	}
	return perRuntime, pendingMessages
}

// A burst of 500 capabilities against runtimes that hold 400: exactly 400 are placed, no
// runtime is overfilled, and the other 100 wait with the capacity reason.
func TestSchedulerBurstRespectsCapacity(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	regions := []struct{ region, country string }{{"eu-de", "DE"}, {"eu-fr", "FR"}, {"us-east", "US"}, {"us-west", "US"}}
	for i, r := range regions {
		p.AddRuntime(t, framework.RuntimeSpec{Name: fmt.Sprintf("rt-%d", i), Region: r.region, Country: r.country, Capabilities: 100})
	}
	p.StartCoordinator(t)
	var clients []client.Client
	for i := 0; i < 5; i++ {
		clients = append(clients, p.NewTenant(t).Client(t))
	}

	start := time.Now()
	burst(t, clients, 500, platformv1alpha1.Placement{})
	framework.Eventually(t, 3*time.Minute, "400 databases placed and 100 waiting", func(context.Context) (bool, string, error) {
		perRuntime, pending := placement(t, clients)
		waiting := 0
		for _, n := range pending {
			waiting += n
		}
		return perRuntime[""] == 100 && waiting == 100, fmt.Sprintf("per runtime %v, pending reasons %v", perRuntime, pending), nil
	})
	t.Logf("400 placed and 100 reported pending %s after the burst began", time.Since(start).Round(time.Millisecond))

	// Nothing moves afterwards: no runtime over its capacity, the rest still waits.
	time.Sleep(2 * time.Second)
	perRuntime, pending := placement(t, clients)
	for i := range regions {
		if n := perRuntime[fmt.Sprintf("rt-%d", i)]; n != 100 {
			t.Errorf("rt-%d hosts %d databases, want exactly its capacity of 100", i, n)
		}
	}
	want := "0/4 runtimes fit: 4 insufficient capabilities"
	if pending[want] != 100 {
		t.Errorf("pending messages %v, want 100 × %q", pending, want)
	}
}

// Two coordinators on the same export during a burst: every capability is assigned
// exactly once (the resourceVersion guard turns the loser's write into a conflict) and
// none that fits is left unassigned.
func TestTwoCoordinatorsNeverAssignTwice(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	for i := 0; i < 5; i++ {
		p.AddRuntime(t, framework.RuntimeSpec{Name: fmt.Sprintf("rt-%d", i), Region: fmt.Sprintf("region-%d", i%3), Country: "DE", Capabilities: 100})
	}
	first, second := p.StartCoordinator(t), p.StartCoordinator(t)
	var clients []client.Client
	for i := 0; i < 3; i++ {
		clients = append(clients, p.NewTenant(t).Client(t))
	}
	burst(t, clients, 300, platformv1alpha1.Placement{})
	framework.Eventually(t, 3*time.Minute, "all 300 databases placed", func(context.Context) (bool, string, error) {
		perRuntime, _ := placement(t, clients)
		return perRuntime[""] == 0, fmt.Sprintf("per runtime %v", perRuntime), nil
	})

	// Each capability's assignment was written once: the coordinators' successful
	// assignments add up to exactly the number of capabilities.
	var scheduled, conflicts float64
	framework.Eventually(t, 30*time.Second, "the coordinators' counters to add up", func(ctx context.Context) (bool, string, error) {
		scheduled, conflicts = 0, 0
		for _, c := range []*framework.Coordinator{first, second} {
			m, err := framework.Scrape(ctx, c.MetricsAddr)
			if err != nil {
				return false, "", err
			}
			scheduled += m[`msp_scheduler_attempts_total{result="scheduled"}`]
			conflicts += m[`msp_scheduler_attempts_total{result="conflict"}`]
		}
		return scheduled == 300, fmt.Sprintf("scheduled %v, conflicts %v", scheduled, conflicts), nil
	})
	perRuntime, _ := placement(t, clients)
	total := 0
	for rt, n := range perRuntime {
		if n > 100 {
			t.Errorf("%s hosts %d databases, over its capacity of 100", rt, n)
		}
		total += n
	}
	if total != 300 {
		t.Errorf("%d databases counted, want 300", total)
	}
	t.Logf("two coordinators: %v assignments written, %v lost races (conflicts), placement %v", scheduled, conflicts, perRuntime)
}
