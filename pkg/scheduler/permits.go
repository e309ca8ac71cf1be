package scheduler

import (
	"context"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/identity"
)

// UseVerb is the verb a provider grants on serviceruntimes to let a tenant workspace
// name a runtime in spec.runtimeName.
const UseVerb = "use"

// SARPermits asks kcp, in the provider workspace c addresses, whether a tenant workspace
// may use a runtime: a SubjectAccessReview for verb use on the named serviceruntime, as
// the tenant's subject (identity.TenantSubject).
func SARPermits(c client.Client) func(ctx context.Context, cluster, runtime string) (bool, error) {
	return func(ctx context.Context, cluster, runtime string) (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   identity.TenantSubject(cluster),
			Groups: []string{identity.TenantsGroup},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: platformv1alpha1.GroupName, Resource: "serviceruntimes", Name: runtime, Verb: UseVerb,
			},
		}}
		if err := c.Create(ctx, sar); err != nil {
			return false, err
		}
		return sar.Status.Allowed, nil
	}
}

// Scheme holds every type a coordinator reads: Kubernetes' own, msp's platform types
// and kcp's APIs (the export's endpoint slices).
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(platformv1alpha1.AddToScheme(s))
	utilruntime.Must(apisv1alpha1.AddToScheme(s))
	return s
}
