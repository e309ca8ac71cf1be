package onboarding

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
)

// export is what the provider published.
type export struct {
	identityHash string
	// resources as resource.group; gvrs to list them through the virtual workspace.
	resources []string
	gvrs      []gvrKind
	claims    []map[string]any
}

type gvrKind struct {
	group, version, resource, kind string
}

// AcceptedClaims are the permission claims the platform accepts for tenants: the
// connection Secrets servicelets write back and the events they report on.
var AcceptedClaims = []string{"secrets", "events"}

// readExport reads the provider's APIExport and its schemas in its workspace.
func (r *Reconciler) readExport(ctx context.Context, sp *onboardingv1alpha1.ServiceProvider) (*export, verdict, error) {
	ws := ProviderWorkspace(sp.Name)
	dyn := r.in(ws)
	ex, err := dyn.Resource(gvrAPIExport).Get(ctx, sp.Spec.Export, metav1.GetOptions{})
	if isNotFound(err) {
		return nil, verdict{false, onboardingv1alpha1.ReasonExportMissing, fmt.Sprintf(
			"the provider has not published its APIExport %s in %s yet: apply its APIResourceSchemas and APIExport there (kubectl ws %s; kubectl apply -f <its apiexport folder>)", sp.Spec.Export, ws, ws)}, nil
	}
	if err != nil {
		return nil, verdict{false, onboardingv1alpha1.ReasonExportMissing, fmt.Sprintf("cannot read the APIExport %s in %s: %v", sp.Spec.Export, ws, err)}, err
	}
	out := &export{}
	out.identityHash, _, _ = unstructured.NestedString(ex.Object, "status", "identityHash")
	if out.identityHash == "" {
		return nil, verdict{false, onboardingv1alpha1.ReasonExportInvalid, fmt.Sprintf("the APIExport %s in %s has no identity yet", sp.Spec.Export, ws)}, nil
	}
	resources, _, _ := unstructured.NestedSlice(ex.Object, "spec", "resources")
	if len(resources) == 0 {
		return nil, verdict{false, onboardingv1alpha1.ReasonExportInvalid, fmt.Sprintf("the APIExport %s in %s serves no resources: list its APIResourceSchemas in spec.resources", sp.Spec.Export, ws)}, nil
	}
	for _, res := range resources {
		m, _ := res.(map[string]any)
		name, _ := m["schema"].(string)
		sch, err := dyn.Resource(gvrSchema).Get(ctx, name, metav1.GetOptions{})
		if isNotFound(err) {
			return nil, verdict{false, onboardingv1alpha1.ReasonExportInvalid, fmt.Sprintf("the APIExport %s names the APIResourceSchema %s, which does not exist in %s: apply it", sp.Spec.Export, name, ws)}, nil
		}
		if err != nil {
			return nil, verdict{false, onboardingv1alpha1.ReasonExportInvalid, err.Error()}, err
		}
		group, _, _ := unstructured.NestedString(sch.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(sch.Object, "spec", "names", "plural")
		kind, _, _ := unstructured.NestedString(sch.Object, "spec", "names", "kind")
		if gaps := ContractGaps(sch); len(gaps) > 0 {
			return nil, verdict{false, onboardingv1alpha1.ReasonExportInvalid, contractMessage(kind, name, gaps)}, nil
		}
		versions, _, _ := unstructured.NestedSlice(sch.Object, "spec", "versions")
		for _, v := range versions {
			vm, _ := v.(map[string]any)
			if storage, _ := vm["storage"].(bool); storage {
				version, _ := vm["name"].(string)
				out.gvrs = append(out.gvrs, gvrKind{group, version, plural, kind})
			}
		}
		out.resources = append(out.resources, plural+"."+group)
	}
	claims, _, _ := unstructured.NestedSlice(ex.Object, "spec", "permissionClaims")
	var refused []string
	for _, c := range claims {
		m, _ := c.(map[string]any)
		group, _ := m["group"].(string)
		resource, _ := m["resource"].(string)
		if group != "" || !slices.Contains(AcceptedClaims, resource) {
			refused = append(refused, strings.TrimSuffix(resource+"."+group, "."))
			continue
		}
		out.claims = append(out.claims, m)
	}
	if len(refused) > 0 {
		return nil, verdict{false, onboardingv1alpha1.ReasonUnacceptableClaims, fmt.Sprintf(
			"the APIExport %s claims %s in tenant workspaces; the platform lets providers claim only %s: remove the other claims",
			sp.Spec.Export, strings.Join(refused, ", "), strings.Join(AcceptedClaims, " and "))}, nil
	}
	slices.Sort(out.resources)
	return out, verdict{true, onboardingv1alpha1.ReasonBound, ""}, nil
}
