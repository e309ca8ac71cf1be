package servicelet

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/conditions"
	"github.com/msp-dev/msp/sdk/driver"
)

// The capability every reconciler test works on.
var (
	testGVK = schema.GroupVersionKind{Group: "example.msp.dev", Version: "v1alpha1", Kind: "PostgresDatabase"}
	testGVR = testGVK.GroupVersion().WithResource("postgresdatabases")
	testKey = Key{URL: "https://shard-1.example", Kind: 0, Cluster: "root:tenant-a", Namespace: "shop", Name: "orders"}

	// now is the reconciler's clock, to the second as the API stores times.
	now     = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	earlier = now.Add(-time.Hour)
)

const (
	testRuntime    = "rt-a"
	testGeneration = int64(3)
	testSecret     = "postgresdatabase-orders"
	otherFinalizer = "other.example/keep"
)

// fakeStore is a Store on a fake dynamic client: the document and the Secrets live in
// its tracker, which the reconciler's writes change, and the "cache" reads them back.
type fakeStore struct {
	client *dynamicfake.FakeDynamicClient
	// initial is the document the store was seeded with.
	initial *unstructured.Unstructured
	// frozen, when set, is what Get returns: a cache that has not seen the writes yet.
	frozen *unstructured.Unstructured
	// clientErr is returned by Client.
	clientErr error
	// secretsUnsynced makes CachedSecret say the cache cannot tell yet.
	secretsUnsynced bool
	// staleSecret, when set, is what the cache holds for the connection Secret.
	staleSecret *unstructured.Unstructured
	// events are the events the reconciler recorded.
	events []corev1.Event
}

var _ Store = (*fakeStore)(nil)

func newFakeStore(t *testing.T, doc *unstructured.Unstructured, secrets ...*unstructured.Unstructured) *fakeStore {
	t.Helper()
	s := &fakeStore{client: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())}
	tracker := s.client.Tracker()
	if doc != nil {
		s.initial = doc.DeepCopy()
		if err := tracker.Create(testGVR, doc.DeepCopy(), doc.GetNamespace()); err != nil {
			t.Fatal(err)
		}
	}
	for _, sec := range secrets {
		if err := tracker.Create(secretsGVR, sec.DeepCopy(), sec.GetNamespace()); err != nil {
			t.Fatal(err)
		}
	}
	s.client.PrependReactor("patch", "*", applyReactor(tracker))
	s.client.PrependReactor("create", "events", func(a clienttesting.Action) (bool, runtime.Object, error) {
		u := a.(clienttesting.CreateAction).GetObject().(*unstructured.Unstructured)
		var ev corev1.Event
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ev); err != nil {
			return true, nil, err
		}
		s.events = append(s.events, ev)
		return true, u, nil
	})
	return s
}

func (s *fakeStore) Get(key Key) *unstructured.Unstructured {
	if s.frozen != nil {
		return s.frozen.DeepCopy()
	}
	obj, err := s.client.Tracker().Get(testGVR, key.Namespace, key.Name)
	if err != nil {
		return nil
	}
	return obj.(*unstructured.Unstructured)
}

func (s *fakeStore) Client(Key) (dynamic.Interface, error) {
	if s.clientErr != nil {
		return nil, s.clientErr
	}
	return s.client, nil
}

func (s *fakeStore) GVR(int) schema.GroupVersionResource { return testGVR }

// CachedSecret answers as the Source's cache does: it holds only the Secrets labelled
// with the runtime.
func (s *fakeStore) CachedSecret(key Key, name string) (*unstructured.Unstructured, bool) {
	if s.secretsUnsynced {
		return nil, false
	}
	if s.staleSecret != nil {
		return s.staleSecret.DeepCopy(), true
	}
	obj, err := s.client.Tracker().Get(secretsGVR, key.Namespace, name)
	if err != nil {
		return nil, true
	}
	u := obj.(*unstructured.Unstructured)
	if u.GetLabels()[platformv1alpha1.LabelRuntime] != testRuntime {
		return nil, true
	}
	return u, true
}

// doc returns the document as the tracker holds it, nil when there is none.
func (s *fakeStore) doc(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	obj, err := s.client.Tracker().Get(testGVR, testKey.Namespace, testKey.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*unstructured.Unstructured)
}

// secret returns the connection Secret as the tracker holds it, nil when there is none.
func (s *fakeStore) secret(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	obj, err := s.client.Tracker().Get(secretsGVR, testKey.Namespace, testSecret)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*unstructured.Unstructured)
}

// applyReactor stands in for server-side apply, which the fake client's tracker only
// does on objects that exist: an apply creates what is missing (not for a subresource,
// which answers NotFound as the server does) and otherwise merges what it states over
// what is there. Maps merge key by key, conditions by type (a listMapKey=type list), and
// anything else is replaced. Unlike a server it does not drop fields the manager stops
// stating; the reconciler restates all it owns on every write.
func applyReactor(tracker clienttesting.ObjectTracker) clienttesting.ReactionFunc {
	return func(a clienttesting.Action) (bool, runtime.Object, error) {
		p, ok := a.(clienttesting.PatchActionImpl)
		if !ok || p.GetPatchType() != types.ApplyPatchType {
			return false, nil, nil
		}
		applied := map[string]any{}
		if err := utiljson.Unmarshal(p.GetPatch(), &applied); err != nil {
			return true, nil, err
		}
		gvr, ns := p.GetResource(), p.GetNamespace()
		live, err := tracker.Get(gvr, ns, p.GetName())
		if apierrors.IsNotFound(err) && p.GetSubresource() == "" {
			obj := &unstructured.Unstructured{Object: applied}
			obj.SetName(p.GetName())
			return true, obj, tracker.Create(gvr, obj, ns)
		}
		if err != nil {
			return true, nil, err
		}
		obj := &unstructured.Unstructured{Object: mergeApplied(live.(*unstructured.Unstructured).Object, applied)}
		return true, obj, tracker.Update(gvr, obj, ns)
	}
}

func mergeApplied(live, applied map[string]any) map[string]any {
	for k, v := range applied {
		switch av := v.(type) {
		case map[string]any:
			if lv, ok := live[k].(map[string]any); ok {
				live[k] = mergeApplied(lv, av)
				continue
			}
		case []any:
			if lv, ok := live[k].([]any); ok && k == "conditions" {
				live[k] = mergeConditions(lv, av)
				continue
			}
		}
		live[k] = v
	}
	return live
}

func mergeConditions(live, applied []any) []any {
	typeOf := func(c any) string { m, _ := c.(map[string]any); s, _ := m["type"].(string); return s }
	out := append([]any(nil), live...)
next:
	for _, a := range applied {
		for i, l := range out {
			if typeOf(l) == typeOf(a) {
				out[i] = a
				continue next
			}
		}
		out = append(out, a)
	}
	return out
}

// docOpt changes the test document.
type docOpt func(u *unstructured.Unstructured)

// newDoc returns the capability assigned to testRuntime and Scheduled, without the
// servicelet's finalizer, changed by opts.
func newDoc(opts ...docOpt) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec":   map[string]any{"runtimeName": testRuntime, "storage": "10Gi"},
		"status": map[string]any{},
	}}
	u.SetGroupVersionKind(testGVK)
	u.SetNamespace(testKey.Namespace)
	u.SetName(testKey.Name)
	u.SetGeneration(testGeneration)
	u.SetResourceVersion("7")
	u.SetUID("4c2d1e0f-0000-4000-8000-000000000001")
	u.SetLabels(map[string]string{platformv1alpha1.LabelRuntime: testRuntime})
	u.SetAnnotations(map[string]string{"kcp.io/cluster": testKey.Cluster})
	withConditions(scheduledCond)(u)
	for _, o := range opts {
		o(u)
	}
	return u
}

func withFinalizers(f ...string) docOpt {
	return func(u *unstructured.Unstructured) { u.SetFinalizers(f) }
}

// managed is the servicelet's finalizer: the capability has been taken on.
var managed = withFinalizers(platformv1alpha1.FinalizerServicelet)

func withAnnotation(k, v string) docOpt {
	return func(u *unstructured.Unstructured) {
		a := u.GetAnnotations()
		a[k] = v
		u.SetAnnotations(a)
	}
}

func withSpec(field string, v any) docOpt {
	return func(u *unstructured.Unstructured) { _ = unstructured.SetNestedField(u.Object, v, "spec", field) }
}

func observeOnly() docOpt {
	return withSpec("managementPolicy", string(platformv1alpha1.ManagementPolicyObserveOnly))
}

func withStatus(field string, v any) docOpt {
	return func(u *unstructured.Unstructured) { _ = unstructured.SetNestedField(u.Object, v, "status", field) }
}

// withConditions replaces the document's conditions.
func withConditions(cs ...metav1.Condition) docOpt {
	return func(u *unstructured.Unstructured) {
		list := []any{}
		for _, c := range cs {
			list = append(list, conditions.Unstructured(c))
		}
		_ = unstructured.SetNestedSlice(u.Object, list, "status", "conditions")
	}
}

// inLine is the status of a capability the servicelet last found available, with its
// Secret written: nothing to write when that is still so.
func inLine() docOpt {
	return func(u *unstructured.Unstructured) {
		withConditions(scheduledCond, since(readyAvailable, earlier), since(syncedOK, earlier))(u)
		withStatus("observedGeneration", testGeneration)(u)
		withStatus("connectionSecretRef", map[string]any{"name": testSecret})(u)
	}
}

func deleting() docOpt {
	return func(u *unstructured.Unstructured) {
		ts := metav1.NewTime(earlier)
		u.SetDeletionTimestamp(&ts)
	}
}

// cond is a condition the reconciler writes at now for testGeneration.
func cond(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: testGeneration, LastTransitionTime: metav1.NewTime(now)}
}

// since returns c as it was set at t.
func since(c metav1.Condition, t time.Time) metav1.Condition {
	c.LastTransitionTime = metav1.NewTime(t)
	return c
}

func readyFalse(reason, msg string) metav1.Condition {
	return cond(platformv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

func syncedFalse(reason, msg string) metav1.Condition {
	return cond(platformv1alpha1.ConditionSynced, metav1.ConditionFalse, reason, msg)
}

func syncedTrue(msg string) metav1.Condition {
	return cond(platformv1alpha1.ConditionSynced, metav1.ConditionTrue, platformv1alpha1.ReasonReconcileSuccess, msg)
}

var (
	scheduledCond = since(cond(platformv1alpha1.ConditionScheduled, metav1.ConditionTrue,
		platformv1alpha1.ReasonAssigned, "assigned to runtime "+testRuntime), earlier)
	readyAvailable = cond(platformv1alpha1.ConditionReady, metav1.ConditionTrue,
		platformv1alpha1.ReasonAvailable, "available on runtime "+testRuntime)
	syncedOK = syncedTrue("")
)

// ownSecret is the connection Secret as the servicelet writes it.
func ownSecret(data map[string]string) *unstructured.Unstructured {
	s := foreignSecret(data)
	s.SetLabels(map[string]string{platformv1alpha1.LabelRuntime: testRuntime, platformv1alpha1.LabelKind: testGVK.Kind})
	s.SetAnnotations(map[string]string{platformv1alpha1.AnnotationCapability: testKey.Name})
	return s
}

// foreignSecret is a Secret of the connection Secret's name that the tenant made.
func foreignSecret(data map[string]string) *unstructured.Unstructured {
	enc := map[string]any{}
	for k, v := range data {
		enc[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	s := &unstructured.Unstructured{Object: map[string]any{"type": "Opaque", "data": enc}}
	s.SetAPIVersion("v1")
	s.SetKind("Secret")
	s.SetNamespace(testKey.Namespace)
	s.SetName(testSecret)
	return s
}

// secretView is what a test asserts of a Secret.
type secretView struct {
	Data        map[string]string
	Labels      map[string]string
	Annotations map[string]string
}

func viewSecret(s *unstructured.Unstructured) *secretView {
	if s == nil {
		return nil
	}
	v := &secretView{Data: map[string]string{}, Labels: s.GetLabels(), Annotations: s.GetAnnotations()}
	for k, b := range secretData(s) {
		v.Data[k] = string(b)
	}
	return v
}

// owned is the view of the connection Secret the servicelet wrote with data.
func owned(data map[string]string) *secretView { return viewSecret(ownSecret(data)) }

// event is what a test asserts of an event.
type event struct {
	Type, Reason, Message string
}

// describeWrite names a write action: "apply secrets", "patch postgresdatabases", ...
func describeWrite(a clienttesting.Action) (string, bool) {
	verb := a.GetVerb()
	switch verb {
	case "get", "list", "watch":
		return "", false
	}
	res := a.GetResource().Resource
	if res == "events" {
		return "", false
	}
	if p, ok := a.(clienttesting.PatchAction); ok && p.GetPatchType() == types.ApplyPatchType {
		verb = "apply"
	}
	if s := a.GetSubresource(); s != "" {
		res += "/" + s
	}
	return verb + " " + res, true
}

// newTestReconciler is the reconciler the tests run, on store with drv for testGVK.
func newTestReconciler(store Store, drivers map[schema.GroupKind]driver.Driver) *Reconciler {
	return &Reconciler{
		Runtime: testRuntime, Drivers: drivers, Source: store, Log: logr.Discard(),
		NormalEvents: true, Now: func() time.Time { return now },
	}
}
