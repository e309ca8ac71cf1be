// Package onboarding is msp-providers, the platform's provider controller: it reconciles
// ServiceProviders (onboarding.msp.dev) in root:platform. For each one it keeps the
// provider workspace root:providers:<name> with the platform API bound and its
// components' and team's rights, binds the provider's APIExport into tenant workspaces
// (new ones through the tenant WorkspaceType's default bindings, existing ones through
// APIBindings it creates), reports APIReady, RunReady and Ready, and on deletion orphans
// or removes what it made, as the ServiceProvider's deletionPolicy says.
//
// It holds no admin credential: it may create and delete workspaces under
// root:providers (and is admin of the ones it creates, as kcp makes every workspace's
// creator), manage ServiceProviders and the tenant WorkspaceType in root:platform, read
// the tenant workspaces under root:tenants, and manage APIBindings in the tenants that
// granted it the ClusterRole msp:provider-bindings.
package onboarding

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

const (
	// FieldManager is the server-side apply field manager of msp-providers.
	FieldManager = "msp-providers"
	// Finalizer holds a ServiceProvider until its deletion policy has been carried out.
	Finalizer = "onboarding.msp.dev/cleanup"
	// AnnotationServiceProvider marks the provider workspace, and the tenants'
	// APIBindings, msp-providers made for a ServiceProvider (its name).
	AnnotationServiceProvider = "onboarding.msp.dev/service-provider"
	// LabelPrefix is the prefix of the tenant Workspace labels that opt a tenant in or
	// out of one provider: providers.msp.dev/<provider>=opt-in or opt-out.
	LabelPrefix = "providers.msp.dev/"
	// OptIn and OptOut are the values of those labels.
	OptIn, OptOut = "opt-in", "opt-out"
	// BindingsRole is the ClusterRole a tenant workspace binds to msp-providers' user to
	// let it manage APIBindings there.
	BindingsRole = "msp:provider-bindings"
	// User is msp-providers' kcp user.
	User = identity.ProvidersUser
)

// Well-known places of the workspace tree.
const (
	PlatformWorkspace  = "root:platform"
	ProvidersWorkspace = "root:providers"
	TenantsWorkspace   = "root:tenants"
	TenantType         = "tenant"
	PlatformExport     = "platform.msp.dev"
)

// ProviderWorkspace is the path of a ServiceProvider's workspace.
func ProviderWorkspace(name string) string { return ProvidersWorkspace + ":" + name }

// CoordinatorLease is the Lease (namespace default) that a provider's leading
// coordinator holds in its workspace.
func CoordinatorLease(export string) string { return "msp-coordinator-" + export }

var (
	gvrWorkspace     = schema.GroupVersionResource{Group: "tenancy.kcp.io", Version: "v1alpha1", Resource: "workspaces"}
	gvrWorkspaceType = schema.GroupVersionResource{Group: "tenancy.kcp.io", Version: "v1alpha1", Resource: "workspacetypes"}
	gvrAPIExport     = schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha2", Resource: "apiexports"}
	gvrAPIBinding    = schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha2", Resource: "apibindings"}
	gvrSchema        = schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha1", Resource: "apiresourceschemas"}
	gvrEndpointSlice = schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha1", Resource: "apiexportendpointslices"}
	gvrRuntime       = schema.GroupVersionResource{Group: "platform.msp.dev", Version: "v1alpha1", Resource: "serviceruntimes"}
	gvrRuntimeClass  = schema.GroupVersionResource{Group: "platform.msp.dev", Version: "v1alpha1", Resource: "serviceruntimeclasses"}
	gvrLease         = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}
	gvrWebhook       = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}
)

// Reconciler reconciles ServiceProviders.
type Reconciler struct {
	// Client reads and writes ServiceProviders in root:platform.
	Client client.Client
	// Config addresses kcp (its host without a /clusters suffix) with msp-providers'
	// own credential; HTTP is the client made from it, shared by every workspace.
	Config *rest.Config
	HTTP   *http.Client
	// Recorder records events on ServiceProviders.
	Recorder record.EventRecorder
	// Resync is how often a ServiceProvider is looked at again (a coordinator's lease and
	// the runtimes change without a watch here). Defaults to 15s.
	Resync time.Duration
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// in is a dynamic client for one workspace.
func (r *Reconciler) in(path string) dynamic.Interface {
	cfg := kcpconfig.ForWorkspace(r.Config, path)
	var d dynamic.Interface
	var err error
	if r.HTTP != nil {
		d, err = dynamic.NewForConfigAndClient(cfg, r.HTTP)
	} else {
		d, err = dynamic.NewForConfig(cfg)
	}
	if err != nil {
		panic(err) // only a malformed config fails, and Config is checked at start
	}
	return d
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager registers the reconciler with mgr (a manager of root:platform).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Resync == 0 {
		r.Resync = 15 * time.Second
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&onboardingv1alpha1.ServiceProvider{}).
		Named("serviceprovider").
		Complete(r)
}

// Reconcile brings one ServiceProvider's world in line and reports on it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	sp := &onboardingv1alpha1.ServiceProvider{}
	if err := r.Client.Get(ctx, req.NamespacedName, sp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !sp.DeletionTimestamp.IsZero() {
		return r.delete(ctx, sp)
	}
	if !controllerutil.ContainsFinalizer(sp, Finalizer) {
		patch := client.MergeFrom(sp.DeepCopy())
		controllerutil.AddFinalizer(sp, Finalizer)
		if err := r.Client.Patch(ctx, sp, patch); err != nil {
			return ctrl.Result{}, err
		}
	}
	orig := sp.DeepCopy()
	st := &sp.Status
	st.Workspace = ProviderWorkspace(sp.Name)
	st.ObservedGeneration = sp.Generation

	api, run, err := r.reconcile(ctx, sp)
	if err != nil {
		log.Error(err, "reconcile failed")
	}
	set(sp, onboardingv1alpha1.ConditionAPIReady, api)
	set(sp, onboardingv1alpha1.ConditionRunReady, run)
	ready := verdict{true, onboardingv1alpha1.ReasonReady, "the provider's API is bound and it runs"}
	switch {
	case !api.ok:
		ready = verdict{false, api.reason, "API: " + api.message}
	case !run.ok:
		ready = verdict{false, run.reason, "Run: " + run.message}
	}
	set(sp, onboardingv1alpha1.ConditionReady, ready)
	if err := r.writeStatus(ctx, orig, sp); err != nil {
		return ctrl.Result{}, err
	}
	if err != nil {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	return ctrl.Result{RequeueAfter: r.Resync}, nil
}

// verdict is one condition's outcome.
type verdict struct {
	ok              bool
	reason, message string
}

func set(sp *onboardingv1alpha1.ServiceProvider, condType string, v verdict) {
	status := metav1.ConditionFalse
	if v.ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&sp.Status.Conditions, metav1.Condition{
		Type: condType, Status: status, Reason: v.reason, Message: v.message, ObservedGeneration: sp.Generation,
	})
}

func (r *Reconciler) writeStatus(ctx context.Context, orig, sp *onboardingv1alpha1.ServiceProvider) error {
	if equalStatus(orig.Status, sp.Status) {
		return nil
	}
	for _, c := range sp.Status.Conditions {
		if old := meta.FindStatusCondition(orig.Status.Conditions, c.Type); old == nil || old.Status != c.Status {
			kind := "Normal"
			if c.Status != metav1.ConditionTrue {
				kind = "Warning"
			}
			r.Recorder.Eventf(sp, kind, c.Reason, "%s is %s: %s", c.Type, c.Status, c.Message)
		}
	}
	return r.Client.Status().Update(ctx, sp)
}

// reconcile makes the provider workspace and the tenants' bindings true and returns the
// APIReady and RunReady verdicts.
func (r *Reconciler) reconcile(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider) (api, run verdict, err error) {
	notRun := verdict{false, onboardingv1alpha1.ReasonWorkspaceNotReady, "waiting for the provider workspace"}
	ws := ProviderWorkspace(sp.Name)
	ready, why, err := r.ensureWorkspace(ctx, sp)
	if err != nil {
		return verdict{false, onboardingv1alpha1.ReasonWorkspaceNotReady, err.Error()}, notRun, err
	}
	if !ready {
		return verdict{false, onboardingv1alpha1.ReasonWorkspaceNotReady, why}, notRun, errors.New(why)
	}
	if err := r.ensureGrants(ctx, sp); err != nil {
		return verdict{false, onboardingv1alpha1.ReasonWorkspaceNotReady, err.Error()}, notRun, err
	}
	exp, v, err := r.readExport(ctx, sp)
	if err != nil || !v.ok {
		run, _ = r.run(ctx, sp)
		return v, run, err
	}
	sp.Status.IdentityHash = exp.identityHash
	sp.Status.Resources = exp.resources
	shadow, err := r.ensureDefaultBindings(ctx, sp)
	if err != nil {
		return verdict{false, onboardingv1alpha1.ReasonBinding, fmt.Sprintf("failed to update the tenant WorkspaceType's default bindings: %v", err)}, notRun, err
	}
	api, err = r.bindTenants(ctx, sp, ws, exp)
	if shadow != "" {
		api.message += fmt.Sprintf("; new tenants do not get it by default: the ServiceProvider %s, registered earlier, binds %s by default and a workspace binds one export per API group (make one of them OptIn)", shadow, sp.Spec.Export)
	}
	run, rerr := r.run(ctx, sp)
	return api, run, errors.Join(err, rerr)
}

// ensureWorkspace creates the provider workspace or takes it over, and tells whether it
// is Ready.
func (r *Reconciler) ensureWorkspace(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider) (bool, string, error) {
	workspaces := r.in(ProvidersWorkspace).Resource(gvrWorkspace)
	got, err := workspaces.Get(ctx, sp.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		ws := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace",
			"metadata": map[string]any{
				"name": sp.Name,
				"annotations": map[string]any{
					AnnotationServiceProvider: sp.Name,
					"msp.dev/description":     fmt.Sprintf("The %s provider (ServiceProvider %s). Exports %s; holds its ServiceRuntimes and ServiceRuntimeClasses.", sp.Name, sp.Name, sp.Spec.Export),
				},
			},
		}}
		if _, err := workspaces.Create(ctx, ws, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return false, "", fmt.Errorf("failed to create the workspace %s: %w", ProviderWorkspace(sp.Name), err)
		}
		r.Recorder.Eventf(sp, "Normal", "WorkspaceCreated", "created the provider workspace %s", ProviderWorkspace(sp.Name))
		return false, "the provider workspace " + ProviderWorkspace(sp.Name) + " was just created", nil
	case err != nil:
		return false, "", fmt.Errorf("failed to read the workspace %s: %w", ProviderWorkspace(sp.Name), err)
	}
	if !got.GetDeletionTimestamp().IsZero() {
		return false, "the provider workspace " + ProviderWorkspace(sp.Name) + " is being deleted", nil
	}
	if got.GetAnnotations()[AnnotationServiceProvider] != sp.Name {
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, AnnotationServiceProvider, sp.Name)
		if _, err := workspaces.Patch(ctx, sp.Name, "application/merge-patch+json", patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			return false, "", fmt.Errorf("failed to take over the workspace %s: %w", ProviderWorkspace(sp.Name), err)
		}
	}
	phase, _, _ := unstructured.NestedString(got.Object, "status", "phase")
	if phase != "Ready" {
		return false, fmt.Sprintf("the provider workspace %s is %s", ProviderWorkspace(sp.Name), phaseOr(phase)), nil
	}
	return true, "", nil
}

func phaseOr(phase string) string {
	if phase == "" {
		return "not initialized yet"
	}
	return phase
}

// apply server-side applies obj in the workspace at path.
func (r *Reconciler) apply(ctx context.Context, path string, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) error {
	force := true
	_, err := r.in(path).Resource(gvr).Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: force})
	if err != nil {
		return fmt.Errorf("failed to apply %s %s in %s: %w", obj.GetKind(), obj.GetName(), path, err)
	}
	return nil
}
