package onboarding

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/bootstrap"
)

// Unstructured turns a ServiceProvider into the object kubectl would apply.
func Unstructured(sp *onboardingv1alpha1.ServiceProvider) *unstructured.Unstructured {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(sp)
	if err != nil {
		panic(err) // a typed object always converts
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(onboardingv1alpha1.SchemeGroupVersion.String())
	u.SetKind("ServiceProvider")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u
}

// Register does what a provider team does to join: it applies the ServiceProvider in
// root:platform, waits for msp-providers to make the provider workspace, publishes the
// provider's APIResourceSchemas and APIExport there, and waits until the
// ServiceProvider reports APIReady. cfg is an identity allowed to do both (the operator,
// or an owner of the provider workspace who may create ServiceProviders).
func Register(ctx context.Context, cfg *rest.Config, sp *onboardingv1alpha1.ServiceProvider, export []*unstructured.Unstructured, timeout time.Duration) error {
	o := bootstrap.Options{Config: cfg, Timeout: timeout}
	if _, err := bootstrap.Apply(ctx, o, PlatformWorkspace, Unstructured(sp)); err != nil {
		return err
	}
	if err := WaitWorkspace(ctx, cfg, sp.Name, timeout); err != nil {
		return err
	}
	if len(export) > 0 {
		if _, err := bootstrap.Apply(ctx, o, ProviderWorkspace(sp.Name), export...); err != nil {
			return fmt.Errorf("failed to publish the export of %s: %w", sp.Name, err)
		}
	}
	return WaitCondition(ctx, cfg, sp.Name, onboardingv1alpha1.ConditionAPIReady, timeout)
}

// WaitWorkspace waits until the provider workspace of the ServiceProvider name is Ready.
func WaitWorkspace(ctx context.Context, cfg *rest.Config, name string, timeout time.Duration) error {
	r := &Reconciler{Config: cfg}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ws, err := r.in(ProvidersWorkspace).Resource(gvrWorkspace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		phase, _, _ := unstructured.NestedString(ws.Object, "status", "phase")
		last = "phase " + phaseOr(phase)
		return phase == "Ready", nil
	})
	if err != nil {
		return fmt.Errorf("the provider workspace %s did not become Ready (is msp-providers running?): %s", ProviderWorkspace(name), last)
	}
	return nil
}

// WaitCondition waits until the ServiceProvider name reports condType True.
func WaitCondition(ctx context.Context, cfg *rest.Config, name, condType string, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		sp, err := Get(ctx, cfg, name)
		if err != nil {
			if ctx.Err() == nil {
				last = err.Error()
			}
			return false, nil
		}
		ok, why := ConditionOf(sp, condType)
		last = why
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("ServiceProvider %s is not %s: %s", name, condType, last)
	}
	return nil
}

// Get reads a ServiceProvider.
func Get(ctx context.Context, cfg *rest.Config, name string) (*onboardingv1alpha1.ServiceProvider, error) {
	r := &Reconciler{Config: cfg}
	u, err := r.in(PlatformWorkspace).Resource(onboardingv1alpha1.SchemeGroupVersion.WithResource("serviceproviders")).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	sp := &onboardingv1alpha1.ServiceProvider{}
	return sp, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, sp)
}

// ConditionOf tells whether a condition is True, and what it says.
func ConditionOf(sp *onboardingv1alpha1.ServiceProvider, condType string) (bool, string) {
	for _, c := range sp.Status.Conditions {
		if c.Type == condType {
			return c.Status == metav1.ConditionTrue, fmt.Sprintf("%s=%s (%s): %s", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return false, condType + " not reported yet"
}
