package kubernetes

import (
	"fmt"
	"testing"
	"time"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/sdk/launch"
)

// The Kubernetes provider passes the conformance kit (msp-conformance) with what it
// ships: its ServiceProvider, a Space sample, and a kubectl check that uses the Space's
// kubeconfig (writes and reads a ConfigMap in its namespace, may not list namespaces).
func TestConformance(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	name := "conf-k8s-" + fmt.Sprintf("%x", time.Now().UnixNano()&0xffff)
	spec := onboardingv1alpha1.ServiceProviderSpec{
		Tenants:        onboardingv1alpha1.TenantsSpec{Binding: onboardingv1alpha1.BindingOptIn},
		DeletionPolicy: onboardingv1alpha1.DeletionDelete,
	}
	p := env.RegisterProvider(t, framework.Registration{Name: name, Group: "kubernetes.msp.dev", Spec: spec})
	p.StartCoordinatorWith(t, launch.Coordinator{LeaderElect: true})
	p.StartKubernetesRuntime(t, env.Etcd(t), framework.ServiceletSpec{
		Runtime: "conf-k8s-de", Region: "eu-de", Country: "DE", Capacity: "cpu=8,memory=16Gi,pods=100",
	})
	env.WaitServiceProvider(t, name, onboardingv1alpha1.ConditionRunReady, true, "", 2*time.Minute)

	// What the provider ships: its ServiceProvider, a Space sample and a kubectl check.
	env.PassesShippedConformance(t, name, "../../providers/kubernetes/conformance", spec, "KUBECTL="+env.KubectlPath())
}
