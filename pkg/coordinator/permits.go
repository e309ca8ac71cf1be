package coordinator

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/identity"
)

// UseVerb is the verb a provider grants on serviceruntimes to let a tenant workspace
// name a runtime in spec.runtimeName.
const UseVerb = "use"

// sarPermits asks kcp, in the provider workspace c addresses, whether a tenant workspace
// may use a runtime: a SubjectAccessReview for verb use on the named serviceruntime, as
// the tenant's subject (identity.TenantSubject).
func sarPermits(c client.Client) func(ctx context.Context, cluster, runtime string) (bool, error) {
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
