package conformance

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/bootstrap"
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
	var first ordered
	r.step("ASSESS 2", kind+" is Scheduled, Ready and Synced, with its connection Secret", func(ctx context.Context) (err error) {
		first, err = r.order(ctx, gvr, obj)
		return err
	})
	secret := first.secret
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
		if err := r.remove(ctx, gvr, obj, first.secretName); err != nil {
			return err
		}
		return r.checkFails(ctx, first.secret, "deleted with deletionPolicy Delete")
	})

	// Orphan, then ObserveOnly adopting what was orphaned, then Full adopting it again
	// to delete it: nothing is lost, nothing is left.
	kept := obj.DeepCopy()
	kept.SetName(obj.GetName() + "-kept")
	kept.SetResourceVersion("")
	_ = unstructured.SetNestedField(kept.Object, string(platformv1alpha1.DeletionPolicyOrphan), "spec", "deletionPolicy")
	var orphaned ordered
	r.step("ASSESS 2", kind+" with deletionPolicy Orphan leaves its thing in place", func(ctx context.Context) (err error) {
		if orphaned, err = r.order(ctx, gvr, kept); err != nil {
			return err
		}
		if err := r.remove(ctx, gvr, kept, ""); err != nil {
			return err
		}
		return r.checkWorks(ctx, orphaned.secret, "orphaned")
	})
	adopt := func(policy platformv1alpha1.ManagementPolicy) *unstructured.Unstructured {
		o := kept.DeepCopy()
		_ = unstructured.SetNestedField(o.Object, orphaned.runtime, "spec", "runtimeName")
		_ = unstructured.SetNestedField(o.Object, string(policy), "spec", "managementPolicy")
		if policy == platformv1alpha1.ManagementPolicyFull {
			_ = unstructured.SetNestedField(o.Object, string(platformv1alpha1.DeletionPolicyDelete), "spec", "deletionPolicy")
		}
		return o
	}
	r.step("ASSESS 2", kind+" with managementPolicy ObserveOnly adopts the orphaned thing and leaves it on deletion", func(ctx context.Context) error {
		// Naming a runtime in spec.runtimeName takes the provider's leave, as a provider
		// grants a tenant that adopts what it left on one of its runtimes.
		if err := r.permit(ctx, orphaned.runtime); err != nil {
			return err
		}
		o := adopt(platformv1alpha1.ManagementPolicyObserveOnly)
		if _, err := r.order(ctx, gvr, o); err != nil {
			return fmt.Errorf("the orphaned thing on runtime %s: %w", orphaned.runtime, err)
		}
		if err := r.remove(ctx, gvr, o, ""); err != nil {
			return err
		}
		return r.checkWorks(ctx, orphaned.secret, "deleted while ObserveOnly")
	})
	r.step("ASSESS 2", kind+" with managementPolicy Full adopts the orphaned thing and deletes it", func(ctx context.Context) error {
		o := adopt(platformv1alpha1.ManagementPolicyFull)
		adopted, err := r.order(ctx, gvr, o)
		if err != nil {
			return fmt.Errorf("the orphaned thing on runtime %s: %w", orphaned.runtime, err)
		}
		if err := r.remove(ctx, gvr, o, adopted.secretName); err != nil {
			return err
		}
		return r.checkFails(ctx, orphaned.secret, "adopted and deleted")
	})
}

// ordered is what order found of a capability.
type ordered struct {
	secretName string
	secret     map[string][]byte
	// runtime hosts it.
	runtime string
}

// order creates obj and waits until it is Scheduled, Ready and Synced with a connection
// Secret that holds data.
func (r *runner) order(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) (ordered, error) {
	path := onboarding.TenantsWorkspace + ":" + r.tenant
	res := r.dyn(path).Resource(gvr).Namespace(obj.GetNamespace())
	var out ordered
	if _, err := res.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return out, err
	}
	if err := r.poll(ctx, func(ctx context.Context) (bool, string, error) {
		got, err := res.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		for _, c := range []string{platformv1alpha1.ConditionScheduled, platformv1alpha1.ConditionReady, platformv1alpha1.ConditionSynced} {
			if ok, why := condition(got, c); !ok {
				return false, why, nil
			}
		}
		out.secretName, _, _ = unstructured.NestedString(got.Object, "status", "connectionSecretRef", "name")
		out.runtime, _, _ = unstructured.NestedString(got.Object, "spec", "runtimeName")
		return true, "", nil
	}); err != nil {
		return out, err
	}
	if out.secretName == "" {
		return out, fmt.Errorf("status.connectionSecretRef is not set")
	}
	var data map[string]string
	if err := r.poll(ctx, func(ctx context.Context) (bool, string, error) {
		s, err := r.dyn(path).Resource(gvrSecret).Namespace(obj.GetNamespace()).Get(ctx, out.secretName, metav1.GetOptions{})
		if err != nil {
			return false, "the connection Secret " + out.secretName + ": " + err.Error(), nil
		}
		data, _, _ = unstructured.NestedStringMap(s.Object, "data")
		return len(data) > 0, "the connection Secret " + out.secretName + " holds no data", nil
	}); err != nil {
		return out, err
	}
	out.secret = decode(data)
	return out, nil
}

// remove deletes obj and waits until it, and its connection Secret when secretName is
// set, are gone.
func (r *runner) remove(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, secretName string) error {
	path := onboarding.TenantsWorkspace + ":" + r.tenant
	res := r.dyn(path).Resource(gvr).Namespace(obj.GetNamespace())
	if err := res.Delete(ctx, obj.GetName(), metav1.DeleteOptions{}); err != nil {
		return err
	}
	return r.poll(ctx, func(ctx context.Context) (bool, string, error) {
		got, err := res.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			msg := "the capability is still there"
			if got != nil {
				_, why := condition(got, platformv1alpha1.ConditionSynced)
				msg += ": " + why
			}
			return false, msg, nil
		}
		if secretName == "" {
			return true, "", nil
		}
		_, err = r.dyn(path).Resource(gvrSecret).Namespace(obj.GetNamespace()).Get(ctx, secretName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), "the connection Secret " + secretName + " is still there", nil
	})
}

// permit lets the test tenant name runtime in spec.runtimeName (the provider's grant of
// the verb use on it); TEARDOWN takes it back.
func (r *runner) permit(ctx context.Context, runtime string) error {
	ws, err := r.dyn(onboarding.TenantsWorkspace).Resource(gvrWorkspace).Get(ctx, r.tenant, metav1.GetOptions{})
	if err != nil {
		return err
	}
	cluster, _, _ := unstructured.NestedString(ws.Object, "spec", "cluster")
	if cluster == "" {
		return fmt.Errorf("the tenant workspace %s names no logical cluster", r.tenant)
	}
	grant := bootstrap.UseRuntimes(cluster, runtime)
	if _, err := bootstrap.Apply(ctx, bootstrap.Options{Config: r.o.Config, Timeout: r.o.Timeout}, onboarding.ProviderWorkspace(r.o.ServiceProvider.Name), grant...); err != nil {
		return fmt.Errorf("failed to let the test tenant use runtime %s: %w", runtime, err)
	}
	r.granted = append(r.granted, grant...)
	return nil
}

// checkWorks runs the provider's check (if any) on a thing that must still work.
func (r *runner) checkWorks(ctx context.Context, secret map[string][]byte, what string) error {
	if r.o.Check == nil {
		return nil
	}
	if err := r.o.Check(ctx, secret); err != nil {
		return fmt.Errorf("the provider's check fails on the thing %s, which must be left in place: %w", what, err)
	}
	return nil
}

// checkFails runs the provider's check (if any) on a thing that must be gone.
func (r *runner) checkFails(ctx context.Context, secret map[string][]byte, what string) error {
	if r.o.Check == nil {
		return nil
	}
	return r.poll(ctx, func(ctx context.Context) (bool, string, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := r.o.Check(cctx, secret); err == nil {
			return false, "the provider's check still passes on the thing " + what + ": it was not removed", nil
		}
		return true, "", nil
	})
}

var gvrSecret = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

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
