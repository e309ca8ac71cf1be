package servicelet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/sdk/driver"
	"github.com/msp-dev/msp/sdk/driver/fake"
)

// reconcileCase is one reconcile (or several, of the same capability) and what it must
// leave behind.
type reconcileCase struct {
	name string
	// doc is the capability in the store; nil for none.
	doc *unstructured.Unstructured
	// secrets are in the capability's workspace to begin with.
	secrets []*unstructured.Unstructured
	// driver answers for testGVK; nil is a fake.Driver with no fields set.
	driver *fake.Driver
	// noRotator hides the driver's RotateCredentials: a kind without credentials.
	noRotator bool
	// noDriver leaves testGVK without a driver.
	noDriver bool
	// quiet turns the reconciler's Normal events off.
	quiet bool
	// resync is the reconciler's Resync.
	resync time.Duration
	// setup adds reactors or cache behaviour to the store.
	setup func(s *fakeStore)
	// reconciles is how many times Reconcile runs; 0 means once.
	reconciles int
	// location is the runtime's location the reconciler knows (Reconciler.Location);
	// locationPending: it has a Location that does not know it yet.
	location        *platformv1alpha1.Location
	locationPending bool

	wantResult Result
	// wantErr is the last reconcile's error; "" for none.
	wantErr string
	// wantCalls are the driver's calls over all reconciles.
	wantCalls []string
	// wantWrites are the last reconcile's writes, events left out.
	wantWrites []string
	// wantFinalizers, wantConditions, wantSecretRef and wantCredentials are what the
	// document says afterwards.
	wantFinalizers  []string
	wantConditions  []metav1.Condition
	wantSecretRef   string
	wantCredentials *platformv1alpha1.CredentialsStatus
	// wantSecret is the connection Secret afterwards; nil for none.
	wantSecret *secretView
	// wantEvents are the events recorded over all reconciles.
	wantEvents []event
	// check asserts anything else.
	check func(t *testing.T, s *fakeStore, r *Reconciler)
}

func runReconcileCases(t *testing.T, cases []reconcileCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runReconcileCase(t, tc)
		})
	}
}

func runReconcileCase(t *testing.T, tc reconcileCase) {
	t.Helper()
	store := newFakeStore(t, tc.doc, tc.secrets...)
	if tc.setup != nil {
		tc.setup(store)
	}
	drv := tc.driver
	if drv == nil {
		drv = &fake.Driver{}
	}
	var d driver.Driver = drv
	if tc.noRotator {
		d = struct{ driver.Driver }{drv} // only the Driver methods: not a CredentialRotator
	}
	drivers := map[schema.GroupKind]driver.Driver{testGVK.GroupKind(): d}
	if tc.noDriver {
		drivers = map[schema.GroupKind]driver.Driver{}
	}
	r := newTestReconciler(store, drivers)
	r.NormalEvents = !tc.quiet
	r.Resync = tc.resync
	if tc.location != nil || tc.locationPending {
		r.Location = func() *platformv1alpha1.Location { return tc.location }
	}

	var (
		res   Result
		err   error
		start int
	)
	for range max(tc.reconciles, 1) {
		start = len(store.client.Actions())
		res, err = r.Reconcile(t.Context(), testKey)
	}

	if diff := cmp.Diff(tc.wantResult, res); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
	gotErr := ""
	if err != nil {
		gotErr = err.Error()
	}
	if diff := cmp.Diff(tc.wantErr, gotErr); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}

	var calls []string
	for _, c := range drv.Calls() {
		calls = append(calls, c.Method)
		if c.Cluster != testKey.Cluster || c.Namespace != testKey.Namespace || c.Name != testKey.Name {
			t.Errorf("%s called for %s/%s/%s, want %s", c.Method, c.Cluster, c.Namespace, c.Name, testKey)
		}
	}
	if diff := cmp.Diff(tc.wantCalls, calls, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("driver calls (-want +got):\n%s", diff)
	}

	var writes []string
	for _, a := range store.client.Actions()[start:] {
		if w, ok := describeWrite(a); ok {
			writes = append(writes, w)
		}
	}
	if diff := cmp.Diff(tc.wantWrites, writes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("writes of the last reconcile (-want +got):\n%s", diff)
	}

	if doc := store.doc(t); doc != nil {
		if diff := cmp.Diff(tc.wantFinalizers, doc.GetFinalizers(), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("finalizers (-want +got):\n%s", diff)
		}
		var st platformv1alpha1.CapabilityStatus
		raw, _, _ := unstructured.NestedMap(doc.Object, "status")
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &st); err != nil {
			t.Fatalf("the status does not follow the capability contract: %v", err)
		}
		byType := cmpopts.SortSlices(func(a, b metav1.Condition) bool { return a.Type < b.Type })
		if diff := cmp.Diff(tc.wantConditions, st.Conditions, byType, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("conditions (-want +got):\n%s", diff)
		}
		gotRef := ""
		if st.ConnectionSecretRef != nil {
			gotRef = st.ConnectionSecretRef.Name
		}
		if diff := cmp.Diff(tc.wantSecretRef, gotRef); diff != "" {
			t.Errorf("status.connectionSecretRef (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(tc.wantCredentials, st.Credentials); diff != "" {
			t.Errorf("status.credentials (-want +got):\n%s", diff)
		}
		if tc.location != nil {
			if diff := cmp.Diff(tc.location, st.Location); diff != "" {
				t.Errorf("status.location (-want +got):\n%s", diff)
			}
		}
	} else if tc.doc != nil {
		t.Errorf("the document is gone")
	}

	if diff := cmp.Diff(tc.wantSecret, viewSecret(store.secret(t)), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("connection Secret (-want +got):\n%s", diff)
	}

	var events []event
	for _, ev := range store.events {
		events = append(events, event{Type: ev.Type, Reason: ev.Reason, Message: ev.Message})
		if !ev.FirstTimestamp.Time.Equal(now) || ev.InvolvedObject.Name != testKey.Name || ev.Namespace != testKey.Namespace {
			t.Errorf("event %s at %s on %s/%s, want at %s on the capability", ev.Reason, ev.FirstTimestamp, ev.Namespace, ev.InvolvedObject.Name, now)
		}
	}
	if diff := cmp.Diff(tc.wantEvents, events, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	if tc.check != nil {
		tc.check(t, store, r)
	}
}

// observe returns an ObserveFn that always answers o.
func observe(o driver.Observation) func(context.Context, *driver.Capability) (driver.Observation, error) {
	return func(context.Context, *driver.Capability) (driver.Observation, error) { return o, nil }
}

// available is a thing that exists, matches its spec and is ready, with details.
func available(details map[string]string) driver.Observation {
	return driver.Observation{Exists: true, UpToDate: true, Ready: true, ConnectionDetails: connDetails(details)}
}

func connDetails(m map[string]string) driver.ConnectionDetails {
	if m == nil {
		return nil
	}
	out := driver.ConnectionDetails{}
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

// failWith makes the store answer verb on resource with err.
func failWith(verb, resource string, err error) func(s *fakeStore) {
	return func(s *fakeStore) {
		s.client.PrependReactor(verb, resource, func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, err
		})
	}
}

// generic is what a tenant reads of an error that is not a TenantError.
func generic(step string) string {
	return "failed to " + step + " on the runtime; the provider has been notified through the servicelet's log"
}

var (
	errInternal = errors.New("dial tcp 10.0.0.7:5432: connection refused")
	dbDetails   = map[string]string{"host": "orders.rt-a.example", "port": "5432"}
)

const (
	msgPaused       = "reconciliation is paused by the platform.msp.dev/paused annotation"
	msgCreating     = "being created on runtime rt-a"
	msgDeleting     = "being deleted from runtime rt-a"
	msgForeign      = "the connection Secret postgresdatabase-orders cannot be written: a Secret of that name exists in the namespace and is not this capability's connection Secret (the platform never takes one over); delete or rename it"
	msgRotateAsked  = "issued new credentials as asked by the platform.msp.dev/rotate-credentials annotation; the old ones no longer work"
	rotationToken   = "2026-03-04T05:00:00Z"
	invalidPassword = "the password in the connection Secret was changed by hand"
)

func TestReconcileLeavesAlone(t *testing.T) {
	runReconcileCases(t, []reconcileCase{
		{
			name: "no document in the cache (deleted, or not assigned to this runtime)",
		},
		{
			name:           "assigned to another runtime",
			doc:            newDoc(managed, withSpec("runtimeName", "rt-b")),
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond},
		},
		{
			name:           "not Scheduled yet and no finalizer: waits for the scheduler's status write",
			doc:            newDoc(withConditions()),
			driver:         &fake.Driver{ObserveFn: observe(available(nil))},
			wantConditions: nil,
		},
		{
			name: "Scheduled=False and no finalizer: waits",
			doc: newDoc(withConditions(since(cond(platformv1alpha1.ConditionScheduled, metav1.ConditionFalse,
				platformv1alpha1.ReasonUnschedulable, "no runtime fits"), earlier))),
			wantConditions: []metav1.Condition{since(cond(platformv1alpha1.ConditionScheduled, metav1.ConditionFalse,
				platformv1alpha1.ReasonUnschedulable, "no runtime fits"), earlier)},
		},
		{
			name:           "deleted without the servicelet's finalizer",
			doc:            newDoc(deleting(), withFinalizers(otherFinalizer)),
			wantFinalizers: []string{otherFinalizer},
			wantConditions: []metav1.Condition{scheduledCond},
		},
		{
			name:           "no driver for the kind",
			doc:            newDoc(managed),
			noDriver:       true,
			wantErr:        "no driver for kind PostgresDatabase.example.msp.dev",
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond},
		},
		{
			name:           "the workspace cannot be reached: the error goes back for backoff",
			doc:            newDoc(managed),
			setup:          func(s *fakeStore) { s.clientErr = errors.New("endpoint https://shard-1.example is gone") },
			wantErr:        "endpoint https://shard-1.example is gone",
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond},
		},
	})
}

func TestReconcilePause(t *testing.T) {
	runReconcileCases(t, []reconcileCase{
		{
			name:           `paused "true": Synced=False ReconcilePaused, no driver call`,
			doc:            newDoc(managed, withAnnotation(platformv1alpha1.AnnotationPaused, "true")),
			driver:         &fake.Driver{ObserveFn: observe(available(nil))},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, syncedFalse(platformv1alpha1.ReasonReconcilePaused, msgPaused)},
		},
		{
			name:           `paused "true" when available: Ready is kept as it was`,
			doc:            newDoc(managed, inLine(), withAnnotation(platformv1alpha1.AnnotationPaused, "true")),
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), syncedFalse(platformv1alpha1.ReasonReconcilePaused, msgPaused)},
			wantSecretRef:  testSecret,
		},
		{
			name:           `paused "true" while being deleted: not deleted, the finalizer stays`,
			doc:            newDoc(managed, deleting(), withAnnotation(platformv1alpha1.AnnotationPaused, "true")),
			secrets:        []*unstructured.Unstructured{ownSecret(dbDetails)},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, syncedFalse(platformv1alpha1.ReasonReconcilePaused, msgPaused)},
			wantSecret:     owned(dbDetails),
		},
		{
			name:           `paused "yes" (a typo): reconciled, and Synced says the annotation is ignored`,
			doc:            newDoc(managed, withAnnotation(platformv1alpha1.AnnotationPaused, "yes")),
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply secrets", "apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyAvailable,
				syncedTrue(`the annotation platform.msp.dev/paused="yes" is ignored: only "true" pauses`)},
			wantSecretRef: testSecret,
			wantSecret:    owned(dbDetails),
		},
	})
}

// createThenAvailable is a driver whose thing is missing until Create, which returns a
// password; Observe then tells the host and port (overriding Create's host) and usage.
func createThenAvailable() *fake.Driver {
	created := false
	return &fake.Driver{
		ObserveFn: func(context.Context, *driver.Capability) (driver.Observation, error) {
			if !created {
				return driver.Observation{}, nil
			}
			o := available(dbDetails)
			o.Usage = corev1.ResourceList{"storage": resource.MustParse("10Gi")}
			return o, nil
		},
		CreateFn: func(_ context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
			if c.ConnectionDetails != nil {
				return nil, fmt.Errorf("Create was given connection details %v, want none (no Secret yet)", c.ConnectionDetails)
			}
			created = true
			return connDetails(map[string]string{"password": "s3cret", "host": "creating.example"}), nil
		},
	}
}

func TestReconcileLifecycle(t *testing.T) {
	runReconcileCases(t, []reconcileCase{
		{
			name:           "first reconcile adds the finalizer, guarded by the resourceVersion, and keeps others'",
			doc:            newDoc(withFinalizers(otherFinalizer)),
			driver:         &fake.Driver{ObserveFn: observe(available(nil))},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"patch postgresdatabases", "apply postgresdatabases/status"},
			wantFinalizers: []string{otherFinalizer, platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyAvailable, syncedOK},
			check: func(t *testing.T, s *fakeStore, _ *Reconciler) {
				for _, a := range s.client.Actions() {
					if p, ok := a.(clienttesting.PatchAction); ok && p.GetPatchType() == types.MergePatchType {
						want := `{"metadata":{"finalizers":["other.example/keep","platform.msp.dev/servicelet"],"resourceVersion":"7"}}`
						if diff := cmp.Diff(want, string(p.GetPatch())); diff != "" {
							t.Errorf("finalizer patch (-want +got):\n%s", diff)
						}
					}
				}
			},
		},
		{
			// The scheduler approves with the label and the finalizer, and leaves
			// Scheduled=True to the servicelet's first (and only) status write.
			name:           "approved by the scheduler (label and finalizer), no Scheduled yet: goes on and reports Scheduled=True",
			doc:            newDoc(managed, withConditions()),
			driver:         &fake.Driver{ObserveFn: observe(available(nil))},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{
				cond(platformv1alpha1.ConditionScheduled, metav1.ConditionTrue, platformv1alpha1.ReasonAssigned, "assigned to runtime "+testRuntime),
				readyAvailable, syncedOK,
			},
		},
		{
			name:           "approved, the runtime's location known: Scheduled=True names the region, status.location set, one status write",
			doc:            newDoc(managed, withConditions()),
			driver:         &fake.Driver{ObserveFn: observe(available(nil))},
			location:       &platformv1alpha1.Location{Region: "eu-de", Country: "DE"},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{
				cond(platformv1alpha1.ConditionScheduled, metav1.ConditionTrue, platformv1alpha1.ReasonAssigned, "assigned to runtime "+testRuntime+" in region eu-de"),
				readyAvailable, syncedOK,
			},
		},
		{
			name:            "approved, the runtime's location not read yet: waits for it, writes nothing",
			doc:             newDoc(managed, withConditions()),
			driver:          &fake.Driver{ObserveFn: observe(available(nil))},
			locationPending: true,
			wantResult:      Result{RequeueAfter: 500 * time.Millisecond},
			wantFinalizers:  []string{platformv1alpha1.FinalizerServicelet},
		},
		{
			name:           "missing: Create, then Observe; the Secret holds the merged details; Ready",
			doc:            newDoc(managed),
			driver:         createThenAvailable(),
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve, fake.MethodCreate, fake.MethodObserve},
			wantWrites:     []string{"apply secrets", "apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyAvailable, syncedOK},
			wantSecretRef:  testSecret,
			wantSecret:     owned(map[string]string{"password": "s3cret", "host": "orders.rt-a.example", "port": "5432"}),
			wantEvents:     []event{{corev1.EventTypeNormal, EventCreated, "created on runtime rt-a"}},
			check: func(t *testing.T, _ *fakeStore, r *Reconciler) {
				want := map[Key]corev1.ResourceList{testKey: {"storage": resource.MustParse("10Gi")}}
				if diff := cmp.Diff(want, r.Usage()); diff != "" {
					t.Errorf("Usage (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:           "missing, with Normal events off: created, no event",
			doc:            newDoc(managed),
			driver:         createThenAvailable(),
			quiet:          true,
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve, fake.MethodCreate, fake.MethodObserve},
			wantWrites:     []string{"apply secrets", "apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyAvailable, syncedOK},
			wantSecretRef:  testSecret,
			wantSecret:     owned(map[string]string{"password": "s3cret", "host": "orders.rt-a.example", "port": "5432"}),
		},
		{
			name: "created but not seen yet: Creating, the Secret holds Create's details, retry soon",
			doc:  newDoc(managed),
			driver: &fake.Driver{CreateFn: func(context.Context, *driver.Capability) (driver.ConnectionDetails, error) {
				return connDetails(map[string]string{"password": "s3cret"}), nil
			}},
			wantResult:     Result{RequeueAfter: 2 * time.Second},
			wantCalls:      []string{fake.MethodObserve, fake.MethodCreate, fake.MethodObserve},
			wantWrites:     []string{"apply secrets", "apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyFalse(platformv1alpha1.ReasonCreating, msgCreating), syncedOK},
			wantSecretRef:  testSecret,
			wantSecret:     owned(map[string]string{"password": "s3cret"}),
			wantEvents:     []event{{corev1.EventTypeNormal, EventCreated, "created on runtime rt-a"}},
		},
		{
			name: "created, and the Observe after it fails: Creating all the same, no error",
			doc:  newDoc(managed),
			driver: func() *fake.Driver {
				created := false
				return &fake.Driver{
					ObserveFn: func(context.Context, *driver.Capability) (driver.Observation, error) {
						if created {
							return driver.Observation{}, errInternal
						}
						return driver.Observation{}, nil
					},
					CreateFn: func(context.Context, *driver.Capability) (driver.ConnectionDetails, error) {
						created = true
						return nil, nil
					},
				}
			}(),
			wantResult:     Result{RequeueAfter: 2 * time.Second},
			wantCalls:      []string{fake.MethodObserve, fake.MethodCreate, fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyFalse(platformv1alpha1.ReasonCreating, msgCreating), syncedOK},
			wantEvents:     []event{{corev1.EventTypeNormal, EventCreated, "created on runtime rt-a"}},
		},
		{
			name: "exists, not ready: Creating with the driver's message, retry soon",
			doc:  newDoc(managed),
			driver: &fake.Driver{ObserveFn: observe(driver.Observation{Exists: true, UpToDate: true,
				Message: "the database is starting"})},
			wantResult:     Result{RequeueAfter: 2 * time.Second},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonCreating, "the database is starting (runtime rt-a)"), syncedOK},
		},
		{
			name:           "exists, not ready, no message",
			doc:            newDoc(managed),
			driver:         &fake.Driver{ObserveFn: observe(driver.Observation{Exists: true, UpToDate: true})},
			wantResult:     Result{RequeueAfter: 2 * time.Second},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyFalse(platformv1alpha1.ReasonCreating, "not ready yet (runtime rt-a)"), syncedOK},
		},
		{
			name: "exists, not UpToDate: Update",
			doc:  newDoc(managed, inLine()),
			driver: &fake.Driver{ObserveFn: observe(driver.Observation{Exists: true, Ready: true,
				Message: "size is 20Gi, the spec asks for 10Gi"})},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve, fake.MethodUpdate},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantEvents:     []event{{corev1.EventTypeNormal, EventUpdated, "brought in line with its spec on runtime rt-a"}},
		},
		{
			name:           "in line, Secret in line: nothing written, observed again after Resync",
			doc:            newDoc(managed, inLine()),
			secrets:        []*unstructured.Unstructured{ownSecret(dbDetails)},
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			resync:         5 * time.Minute,
			wantResult:     Result{RequeueAfter: 5 * time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantSecret:     owned(dbDetails),
			check: func(t *testing.T, _ *fakeStore, r *Reconciler) {
				if _, ok := r.Usage()[testKey]; !ok {
					t.Errorf("Usage has no entry for %s", testKey)
				}
			},
		},
		{
			name: "new generation: conditions and observedGeneration follow it",
			doc: newDoc(managed, inLine(), func(u *unstructured.Unstructured) {
				u.SetGeneration(testGeneration + 1)
			}),
			driver:         &fake.Driver{ObserveFn: observe(available(nil))},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				func() metav1.Condition { c := since(readyAvailable, earlier); c.ObservedGeneration++; return c }(),
				func() metav1.Condition { c := since(syncedOK, earlier); c.ObservedGeneration++; return c }()},
			wantSecretRef: testSecret,
			check: func(t *testing.T, s *fakeStore, _ *Reconciler) {
				if got, _, _ := unstructured.NestedInt64(s.doc(t).Object, "status", "observedGeneration"); got != testGeneration+1 {
					t.Errorf("status.observedGeneration = %d, want %d", got, testGeneration+1)
				}
			},
		},
		{
			name: "the kind's own status fields are written, the platform's cannot be forged",
			doc:  newDoc(managed),
			driver: &fake.Driver{ObserveFn: observe(driver.Observation{Exists: true, UpToDate: true, Ready: true,
				Status: map[string]any{"databaseName": "orders_db", "conditions": "forged", "credentials": "forged"}})},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyAvailable, syncedOK},
			check: func(t *testing.T, s *fakeStore, _ *Reconciler) {
				if got, _, _ := unstructured.NestedString(s.doc(t).Object, "status", "databaseName"); got != "orders_db" {
					t.Errorf("status.databaseName = %q, want orders_db", got)
				}
			},
		},
	})
}

func TestReconcileDriverErrors(t *testing.T) {
	runReconcileCases(t, []reconcileCase{
		{
			name: "TenantError from Create: its message in Synced and Ready, a warning",
			doc:  newDoc(managed),
			driver: &fake.Driver{CreateFn: func(context.Context, *driver.Capability) (driver.ConnectionDetails, error) {
				return nil, driver.NewTenantError("quota for databases exceeded")
			}},
			wantErr:        "failed to create the capability: quota for databases exceeded",
			wantCalls:      []string{fake.MethodObserve, fake.MethodCreate},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonReconcileError, "quota for databases exceeded"),
				syncedFalse(platformv1alpha1.ReasonReconcileError, "quota for databases exceeded")},
			wantEvents: []event{{corev1.EventTypeWarning, EventReconcileFail, "quota for databases exceeded"}},
		},
		{
			name: "wrapped TenantError from Update when available: Synced says it, Ready stays True",
			doc:  newDoc(managed, inLine()),
			driver: &fake.Driver{ObserveFn: observe(driver.Observation{Exists: true, Ready: true}), UpdateFn: func(context.Context, *driver.Capability) error {
				return fmt.Errorf("resize: %w", driver.NewTenantError("storage cannot shrink from 20Gi to 10Gi"))
			}},
			wantErr:        "failed to update the capability: resize: storage cannot shrink from 20Gi to 10Gi",
			wantCalls:      []string{fake.MethodObserve, fake.MethodUpdate},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier),
				syncedFalse(platformv1alpha1.ReasonReconcileError, "storage cannot shrink from 20Gi to 10Gi")},
			wantSecretRef: testSecret,
			wantEvents:    []event{{corev1.EventTypeWarning, EventReconcileFail, "storage cannot shrink from 20Gi to 10Gi"}},
		},
		{
			name: "other error from Observe: a generic message, nothing of the internals",
			doc:  newDoc(managed),
			driver: &fake.Driver{ObserveFn: func(context.Context, *driver.Capability) (driver.Observation, error) {
				return driver.Observation{}, errInternal
			}},
			wantErr:        "failed to observe the capability: " + errInternal.Error(),
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonReconcileError, generic("observe the capability")),
				syncedFalse(platformv1alpha1.ReasonReconcileError, generic("observe the capability"))},
			wantEvents: []event{{corev1.EventTypeWarning, EventReconcileFail, generic("observe the capability")}},
		},
		{
			name: "the same error again: no second warning, nothing written",
			doc: newDoc(managed, withStatus("observedGeneration", testGeneration), withConditions(scheduledCond,
				since(readyFalse(platformv1alpha1.ReasonReconcileError, generic("observe the capability")), earlier),
				since(syncedFalse(platformv1alpha1.ReasonReconcileError, generic("observe the capability")), earlier))),
			driver: &fake.Driver{ObserveFn: func(context.Context, *driver.Capability) (driver.Observation, error) {
				return driver.Observation{}, errInternal
			}},
			wantErr:        "failed to observe the capability: " + errInternal.Error(),
			wantCalls:      []string{fake.MethodObserve},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				since(readyFalse(platformv1alpha1.ReasonReconcileError, generic("observe the capability")), earlier),
				since(syncedFalse(platformv1alpha1.ReasonReconcileError, generic("observe the capability")), earlier)},
		},
		{
			name: "the finalizer cannot be added: a generic message",
			doc:  newDoc(),
			setup: func(s *fakeStore) {
				s.client.PrependReactor("patch", "postgresdatabases", func(a clienttesting.Action) (bool, runtime.Object, error) {
					if a.(clienttesting.PatchAction).GetPatchType() != types.MergePatchType {
						return false, nil, nil
					}
					return true, nil, apierrors.NewInternalError(errors.New("etcdserver: leader changed"))
				})
			},
			wantErr:    "failed to add the servicelet's finalizer: failed to update finalizers: Internal error occurred: etcdserver: leader changed",
			wantWrites: []string{"patch postgresdatabases", "apply postgresdatabases/status"},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonReconcileError, generic("add the servicelet's finalizer")),
				syncedFalse(platformv1alpha1.ReasonReconcileError, generic("add the servicelet's finalizer"))},
			wantEvents: []event{{corev1.EventTypeWarning, EventReconcileFail, generic("add the servicelet's finalizer")}},
		},
	})
}

// rotatingDriver is a thing whose password the driver knows: Observe calls the Secret's
// credentials invalid unless they hold it, and RotateCredentials issues a new one.
func rotatingDriver(password string) *fake.Driver {
	return &fake.Driver{
		ObserveFn: func(_ context.Context, c *driver.Capability) (driver.Observation, error) {
			o := available(dbDetails)
			if string(c.ConnectionDetails["password"]) != password {
				o.CredentialsInvalid = invalidPassword
			} else {
				o.ConnectionDetails["password"] = []byte(password)
			}
			return o, nil
		},
		RotateFn: func(context.Context, *driver.Capability) (driver.ConnectionDetails, error) {
			password = "rotated-" + password
			return connDetails(map[string]string{"password": password}), nil
		},
	}
}

func withPassword(password string) map[string]string {
	m := map[string]string{"password": password}
	for k, v := range dbDetails {
		m[k] = v
	}
	return m
}

func TestReconcileCredentials(t *testing.T) {
	rotatedNow := func(token string) *platformv1alpha1.CredentialsStatus {
		at := metav1.NewTime(now)
		return &platformv1alpha1.CredentialsStatus{RotatedAt: &at, RotationToken: token}
	}
	rotateAsked := withAnnotation(platformv1alpha1.AnnotationRotateCredentials, rotationToken)
	runReconcileCases(t, []reconcileCase{
		{
			name:            "credentials invalid: checked against kcp, rotated, the Secret rewritten, a warning",
			doc:             newDoc(managed, inLine()),
			secrets:         []*unstructured.Unstructured{ownSecret(withPassword("edited"))},
			driver:          rotatingDriver("p1"),
			wantResult:      Result{RequeueAfter: time.Minute},
			wantCalls:       []string{fake.MethodObserve, fake.MethodObserve, fake.MethodRotateCredentials},
			wantWrites:      []string{"apply secrets", "apply postgresdatabases/status"},
			wantFinalizers:  []string{platformv1alpha1.FinalizerServicelet},
			wantConditions:  []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:   testSecret,
			wantSecret:      owned(withPassword("rotated-p1")),
			wantCredentials: rotatedNow(""),
			wantEvents: []event{{corev1.EventTypeWarning, platformv1alpha1.ReasonCredentialsRotated,
				invalidPassword + "; issued new credentials and wrote them into the connection Secret"}},
		},
		{
			name:            "credentials invalid while the cache cannot tell: read from kcp once, rotated",
			doc:             newDoc(managed, inLine()),
			secrets:         []*unstructured.Unstructured{ownSecret(withPassword("edited"))},
			setup:           func(s *fakeStore) { s.secretsUnsynced = true },
			driver:          rotatingDriver("p1"),
			wantResult:      Result{RequeueAfter: time.Minute},
			wantCalls:       []string{fake.MethodObserve, fake.MethodRotateCredentials},
			wantWrites:      []string{"apply secrets", "apply postgresdatabases/status"},
			wantFinalizers:  []string{platformv1alpha1.FinalizerServicelet},
			wantConditions:  []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:   testSecret,
			wantSecret:      owned(withPassword("rotated-p1")),
			wantCredentials: rotatedNow(""),
			wantEvents: []event{{corev1.EventTypeWarning, platformv1alpha1.ReasonCredentialsRotated,
				invalidPassword + "; issued new credentials and wrote them into the connection Secret"}},
		},
		{
			name:           "credentials invalid only in a stale cache: kcp's Secret works, nothing rotated",
			doc:            newDoc(managed, inLine()),
			secrets:        []*unstructured.Unstructured{ownSecret(withPassword("p1"))},
			setup:          func(s *fakeStore) { s.staleSecret = ownSecret(withPassword("p0")) },
			driver:         rotatingDriver("p1"),
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve, fake.MethodObserve},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantSecret:     owned(withPassword("p1")),
		},
		{
			name:            "rotation asked by the annotation: rotated once over two reconciles",
			doc:             newDoc(managed, rotateAsked),
			secrets:         []*unstructured.Unstructured{ownSecret(withPassword("p1"))},
			driver:          rotatingDriver("p1"),
			reconciles:      2,
			wantResult:      Result{RequeueAfter: time.Minute},
			wantCalls:       []string{fake.MethodObserve, fake.MethodRotateCredentials, fake.MethodObserve},
			wantFinalizers:  []string{platformv1alpha1.FinalizerServicelet},
			wantConditions:  []metav1.Condition{scheduledCond, readyAvailable, syncedOK},
			wantSecretRef:   testSecret,
			wantSecret:      owned(withPassword("rotated-p1")),
			wantCredentials: rotatedNow(rotationToken),
			wantEvents:      []event{{corev1.EventTypeNormal, platformv1alpha1.ReasonCredentialsRotated, msgRotateAsked}},
		},
		{
			name:            "rotation asked, and the cache still shows the document from before: rotated once",
			doc:             newDoc(managed, rotateAsked),
			secrets:         []*unstructured.Unstructured{ownSecret(withPassword("p1"))},
			driver:          rotatingDriver("p1"),
			setup:           func(s *fakeStore) { s.frozen = s.initial },
			reconciles:      2,
			wantResult:      Result{RequeueAfter: time.Minute},
			wantCalls:       []string{fake.MethodObserve, fake.MethodRotateCredentials, fake.MethodObserve},
			wantWrites:      []string{"apply postgresdatabases/status"}, // the stale cache lacks the conditions
			wantFinalizers:  []string{platformv1alpha1.FinalizerServicelet},
			wantConditions:  []metav1.Condition{scheduledCond, readyAvailable, syncedOK},
			wantSecretRef:   testSecret,
			wantSecret:      owned(withPassword("rotated-p1")),
			wantCredentials: rotatedNow(rotationToken),
			wantEvents:      []event{{corev1.EventTypeNormal, platformv1alpha1.ReasonCredentialsRotated, msgRotateAsked}},
		},
		{
			name:            "rotation asked with Normal events off: the event is recorded all the same",
			doc:             newDoc(managed, rotateAsked),
			secrets:         []*unstructured.Unstructured{ownSecret(withPassword("p1"))},
			driver:          rotatingDriver("p1"),
			quiet:           true,
			wantResult:      Result{RequeueAfter: time.Minute},
			wantCalls:       []string{fake.MethodObserve, fake.MethodRotateCredentials},
			wantWrites:      []string{"apply secrets", "apply postgresdatabases/status"},
			wantFinalizers:  []string{platformv1alpha1.FinalizerServicelet},
			wantConditions:  []metav1.Condition{scheduledCond, readyAvailable, syncedOK},
			wantSecretRef:   testSecret,
			wantSecret:      owned(withPassword("rotated-p1")),
			wantCredentials: rotatedNow(rotationToken),
			wantEvents:      []event{{corev1.EventTypeNormal, platformv1alpha1.ReasonCredentialsRotated, msgRotateAsked}},
		},
		{
			name: "rotation token already answered in the status: nothing rotated",
			doc: newDoc(managed, inLine(), rotateAsked, withStatus("credentials", map[string]any{
				"rotatedAt": earlier.Format(time.RFC3339), "rotationToken": rotationToken})),
			secrets:        []*unstructured.Unstructured{ownSecret(withPassword("p1"))},
			driver:         rotatingDriver("p1"),
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantSecret:     owned(withPassword("p1")),
			wantCredentials: func() *platformv1alpha1.CredentialsStatus {
				at := metav1.NewTime(earlier)
				return &platformv1alpha1.CredentialsStatus{RotatedAt: &at, RotationToken: rotationToken}
			}(),
		},
		{
			name:           "rotation asked of a kind without credentials: TenantError",
			doc:            newDoc(managed, rotateAsked),
			driver:         &fake.Driver{ObserveFn: observe(available(nil))},
			noRotator:      true,
			wantErr:        "failed to rotate the credentials: this kind has no credentials to rotate",
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonReconcileError, "this kind has no credentials to rotate"),
				syncedFalse(platformv1alpha1.ReasonReconcileError, "this kind has no credentials to rotate")},
			wantEvents: []event{{corev1.EventTypeWarning, EventReconcileFail, "this kind has no credentials to rotate"}},
		},
		{
			name: "credentials invalid for a kind without a rotator: left as they are",
			doc:  newDoc(managed),
			driver: &fake.Driver{ObserveFn: observe(driver.Observation{Exists: true, UpToDate: true, Ready: true,
				CredentialsInvalid: invalidPassword})},
			noRotator:      true,
			setup:          func(s *fakeStore) { s.secretsUnsynced = true },
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyAvailable, syncedOK},
		},
		{
			name: "RotateCredentials fails: a generic message, asked again next time",
			doc:  newDoc(managed, rotateAsked),
			driver: &fake.Driver{
				ObserveFn: observe(available(nil)),
				RotateFn: func(context.Context, *driver.Capability) (driver.ConnectionDetails, error) {
					return nil, errInternal
				},
			},
			reconciles:     2,
			wantErr:        "failed to rotate the credentials: " + errInternal.Error(),
			wantCalls:      []string{fake.MethodObserve, fake.MethodRotateCredentials, fake.MethodObserve, fake.MethodRotateCredentials},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonReconcileError, generic("rotate the credentials")),
				syncedFalse(platformv1alpha1.ReasonReconcileError, generic("rotate the credentials"))},
			wantEvents: []event{{corev1.EventTypeWarning, EventReconcileFail, generic("rotate the credentials")}},
		},
	})
}

func TestReconcileObserveOnly(t *testing.T) {
	runReconcileCases(t, []reconcileCase{
		{
			name:           "missing: not created; Ready=False Unavailable, Synced=True",
			doc:            newDoc(managed, observeOnly()),
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonUnavailable, "not found on the runtime; the management policy is ObserveOnly, so the servicelet does not create it"),
				syncedOK},
		},
		{
			name:           "missing, with the driver's message",
			doc:            newDoc(managed, observeOnly()),
			driver:         &fake.Driver{ObserveFn: observe(driver.Observation{Message: "no database orders_db on the server"})},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonUnavailable, "no database orders_db on the server"), syncedOK},
		},
		{
			name: "drift: not updated; Synced=False says so, Ready from the observation",
			doc:  newDoc(managed, observeOnly()),
			driver: &fake.Driver{ObserveFn: observe(driver.Observation{Exists: true, Ready: true,
				Message: "size is 20Gi, the spec asks for 10Gi", ConnectionDetails: connDetails(dbDetails)})},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply secrets", "apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyAvailable,
				syncedFalse(platformv1alpha1.ReasonReconcileError, "differs from its spec; the management policy is ObserveOnly, so the servicelet does not change it: size is 20Gi, the spec asks for 10Gi")},
			wantSecretRef: testSecret,
			wantSecret:    owned(dbDetails),
		},
		{
			name:           "rotation asked: refused with a TenantError",
			doc:            newDoc(managed, observeOnly(), withAnnotation(platformv1alpha1.AnnotationRotateCredentials, rotationToken)),
			driver:         rotatingDriver("p1"),
			secrets:        []*unstructured.Unstructured{ownSecret(withPassword("p1"))},
			wantErr:        "failed to rotate the credentials: the management policy is ObserveOnly, so the servicelet does not rotate credentials",
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonReconcileError, "the management policy is ObserveOnly, so the servicelet does not rotate credentials"),
				syncedFalse(platformv1alpha1.ReasonReconcileError, "the management policy is ObserveOnly, so the servicelet does not rotate credentials")},
			wantSecret: owned(withPassword("p1")),
			wantEvents: []event{{corev1.EventTypeWarning, EventReconcileFail, "the management policy is ObserveOnly, so the servicelet does not rotate credentials"}},
		},
		{
			name:           "credentials invalid: not rotated",
			doc:            newDoc(managed, observeOnly()),
			secrets:        []*unstructured.Unstructured{ownSecret(withPassword("edited"))},
			driver:         rotatingDriver("p1"),
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve, fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyAvailable, syncedOK},
			wantSecretRef:  testSecret,
			wantSecret:     owned(withPassword("edited")),
		},
		{
			name:           "deleted with deletion policy Delete: orphaned all the same, never deleted",
			doc:            newDoc(managed, observeOnly(), deleting(), withSpec("deletionPolicy", "Delete")),
			secrets:        []*unstructured.Unstructured{ownSecret(dbDetails)},
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			wantWrites:     []string{"patch postgresdatabases"},
			wantConditions: []metav1.Condition{scheduledCond},
			wantSecret:     owned(dbDetails),
			// The management policy is why, whatever the deletion policy says.
			wantEvents: []event{{corev1.EventTypeNormal, EventOrphaned, "left running on runtime rt-a (management policy ObserveOnly: msp only observed it)"}},
		},
	})
}

func TestReconcileDeletion(t *testing.T) {
	runReconcileCases(t, []reconcileCase{
		{
			name:           "deletion policy Delete (the default): Delete, then the Secret and the finalizer go",
			doc:            newDoc(inLine(), deleting(), withFinalizers(otherFinalizer, platformv1alpha1.FinalizerServicelet)),
			secrets:        []*unstructured.Unstructured{ownSecret(dbDetails)},
			wantCalls:      []string{fake.MethodDelete, fake.MethodObserve},
			wantWrites:     []string{"delete secrets", "patch postgresdatabases"},
			wantFinalizers: []string{otherFinalizer},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantEvents:     []event{{corev1.EventTypeNormal, EventDeleted, "deleted from runtime rt-a"}},
		},
		{
			name:           "deletion policy Delete, still there after Delete: Deleting, retry soon, the finalizer stays",
			doc:            newDoc(managed, inLine(), deleting(), withSpec("deletionPolicy", "Delete")),
			secrets:        []*unstructured.Unstructured{ownSecret(dbDetails)},
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			wantResult:     Result{RequeueAfter: 2 * time.Second},
			wantCalls:      []string{fake.MethodDelete, fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyFalse(platformv1alpha1.ReasonDeleting, msgDeleting), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantSecret:     owned(dbDetails),
		},
		{
			name:       "let go, then seen again in a cache that has not caught up: nothing runs twice",
			doc:        newDoc(inLine(), deleting(), withFinalizers(otherFinalizer, platformv1alpha1.FinalizerServicelet)),
			secrets:    []*unstructured.Unstructured{ownSecret(dbDetails)},
			setup:      func(s *fakeStore) { s.frozen = s.initial.DeepCopy() },
			reconciles: 2,
			// The second reconcile writes nothing and calls nothing.
			wantCalls:      []string{fake.MethodDelete, fake.MethodObserve},
			wantFinalizers: []string{otherFinalizer},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantEvents:     []event{{corev1.EventTypeNormal, EventDeleted, "deleted from runtime rt-a"}},
		},
		{
			name:    "the document changed while it was deleted: read again, the finalizer goes, Delete ran once",
			doc:     newDoc(inLine(), deleting(), withFinalizers(otherFinalizer, platformv1alpha1.FinalizerServicelet)),
			secrets: []*unstructured.Unstructured{ownSecret(dbDetails)},
			setup: func(s *fakeStore) {
				conflicted := false
				s.client.PrependReactor("patch", "postgresdatabases", func(a clienttesting.Action) (bool, runtime.Object, error) {
					if conflicted || a.(clienttesting.PatchAction).GetPatchType() != types.MergePatchType {
						return false, nil, nil
					}
					conflicted = true
					return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "postgres.msp.dev", Resource: "postgresdatabases"}, "orders", errors.New("the object has been modified"))
				})
			},
			wantCalls:      []string{fake.MethodDelete, fake.MethodObserve},
			wantWrites:     []string{"delete secrets", "patch postgresdatabases", "patch postgresdatabases"},
			wantFinalizers: []string{otherFinalizer},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantEvents:     []event{{corev1.EventTypeNormal, EventDeleted, "deleted from runtime rt-a"}},
		},
		{
			name:           "Delete fails: the finalizer and the Secret stay, a generic message",
			doc:            newDoc(managed, inLine(), deleting()),
			secrets:        []*unstructured.Unstructured{ownSecret(dbDetails)},
			driver:         &fake.Driver{DeleteFn: func(context.Context, *driver.Capability) error { return errInternal }},
			wantErr:        "failed to delete the capability: " + errInternal.Error(),
			wantCalls:      []string{fake.MethodDelete},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier),
				syncedFalse(platformv1alpha1.ReasonReconcileError, generic("delete the capability"))},
			wantSecretRef: testSecret,
			wantSecret:    owned(dbDetails),
			wantEvents:    []event{{corev1.EventTypeWarning, EventReconcileFail, generic("delete the capability")}},
		},
		{
			name:           "deletion policy Orphan: no Delete; the finalizer goes, the Secret stays",
			doc:            newDoc(inLine(), deleting(), withSpec("deletionPolicy", "Orphan"), withFinalizers(platformv1alpha1.FinalizerServicelet, otherFinalizer)),
			secrets:        []*unstructured.Unstructured{ownSecret(dbDetails)},
			wantWrites:     []string{"patch postgresdatabases"},
			wantFinalizers: []string{otherFinalizer},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantSecret:     owned(dbDetails),
			wantEvents:     []event{{corev1.EventTypeNormal, EventOrphaned, "left running on runtime rt-a (deletion policy Orphan)"}},
		},
		{
			name:           "the Secret cannot be deleted: the finalizer stays",
			doc:            newDoc(managed, inLine(), deleting()),
			secrets:        []*unstructured.Unstructured{ownSecret(dbDetails)},
			setup:          failWith("delete", "secrets", apierrors.NewInternalError(errors.New("etcdserver: leader changed"))),
			wantErr:        "failed to delete the connection Secret: failed to delete the connection Secret: Internal error occurred: etcdserver: leader changed",
			wantCalls:      []string{fake.MethodDelete, fake.MethodObserve},
			wantWrites:     []string{"delete secrets", "apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier),
				syncedFalse(platformv1alpha1.ReasonReconcileError, generic("delete the connection Secret"))},
			wantSecretRef: testSecret,
			wantSecret:    owned(dbDetails),
			wantEvents:    []event{{corev1.EventTypeWarning, EventReconcileFail, generic("delete the connection Secret")}},
		},
	})
}

func TestReconcileConnectionSecret(t *testing.T) {
	frontDoorRefusal := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, testSecret,
		errors.New("a servicelet reads only the Secrets it wrote"))
	quota := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, testSecret,
		errors.New("exceeded quota: tenant-quota, requested: count/secrets=1, used: count/secrets=10, limited: count/secrets=10"))
	tenants := foreignSecret(map[string]string{"password": "the tenant's own"})
	runReconcileCases(t, []reconcileCase{
		{
			name:           "a Secret of that name that is not this capability's: refused with a TenantError, no driver call",
			doc:            newDoc(managed),
			secrets:        []*unstructured.Unstructured{tenants},
			setup:          func(s *fakeStore) { s.secretsUnsynced = true; failWith("get", "secrets", frontDoorRefusal)(s) },
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			wantErr:        "failed to read the connection Secret: " + msgForeign,
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonReconcileError, msgForeign), syncedFalse(platformv1alpha1.ReasonReconcileError, msgForeign)},
			wantSecret: viewSecret(tenants),
			wantEvents: []event{{corev1.EventTypeWarning, EventReconcileFail, msgForeign}},
		},
		{
			name:           "a Secret of that name that is not this capability's, cache synced: refused before the write",
			doc:            newDoc(managed),
			secrets:        []*unstructured.Unstructured{tenants},
			setup:          failWith("get", "secrets", frontDoorRefusal),
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			wantErr:        "failed to write the connection Secret: " + msgForeign,
			wantSecretRef:  "",
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonReconcileError, msgForeign), syncedFalse(platformv1alpha1.ReasonReconcileError, msgForeign)},
			wantSecret: viewSecret(tenants),
			wantEvents: []event{{corev1.EventTypeWarning, EventReconcileFail, msgForeign}},
		},
		{
			name:           "the write refused by kcp (a quota): kcp's words reach the tenant",
			doc:            newDoc(managed),
			setup:          failWith("patch", "secrets", quota),
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			wantErr:        "failed to write the connection Secret: the connection Secret postgresdatabase-orders cannot be written: " + quota.ErrStatus.Message,
			wantSecretRef:  "",
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply secrets", "apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonReconcileError, "the connection Secret postgresdatabase-orders cannot be written: "+quota.ErrStatus.Message),
				syncedFalse(platformv1alpha1.ReasonReconcileError, "the connection Secret postgresdatabase-orders cannot be written: "+quota.ErrStatus.Message)},
			wantEvents: []event{{corev1.EventTypeWarning, EventReconcileFail, "the connection Secret postgresdatabase-orders cannot be written: " + quota.ErrStatus.Message}},
		},
		{
			name:           "the write fails inside kcp: a generic message",
			doc:            newDoc(managed),
			setup:          failWith("patch", "secrets", apierrors.NewInternalError(errors.New("etcdserver: leader changed"))),
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			wantErr:        "failed to write the connection Secret: failed to write the connection Secret postgresdatabase-orders: Internal error occurred: etcdserver: leader changed",
			wantSecretRef:  "",
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply secrets", "apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond,
				readyFalse(platformv1alpha1.ReasonReconcileError, generic("write the connection Secret")),
				syncedFalse(platformv1alpha1.ReasonReconcileError, generic("write the connection Secret"))},
			wantEvents: []event{{corev1.EventTypeWarning, EventReconcileFail, generic("write the connection Secret")}},
		},
		{
			name:           "the Secret deleted by the tenant: written again, nothing else",
			doc:            newDoc(managed, inLine()),
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply secrets"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantSecret:     owned(dbDetails),
		},
		{
			name:           "the Secret edited by hand: repaired",
			doc:            newDoc(managed, inLine()),
			secrets:        []*unstructured.Unstructured{ownSecret(map[string]string{"host": "elsewhere.example", "port": "5432"})},
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply secrets"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantSecret:     owned(dbDetails),
		},
		{
			name: "the Secret lost its labels: labelled again",
			doc:  newDoc(managed, inLine()),
			secrets: []*unstructured.Unstructured{func() *unstructured.Unstructured {
				s := ownSecret(dbDetails)
				s.SetLabels(nil)
				return s
			}()},
			driver:         &fake.Driver{ObserveFn: observe(available(dbDetails))},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply secrets"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier)},
			wantSecretRef:  testSecret,
			wantSecret:     owned(dbDetails),
		},
		{
			name:           "no connection details: no Secret, no reference",
			doc:            newDoc(managed),
			driver:         &fake.Driver{ObserveFn: observe(available(nil))},
			wantResult:     Result{RequeueAfter: time.Minute},
			wantCalls:      []string{fake.MethodObserve},
			wantWrites:     []string{"apply postgresdatabases/status"},
			wantFinalizers: []string{platformv1alpha1.FinalizerServicelet},
			wantConditions: []metav1.Condition{scheduledCond, readyAvailable, syncedOK},
		},
	})
}

// TestReconcileForgetsAGoneCapability checks that the usage of a capability that left
// the cache is no longer reported.
func TestReconcileForgetsAGoneCapability(t *testing.T) {
	store := newFakeStore(t, newDoc(managed))
	drv := &fake.Driver{ObserveFn: func(context.Context, *driver.Capability) (driver.Observation, error) {
		o := available(nil)
		o.Usage = corev1.ResourceList{"storage": resource.MustParse("1Gi")}
		return o, nil
	}}
	r := newTestReconciler(store, map[schema.GroupKind]driver.Driver{testGVK.GroupKind(): drv})
	if _, err := r.Reconcile(t.Context(), testKey); err != nil {
		t.Fatal(err)
	}
	if len(r.Usage()) != 1 {
		t.Fatalf("Usage = %v, want the capability's", r.Usage())
	}
	if err := store.client.Tracker().Delete(testGVR, testKey.Namespace, testKey.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(t.Context(), testKey); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[Key]corev1.ResourceList{}, r.Usage()); diff != "" {
		t.Errorf("Usage after the capability left (-want +got):\n%s", diff)
	}
}

// TestReconcileRequestedRotationIsRecordedAfterAFailedWrite: when the write after a
// requested rotation fails, the retry (which repairs the Secret as an "invalid
// credentials" rotation) still records the token in status.credentials, so that a
// restart, which forgets what was answered, does not rotate the credentials again
// unasked.
func TestReconcileRequestedRotationIsRecordedAfterAFailedWrite(t *testing.T) {
	store := newFakeStore(t, newDoc(managed, withAnnotation(platformv1alpha1.AnnotationRotateCredentials, rotationToken)),
		ownSecret(withPassword("p1")))
	failedOnce := false
	store.client.PrependReactor("patch", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failedOnce {
			return false, nil, nil
		}
		failedOnce = true
		return true, nil, apierrors.NewInternalError(errors.New("etcdserver: leader changed"))
	})
	drv := rotatingDriver("p1")
	drivers := map[schema.GroupKind]driver.Driver{testGVK.GroupKind(): drv}
	r := newTestReconciler(store, drivers)
	if _, err := r.Reconcile(t.Context(), testKey); err == nil {
		t.Fatal("the first reconcile succeeded, want the Secret write to fail")
	}
	if _, err := r.Reconcile(t.Context(), testKey); err != nil {
		t.Fatal(err)
	}
	// A restart: a new reconciler, nothing remembered.
	if _, err := newTestReconciler(store, drivers).Reconcile(t.Context(), testKey); err != nil {
		t.Fatal(err)
	}
	var st platformv1alpha1.CapabilityStatus
	raw, _, _ := unstructured.NestedMap(store.doc(t).Object, "status")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &st); err != nil {
		t.Fatal(err)
	}
	if st.Credentials == nil || st.Credentials.RotationToken != rotationToken {
		t.Errorf("status.credentials = %+v, want the rotation token %q recorded", st.Credentials, rotationToken)
	}
	if n := drv.CallsTo(fake.MethodRotateCredentials); n > 2 {
		t.Errorf("RotateCredentials called %d times, want at most 2 (the request, and the repair of the lost write)", n)
	}
}

// TestReconcileSecretRefOnlyForAWrittenSecret: when the connection Secret cannot be
// written (here a tenant's own Secret of that name), the failure's status write does not
// name it in status.connectionSecretRef, or consumers would read the tenant's unrelated
// Secret.
func TestReconcileSecretRefOnlyForAWrittenSecret(t *testing.T) {
	tenants := foreignSecret(map[string]string{"password": "the tenant's own"})
	store := newFakeStore(t, newDoc(managed), tenants)
	failWith("get", "secrets", apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, testSecret,
		errors.New("a servicelet reads only the Secrets it wrote")))(store)
	drv := &fake.Driver{ObserveFn: observe(available(dbDetails))}
	r := newTestReconciler(store, map[schema.GroupKind]driver.Driver{testGVK.GroupKind(): drv})
	if _, err := r.Reconcile(t.Context(), testKey); err == nil {
		t.Fatal("the reconcile succeeded, want the foreign Secret refused")
	}
	if ref, found, _ := unstructured.NestedString(store.doc(t).Object, "status", "connectionSecretRef", "name"); found {
		t.Errorf("status.connectionSecretRef.name = %q, want none: the Secret of that name is the tenant's", ref)
	}
}
