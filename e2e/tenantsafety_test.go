package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
)

// Tests of issue 12 ("tenant safety") that cross components: what a tenant does with
// plain API calls must never lose data, leak another tenant's, or fail silently.

func getSecret(ctx context.Context, c client.Client, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	return s, c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, s)
}

// waitSecret waits until the connection Secret of db exists with every key and a
// password that connects, and returns it.
func waitSecret(t *testing.T, c client.Client, name string, timeout time.Duration, what string) *corev1.Secret {
	t.Helper()
	var s *corev1.Secret
	framework.Eventually(t, timeout, what, func(ctx context.Context) (bool, string, error) {
		var err error
		s, err = getSecret(ctx, c, name)
		if apierrors.IsNotFound(err) {
			return false, "no Secret", nil
		}
		if err != nil {
			return false, "", err
		}
		for _, k := range []string{"host", "port", "database", "username", "password", "uri"} {
			if len(s.Data[k]) == 0 {
				return false, "Secret lacks " + k, nil
			}
		}
		if err := tryConnect(ctx, string(s.Data["uri"])); err != nil {
			return false, "uri does not connect: " + err.Error(), nil
		}
		return true, "", nil
	})
	return s
}

func tryConnect(ctx context.Context, uri string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func eventsWithReason(ctx context.Context, t *testing.T, c client.Client, object, reason string) []corev1.Event {
	t.Helper()
	list := &corev1.EventList{}
	if err := c.List(ctx, list, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Name == object && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// Item 2: a connection Secret that is deleted comes back at once with a password that
// works, an edited password is replaced by new credentials (and an event says so), a
// tenant rotates credentials with an annotation, and a servicelet restart neither loses
// nor rotates them.
func TestConnectionSecretIsRepairedAndRotated(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	rt := p.StartPostgresRuntime(t, framework.ServiceletSpec{Runtime: "pg-repair", Region: "eu-de", Country: "DE", Capabilities: 5})
	c := p.NewTenant(t).Client(t)
	ctx := context.Background()

	create(t, c, database("pz", platformv1alpha1.Placement{}))
	db := waitCondition(t, c, "pz", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	name := db.Status.ConnectionSecretRef.Name
	first := waitSecret(t, c, name, time.Minute, "the first Secret")

	// Deleted → back within seconds (the servicelet watches its Secrets), working.
	if err := c.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	back := waitSecret(t, c, name, 30*time.Second, "the deleted Secret to come back")
	t.Logf("deleted Secret restored after %s", time.Since(start).Round(100*time.Millisecond))
	if back.UID == first.UID {
		t.Fatalf("the Secret was not deleted")
	}

	// Password edited by hand → new credentials, the hand-made password does not work,
	// and a Warning event says why.
	update(t, c, back, func() { back.Data["password"] = []byte("guessed") })
	var repaired *corev1.Secret
	framework.Eventually(t, 30*time.Second, "the edited password to be replaced", func(ctx context.Context) (bool, string, error) {
		repaired = waitSecret(t, c, name, 30*time.Second, "a complete Secret")
		return string(repaired.Data["password"]) != "guessed", "password still the edited one", nil
	})
	if evs := eventsWithReason(ctx, t, c, "pz", platformv1alpha1.ReasonCredentialsRotated); len(evs) == 0 || evs[0].Type != corev1.EventTypeWarning {
		t.Errorf("no Warning event %s after the password was edited: %+v", platformv1alpha1.ReasonCredentialsRotated, evs)
	}

	// Rotation on request: a new annotation value → a new password, the old one stops
	// working, status records the request.
	update(t, c, db, func() {
		db.Annotations = map[string]string{platformv1alpha1.AnnotationRotateCredentials: "2026-12-02T10:00:00Z"}
	})
	framework.Eventually(t, 30*time.Second, "the rotation to be recorded", func(ctx context.Context) (bool, string, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(db), db); err != nil {
			return false, "", err
		}
		if db.Status.Credentials == nil {
			return false, "no status.credentials", nil
		}
		return db.Status.Credentials.RotationToken == "2026-12-02T10:00:00Z", "token " + db.Status.Credentials.RotationToken, nil
	})
	rotated := waitSecret(t, c, name, 30*time.Second, "the rotated Secret")
	if string(rotated.Data["password"]) == string(repaired.Data["password"]) {
		t.Fatalf("rotation kept the password")
	}
	if err := tryConnect(ctx, string(repaired.Data["uri"])); err == nil {
		t.Errorf("the password from before the rotation still connects")
	}

	// A restart keeps the Secret complete and does not rotate again.
	rotatedAt := db.Status.Credentials.RotatedAt.DeepCopy()
	rt.Stop()
	rt.Restart(t)
	time.Sleep(10 * time.Second) // long enough for the restarted servicelet to resync pz
	after := waitSecret(t, c, name, 30*time.Second, "the Secret after a restart")
	if string(after.Data["password"]) != string(rotated.Data["password"]) {
		t.Errorf("the restart changed the password")
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(db), db); err != nil {
		t.Fatal(err)
	}
	if !db.Status.Credentials.RotatedAt.Equal(rotatedAt) {
		t.Errorf("the restart rotated the credentials (rotatedAt %s, was %s)", db.Status.Credentials.RotatedAt, rotatedAt)
	}
}

// Item 3: names up to Kubernetes' 253 characters get their database and Secret (no
// label carries them); a Secret the servicelet cannot write (an immutable one of that
// name) shows as Synced=False and Ready=False with kcp's reason (item 10).
func TestLongNamesAndSecretWriteFailures(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	p.StartPostgresRuntime(t, framework.ServiceletSpec{Runtime: "pg-long", Region: "eu-de", Country: "DE", Capabilities: 10})
	c := p.NewTenant(t).Client(t)
	ctx := context.Background()

	for _, n := range []int{64, 70, 253} {
		name := strings.Repeat("a", n-3) + fmt.Sprintf("%03d", n)
		create(t, c, database(name, platformv1alpha1.Placement{}))
		db := waitCondition(t, c, name, platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
		if db.Status.ConnectionSecretRef == nil {
			t.Fatalf("%d characters: no connection Secret", n)
		}
		s := waitSecret(t, c, db.Status.ConnectionSecretRef.Name, time.Minute, fmt.Sprintf("the Secret of the %d-character name", n))
		if string(s.Data["database"]) != db.Status.DatabaseName || db.Status.DatabaseName == "" {
			t.Errorf("%d characters: Secret names database %q, status %q", n, s.Data["database"], db.Status.DatabaseName)
		}
		for k, v := range s.Labels {
			if len(v) > 63 {
				t.Errorf("%d characters: label %s has a %d-character value", n, k, len(v))
			}
		}
	}

	// The tenant holds a Secret (immutable, too) of the name the servicelet would write:
	// the front door never lets the servicelet read or take it over.
	immutable := true
	blocker := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "postgresdatabase-blocked", Namespace: "default"}, Immutable: &immutable,
		Data: map[string][]byte{"note": []byte("mine")}}
	if err := c.Create(ctx, blocker); err != nil {
		t.Fatal(err)
	}
	create(t, c, database("blocked", platformv1alpha1.Placement{}))
	db := waitCondition(t, c, "blocked", platformv1alpha1.ConditionSynced, metav1.ConditionFalse, 2*time.Minute)
	synced := meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionSynced)
	if !strings.Contains(synced.Message, "postgresdatabase-blocked cannot be written") || !strings.Contains(synced.Message, "is not this capability's connection Secret") {
		t.Errorf("Synced message %q does not say that the tenant's Secret of that name is in the way", synced.Message)
	}
	var still corev1.Secret
	if err := c.Get(ctx, client.ObjectKeyFromObject(blocker), &still); err != nil || string(still.Data["note"]) != "mine" || still.Labels[platformv1alpha1.LabelRuntime] != "" {
		t.Errorf("the tenant's Secret was touched: %+v (%v)", still, err)
	}
	if r := meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionReady); r == nil || r.Status != metav1.ConditionFalse || r.Message != synced.Message {
		t.Errorf("Ready is %+v, want False with the Synced message", r)
	}
}

// Items 4 and 7: two tenants ordering the same name get databases of their own on one
// server, the real names in status and the Secret; an explicit name that is taken says
// what to do (and Ready=False says it too, item 10); ObserveOnly does not adopt another
// tenant's database.
func TestTenantsNeverShareOrAdoptDatabases(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	p.StartPostgresRuntime(t, framework.ServiceletSpec{Runtime: "pg-shared", Region: "eu-de", Country: "DE", Capabilities: 10})
	acmeWS, globexWS := p.NewTenant(t), p.NewTenant(t)
	acme, globex := acmeWS.Client(t), globexWS.Client(t)
	ctx := context.Background()

	create(t, acme, database("orders", platformv1alpha1.Placement{}))
	create(t, globex, database("orders", platformv1alpha1.Placement{}))
	a := waitCondition(t, acme, "orders", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	g := waitCondition(t, globex, "orders", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	if a.Status.DatabaseName == "" || a.Status.DatabaseName == g.Status.DatabaseName || a.Status.Owner == g.Status.Owner {
		t.Fatalf("acme's and globex's orders share names: %q/%q and %q/%q", a.Status.DatabaseName, a.Status.Owner, g.Status.DatabaseName, g.Status.Owner)
	}
	as := waitSecret(t, acme, a.Status.ConnectionSecretRef.Name, time.Minute, "acme's Secret")
	if string(as.Data["database"]) != a.Status.DatabaseName || string(as.Data["username"]) != a.Status.Owner {
		t.Errorf("acme's Secret names %s/%s, status %s/%s", as.Data["database"], as.Data["username"], a.Status.DatabaseName, a.Status.Owner)
	}
	// `kubectl get -o wide` shows the real database name.
	wide := env.MustKubectl(t, acmeWS.Kubeconfig(t), "", "get", "postgresdatabases", "orders", "-o", "wide")
	if !strings.Contains(wide, a.Status.DatabaseName) {
		t.Errorf("kubectl get -o wide does not show the database %s:\n%s", a.Status.DatabaseName, wide)
	}

	// An explicit name that is taken: advice that can be followed, Ready=False.
	taken := database("taken", platformv1alpha1.Placement{})
	taken.Spec.DatabaseName = g.Status.DatabaseName
	taken.Spec.Owner = "acme_taken_owner"
	create(t, acme, taken)
	got := waitCondition(t, acme, "taken", platformv1alpha1.ConditionReady, metav1.ConditionFalse, time.Minute)
	r := meta.FindStatusCondition(got.Status.Conditions, platformv1alpha1.ConditionReady)
	if !strings.Contains(r.Message, "create a new PostgresDatabase") || strings.Contains(r.Message, "choose another") {
		t.Errorf("taken name: Ready message %q gives no advice that can be followed", r.Message)
	}

	// ObserveOnly with globex's names: refused, and no Secret with globex's details.
	spy := database("spy", platformv1alpha1.Placement{})
	spy.Spec.DatabaseName, spy.Spec.Owner = g.Status.DatabaseName, g.Status.Owner
	spy.Spec.ManagementPolicy = platformv1alpha1.ManagementPolicyObserveOnly
	create(t, acme, spy)
	got = waitCondition(t, acme, "spy", platformv1alpha1.ConditionReady, metav1.ConditionFalse, time.Minute)
	r = meta.FindStatusCondition(got.Status.Conditions, platformv1alpha1.ConditionReady)
	if !strings.Contains(r.Message, "belongs to another") {
		t.Errorf("ObserveOnly of another tenant's database: Ready message %q does not say it belongs to another", r.Message)
	}
	time.Sleep(3 * time.Second)
	if s, err := getSecret(ctx, acme, "postgresdatabase-spy"); err == nil {
		t.Errorf("ObserveOnly of another tenant's database wrote a Secret with %v", keys(s.Data))
	} else if !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// Item 11: a pause annotation with a value other than "true" is reported, not silently
// ignored; an extension removed from the spec is dropped from the database.
func TestPauseTyposAndRemovedExtensions(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	rt := p.StartPostgresRuntime(t, framework.ServiceletSpec{Runtime: "pg-ext", Region: "eu-de", Country: "DE", Capabilities: 5})
	c := p.NewTenant(t).Client(t)
	ctx := context.Background()

	typo := database("typo", platformv1alpha1.Placement{})
	typo.Annotations = map[string]string{platformv1alpha1.AnnotationPaused: "yes"}
	create(t, c, typo)
	got := waitCondition(t, c, "typo", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	if s := meta.FindStatusCondition(got.Status.Conditions, platformv1alpha1.ConditionSynced); s == nil || !strings.Contains(s.Message, `only "true" pauses`) {
		t.Errorf("pause annotation \"yes\": Synced is %+v, want a message that it is ignored", s)
	}

	ext := database("ext", platformv1alpha1.Placement{})
	ext.Spec.Extensions = []postgresv1alpha1.Extension{"citext", "pgcrypto"}
	create(t, c, ext)
	ext = waitCondition(t, c, "ext", platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
	installed := func(name string) int {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, withDatabase(rt.Server.AdminURL(), ext.Status.DatabaseName))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_extension WHERE extname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if installed("citext") != 1 || installed("pgcrypto") != 1 {
		t.Fatalf("extensions not installed")
	}
	update(t, c, ext, func() { ext.Spec.Extensions = []postgresv1alpha1.Extension{"pgcrypto"} })
	framework.Eventually(t, time.Minute, "citext to be dropped", func(context.Context) (bool, string, error) {
		return installed("citext") == 0, "citext still installed", nil
	})
	if installed("pgcrypto") != 1 {
		t.Errorf("pgcrypto, still in the spec, was dropped")
	}
}
