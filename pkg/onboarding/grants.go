package onboarding

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/identity"
)

// ensureGrants keeps, in the provider workspace, the platform API bound, its coordinator's
// and front door's rights, its team's admin binding, and the admission webhook that sends
// writes of its kinds to its front door.
func (r *Reconciler) ensureGrants(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider) error {
	ws := ProviderWorkspace(sp.Name)
	objs := []*unstructured.Unstructured{platformBinding()}
	objs = append(objs, bootstrap.ProviderRBAC(ws, sp.Spec.Export, sp.Spec.Run.OrdersFrom)...)
	objs = append(objs, ownersBinding(sp.Spec.Owners))
	if fd := sp.Spec.Run.FrontDoor; fd != nil {
		objs = append(objs, bootstrap.AdmissionWebhook(sp.Spec.Export, fd.URL+bootstrap.AdmissionPath, fd.CABundle, identity.CoordinatorUser(ws)))
	}
	for _, o := range objs {
		if err := r.apply(ctx, ws, gvrOf(o), o); err != nil {
			return err
		}
	}
	if sp.Spec.Run.FrontDoor == nil {
		// A front door removed from the spec takes its webhook with it.
		err := r.in(ws).Resource(gvrWebhook).Delete(ctx, bootstrap.AdmissionWebhookName, deleteOpts)
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("failed to remove the admission webhook of %s: %w", ws, err)
		}
	}
	return nil
}

// platformBinding binds the platform API (ServiceRuntime, ServiceRuntimeClass).
func platformBinding() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apis.kcp.io/v1alpha2", "kind": "APIBinding",
		"metadata": map[string]any{"name": PlatformExport},
		"spec": map[string]any{"reference": map[string]any{"export": map[string]any{
			"path": PlatformWorkspace, "name": PlatformExport,
		}}},
	}}
}

// ownersBinding makes the provider team admin of its workspace.
func ownersBinding(owners []onboardingv1alpha1.Subject) *unstructured.Unstructured {
	subjects := []any{}
	for _, o := range owners {
		subjects = append(subjects, map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": o.Kind, "name": o.Name})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": "msp:provider-owners"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
		"subjects": subjects,
	}}
}

// gvrOf names the resource of the kinds msp-providers applies.
func gvrOf(o *unstructured.Unstructured) schema.GroupVersionResource {
	gv := o.GroupVersionKind().GroupVersion()
	resources := map[string]string{
		"APIBinding": "apibindings", "ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings",
		"ValidatingWebhookConfiguration": "validatingwebhookconfigurations", "Workspace": "workspaces",
		"WorkspaceType": "workspacetypes",
	}
	res, ok := resources[o.GetKind()]
	if !ok {
		panic("onboarding: no resource known for kind " + o.GetKind())
	}
	return gv.WithResource(res)
}
