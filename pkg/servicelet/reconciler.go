package servicelet

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/conditions"
	"github.com/msp-dev/msp/sdk/driver"
)

// Field managers and event reasons of the servicelet.
const (
	FieldManager = "msp-servicelet"

	EventCreated       = "Created"
	EventUpdated       = "Updated"
	EventDeleted       = "Deleted"
	EventOrphaned      = "Orphaned"
	EventReconcileFail = "ReconcileError"
)

// Requeue intervals.
const (
	notReadyRetry   = 2 * time.Second
	defaultResync   = time.Minute
	maxErrorBackoff = time.Minute
)

var secretsGVR = corev1.SchemeGroupVersion.WithResource("secrets")
var eventsGVR = corev1.SchemeGroupVersion.WithResource("events")

// Store is what the Reconciler needs of where capabilities come from: the cached
// documents, a client on each one's workspace and the cached connection Secrets.
// *Source is the servicelet's Store; tests use a fake one.
type Store interface {
	// Get returns the cached document of key, or nil.
	Get(key Key) *unstructured.Unstructured
	// Client returns a dynamic client on key's workspace.
	Client(key Key) (dynamic.Interface, error)
	// GVR returns the resource of kind index i.
	GVR(i int) schema.GroupVersionResource
	// CachedSecret returns the Secret named name in key's workspace and namespace as
	// the cache holds it, and whether the cache can tell (nil then means none).
	CachedSecret(key Key, name string) (*unstructured.Unstructured, bool)
}

var _ Store = (*Source)(nil)

// Reconciler is the servicelet's one shared reconciler: every provider's capabilities go
// through it, and the provider's Driver only observes, creates, updates and deletes.
type Reconciler struct {
	// Runtime is the name of this servicelet's runtime.
	Runtime string
	// Drivers are the provider's, one per kind (every kind of Source has one).
	Drivers map[schema.GroupKind]driver.Driver
	// Source is where documents come from and go back to: the servicelet's *Source.
	Source Store
	// Resync is how often a ready capability is observed again for drift. Defaults to 1m.
	Resync time.Duration
	// Log is the logger.
	Log logr.Logger
	// NormalEvents records Normal events; warnings are always recorded.
	NormalEvents bool
	// Now is the clock for condition transition times, status.credentials.rotatedAt
	// and events. Defaults to time.Now.
	Now func() time.Time
	// Location is where the runtime is (its twin's spec.location), reported as the
	// capability's status.location with Scheduled=True; nil until known.
	Location func() *platformv1alpha1.Location
	// ReadyAfter, when set, is told the seconds from a capability's creation to its
	// first Ready=True written by this servicelet (the create→Ready metric).
	ReadyAfter func(seconds float64)

	mu    sync.Mutex
	usage map[Key]corev1.ResourceList
	// rotated remembers the rotation token this process last answered per capability:
	// the cache may show the document from before the status said so, and one request
	// must rotate once.
	rotated map[Key]string
	// ready remembers the capabilities whose first Ready=True was counted.
	ready map[Key]bool
	// finalized remembers, by UID, the documents this servicelet let go (their finalizer
	// removed), for finalizedMemory: the cache may still show one being deleted with the
	// finalizer, and its deletion must not run again on the runtime.
	finalized map[types.UID]time.Time
}

// finalizedMemory is how long a let-go document is remembered: far longer than a cache
// takes to see its own write.
const finalizedMemory = 10 * time.Minute

// Result says when to look at a capability again; zero means only on change.
type Result struct {
	RequeueAfter time.Duration
}

// Usage returns the usage the driver last reported, per capability.
func (r *Reconciler) Usage() map[Key]corev1.ResourceList {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.usage)
}

// Reconcile brings one capability in line: finalizer, driver calls, connection Secret,
// credentials, status. Errors come back for the caller's backoff, after the conditions
// say why.
func (r *Reconciler) Reconcile(ctx context.Context, key Key) (Result, error) {
	obj := r.Source.Get(key)
	if obj == nil {
		r.forget(key)
		return Result{}, nil // deleted, or no longer assigned to this runtime
	}
	if rt, _, _ := unstructured.NestedString(obj.Object, "spec", "runtimeName"); rt != r.Runtime {
		return Result{}, nil
	}
	client, err := r.Source.Client(key)
	if err != nil {
		return Result{}, err
	}
	var doc struct {
		Spec   platformv1alpha1.CapabilitySpec   `json:"spec"`
		Status platformv1alpha1.CapabilityStatus `json:"status"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &doc); err != nil {
		return Result{}, fmt.Errorf("failed to read the capability contract: %w", err)
	}
	drv := r.Drivers[obj.GroupVersionKind().GroupKind()]
	if drv == nil {
		return Result{}, fmt.Errorf("no driver for kind %s", obj.GroupVersionKind().GroupKind())
	}
	c := &driver.Capability{Object: obj, Spec: doc.Spec, Cluster: key.Cluster}
	w := &docWriter{r: r, key: key, client: client, gvr: r.Source.GVR(key.Kind), obj: obj, current: &doc.Status}
	log := r.Log.WithValues("cluster", key.Cluster, "capability", key.Namespace+"/"+key.Name)

	var notes []string // said in the Synced condition's message when all else is well
	switch paused := obj.GetAnnotations()[platformv1alpha1.AnnotationPaused]; paused {
	case "true":
		return Result{}, w.status(ctx, nil, synced(metav1.ConditionFalse, platformv1alpha1.ReasonReconcilePaused,
			"reconciliation is paused by the "+platformv1alpha1.AnnotationPaused+" annotation"), nil)
	case "":
	default:
		notes = append(notes, fmt.Sprintf("the annotation %s=%q is ignored: only \"true\" pauses", platformv1alpha1.AnnotationPaused, paused))
	}
	if obj.GetDeletionTimestamp() != nil {
		return r.finalize(ctx, log, drv, c, w)
	}
	if !w.hasFinalizer() && !meta.IsStatusConditionTrue(doc.Status.Conditions, platformv1alpha1.ConditionScheduled) {
		// The scheduler writes the assignment, then its Scheduled condition; starting
		// before the second write would only race it (a conflict and a retry through
		// the virtual workspace). Its status write brings the capability back here.
		return Result{}, nil
	}
	if !meta.IsStatusConditionTrue(doc.Status.Conditions, platformv1alpha1.ConditionScheduled) && r.Location != nil && r.location() == nil {
		// Scheduled=True goes with the runtime's location: wait for the twin's first read
		// rather than write the status twice.
		return Result{RequeueAfter: 500 * time.Millisecond}, nil
	}
	if err := w.ensureFinalizer(ctx); err != nil {
		return r.failed(ctx, log, w, "add the servicelet's finalizer", err)
	}

	secret, err := w.readSecret(ctx, false)
	if err != nil {
		return r.failed(ctx, log, w, "read the connection Secret", err)
	}
	c.ConnectionDetails = secretData(secret)
	obs, err := drv.Observe(ctx, c)
	if err != nil {
		return r.failed(ctx, log, w, "observe the capability", err)
	}
	if obs.Exists && obs.CredentialsInvalid != "" && w.secretFromCache {
		// The cache may not have seen the Secret's last write yet: ask kcp before acting.
		if secret, err = w.readSecret(ctx, true); err != nil {
			return r.failed(ctx, log, w, "read the connection Secret", err)
		}
		c.ConnectionDetails = secretData(secret)
		if obs, err = drv.Observe(ctx, c); err != nil {
			return r.failed(ctx, log, w, "observe the capability", err)
		}
	}
	full := doc.Spec.ManagementPolicy != platformv1alpha1.ManagementPolicyObserveOnly
	created := false
	switch {
	case !obs.Exists && !full:
		msg := "not found on the runtime; the management policy is ObserveOnly, so the servicelet does not create it"
		if obs.Message != "" {
			msg = obs.Message
		}
		return Result{RequeueAfter: r.resync()}, w.status(ctx,
			ready(metav1.ConditionFalse, platformv1alpha1.ReasonUnavailable, msg),
			synced(metav1.ConditionTrue, platformv1alpha1.ReasonReconcileSuccess, ""), obs.Status)
	case !obs.Exists:
		details, err := drv.Create(ctx, c)
		if err != nil {
			return r.failed(ctx, log, w, "create the capability", err)
		}
		created = true
		log.Info("created")
		w.event(ctx, corev1.EventTypeNormal, EventCreated, "created on runtime "+r.Runtime)
		// Look again at once: most drivers create synchronously, and then the Secret
		// and the status are written once (not once for "creating", once for "ready").
		c.ConnectionDetails = details
		after, err := drv.Observe(ctx, c)
		if err != nil || !after.Exists {
			if err := w.secret(ctx, secret, details); err != nil {
				return r.failed(ctx, log, w, "write the connection Secret", err)
			}
			return Result{RequeueAfter: notReadyRetry}, w.status(ctx,
				ready(metav1.ConditionFalse, platformv1alpha1.ReasonCreating, "being created on runtime "+r.Runtime),
				synced(metav1.ConditionTrue, platformv1alpha1.ReasonReconcileSuccess, ""), after.Status)
		}
		all := driver.ConnectionDetails{}
		maps.Copy(all, details)
		maps.Copy(all, after.ConnectionDetails)
		after.ConnectionDetails = all
		obs = after
	case !obs.UpToDate && full:
		if err := drv.Update(ctx, c); err != nil {
			return r.failed(ctx, log, w, "update the capability", err)
		}
		log.Info("updated")
		w.event(ctx, corev1.EventTypeNormal, EventUpdated, "brought in line with its spec on runtime "+r.Runtime)
	}

	var rotated *platformv1alpha1.CredentialsStatus
	if !created && obs.Exists {
		var err error
		rotated, err = r.rotate(ctx, log, drv, c, w, &obs, full)
		if err != nil {
			return r.failed(ctx, log, w, "rotate the credentials", err)
		}
	}

	r.mu.Lock()
	if r.usage == nil {
		r.usage = map[Key]corev1.ResourceList{}
	}
	r.usage[key] = obs.Usage
	r.mu.Unlock()
	if err := w.secret(ctx, secret, obs.ConnectionDetails); err != nil {
		return r.failed(ctx, log, w, "write the connection Secret", err)
	}
	w.credentials = rotated
	readyCond := ready(metav1.ConditionTrue, platformv1alpha1.ReasonAvailable, "available on runtime "+r.Runtime)
	next := r.resync()
	if !obs.Ready {
		msg := obs.Message
		if msg == "" {
			msg = "not ready yet"
		}
		readyCond = ready(metav1.ConditionFalse, platformv1alpha1.ReasonCreating, msg+" (runtime "+r.Runtime+")")
		next = notReadyRetry
	}
	syncedCond := synced(metav1.ConditionTrue, platformv1alpha1.ReasonReconcileSuccess, strings.Join(notes, "; "))
	if !obs.UpToDate && !full {
		syncedCond = synced(metav1.ConditionFalse, platformv1alpha1.ReasonReconcileError, "differs from its spec; the management policy is ObserveOnly, so the servicelet does not change it: "+obs.Message)
	}
	return Result{RequeueAfter: next}, w.status(ctx, readyCond, syncedCond, obs.Status)
}

// rotate issues new credentials when the tenant asked (a new value of the rotation
// annotation) or when the Secret's ones do not work, merging them into obs. It returns
// what status.credentials should say, or nil when nothing was rotated.
func (r *Reconciler) rotate(ctx context.Context, log logr.Logger, drv driver.Driver, c *driver.Capability, w *docWriter, obs *driver.Observation, full bool) (*platformv1alpha1.CredentialsStatus, error) {
	token := c.Object.GetAnnotations()[platformv1alpha1.AnnotationRotateCredentials]
	var last string
	if w.current.Credentials != nil {
		last = w.current.Credentials.RotationToken
	}
	r.mu.Lock()
	answered := r.rotated[w.key]
	r.mu.Unlock()
	requested := token != "" && token != last && token != answered
	if !requested && obs.CredentialsInvalid == "" {
		return nil, nil
	}
	rotator, ok := drv.(driver.CredentialRotator)
	switch {
	case !full && requested:
		return nil, driver.NewTenantError("the management policy is ObserveOnly, so the servicelet does not rotate credentials")
	case !full:
		return nil, nil
	case !ok && requested:
		return nil, driver.NewTenantError("this kind has no credentials to rotate")
	case !ok:
		return nil, nil
	}
	details, err := rotator.RotateCredentials(ctx, c)
	if err != nil {
		return nil, err
	}
	all := driver.ConnectionDetails{}
	maps.Copy(all, obs.ConnectionDetails)
	maps.Copy(all, details)
	obs.ConnectionDetails = all
	now := r.now()
	st := &platformv1alpha1.CredentialsStatus{RotatedAt: &now, RotationToken: last}
	if !requested && token != "" && token == answered {
		// The request was answered, but the write that records it failed: record it
		// now, or a restart (which forgets answered) would take it for a new request.
		st.RotationToken = token
	}
	if requested {
		st.RotationToken = token
		r.mu.Lock()
		if r.rotated == nil {
			r.rotated = map[Key]string{}
		}
		r.rotated[w.key] = token
		r.mu.Unlock()
		log.Info("rotated credentials on request")
		w.eventAlways(ctx, corev1.EventTypeNormal, platformv1alpha1.ReasonCredentialsRotated,
			"issued new credentials as asked by the "+platformv1alpha1.AnnotationRotateCredentials+" annotation; the old ones no longer work")
	} else {
		log.Info("rotated credentials", "why", obs.CredentialsInvalid)
		w.eventAlways(ctx, corev1.EventTypeWarning, platformv1alpha1.ReasonCredentialsRotated,
			obs.CredentialsInvalid+"; issued new credentials and wrote them into the connection Secret")
	}
	return st, nil
}

// finalize runs the deletion policy, removes the connection Secret (unless orphaned) and
// lets the document go.
func (r *Reconciler) finalize(ctx context.Context, log logr.Logger, drv driver.Driver, c *driver.Capability, w *docWriter) (Result, error) {
	if !w.hasFinalizer() || r.wasFinalized(w.obj.GetUID()) {
		return Result{}, nil
	}
	orphan := c.Spec.DeletionPolicy == platformv1alpha1.DeletionPolicyOrphan || c.Spec.ManagementPolicy == platformv1alpha1.ManagementPolicyObserveOnly
	if !orphan {
		// Delete even what Observe would call missing: a creation cut off half way
		// leaves parts (a role without its database) that only Delete cleans up, and
		// Delete is idempotent by contract.
		if err := drv.Delete(ctx, c); err != nil {
			return r.failed(ctx, log, w, "delete the capability", err)
		}
		obs, err := drv.Observe(ctx, c)
		if err != nil {
			return r.failed(ctx, log, w, "observe the capability", err)
		}
		if obs.Exists {
			return Result{RequeueAfter: notReadyRetry}, w.status(ctx,
				ready(metav1.ConditionFalse, platformv1alpha1.ReasonDeleting, "being deleted from runtime "+r.Runtime), nil, nil)
		}
		if err := w.deleteSecret(ctx); err != nil {
			return r.failed(ctx, log, w, "delete the connection Secret", err)
		}
		log.Info("deleted")
		w.event(ctx, corev1.EventTypeNormal, EventDeleted, "deleted from runtime "+r.Runtime)
	} else {
		why := "deletion policy Orphan"
		if c.Spec.ManagementPolicy == platformv1alpha1.ManagementPolicyObserveOnly {
			why = "management policy ObserveOnly: msp only observed it"
		}
		log.Info("orphaned", "because", why)
		w.event(ctx, corev1.EventTypeNormal, EventOrphaned, "left running on runtime "+r.Runtime+" ("+why+")")
	}
	r.forget(w.key)
	if err := w.removeFinalizer(ctx); err != nil {
		return r.failed(ctx, log, w, "remove the servicelet's finalizer", err)
	}
	r.markFinalized(w.obj.GetUID())
	return Result{}, nil
}

// markFinalized remembers that the document uid was let go, forgetting those let go
// longer than finalizedMemory ago.
func (r *Reconciler) markFinalized(uid types.UID) {
	now := r.now().Time
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finalized == nil {
		r.finalized = map[types.UID]time.Time{}
	}
	for u, at := range r.finalized {
		if now.Sub(at) > finalizedMemory {
			delete(r.finalized, u)
		}
	}
	r.finalized[uid] = now
}

func (r *Reconciler) wasFinalized(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.finalized[uid]
	return ok
}

// failed reports a failed step in the log, as Synced=False with the error's message if
// the driver made it for the tenant, and as Ready=False unless the thing is known to be
// usable (so the READY column never stays blank), and hands the error back for backoff.
func (r *Reconciler) failed(ctx context.Context, log logr.Logger, w *docWriter, step string, err error) (Result, error) {
	msg := tenantMessage(step, err)
	log.Error(err, "reconcile failed", "step", step)
	old := meta.FindStatusCondition(w.current.Conditions, platformv1alpha1.ConditionSynced)
	if old == nil || old.Message != msg {
		w.event(ctx, corev1.EventTypeWarning, EventReconcileFail, msg)
	}
	var readyCond *metav1.Condition
	if !meta.IsStatusConditionTrue(w.current.Conditions, platformv1alpha1.ConditionReady) {
		readyCond = ready(metav1.ConditionFalse, platformv1alpha1.ReasonReconcileError, msg)
	}
	if werr := w.status(ctx, readyCond, synced(metav1.ConditionFalse, platformv1alpha1.ReasonReconcileError, msg), nil); werr != nil {
		log.Error(werr, "failed to report the error")
	}
	return Result{}, fmt.Errorf("failed to %s: %w", step, err)
}

func (r *Reconciler) now() metav1.Time {
	if r.Now != nil {
		return metav1.NewTime(r.Now())
	}
	return metav1.Now()
}

func (r *Reconciler) resync() time.Duration {
	if r.Resync > 0 {
		return r.Resync
	}
	return defaultResync
}

func (r *Reconciler) forget(key Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.usage, key)
	delete(r.rotated, key)
	delete(r.ready, key)
}

// becameReady tells ReadyAfter how long key took to its first Ready=True (a capability
// Ready again after an outage is not counted twice).
func (r *Reconciler) becameReady(key Key, since time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ReadyAfter == nil || r.ready[key] {
		return
	}
	if r.ready == nil {
		r.ready = map[Key]bool{}
	}
	r.ready[key] = true
	r.ReadyAfter(since.Seconds())
}

func ready(status metav1.ConditionStatus, reason, msg string) *metav1.Condition {
	return &metav1.Condition{Type: platformv1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg}
}

func synced(status metav1.ConditionStatus, reason, msg string) *metav1.Condition {
	return &metav1.Condition{Type: platformv1alpha1.ConditionSynced, Status: status, Reason: reason, Message: msg}
}

// docWriter writes the servicelet's part of one capability and its Secret.
type docWriter struct {
	r       *Reconciler
	key     Key
	client  dynamic.Interface
	gvr     schema.GroupVersionResource
	obj     *unstructured.Unstructured
	current *platformv1alpha1.CapabilityStatus
	// secretFromCache says that the Secret last read came from the cache, not from kcp.
	secretFromCache bool
	// credentials, when set, is written into status.credentials.
	credentials *platformv1alpha1.CredentialsStatus
	// hasSecret says that the connection Secret holds what the driver reported.
	hasSecret bool
}

func (w *docWriter) hasFinalizer() bool {
	for _, f := range w.obj.GetFinalizers() {
		if f == platformv1alpha1.FinalizerServicelet {
			return true
		}
	}
	return false
}

func (w *docWriter) ensureFinalizer(ctx context.Context) error {
	if w.hasFinalizer() {
		return nil
	}
	return w.patchFinalizers(ctx, append(w.obj.GetFinalizers(), platformv1alpha1.FinalizerServicelet))
}

// removeFinalizer lets the document go. The document may have changed since it was read
// (a condition, another owner's finalizer): then it is read again and the finalizer
// removed from that, rather than the whole deletion run again on the runtime.
func (w *docWriter) removeFinalizer(ctx context.Context) error {
	again := false
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if again {
			fresh, err := w.client.Resource(w.gvr).Namespace(w.obj.GetNamespace()).Get(ctx, w.obj.GetName(), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			w.obj = fresh
			if !w.hasFinalizer() {
				return nil
			}
		}
		again = true
		var keep []string
		for _, f := range w.obj.GetFinalizers() {
			if f != platformv1alpha1.FinalizerServicelet {
				keep = append(keep, f)
			}
		}
		return w.patchFinalizers(ctx, keep)
	})
}

// patchFinalizers replaces the finalizer list, guarded by the resourceVersion it was
// computed from, so another owner's finalizer is never lost.
func (w *docWriter) patchFinalizers(ctx context.Context, finalizers []string) error {
	if finalizers == nil {
		finalizers = []string{}
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": w.obj.GetResourceVersion(),
		"finalizers":      finalizers,
	}})
	_, err := w.client.Resource(w.gvr).Namespace(w.obj.GetNamespace()).Patch(ctx, w.obj.GetName(), types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to update finalizers: %w", err)
	}
	return nil
}

// SecretName is the name of a capability's connection Secret: the kind in lower case,
// a dash and the capability's name; a name too long for a Secret is cut and made unique
// with a hash of the whole.
func SecretName(kind, name string) string {
	n := strings.ToLower(kind) + "-" + name
	if len(n) <= validation.DNS1123SubdomainMaxLength {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return strings.TrimRight(n[:validation.DNS1123SubdomainMaxLength-11], "-.") + "-" + hex.EncodeToString(sum[:5])
}

func (w *docWriter) secretName() string { return SecretName(w.obj.GetKind(), w.obj.GetName()) }

// readSecret returns the connection Secret, nil when there is none: from the cache of
// Secrets unless live is set or the cache cannot tell yet.
func (w *docWriter) readSecret(ctx context.Context, live bool) (*unstructured.Unstructured, error) {
	if !live {
		if s, ok := w.r.Source.CachedSecret(w.key, w.secretName()); ok {
			w.secretFromCache = true
			return s, nil
		}
	}
	w.secretFromCache = false
	s, err := w.client.Resource(secretsGVR).Namespace(w.obj.GetNamespace()).Get(ctx, w.secretName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if apierrors.IsForbidden(err) {
		// The front door lets a servicelet read only the Secrets it wrote: one of this
		// name that the tenant made is never read, nor taken over.
		return nil, driver.NewTenantError(fmt.Sprintf("the connection Secret %s cannot be written: a Secret of that name exists in the namespace and is not this capability's connection Secret (the platform never takes one over); delete or rename it", w.secretName()))
	}
	return s, err
}

// secretData decodes a Secret's data; nil for no Secret.
func secretData(s *unstructured.Unstructured) driver.ConnectionDetails {
	if s == nil {
		return nil
	}
	raw, _, _ := unstructured.NestedStringMap(s.Object, "data")
	out := driver.ConnectionDetails{}
	for k, v := range raw {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			out[k] = b
		}
	}
	return out
}

// secret makes the connection Secret hold details (and its labels), server-side. It
// writes nothing when current, the Secret as last read, already does; when current came
// from the cache and differs, kcp is asked first, as the cache may be behind.
func (w *docWriter) secret(ctx context.Context, current *unstructured.Unstructured, details driver.ConnectionDetails) error {
	if len(details) == 0 {
		return nil
	}
	// hasSecret is set only once the Secret holds the details: a capability never
	// names a Secret that was not written (or a tenant's own of the same name).
	if w.secretHolds(current, details) {
		w.hasSecret = true
		return nil
	}
	if w.secretFromCache {
		live, err := w.readSecret(ctx, true)
		if err != nil {
			return err
		}
		if w.secretHolds(live, details) {
			w.hasSecret = true
			return nil
		}
	}
	data := map[string]any{}
	for k, v := range details {
		data[k] = base64.StdEncoding.EncodeToString(v)
	}
	s := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":        w.secretName(),
			"namespace":   w.obj.GetNamespace(),
			"labels":      w.secretLabels(),
			"annotations": map[string]any{platformv1alpha1.AnnotationCapability: w.obj.GetName()},
		},
		"type": "Opaque",
		"data": data,
	}}
	if _, err := w.client.Resource(secretsGVR).Namespace(w.obj.GetNamespace()).Apply(ctx, w.secretName(), s, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) && !apierrors.IsInternalError(err) && !apierrors.IsServiceUnavailable(err) && !apierrors.IsTimeout(err) {
			// Refused in the tenant's own workspace (an immutable Secret of that name,
			// a quota, a policy): the tenant can act on kcp's words.
			return driver.NewTenantError(fmt.Sprintf("the connection Secret %s cannot be written: %s", w.secretName(), status.Status().Message))
		}
		return fmt.Errorf("failed to write the connection Secret %s: %w", w.secretName(), err)
	}
	w.hasSecret = true
	return nil
}

// secretLabels are bounded values only: the runtime (at most 63 characters by the
// ServiceRuntime's validation) and the kind; the capability's name is an annotation.
func (w *docWriter) secretLabels() map[string]any {
	return map[string]any{
		platformv1alpha1.LabelRuntime: w.r.Runtime,
		platformv1alpha1.LabelKind:    w.obj.GetKind(),
	}
}

// secretHolds says whether s has exactly these details for the keys they name, and
// the servicelet's labels and annotation.
func (w *docWriter) secretHolds(s *unstructured.Unstructured, details driver.ConnectionDetails) bool {
	if s == nil {
		return false
	}
	have := secretData(s)
	for k, v := range details {
		if string(have[k]) != string(v) {
			return false
		}
	}
	for k, v := range w.secretLabels() {
		if s.GetLabels()[k] != v {
			return false
		}
	}
	return s.GetAnnotations()[platformv1alpha1.AnnotationCapability] == w.obj.GetName()
}

func (w *docWriter) deleteSecret(ctx context.Context) error {
	err := w.client.Resource(secretsGVR).Namespace(w.obj.GetNamespace()).Delete(ctx, w.secretName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete the connection Secret: %w", err)
	}
	return nil
}

// status applies the servicelet's conditions (Ready and/or Synced), the observed
// generation, the Secret reference, status.credentials and the kind's own fields (extra),
// server-side, leaving the scheduler's fields alone. It writes nothing when the document
// already says so.
func (w *docWriter) status(ctx context.Context, readyCond, syncedCond *metav1.Condition, extra map[string]any) error {
	now := w.r.now()
	var conds []any
	changed := false
	for _, c := range []*metav1.Condition{readyCond, syncedCond} {
		if c == nil {
			continue
		}
		c.ObservedGeneration = w.obj.GetGeneration()
		c.LastTransitionTime = now
		if old := meta.FindStatusCondition(w.current.Conditions, c.Type); old != nil {
			if old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
			if old.Status != c.Status || old.Reason != c.Reason || old.Message != c.Message || old.ObservedGeneration != c.ObservedGeneration {
				changed = true
			}
		} else {
			changed = true
		}
		conds = append(conds, conditions.Unstructured(*c))
	}
	// Restate the condition not being set, so server-side apply does not drop it.
	for _, t := range []string{platformv1alpha1.ConditionReady, platformv1alpha1.ConditionSynced} {
		if (t == platformv1alpha1.ConditionReady && readyCond != nil) || (t == platformv1alpha1.ConditionSynced && syncedCond != nil) {
			continue
		}
		if old := meta.FindStatusCondition(w.current.Conditions, t); old != nil {
			conds = append(conds, conditions.Unstructured(*old))
		}
	}
	// Scheduled: the scheduler approved the assignment with its label and the
	// servicelet's finalizer in one write and leaves the condition to the servicelet's
	// first status (one write less per capability); restated ever after, so that the
	// apply does not drop it. Where the runtime is goes with it.
	if sched := meta.FindStatusCondition(w.current.Conditions, platformv1alpha1.ConditionScheduled); sched != nil && sched.Status == metav1.ConditionTrue {
		conds = append(conds, conditions.Unstructured(*sched))
	} else if rt := w.obj.GetLabels()[platformv1alpha1.LabelRuntime]; rt == w.r.Runtime && w.hasFinalizer() {
		msg := "assigned to runtime " + w.r.Runtime
		if loc := w.r.location(); loc != nil {
			msg += " in region " + loc.Region
		}
		conds = append(conds, conditions.Unstructured(metav1.Condition{
			Type: platformv1alpha1.ConditionScheduled, Status: metav1.ConditionTrue, Reason: platformv1alpha1.ReasonAssigned,
			Message: msg, ObservedGeneration: w.obj.GetGeneration(), LastTransitionTime: now,
		}))
		changed = true
	}
	st := map[string]any{"conditions": conds, "observedGeneration": w.obj.GetGeneration()}
	if loc := w.current.Location; loc != nil {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(loc)
		if err != nil {
			return err
		}
		st["location"] = u
	} else if loc := w.r.location(); loc != nil && w.hasFinalizer() {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(loc)
		if err != nil {
			return err
		}
		st["location"], changed = u, true
	}
	if w.current.ObservedGeneration != w.obj.GetGeneration() {
		changed = true
	}
	secret := ""
	if w.current.ConnectionSecretRef != nil {
		secret = w.current.ConnectionSecretRef.Name
	}
	if w.hasSecret {
		secret = w.secretName()
	}
	if secret != "" {
		st["connectionSecretRef"] = map[string]any{"name": secret}
		if w.current.ConnectionSecretRef == nil || w.current.ConnectionSecretRef.Name != secret {
			changed = true
		}
	}
	creds := w.current.Credentials
	if w.credentials != nil {
		creds, changed = w.credentials, true
	}
	if creds != nil {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(creds)
		if err != nil {
			return err
		}
		st["credentials"] = u
	}
	// The kind's own fields: restated every time (server-side apply drops what an
	// apply leaves out), written when they differ from what the document says.
	have, _, _ := unstructured.NestedMap(w.obj.Object, "status")
	for k, v := range ownStatus(have, extra) {
		st[k] = v
		if !equality.Semantic.DeepEqual(have[k], v) {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	apply := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": w.obj.GetAPIVersion(),
		"kind":       w.obj.GetKind(),
		"metadata":   map[string]any{"name": w.obj.GetName(), "namespace": w.obj.GetNamespace()},
		"status":     st,
	}}
	_, err := w.client.Resource(w.gvr).Namespace(w.obj.GetNamespace()).ApplyStatus(ctx, w.obj.GetName(), apply, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil && !apierrors.IsNotFound(err) {
		w.r.Log.Error(err, "failed to write the status", "cluster", w.key.Cluster, "capability", w.key.Namespace+"/"+w.key.Name)
		return fmt.Errorf("failed to write the status: %w", err)
	}
	if err == nil && readyCond != nil && readyCond.Status == metav1.ConditionTrue &&
		!meta.IsStatusConditionTrue(w.current.Conditions, platformv1alpha1.ConditionReady) {
		w.r.becameReady(w.key, now.Sub(w.obj.GetCreationTimestamp().Time))
	}
	return nil
}

func (r *Reconciler) location() *platformv1alpha1.Location {
	if r.Location == nil {
		return nil
	}
	return r.Location()
}

// platformStatus are the status fields of the capability contract; a kind's own fields
// cannot take their names.
var platformStatus = map[string]bool{"conditions": true, "observedGeneration": true, "location": true, "scheduling": true, "connectionSecretRef": true, "credentials": true}

// ownStatus returns the kind's own status fields to write: extra when the driver
// reported some, else those the document has (so an apply without them keeps them).
func ownStatus(have, extra map[string]any) map[string]any {
	out := map[string]any{}
	src := extra
	if src == nil {
		src = have
	}
	for k, v := range src {
		if !platformStatus[k] {
			out[k] = v
		}
	}
	return out
}

// event records an event on the capability in its workspace; Normal ones only when
// asked for. Failing to record one is not worth failing the reconcile for.
func (w *docWriter) event(ctx context.Context, eventType, reason, msg string) {
	if eventType == corev1.EventTypeNormal && !w.r.NormalEvents {
		return
	}
	w.eventAlways(ctx, eventType, reason, msg)
}

// eventAlways records an event whatever its type: for what a tenant must hear about.
func (w *docWriter) eventAlways(ctx context.Context, eventType, reason, msg string) {
	now := w.r.now()
	ev := &corev1.Event{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: w.obj.GetName() + ".", Namespace: w.obj.GetNamespace()},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: w.obj.GetAPIVersion(), Kind: w.obj.GetKind(), Namespace: w.obj.GetNamespace(),
			Name: w.obj.GetName(), UID: w.obj.GetUID(), ResourceVersion: w.obj.GetResourceVersion(),
		},
		Reason: reason, Message: msg, Type: eventType, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source:              corev1.EventSource{Component: "msp-servicelet", Host: w.r.Runtime},
		ReportingController: "msp.dev/servicelet", ReportingInstance: w.r.Runtime,
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ev)
	if err != nil {
		return
	}
	if _, err := w.client.Resource(eventsGVR).Namespace(w.obj.GetNamespace()).Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{}); err != nil {
		w.r.Log.Info("failed to record event", "reason", reason, "err", err.Error())
	}
}
