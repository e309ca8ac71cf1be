package onboarding

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	mcprovider "github.com/kcp-dev/multicluster-provider/pkg/provider"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// delete carries out the deletion policy, then lets the ServiceProvider go.
func (r *Reconciler) delete(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(sp, Finalizer) {
		return ctrl.Result{}, nil
	}
	// New tenants stop getting the export either way.
	if _, err := r.ensureDefaultBindings(ctx, sp); err != nil {
		return ctrl.Result{}, err
	}
	if sp.Spec.DeletionPolicy != onboardingv1alpha1.DeletionDelete {
		r.Recorder.Eventf(sp, "Normal", "Orphaned", "deletion policy Orphan: %s, its export %s and the tenants' bindings stay; the platform no longer manages them", ProviderWorkspace(sp.Name), sp.Spec.Export)
		return ctrl.Result{}, r.release(ctx, sp)
	}
	workspaces := r.in(ProvidersWorkspace).Resource(gvrWorkspace)
	ws, err := workspaces.Get(ctx, sp.Name, metav1.GetOptions{})
	switch {
	case isNotFound(err):
		r.Recorder.Eventf(sp, "Normal", "Deleted", "deletion policy Delete: removed the tenants' bindings of %s and %s", sp.Spec.Export, ProviderWorkspace(sp.Name))
		return ctrl.Result{}, r.release(ctx, sp)
	case err != nil:
		return ctrl.Result{}, err
	case !ws.GetDeletionTimestamp().IsZero():
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	orig := sp.DeepCopy()
	held, err := r.remaining(ctx, sp)
	if err != nil {
		set(sp, onboardingv1alpha1.ConditionReady, verdict{false, onboardingv1alpha1.ReasonDeletionHeld, "cannot tell whether capabilities remain: " + err.Error()})
		_ = r.writeStatus(ctx, orig, sp)
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	if held != "" {
		set(sp, onboardingv1alpha1.ConditionReady, verdict{false, onboardingv1alpha1.ReasonDeletionHeld, held})
		if err := r.writeStatus(ctx, orig, sp); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	set(sp, onboardingv1alpha1.ConditionReady, verdict{false, onboardingv1alpha1.ReasonDeleting, "no capability is left: removing the tenants' bindings and " + ProviderWorkspace(sp.Name)})
	if err := r.writeStatus(ctx, orig, sp); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.unbindTenants(ctx, sp); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.releaseRuntimes(ctx, ProviderWorkspace(sp.Name)); err != nil {
		// Best effort: a runtime's coordinator lets it go by itself while it can.
		log.FromContext(ctx).Info("could not release the provider's runtimes before removing its workspace", "err", err.Error())
	}
	if err := workspaces.Delete(ctx, sp.Name, deleteOpts); err != nil && !isNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("failed to delete %s: %w", ProviderWorkspace(sp.Name), err)
	}
	return ctrl.Result{RequeueAfter: time.Second}, nil
}

// releaseRuntimes drops the coordinator's finalizer platform.msp.dev/hosted-capabilities
// from the provider's runtimes before their workspace goes: no capability is left (the
// caller checked), and once the workspace is being deleted the coordinator may have lost
// its rights there, so the finalizer would hold the workspace forever.
func (r *Reconciler) releaseRuntimes(ctx context.Context, ws string) error {
	runtimes := r.in(ws).Resource(gvrRuntime)
	list, err := runtimes.List(ctx, metav1.ListOptions{})
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("failed to list the ServiceRuntimes of %s: %w", ws, err)
	}
	for _, rt := range list.Items {
		fins := rt.GetFinalizers()
		if !slices.Contains(fins, platformv1alpha1.FinalizerHostedCapabilities) {
			continue
		}
		keep := []any{}
		for _, f := range fins {
			if f != platformv1alpha1.FinalizerHostedCapabilities {
				keep = append(keep, f)
			}
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": rt.GetResourceVersion(), "finalizers": keep}})
		if _, err := runtimes.Patch(ctx, rt.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !isNotFound(err) {
			return fmt.Errorf("failed to release runtime %s in %s: %w", rt.GetName(), ws, err)
		}
	}
	return nil
}

func (r *Reconciler) release(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider) error {
	patch := client.MergeFrom(sp.DeepCopy())
	controllerutil.RemoveFinalizer(sp, Finalizer)
	return client.IgnoreNotFound(r.Client.Patch(ctx, sp, patch))
}

// remaining says which capabilities of the export are left, and where; "" when none is.
func (r *Reconciler) remaining(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider) (string, error) {
	ws := ProviderWorkspace(sp.Name)
	exp, v, err := r.readExport(ctx, sp)
	if err != nil {
		return "", err
	}
	if !v.ok {
		// Nothing published, nothing ordered.
		return "", nil
	}
	counts, err := r.countCapabilities(ctx, ws, sp.Spec.Export, exp)
	if err != nil {
		return "", err
	}
	return HeldMessage(counts, r.clusterPaths(ctx)), nil
}

// Count is how many capabilities of one kind one logical cluster holds.
type Count struct {
	Cluster, Kind string
	N             int
}

// HeldMessage says what holds a Delete back: how many capabilities, of which kinds,
// where (paths by logical cluster where known).
func HeldMessage(counts []Count, paths map[string]string) string {
	total := 0
	byPlace := map[string][]string{}
	sorted := slices.Clone(counts)
	slices.SortStableFunc(sorted, func(a, b Count) int { return strings.Compare(a.Kind, b.Kind) })
	for _, c := range sorted {
		if c.N == 0 {
			continue
		}
		total += c.N
		where := paths[c.Cluster]
		if where == "" {
			where = "logical cluster " + c.Cluster
		}
		byPlace[where] = append(byPlace[where], fmt.Sprintf("%d %s", c.N, c.Kind))
	}
	if total == 0 {
		return ""
	}
	var parts []string
	for _, where := range slices.Sorted(maps.Keys(byPlace)) {
		parts = append(parts, strings.Join(byPlace[where], ", ")+" in "+where)
	}
	// Places apart with semicolons: a place may list several kinds.
	if len(parts) > 3 {
		parts = append(parts[:3:3], fmt.Sprintf("%d more places", len(parts)-3))
	}
	noun := "capabilities remain"
	if total == 1 {
		noun = "capability remains"
	}
	return fmt.Sprintf("deletion policy Delete is held: %d %s (%s); delete them, or set spec.deletionPolicy to Orphan to keep them", total, noun, strings.Join(parts, "; "))
}

// countCapabilities lists the export's kinds through its virtual workspace.
func (r *Reconciler) countCapabilities(ctx context.Context, ws, exportName string, exp *export) ([]Count, error) {
	slice, err := r.in(ws).Resource(gvrEndpointSlice).Get(ctx, exportName, metav1.GetOptions{})
	if isNotFound(err) {
		return nil, nil // no endpoint slice: nobody bound it
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the APIExportEndpointSlice %s in %s: %w", exportName, ws, err)
	}
	urls, err := mcprovider.DefaultExtractURLsFromEndpointSlice(slice)
	if err != nil {
		return nil, err
	}
	per := map[[2]string]int{}
	for _, u := range urls {
		cfg := *r.Config
		cfg.Host = strings.TrimSuffix(u, "/") + "/clusters/*"
		dyn, err := dynamic.NewForConfigAndClient(&cfg, r.HTTP)
		if err != nil {
			return nil, err
		}
		for _, g := range exp.gvrs {
			list, err := dyn.Resource(schema.GroupVersionResource{Group: g.group, Version: g.version, Resource: g.resource}).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("failed to list %s.%s through the virtual workspace of %s: %w", g.resource, g.group, exportName, err)
			}
			for _, item := range list.Items {
				per[[2]string{clusterOf(&item), g.kind}]++
			}
		}
	}
	var out []Count
	for k, n := range per {
		out = append(out, Count{Cluster: k[0], Kind: k[1], N: n})
	}
	slices.SortFunc(out, func(a, b Count) int { return strings.Compare(a.Cluster+a.Kind, b.Cluster+b.Kind) })
	return out, nil
}

func clusterOf(u *unstructured.Unstructured) string { return u.GetAnnotations()["kcp.io/cluster"] }

// clusterPaths maps the logical clusters of tenant and provider workspaces to their paths.
func (r *Reconciler) clusterPaths(ctx context.Context) map[string]string {
	out := map[string]string{}
	for _, parent := range []string{TenantsWorkspace, ProvidersWorkspace} {
		list, err := r.in(parent).Resource(gvrWorkspace).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, ws := range list.Items {
			if c, _, _ := unstructured.NestedString(ws.Object, "spec", "cluster"); c != "" {
				out[c] = parent + ":" + ws.GetName()
			}
		}
	}
	return out
}

// unbindTenants deletes the export's bindings in the tenants msp-providers may reach.
func (r *Reconciler) unbindTenants(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider) error {
	tenants, err := r.tenants(ctx)
	if err != nil {
		return err
	}
	ws := ProviderWorkspace(sp.Name)
	for _, t := range tenants {
		b, forbidden, err := r.bindingIn(ctx, t.path, ws, sp.Spec.Export)
		if err != nil {
			return err
		}
		if forbidden || b == nil {
			continue
		}
		if err := r.in(t.path).Resource(gvrAPIBinding).Delete(ctx, b.GetName(), deleteOpts); err != nil && !isNotFound(err) {
			return fmt.Errorf("failed to remove the binding %s in %s: %w", b.GetName(), t.path, err)
		}
	}
	return nil
}

func isNotFound(err error) bool  { return apierrors.IsNotFound(err) }
func isForbidden(err error) bool { return apierrors.IsForbidden(err) }

func equalStatus(a, b onboardingv1alpha1.ServiceProviderStatus) bool {
	return apiequality.Semantic.DeepEqual(a, b)
}
