package servicelet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/conditions"
)

// Field managers and event reasons of the servicelet.
const (
	FieldManager = "msp-servicelet"
	// fieldManagerCreated owns the connection details only creation knows, so that
	// applying the observed details never removes them.
	fieldManagerCreated = "msp-servicelet-created"

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

// Reconciler is the servicelet's one shared reconciler: every provider's capabilities go
// through it, and the provider's Driver only observes, creates, updates and deletes.
type Reconciler struct {
	// Runtime is the name of this servicelet's runtime.
	Runtime string
	// Driver is the provider's driver.
	Driver Driver
	// Source is where documents come from and go back to.
	Source *Source
	// Resync is how often a ready capability is observed again for drift. Defaults to 1m.
	Resync time.Duration
	// Log is the logger.
	Log logr.Logger
	// NormalEvents records Normal events; warnings are always recorded.
	NormalEvents bool

	mu    sync.Mutex
	usage map[Key]corev1.ResourceList
	// applied remembers, per capability and field manager, the connection details last
	// written, so that an unchanged observation costs no write.
	applied map[Key]map[string]string
}

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
// status. Errors come back for the caller's backoff, after Synced=False says why.
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
	c := &Capability{Object: obj, Spec: doc.Spec, Cluster: key.Cluster}
	w := &docWriter{r: r, key: key, client: client, gvr: r.Source.GVR(key.Kind), obj: obj, current: &doc.Status}
	log := r.Log.WithValues("cluster", key.Cluster, "capability", key.Namespace+"/"+key.Name)

	if obj.GetAnnotations()[platformv1alpha1.AnnotationPaused] == "true" {
		return Result{}, w.status(ctx, nil, synced(metav1.ConditionFalse, platformv1alpha1.ReasonReconcilePaused,
			"reconciliation is paused by the "+platformv1alpha1.AnnotationPaused+" annotation"), "")
	}
	if obj.GetDeletionTimestamp() != nil {
		return r.finalize(ctx, log, c, w)
	}
	if !w.hasFinalizer() && !meta.IsStatusConditionTrue(doc.Status.Conditions, platformv1alpha1.ConditionScheduled) {
		// The scheduler writes the assignment, then its Scheduled condition; starting
		// before the second write would only race it (a conflict and a retry through
		// the virtual workspace). Its status write brings the capability back here.
		return Result{}, nil
	}
	if err := w.ensureFinalizer(ctx); err != nil {
		return Result{}, err
	}

	obs, err := r.Driver.Observe(ctx, c)
	if err != nil {
		return r.failed(ctx, log, w, "observe the capability", err)
	}
	full := doc.Spec.ManagementPolicy != platformv1alpha1.ManagementPolicyObserveOnly
	switch {
	case !obs.Exists && !full:
		return Result{RequeueAfter: r.resync()}, w.status(ctx,
			ready(metav1.ConditionFalse, platformv1alpha1.ReasonUnavailable, "not found on the runtime; the management policy is ObserveOnly, so the servicelet does not create it"),
			synced(metav1.ConditionTrue, platformv1alpha1.ReasonReconcileSuccess, ""), w.secretName())
	case !obs.Exists:
		details, err := r.Driver.Create(ctx, c)
		if err != nil {
			return r.failed(ctx, log, w, "create the capability", err)
		}
		log.Info("created")
		w.event(ctx, corev1.EventTypeNormal, EventCreated, "created on runtime "+r.Runtime)
		// Look again at once: most drivers create synchronously, and then the Secret
		// and the status are written once (not once for "creating", once for "ready").
		after, err := r.Driver.Observe(ctx, c)
		if err != nil || !after.Exists {
			if err := w.secret(ctx, fieldManagerCreated, details); err != nil {
				return Result{}, err
			}
			return Result{RequeueAfter: notReadyRetry}, w.status(ctx,
				ready(metav1.ConditionFalse, platformv1alpha1.ReasonCreating, "being created on runtime "+r.Runtime),
				synced(metav1.ConditionTrue, platformv1alpha1.ReasonReconcileSuccess, ""), w.secretName())
		}
		// The creation's manager writes what was observed too; the observing manager
		// takes those keys over only when they change.
		all := ConnectionDetails{}
		maps.Copy(all, details)
		maps.Copy(all, after.ConnectionDetails)
		if err := w.secret(ctx, fieldManagerCreated, all); err != nil {
			return Result{}, err
		}
		if len(after.ConnectionDetails) > 0 {
			w.remember(FieldManager, fingerprint(after.ConnectionDetails))
		}
		obs = after
	case !obs.UpToDate && full:
		if err := r.Driver.Update(ctx, c); err != nil {
			return r.failed(ctx, log, w, "update the capability", err)
		}
		log.Info("updated")
		w.event(ctx, corev1.EventTypeNormal, EventUpdated, "brought in line with its spec on runtime "+r.Runtime)
	}

	r.mu.Lock()
	if r.usage == nil {
		r.usage = map[Key]corev1.ResourceList{}
	}
	r.usage[key] = obs.Usage
	r.mu.Unlock()
	if err := w.secret(ctx, FieldManager, obs.ConnectionDetails); err != nil {
		return Result{}, err
	}
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
	syncedCond := synced(metav1.ConditionTrue, platformv1alpha1.ReasonReconcileSuccess, "")
	if !obs.UpToDate && !full {
		syncedCond = synced(metav1.ConditionFalse, platformv1alpha1.ReasonReconcileError, "differs from its spec; the management policy is ObserveOnly, so the servicelet does not change it: "+obs.Message)
	}
	return Result{RequeueAfter: next}, w.status(ctx, readyCond, syncedCond, w.secretName())
}

// finalize runs the deletion policy, removes the connection Secret (unless orphaned) and
// lets the document go.
func (r *Reconciler) finalize(ctx context.Context, log logr.Logger, c *Capability, w *docWriter) (Result, error) {
	if !w.hasFinalizer() {
		return Result{}, nil
	}
	orphan := c.Spec.DeletionPolicy == platformv1alpha1.DeletionPolicyOrphan || c.Spec.ManagementPolicy == platformv1alpha1.ManagementPolicyObserveOnly
	if !orphan {
		// Delete even what Observe would call missing: a creation cut off half way
		// leaves parts (a role without its database) that only Delete cleans up, and
		// Delete is idempotent by contract.
		if err := r.Driver.Delete(ctx, c); err != nil {
			return r.failed(ctx, log, w, "delete the capability", err)
		}
		obs, err := r.Driver.Observe(ctx, c)
		if err != nil {
			return r.failed(ctx, log, w, "observe the capability", err)
		}
		if obs.Exists {
			return Result{RequeueAfter: notReadyRetry}, w.status(ctx,
				ready(metav1.ConditionFalse, platformv1alpha1.ReasonDeleting, "being deleted from runtime "+r.Runtime), nil, "")
		}
		if err := w.deleteSecret(ctx); err != nil {
			return Result{}, err
		}
		log.Info("deleted")
		w.event(ctx, corev1.EventTypeNormal, EventDeleted, "deleted from runtime "+r.Runtime)
	} else {
		log.Info("orphaned")
		w.event(ctx, corev1.EventTypeNormal, EventOrphaned, "left running on runtime "+r.Runtime+" (deletion policy Orphan)")
	}
	r.forget(w.key)
	return Result{}, w.removeFinalizer(ctx)
}

// failed reports a failed step as Synced=False, with the error's message if the driver
// made it for the tenant, and hands the error back for backoff.
func (r *Reconciler) failed(ctx context.Context, log logr.Logger, w *docWriter, step string, err error) (Result, error) {
	msg := tenantMessage(step, err)
	log.Error(err, "reconcile failed", "step", step)
	old := meta.FindStatusCondition(w.current.Conditions, platformv1alpha1.ConditionSynced)
	if old == nil || old.Message != msg {
		w.event(ctx, corev1.EventTypeWarning, EventReconcileFail, msg)
	}
	if werr := w.status(ctx, nil, synced(metav1.ConditionFalse, platformv1alpha1.ReasonReconcileError, msg), ""); werr != nil {
		log.Error(werr, "failed to report the error")
	}
	return Result{}, fmt.Errorf("failed to %s: %w", step, err)
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
	delete(r.applied, key)
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

func (w *docWriter) removeFinalizer(ctx context.Context) error {
	var keep []string
	for _, f := range w.obj.GetFinalizers() {
		if f != platformv1alpha1.FinalizerServicelet {
			keep = append(keep, f)
		}
	}
	return w.patchFinalizers(ctx, keep)
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

func (w *docWriter) secretName() string {
	return strings.ToLower(w.obj.GetKind()) + "-" + w.obj.GetName()
}

// secret applies connection details into the capability's Secret with the given field
// manager. Nothing is written when the details did not change since the last write.
func (w *docWriter) secret(ctx context.Context, manager string, details ConnectionDetails) error {
	if len(details) == 0 {
		return nil
	}
	data := map[string]any{}
	for k, v := range details {
		data[k] = base64.StdEncoding.EncodeToString(v)
	}
	fp := fingerprint(details)
	if w.seen(manager, fp) {
		return nil
	}
	s := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":      w.secretName(),
			"namespace": w.obj.GetNamespace(),
			"labels": map[string]any{
				"platform.msp.dev/capability": w.obj.GetName(),
				"platform.msp.dev/kind":       w.obj.GetKind(),
			},
		},
		"type": "Opaque",
		"data": data,
	}}
	if _, err := w.client.Resource(secretsGVR).Namespace(w.obj.GetNamespace()).Apply(ctx, w.secretName(), s, metav1.ApplyOptions{FieldManager: manager, Force: true}); err != nil {
		return fmt.Errorf("failed to write the connection Secret: %w", err)
	}
	w.remember(manager, fp)
	return nil
}

// fingerprint identifies a set of connection details.
func fingerprint(details ConnectionDetails) string {
	keys := make([]string, 0, len(details))
	for k, v := range details {
		keys = append(keys, k+"="+string(v))
	}
	sort.Strings(keys)
	return strings.Join(keys, "\x00")
}

func (w *docWriter) deleteSecret(ctx context.Context) error {
	err := w.client.Resource(secretsGVR).Namespace(w.obj.GetNamespace()).Delete(ctx, w.secretName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete the connection Secret: %w", err)
	}
	return nil
}

// status applies the servicelet's conditions (Ready and/or Synced), the observed
// generation and the Secret reference, server-side, leaving the scheduler's fields alone.
// It writes nothing when the document already says so.
func (w *docWriter) status(ctx context.Context, readyCond, syncedCond *metav1.Condition, secret string) error {
	now := metav1.Now()
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
	st := map[string]any{"conditions": conds, "observedGeneration": w.obj.GetGeneration()}
	if w.current.ObservedGeneration != w.obj.GetGeneration() {
		changed = true
	}
	if secret == "" && w.current.ConnectionSecretRef != nil {
		secret = w.current.ConnectionSecretRef.Name
	}
	if secret != "" {
		st["connectionSecretRef"] = map[string]any{"name": secret}
		if w.current.ConnectionSecretRef == nil || w.current.ConnectionSecretRef.Name != secret {
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
		return fmt.Errorf("failed to write the status: %w", err)
	}
	return nil
}

// event records an event on the capability in its workspace. Failing to record one is
// not worth failing the reconcile for.
func (w *docWriter) event(ctx context.Context, eventType, reason, msg string) {
	if eventType == corev1.EventTypeNormal && !w.r.NormalEvents {
		return
	}
	now := metav1.Now()
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

func (w *docWriter) seen(manager, fingerprint string) bool {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.applied[w.key][manager] == fingerprint
}

func (w *docWriter) remember(manager, fingerprint string) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	if w.r.applied == nil {
		w.r.applied = map[Key]map[string]string{}
	}
	if w.r.applied[w.key] == nil {
		w.r.applied[w.key] = map[string]string{}
	}
	w.r.applied[w.key][manager] = fingerprint
}
