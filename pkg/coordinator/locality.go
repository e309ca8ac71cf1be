package coordinator

import (
	"context"
	"net/url"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/multicluster-runtime/pkg/multicluster"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// shardRegions tells the region of the kcp shard a tenant workspace is on: the
// workspace was engaged through its shard's virtual-workspace endpoint, and the
// provider's partitioned endpoint slices (label platform.msp.dev/region, one per region,
// each listing the endpoints of that region's shards) name the region of each endpoint.
// kcp's own mechanism for locality: a Partition selects the shards by their region
// label, and an APIExportEndpointSlice with spec.partition lists only theirs.
type shardRegions struct {
	slices client.Reader // the provider workspace (the manager's cache)
	hosts  interface{ hostOf(cluster string) string }
}

// regionLookupTimeout bounds one read of the slices from the cache.
const regionLookupTimeout = 5 * time.Second

// of returns the region of the shard the workspace is on; "" when no labelled slice
// lists its endpoint.
func (s *shardRegions) of(name multicluster.ClusterName) string {
	host := s.hosts.hostOf(name.String())
	if host == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), regionLookupTimeout)
	defer cancel()
	var slices apisv1alpha1.APIExportEndpointSliceList
	if err := s.slices.List(ctx, &slices, client.HasLabels{platformv1alpha1.LabelShardRegion}); err != nil {
		return ""
	}
	for _, slice := range slices.Items {
		for _, e := range slice.Status.APIExportEndpoints {
			if u, err := url.Parse(e.URL); err == nil && u.Host == host {
				return slice.Labels[platformv1alpha1.LabelShardRegion]
			}
		}
	}
	return ""
}
