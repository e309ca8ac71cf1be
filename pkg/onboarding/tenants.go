package onboarding

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
)

var deleteOpts = metav1.DeleteOptions{}

// ensureDefaultBindings keeps the tenant WorkspaceType's default bindings to the exports
// of the ServiceProviders that bind by default, are not being deleted and have published
// their export (a default binding to an export that does not exist would hold every new
// tenant workspace in its initialization). msp-providers owns that field. It returns the
// name of the ServiceProvider that binds sp's export by default in its stead, if any.
func (r *Reconciler) ensureDefaultBindings(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider) (string, error) {
	var list onboardingv1alpha1.ServiceProviderList
	if err := r.Client.List(ctx, &list); err != nil {
		return "", err
	}
	for i := range list.Items {
		if list.Items[i].Name == sp.Name {
			list.Items[i].Status.IdentityHash = sp.Status.IdentityHash
		}
	}
	want := DefaultBindings(list.Items)
	shadow := ShadowedBy(list.Items, sp)
	wt, err := r.in(PlatformWorkspace).Resource(gvrWorkspaceType).Get(ctx, TenantType, metav1.GetOptions{})
	if err != nil {
		return shadow, fmt.Errorf("failed to read the tenant WorkspaceType %s:%s: %w", PlatformWorkspace, TenantType, err)
	}
	have, _, _ := unstructured.NestedSlice(wt.Object, "spec", "defaultAPIBindings")
	if apiequality.Semantic.DeepEqual(normalize(have), want) {
		return shadow, nil
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "WorkspaceType",
		"metadata": map[string]any{"name": TenantType},
		"spec":     map[string]any{"defaultAPIBindings": want},
	}}
	return shadow, r.apply(ctx, PlatformWorkspace, gvrWorkspaceType, obj)
}

// bindsByDefault tells whether sp's export belongs in new tenants by default.
func bindsByDefault(sp *onboardingv1alpha1.ServiceProvider) bool {
	return sp.DeletionTimestamp.IsZero() && sp.Status.IdentityHash != "" && bindingOf(sp) == onboardingv1alpha1.BindingDefault
}

// defaultWinners picks, per export name (an API group), the ServiceProvider whose export
// new tenants bind: a workspace binds one export per API group, so of several that bind
// one group by default the oldest wins (then the first by name).
func defaultWinners(sps []onboardingv1alpha1.ServiceProvider) map[string]*onboardingv1alpha1.ServiceProvider {
	win := map[string]*onboardingv1alpha1.ServiceProvider{}
	for i := range sps {
		sp := &sps[i]
		if !bindsByDefault(sp) {
			continue
		}
		w := win[sp.Spec.Export]
		if w == nil || sp.CreationTimestamp.Before(&w.CreationTimestamp) ||
			sp.CreationTimestamp.Equal(&w.CreationTimestamp) && sp.Name < w.Name {
			win[sp.Spec.Export] = sp
		}
	}
	return win
}

// ShadowedBy names the ServiceProvider that new tenants bind for sp's export instead of
// sp ("" when sp's own export is the default, or sp does not bind by default).
func ShadowedBy(sps []onboardingv1alpha1.ServiceProvider, sp *onboardingv1alpha1.ServiceProvider) string {
	if bindingOf(sp) != onboardingv1alpha1.BindingDefault {
		return ""
	}
	if w := defaultWinners(sps)[sp.Spec.Export]; w != nil && w.Name != sp.Name {
		return w.Name
	}
	return ""
}

// DefaultBindings are the tenant WorkspaceType's default bindings for these
// ServiceProviders, one per export name, sorted by path.
func DefaultBindings(sps []onboardingv1alpha1.ServiceProvider) []any {
	var paths []string
	exports := map[string]string{}
	for export, sp := range defaultWinners(sps) {
		p := ProviderWorkspace(sp.Name)
		paths = append(paths, p)
		exports[p] = export
	}
	slices.Sort(paths)
	out := []any{}
	for _, p := range paths {
		out = append(out, map[string]any{"path": p, "export": exports[p]})
	}
	return out
}

func normalize(in []any) []any {
	out := []any{}
	for _, e := range in {
		m, _ := e.(map[string]any)
		out = append(out, map[string]any{"path": m["path"], "export": m["export"]})
	}
	return out
}

func bindingOf(sp *onboardingv1alpha1.ServiceProvider) onboardingv1alpha1.TenantBinding {
	if sp.Spec.Tenants.Binding == "" {
		return onboardingv1alpha1.BindingDefault
	}
	return sp.Spec.Tenants.Binding
}

// Selected tells whether a tenant Workspace (its labels) gets the provider's export.
func Selected(sp *onboardingv1alpha1.ServiceProvider, labels map[string]string) bool {
	choice := labels[LabelPrefix+sp.Name]
	if bindingOf(sp) == onboardingv1alpha1.BindingOptIn {
		return choice == OptIn
	}
	return choice != OptOut
}

// tenant is one tenant workspace.
type tenant struct {
	name, path, cluster string
	labels              map[string]string
}

// tenants lists the Ready tenant workspaces: those of the tenant WorkspaceType under
// root:tenants.
func (r *Reconciler) tenants(ctx context.Context) ([]tenant, error) {
	list, err := r.in(TenantsWorkspace).Resource(gvrWorkspace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to list the tenant workspaces in %s: %w", TenantsWorkspace, err)
	}
	var out []tenant
	for _, ws := range list.Items {
		typeName, _, _ := unstructured.NestedString(ws.Object, "spec", "type", "name")
		typePath, _, _ := unstructured.NestedString(ws.Object, "spec", "type", "path")
		phase, _, _ := unstructured.NestedString(ws.Object, "status", "phase")
		if typeName != TenantType || typePath != PlatformWorkspace || phase != "Ready" || !ws.GetDeletionTimestamp().IsZero() {
			continue
		}
		cluster, _, _ := unstructured.NestedString(ws.Object, "spec", "cluster")
		out = append(out, tenant{name: ws.GetName(), path: TenantsWorkspace + ":" + ws.GetName(), cluster: cluster, labels: ws.GetLabels()})
	}
	return out, nil
}

// bindingIn finds the APIBinding of the provider's export in a tenant. forbidden says
// the tenant has not let msp-providers look.
func (r *Reconciler) bindingIn(ctx context.Context, tenantPath, providerPath, exportName string) (b *unstructured.Unstructured, forbidden bool, err error) {
	list, err := r.in(tenantPath).Resource(gvrAPIBinding).List(ctx, metav1.ListOptions{})
	if isForbidden(err) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("failed to list the APIBindings of %s: %w", tenantPath, err)
	}
	for i := range list.Items {
		path, _, _ := unstructured.NestedString(list.Items[i].Object, "spec", "reference", "export", "path")
		name, _, _ := unstructured.NestedString(list.Items[i].Object, "spec", "reference", "export", "name")
		if path == providerPath && name == exportName {
			return &list.Items[i], false, nil
		}
	}
	return nil, false, nil
}

// bindTenants binds the export in every selected tenant that lets msp-providers, and
// counts.
func (r *Reconciler) bindTenants(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider, ws string, exp *export) (verdict, error) {
	tenants, err := r.tenants(ctx)
	if err != nil {
		return verdict{false, onboardingv1alpha1.ReasonBinding, err.Error()}, err
	}
	var st onboardingv1alpha1.TenantsStatus
	var unreachable, pending []string
	var errs []string
	for _, t := range tenants {
		if !Selected(sp, t.labels) {
			continue
		}
		st.Selected++
		b, forbidden, err := r.bindingIn(ctx, t.path, ws, sp.Spec.Export)
		switch {
		case err != nil:
			errs = append(errs, err.Error())
			continue
		case forbidden:
			st.Unreachable++
			unreachable = append(unreachable, t.path)
			continue
		case b == nil:
			if err := r.createBinding(ctx, sp, t.path, ws, exp); err != nil {
				if isForbidden(err) {
					st.Unreachable++
					unreachable = append(unreachable, t.path)
				} else {
					errs = append(errs, err.Error())
				}
				continue
			}
			r.Recorder.Eventf(sp, "Normal", "Bound", "bound %s in the tenant workspace %s", sp.Spec.Export, t.path)
			pending = append(pending, t.path)
			continue
		}
		if phase, _, _ := unstructured.NestedString(b.Object, "status", "phase"); phase == "Bound" {
			st.Bound++
		} else {
			pending = append(pending, t.path)
		}
	}
	sp.Status.Tenants = st
	msg := fmt.Sprintf("%s serves %s, bound in %d of %d tenant workspaces", sp.Spec.Export, strings.Join(exp.resources, ", "), st.Bound, st.Selected)
	if len(unreachable) > 0 {
		msg += fmt.Sprintf("; %d have not let msp bind there (grant %s the ClusterRole %s in them): %s", len(unreachable), User, BindingsRole, listSome(unreachable))
	}
	if len(errs) > 0 {
		return verdict{false, onboardingv1alpha1.ReasonBinding, msg + "; " + strings.Join(errs, "; ")}, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	if len(pending) > 0 {
		return verdict{false, onboardingv1alpha1.ReasonBinding, msg + "; binding in " + listSome(pending)}, nil
	}
	return verdict{true, onboardingv1alpha1.ReasonBound, msg}, nil
}

// createBinding binds the export in a tenant, accepting the claims the platform accepts.
func (r *Reconciler) createBinding(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider, tenantPath, ws string, exp *export) error {
	claims := []any{}
	for _, c := range exp.claims {
		verbs, _ := c["verbs"].([]any)
		claims = append(claims, map[string]any{
			"group": "", "resource": c["resource"], "verbs": verbs,
			"selector": map[string]any{"matchAll": true}, "state": "Accepted",
		})
	}
	b := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apis.kcp.io/v1alpha2", "kind": "APIBinding",
		"metadata": map[string]any{
			"name":        sp.Spec.Export,
			"annotations": map[string]any{AnnotationServiceProvider: sp.Name},
		},
		"spec": map[string]any{
			"reference":        map[string]any{"export": map[string]any{"path": ws, "name": sp.Spec.Export}},
			"permissionClaims": claims,
		},
	}}
	_, err := r.in(tenantPath).Resource(gvrAPIBinding).Create(ctx, b, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("failed to bind %s in %s: %w", sp.Spec.Export, tenantPath, err)
	}
	return nil
}

// listSome names at most three items and counts the rest.
func listSome(items []string) string {
	if len(items) <= 3 {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:3], ", "), len(items)-3)
}

// BindingsGrant is what a tenant workspace carries so that msp-providers may bind
// providers there: the ClusterRole msp:provider-bindings (APIBindings only) bound to its
// user. deploy/tenant/rbac-msp-provider-bindings.yaml is the same as a file.
func BindingsGrant() []*unstructured.Unstructured {
	role := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": BindingsRole},
		"rules": []any{
			map[string]any{"nonResourceURLs": []any{"/"}, "verbs": []any{"access"}},
			map[string]any{"apiGroups": []any{"apis.kcp.io"}, "resources": []any{"apibindings"},
				"verbs": []any{"get", "list", "watch", "create", "update", "patch", "delete"}},
		},
	}}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": BindingsRole},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": BindingsRole},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": User}},
	}}
	return []*unstructured.Unstructured{role, binding}
}
