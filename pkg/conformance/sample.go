package conformance

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/onboarding"
)

// assessSample orders one sample in the test tenant and checks the capability contract
// on it.
func (r *runner) assessSample(sample *unstructured.Unstructured) {
	kind := sample.GetKind()
	obj := sample.DeepCopy()
	if obj.GetNamespace() == "" {
		obj.SetNamespace("default")
	}
	var gvr schema.GroupVersionResource
	path := func() string { return onboarding.TenantsWorkspace + ":" + r.tenant }
	r.step("ASSESS 2", kind+" is served in the tenant", func(ctx context.Context) error {
		return r.poll(ctx, func(ctx context.Context) (bool, string, error) {
			disco, err := discovery.NewDiscoveryClientForConfig(kcpconfig.ForWorkspace(r.o.Config, path()))
			if err != nil {
				return false, "", err
			}
			list, err := disco.ServerResourcesForGroupVersion(obj.GroupVersionKind().GroupVersion().String())
			if err != nil {
				return false, err.Error(), nil
			}
			for _, res := range list.APIResources {
				if res.Kind == kind && !strings.Contains(res.Name, "/") {
					gvr = obj.GroupVersionKind().GroupVersion().WithResource(res.Name)
					return true, "", nil
				}
			}
			return false, kind + " is not listed in " + obj.GetAPIVersion(), nil
		})
	})
	explain := func(ctx context.Context, field string) (string, error) {
		return r.kubectl(ctx, r.tenantK, "", "explain", gvr.Resource+field, "--api-version", obj.GetAPIVersion())
	}
	r.step("ASSESS 2", kind+" embeds the capability contract (spec.runtimeName, spec.placement, status.conditions)", func(ctx context.Context) error {
		for _, f := range []string{".spec.runtimeName", ".spec.placement", ".spec.deletionPolicy", ".status.conditions"} {
			if _, err := explain(ctx, f); err != nil {
				return fmt.Errorf("%s has no %s: embed platformv1alpha1.CapabilitySpec and CapabilityStatus inline (%v)", kind, strings.TrimPrefix(f, "."), err)
			}
		}
		return nil
	})
	r.step("ASSESS 2", kind+" is described (kubectl explain)", func(ctx context.Context) error {
		out, err := explain(ctx, "")
		if err != nil {
			return err
		}
		if i := strings.Index(out, "DESCRIPTION:"); i < 0 || strings.HasPrefix(strings.TrimSpace(out[i+len("DESCRIPTION:"):]), "<empty>") {
			return fmt.Errorf("%s has no description: write a doc comment on its Go type", kind)
		}
		return nil
	})
	r.step("ASSESS 2", kind+" with bad input is rejected at admission, naming the field", func(ctx context.Context) error {
		bad := obj.DeepCopy()
		bad.SetName(obj.GetName() + "-bad")
		if err := unstructured.SetNestedField(bad.Object, map[string]any{"storage": "-1Gi"}, "spec", "resources"); err != nil {
			return err
		}
		_, err := r.dyn(path()).Resource(gvr).Namespace(bad.GetNamespace()).Create(ctx, bad, metav1.CreateOptions{})
		if err == nil {
			_ = r.dyn(path()).Resource(gvr).Namespace(bad.GetNamespace()).Delete(ctx, bad.GetName(), metav1.DeleteOptions{})
			return fmt.Errorf("a %s with spec.resources.storage -1Gi was admitted", kind)
		}
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.resources") {
			return fmt.Errorf("a %s with spec.resources.storage -1Gi was refused without naming spec.resources: %v", kind, err)
		}
		return nil
	})
	var secretName string
	r.step("ASSESS 2", kind+" is Scheduled, Ready and Synced", func(ctx context.Context) error {
		if _, err := r.dyn(path()).Resource(gvr).Namespace(obj.GetNamespace()).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return err
		}
		return r.poll(ctx, func(ctx context.Context) (bool, string, error) {
			got, err := r.dyn(path()).Resource(gvr).Namespace(obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			for _, c := range []string{platformv1alpha1.ConditionScheduled, platformv1alpha1.ConditionReady, platformv1alpha1.ConditionSynced} {
				if ok, why := condition(got, c); !ok {
					return false, why, nil
				}
			}
			secretName, _, _ = unstructured.NestedString(got.Object, "status", "connectionSecretRef", "name")
			return true, "", nil
		})
	})
	var secret map[string][]byte
	r.step("ASSESS 2", kind+" has its connection Secret", func(ctx context.Context) error {
		if secretName == "" {
			return fmt.Errorf("status.connectionSecretRef is not set")
		}
		s, err := r.dyn(path()).Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace(obj.GetNamespace()).Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("the connection Secret %s: %v", secretName, err)
		}
		data, _, _ := unstructured.NestedStringMap(s.Object, "data")
		if len(data) == 0 {
			return fmt.Errorf("the connection Secret %s holds no data", secretName)
		}
		secret = decode(data)
		return nil
	})
	r.step("ASSESS 2", kind+" shows Ready in kubectl get", func(ctx context.Context) error {
		out, err := r.kubectl(ctx, r.tenantK, "", "get", gvr.Resource+"."+gvr.Group, obj.GetName(), "-n", obj.GetNamespace())
		if err != nil {
			return err
		}
		if !strings.Contains(out, "READY") || !strings.Contains(out, "True") {
			return fmt.Errorf("kubectl get shows no READY True column (add a printer column on the Ready condition):\n%s", out)
		}
		return nil
	})
	r.step("ASSESS 2", kind+" can be paused and resumed", func(ctx context.Context) error {
		if _, err := r.kubectl(ctx, r.tenantK, "", "annotate", gvr.Resource+"."+gvr.Group, obj.GetName(), "-n", obj.GetNamespace(), platformv1alpha1.AnnotationPaused+"=true", "--overwrite"); err != nil {
			return err
		}
		if err := r.waitReason(ctx, gvr, obj, platformv1alpha1.ConditionSynced, platformv1alpha1.ReasonReconcilePaused); err != nil {
			return fmt.Errorf("paused: %w", err)
		}
		if _, err := r.kubectl(ctx, r.tenantK, "", "annotate", gvr.Resource+"."+gvr.Group, obj.GetName(), "-n", obj.GetNamespace(), platformv1alpha1.AnnotationPaused+"-"); err != nil {
			return err
		}
		if err := r.waitReason(ctx, gvr, obj, platformv1alpha1.ConditionSynced, platformv1alpha1.ReasonReconcileSuccess); err != nil {
			return fmt.Errorf("resumed: %w", err)
		}
		return nil
	})
	if r.o.Check != nil {
		r.step("ASSESS 3", "the provider's check passes on "+kind, func(ctx context.Context) error { return r.o.Check(ctx, secret) })
	} else {
		r.report.Steps = append(r.report.Steps, Step{Phase: "ASSESS 3", Name: "the provider's check on " + kind, Skipped: "the provider supplies no check"})
	}
	r.step("ASSESS 2", kind+" with deletionPolicy Delete is removed with its Secret", func(ctx context.Context) error {
		if err := r.dyn(path()).Resource(gvr).Namespace(obj.GetNamespace()).Delete(ctx, obj.GetName(), metav1.DeleteOptions{}); err != nil {
			return err
		}
		return r.poll(ctx, func(ctx context.Context) (bool, string, error) {
			_, err := r.dyn(path()).Resource(gvr).Namespace(obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return false, "the capability is still there", nil
			}
			_, err = r.dyn(path()).Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace(obj.GetNamespace()).Get(ctx, secretName, metav1.GetOptions{})
			return apierrors.IsNotFound(err), "the connection Secret is still there", nil
		})
	})
}

func (r *runner) waitReason(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, condType, reason string) error {
	return r.poll(ctx, func(ctx context.Context) (bool, string, error) {
		got, err := r.dyn(onboarding.TenantsWorkspace+":"+r.tenant).Resource(gvr).Namespace(obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		_, why := condition(got, condType)
		return strings.Contains(why, "("+reason+")"), why, nil
	})
}

func condition(u *unstructured.Unstructured, condType string) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == condType {
			return m["status"] == "True", fmt.Sprintf("%s=%v (%v): %v", condType, m["status"], m["reason"], m["message"])
		}
	}
	return false, condType + " not reported yet"
}
