// Package kubernetes is the Kubernetes provider: its runtimes are Kubernetes clusters,
// and its capability, a Space (kubernetes.msp.dev), is a namespace of its own on one,
// fenced by a ResourceQuota, a LimitRange and a NetworkPolicy, with a ServiceAccount
// that is admin there and nowhere else. The connection Secret is a kubeconfig for it.
package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kubernetesv1alpha1 "github.com/msp-dev/msp/apis/kubernetes/v1alpha1"
	"github.com/msp-dev/msp/sdk/capability"
)

// Defaults of the provider's workspace and export.
const (
	Workspace = "root:providers:kubernetes"
	Export    = "kubernetes.msp.dev"
)

// Kinds are the provider's capability kinds.
var Kinds = []capability.Kind{{GVK: kubernetesv1alpha1.SchemeGroupVersion.WithKind("Space"), Requests: Requests}}

// What a Space's quota holds when spec.resources does not say.
var defaultQuota = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("1"),
	corev1.ResourceMemory: resource.MustParse("1Gi"),
	corev1.ResourcePods:   resource.MustParse("10"),
}

// quotaResources map a Space's resources to its ResourceQuota's: what it asks for is
// what its pods may request.
var quotaResources = map[corev1.ResourceName]corev1.ResourceName{
	corev1.ResourceCPU:     corev1.ResourceRequestsCPU,
	corev1.ResourceMemory:  corev1.ResourceRequestsMemory,
	corev1.ResourcePods:    corev1.ResourcePods,
	corev1.ResourceStorage: corev1.ResourceRequestsStorage,
}

// Requests returns the quota defaults a Space uses for the resources its spec.resources
// does not name (1 cpu, 1Gi memory, 10 pods): the scheduler counts a Space by its quota.
func Requests(u *unstructured.Unstructured) corev1.ResourceList {
	named, _, _ := unstructured.NestedMap(u.Object, "spec", "resources")
	out := corev1.ResourceList{}
	for name, q := range defaultQuota {
		if _, ok := named[string(name)]; !ok {
			out[name] = q.DeepCopy()
		}
	}
	return out
}

// Quota is the ResourceQuota's hard limits of a Space whose requests (spec.resources
// with the defaults, as the scheduler counts them) are given.
func Quota(requests corev1.ResourceList) corev1.ResourceList {
	hard := corev1.ResourceList{}
	for name, q := range requests {
		if to, ok := quotaResources[name]; ok {
			hard[to] = q.DeepCopy()
		}
	}
	return hard
}

// Usage reads a quota's status.used back in a Space's terms.
func Usage(used corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for from, to := range quotaResources {
		if q, ok := used[to]; ok {
			out[from] = q.DeepCopy()
		}
	}
	return out
}

// maxNamePrefix keeps a derived namespace name within 63 characters: prefix, "-" and 8
// hex characters.
const maxNamePrefix = 54

// NamespaceName is the namespace of a Space on its cluster: spec.namespace, or the
// Space's name followed by "-" and the first 8 hex characters of sha256(cluster/
// namespace/name), so that two workspaces' spaces of one name get namespaces of their
// own on one cluster.
func NamespaceName(cluster, namespace, name, specNamespace string) string {
	if specNamespace != "" {
		return specNamespace
	}
	sum := sha256.Sum256([]byte(cluster + "/" + namespace + "/" + name))
	prefix := strings.Trim(name, "-")
	if len(prefix) > maxNamePrefix {
		prefix = strings.TrimRight(prefix[:maxNamePrefix], "-")
	}
	if prefix == "" {
		prefix = "space"
	}
	return prefix + "-" + hex.EncodeToString(sum[:])[:8]
}
