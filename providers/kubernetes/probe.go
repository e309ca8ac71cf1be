package kubernetes

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Probe reports the cluster usable when its API server is ready.
func (d *Driver) Probe(ctx context.Context) error {
	body, err := d.opts.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("the cluster's API server at %s is not ready: %v", d.opts.Server, err)
	}
	if string(body) != "ok" {
		return fmt.Errorf("the cluster's API server at %s is not ready: %s", d.opts.Server, body)
	}
	return nil
}

// nodeResources map a node's allocatable resources to a Space's.
var nodeResources = map[corev1.ResourceName]corev1.ResourceName{
	corev1.ResourceCPU: corev1.ResourceCPU, corev1.ResourceMemory: corev1.ResourceMemory,
	corev1.ResourcePods: corev1.ResourcePods, corev1.ResourceEphemeralStorage: corev1.ResourceStorage,
}

// Capacity is what the cluster's nodes can hold, in a Space's terms: the sum of their
// allocatable cpu, memory and pods (ephemeral storage as storage). A cluster without
// nodes reports nothing, and the capacity the runtime was registered with counts.
func (d *Driver) Capacity(ctx context.Context) (corev1.ResourceList, error) {
	nodes, err := d.opts.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to list the cluster's nodes: %w", err)
	}
	if len(nodes.Items) == 0 {
		return nil, nil
	}
	out := corev1.ResourceList{}
	for _, n := range nodes.Items {
		for from, to := range nodeResources {
			if q, ok := n.Status.Allocatable[from]; ok {
				addTo(out, corev1.ResourceList{to: q})
			}
		}
	}
	return out, nil
}
