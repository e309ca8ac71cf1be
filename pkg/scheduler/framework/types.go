package framework

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime/schema"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// Capability is what the scheduler knows of one capability document.
type Capability struct {
	// Cluster is the logical cluster (tenant workspace) the document lives in.
	Cluster string
	// Namespace and Name identify the document in its workspace.
	Namespace, Name string
	// GroupKind is the capability's kind, e.g. postgres.msp.dev/PostgresDatabase.
	GroupKind schema.GroupKind
	// Spec is the platform's part of the document's spec.
	Spec platformv1alpha1.CapabilitySpec
	// Requests is what the capability uses on a runtime: its kind's own requests and
	// spec.resources, the larger where both name a resource, plus exactly one of the
	// well-known resource "capabilities" (see RequestsOf).
	Requests corev1.ResourceList
	// Named are the resources the tenant named in spec.resources (with a positive
	// quantity, "capabilities" aside), sorted: a runtime must list each of them in its
	// capacity to fit (see NamedResources). The kind's own requests are not among them.
	Named []corev1.ResourceName
	// ShardRegion is the region of the kcp shard the capability's workspace is on, when
	// the provider keeps capabilities in their shard's region (the coordinator's
	// --shard-locality): only runtimes of that region fit. Empty: any region.
	ShardRegion string
}

// Key identifies the capability across workspaces.
func (c *Capability) Key() string {
	return c.Cluster + "|" + c.GroupKind.String() + "|" + c.Namespace + "/" + c.Name
}

// RequestsOf returns what a capability with this spec uses on its runtime: extra (the
// kind's own requests, such as a database's size as "storage") and spec.resources,
// plus exactly one "capabilities".
//
// The kind's own requests are a floor: where spec.resources names the same resource,
// the larger quantity counts, so a tenant cannot make a 1Ti database count as 1Mi.
// Quantities that are not positive (admission rejects them, but older objects may
// carry them) are ignored: they must never lower what a runtime counts as allocated.
func RequestsOf(spec *platformv1alpha1.CapabilitySpec, extra corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	raise := func(name corev1.ResourceName, q resource.Quantity) {
		if name == platformv1alpha1.ResourceCapabilities || !Positive(q) {
			return
		}
		if have, ok := out[name]; ok && have.Cmp(q) >= 0 {
			return
		}
		out[name] = q.DeepCopy()
	}
	for name, q := range extra {
		raise(name, q)
	}
	for name, q := range spec.Resources {
		raise(name, q)
	}
	// Always exactly one, whatever else says otherwise.
	out[platformv1alpha1.ResourceCapabilities] = *resource.NewQuantity(1, resource.DecimalSI)
	return out
}

// NamedResources returns the resources spec.resources names with a positive quantity,
// other than "capabilities", sorted by name (see Capability.Named).
func NamedResources(spec *platformv1alpha1.CapabilitySpec) []corev1.ResourceName {
	var out []corev1.ResourceName
	for name, q := range spec.Resources {
		if name != platformv1alpha1.ResourceCapabilities && Positive(q) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Positive reports whether q is greater than zero. Only positive quantities count
// towards a runtime's allocation.
func Positive(q resource.Quantity) bool { return q.Sign() > 0 }

// RuntimeInfo is a runtime as the scheduler sees it: its twin, and what is allocated on
// it by the capabilities assigned to it, including decisions not yet observed (assumed).
type RuntimeInfo struct {
	// Runtime is the ServiceRuntime object. Plugins must not modify it.
	Runtime *platformv1alpha1.ServiceRuntime
	// Allocated is the sum of the requests of the capabilities on this runtime.
	Allocated corev1.ResourceList
	// Count is the number of capabilities on this runtime.
	Count int
	// PerTenant counts the capabilities on this runtime per workspace and kind
	// (key: cluster + "|" + group/kind, see TenantKey).
	PerTenant map[string]int
	// NewestHeartbeat is the freshest heartbeat of any runtime in the snapshot (zero:
	// unknown), to tell one silent runtime from a lagging control plane.
	NewestHeartbeat time.Time
}

// NewestHeartbeat returns the freshest heartbeat among runtimes, or zero when none
// reported.
func NewestHeartbeat(runtimes []*platformv1alpha1.ServiceRuntime) time.Time {
	var newest time.Time
	for _, rt := range runtimes {
		if hb := rt.Status.LastHeartbeatTime; hb != nil && hb.After(newest) {
			newest = hb.Time
		}
	}
	return newest
}

// Name is the runtime's name.
func (r *RuntimeInfo) Name() string { return r.Runtime.Name }

// TenantKey is the key of RuntimeInfo.PerTenant for a capability.
func TenantKey(cluster string, gk schema.GroupKind) string { return cluster + "|" + gk.String() }

// Snapshot is the state one scheduling cycle works on. It is not modified by plugins.
type Snapshot struct {
	// Runtimes are all known runtimes, in a stable order.
	Runtimes []*RuntimeInfo
	// Now is the time of the cycle.
	Now time.Time
	// HeartbeatTimeout is how old a runtime's heartbeat may be for it to count as Ready.
	HeartbeatTimeout time.Duration
}

// Get returns the runtime with the given name, or nil.
func (s *Snapshot) Get(name string) *RuntimeInfo {
	for _, r := range s.Runtimes {
		if r.Runtime.Name == name {
			return r
		}
	}
	return nil
}
