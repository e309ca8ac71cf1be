package onboarding

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/bootstrap"
)

func provider(name string, binding onboardingv1alpha1.TenantBinding) *onboardingv1alpha1.ServiceProvider {
	return &onboardingv1alpha1.ServiceProvider{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: onboardingv1alpha1.ServiceProviderSpec{
			Export:  name + ".msp.dev",
			Tenants: onboardingv1alpha1.TenantsSpec{Binding: binding},
		},
	}
}

func TestSelected(t *testing.T) {
	const name = "postgres"
	key := LabelPrefix + name
	tests := []struct {
		name    string
		binding onboardingv1alpha1.TenantBinding
		labels  map[string]string
		want    bool
	}{
		{"empty binding, no labels", "", nil, true},
		{"Default, no labels", onboardingv1alpha1.BindingDefault, nil, true},
		{"empty binding, opt-out", "", map[string]string{key: OptOut}, false},
		{"Default, opt-out", onboardingv1alpha1.BindingDefault, map[string]string{key: OptOut}, false},
		{"Default, opt-in", onboardingv1alpha1.BindingDefault, map[string]string{key: OptIn}, true},
		{"Default, other value", onboardingv1alpha1.BindingDefault, map[string]string{key: "maybe"}, true},
		{"Default, empty value", onboardingv1alpha1.BindingDefault, map[string]string{key: ""}, true},
		{"Default, other provider opts out", onboardingv1alpha1.BindingDefault, map[string]string{LabelPrefix + "redis": OptOut}, true},
		{"Default, provider whose name is a prefix opts out", onboardingv1alpha1.BindingDefault, map[string]string{LabelPrefix + "postgres-ha": OptOut}, true},
		{"Default, unprefixed label", onboardingv1alpha1.BindingDefault, map[string]string{name: OptOut}, true},
		{"OptIn, no labels", onboardingv1alpha1.BindingOptIn, nil, false},
		{"OptIn, opt-in", onboardingv1alpha1.BindingOptIn, map[string]string{key: OptIn}, true},
		{"OptIn, opt-out", onboardingv1alpha1.BindingOptIn, map[string]string{key: OptOut}, false},
		{"OptIn, other value", onboardingv1alpha1.BindingOptIn, map[string]string{key: "yes"}, false},
		{"OptIn, upper-case value", onboardingv1alpha1.BindingOptIn, map[string]string{key: "OPT-IN"}, false},
		{"OptIn, other provider opts in", onboardingv1alpha1.BindingOptIn, map[string]string{LabelPrefix + "redis": OptIn}, false},
		{"OptIn, opt-in among other labels", onboardingv1alpha1.BindingOptIn, map[string]string{"team": "a", key: OptIn, LabelPrefix + "redis": OptOut}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Selected(provider(name, tt.binding), tt.labels); got != tt.want {
				t.Errorf("Selected(binding %q, labels %v) = %v, want %v", tt.binding, tt.labels, got, tt.want)
			}
		})
	}
}

func TestDefaultBindings(t *testing.T) {
	sp := func(name string, binding onboardingv1alpha1.TenantBinding, hash string, deleting bool) onboardingv1alpha1.ServiceProvider {
		p := provider(name, binding)
		p.Status.IdentityHash = hash
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
		}
		return *p
	}
	entry := func(name string) any {
		return map[string]any{"path": "root:providers:" + name, "export": name + ".msp.dev"}
	}
	tests := []struct {
		name string
		sps  []onboardingv1alpha1.ServiceProvider
		want []any
	}{
		{"nil", nil, []any{}},
		{"empty", []onboardingv1alpha1.ServiceProvider{}, []any{}},
		{"empty binding means Default", []onboardingv1alpha1.ServiceProvider{sp("a", "", "h", false)}, []any{entry("a")}},
		{"Default", []onboardingv1alpha1.ServiceProvider{sp("a", onboardingv1alpha1.BindingDefault, "h", false)}, []any{entry("a")}},
		{"OptIn excluded", []onboardingv1alpha1.ServiceProvider{sp("a", onboardingv1alpha1.BindingOptIn, "h", false)}, []any{}},
		{"no identity hash excluded", []onboardingv1alpha1.ServiceProvider{sp("a", onboardingv1alpha1.BindingDefault, "", false)}, []any{}},
		{"being deleted excluded", []onboardingv1alpha1.ServiceProvider{sp("a", onboardingv1alpha1.BindingDefault, "h", true)}, []any{}},
		{
			"mixed, sorted by path",
			[]onboardingv1alpha1.ServiceProvider{
				sp("zeta", "", "h1", false),
				sp("optin", onboardingv1alpha1.BindingOptIn, "h2", false),
				sp("alpha", onboardingv1alpha1.BindingDefault, "h3", false),
				sp("gone", onboardingv1alpha1.BindingDefault, "h4", true),
				sp("unpublished", "", "", false),
				sp("mid", "", "h5", false),
			},
			[]any{entry("alpha"), entry("mid"), entry("zeta")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DefaultBindings(tt.sps)
			if got == nil {
				t.Fatalf("DefaultBindings() = nil, want a non-nil slice")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DefaultBindings() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultBindingsExportFromSpec(t *testing.T) {
	p := provider("pg", "")
	p.Spec.Export = "postgres.example.org"
	p.Status.IdentityHash = "h"
	want := []any{map[string]any{"path": "root:providers:pg", "export": "postgres.example.org"}}
	if diff := cmp.Diff(want, DefaultBindings([]onboardingv1alpha1.ServiceProvider{*p})); diff != "" {
		t.Errorf("DefaultBindings() mismatch (-want +got):\n%s", diff)
	}
}

// Of several providers that bind one API group by default, the oldest is the default
// (a workspace binds one export per group) and the others are told who shadows them.
func TestDefaultBindingsOnePerGroup(t *testing.T) {
	at := func(name string, minute int, binding onboardingv1alpha1.TenantBinding) onboardingv1alpha1.ServiceProvider {
		p := provider(name, binding)
		p.Spec.Export = "hosting.msp.dev"
		p.Status.IdentityHash = "h-" + name
		p.CreationTimestamp = metav1.Time{Time: time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC)}
		return *p
	}
	sps := []onboardingv1alpha1.ServiceProvider{at("newer", 5, ""), at("older", 1, onboardingv1alpha1.BindingDefault), at("b-tie", 1, ""), at("optin", 0, onboardingv1alpha1.BindingOptIn)}
	want := []any{map[string]any{"path": "root:providers:b-tie", "export": "hosting.msp.dev"}}
	if diff := cmp.Diff(want, DefaultBindings(sps)); diff != "" {
		t.Errorf("DefaultBindings() mismatch (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{"newer": "b-tie", "older": "b-tie", "b-tie": "", "optin": ""} {
		for i := range sps {
			if sps[i].Name == name {
				if got := ShadowedBy(sps, &sps[i]); got != want {
					t.Errorf("ShadowedBy(%s) = %q, want %q", name, got, want)
				}
			}
		}
	}
}

func TestHeldMessage(t *testing.T) {
	const tail = "; delete them, or set spec.deletionPolicy to Orphan to keep them"
	msg := func(s string) string { return "deletion policy Delete is held: " + s + tail }
	paths := map[string]string{
		"c1": "root:tenants:a",
		"c2": "root:tenants:b",
		"c3": "root:tenants:c",
		"c4": "root:tenants:d",
		"c5": "root:tenants:e",
	}
	tests := []struct {
		name   string
		counts []Count
		paths  map[string]string
		want   string
	}{
		{"nil", nil, paths, ""},
		{"empty", []Count{}, nil, ""},
		{"only zero counts", []Count{{Cluster: "c1", Kind: "Postgres", N: 0}}, paths, ""},
		{
			"one capability",
			[]Count{{Cluster: "c1", Kind: "Postgres", N: 1}},
			paths,
			msg("1 capability remains (1 Postgres in root:tenants:a)"),
		},
		{
			"two of one kind",
			[]Count{{Cluster: "c1", Kind: "Postgres", N: 2}},
			paths,
			msg("2 capabilities remain (2 Postgres in root:tenants:a)"),
		},
		{
			"two kinds in one place",
			[]Count{{Cluster: "c1", Kind: "Postgres", N: 2}, {Cluster: "c1", Kind: "Redis", N: 1}},
			paths,
			msg("3 capabilities remain (2 Postgres, 1 Redis in root:tenants:a)"),
		},
		{
			"unknown cluster",
			[]Count{{Cluster: "x9", Kind: "Postgres", N: 1}},
			paths,
			msg("1 capability remains (1 Postgres in logical cluster x9)"),
		},
		{
			"nil paths",
			[]Count{{Cluster: "c1", Kind: "Postgres", N: 1}},
			nil,
			msg("1 capability remains (1 Postgres in logical cluster c1)"),
		},
		{
			"places sorted",
			[]Count{{Cluster: "c3", Kind: "Postgres", N: 1}, {Cluster: "c1", Kind: "Postgres", N: 1}, {Cluster: "c2", Kind: "Redis", N: 4}},
			paths,
			msg("6 capabilities remain (1 Postgres in root:tenants:a; 4 Redis in root:tenants:b; 1 Postgres in root:tenants:c)"),
		},
		{
			"known and unknown places sorted",
			[]Count{{Cluster: "c1", Kind: "Postgres", N: 1}, {Cluster: "zz", Kind: "Postgres", N: 1}},
			paths,
			msg("2 capabilities remain (1 Postgres in logical cluster zz; 1 Postgres in root:tenants:a)"),
		},
		{
			"three places listed in full",
			[]Count{{Cluster: "c1", Kind: "K", N: 1}, {Cluster: "c2", Kind: "K", N: 1}, {Cluster: "c3", Kind: "K", N: 1}},
			paths,
			msg("3 capabilities remain (1 K in root:tenants:a; 1 K in root:tenants:b; 1 K in root:tenants:c)"),
		},
		{
			"more than three places cut",
			[]Count{
				{Cluster: "c5", Kind: "K", N: 1}, {Cluster: "c4", Kind: "K", N: 1}, {Cluster: "c3", Kind: "K", N: 1},
				{Cluster: "c2", Kind: "K", N: 1}, {Cluster: "c1", Kind: "K", N: 1},
			},
			paths,
			msg("5 capabilities remain (1 K in root:tenants:a; 1 K in root:tenants:b; 1 K in root:tenants:c; 2 more places)"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HeldMessage(tt.counts, tt.paths)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("HeldMessage() mismatch (-want +got):\n%s", diff)
			}
			if tt.want != "" && !strings.Contains(got, "Orphan") {
				t.Errorf("HeldMessage() = %q, want it to mention Orphan", got)
			}
		})
	}
}

func TestListSome(t *testing.T) {
	tests := []struct {
		items []string
		want  string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b", "c"}, "a, b, c"},
		{[]string{"a", "b", "c", "d"}, "a, b, c and 1 more"},
		{[]string{"a", "b", "c", "d", "e", "f"}, "a, b, c and 3 more"},
	}
	for _, tt := range tests {
		if got := listSome(tt.items); got != tt.want {
			t.Errorf("listSome(%q) = %q, want %q", tt.items, got, tt.want)
		}
	}
}

func TestLeaseHeld(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) string { return now.Add(-ago).Format(time.RFC3339Nano) }
	lease := func(spec map[string]any) *unstructured.Unstructured {
		obj := map[string]any{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": map[string]any{"name": "l", "namespace": "default"}}
		if spec != nil {
			obj["spec"] = spec
		}
		return &unstructured.Unstructured{Object: obj}
	}
	tests := []struct {
		name       string
		spec       map[string]any
		wantHolder string
		wantFresh  bool
	}{
		{"no spec", nil, "", false},
		{"fresh", map[string]any{"holderIdentity": "c1", "renewTime": at(10 * time.Second), "leaseDurationSeconds": int64(15)}, "c1", true},
		{"renewed just now", map[string]any{"holderIdentity": "c1", "renewTime": at(0), "leaseDurationSeconds": int64(15)}, "c1", true},
		{"past one duration, within two", map[string]any{"holderIdentity": "c1", "renewTime": at(20 * time.Second), "leaseDurationSeconds": int64(15)}, "c1", true},
		{"exactly two durations", map[string]any{"holderIdentity": "c1", "renewTime": at(30 * time.Second), "leaseDurationSeconds": int64(15)}, "c1", true},
		{"just past two durations", map[string]any{"holderIdentity": "c1", "renewTime": at(30*time.Second + time.Millisecond), "leaseDurationSeconds": int64(15)}, "c1", false},
		{"stale", map[string]any{"holderIdentity": "c1", "renewTime": at(time.Hour), "leaseDurationSeconds": int64(15)}, "c1", false},
		{"long duration fresh", map[string]any{"holderIdentity": "c1", "renewTime": at(100 * time.Second), "leaseDurationSeconds": int64(60)}, "c1", true},
		{"long duration stale", map[string]any{"holderIdentity": "c1", "renewTime": at(121 * time.Second), "leaseDurationSeconds": int64(60)}, "c1", false},
		{"short duration stale", map[string]any{"holderIdentity": "c1", "renewTime": at(11 * time.Second), "leaseDurationSeconds": int64(5)}, "c1", false},
		{"duration missing, fresh within 30s", map[string]any{"holderIdentity": "c1", "renewTime": at(29 * time.Second)}, "c1", true},
		{"duration missing, stale after 30s", map[string]any{"holderIdentity": "c1", "renewTime": at(31 * time.Second)}, "c1", false},
		{"duration zero defaults to 15s", map[string]any{"holderIdentity": "c1", "renewTime": at(29 * time.Second), "leaseDurationSeconds": int64(0)}, "c1", true},
		{"duration zero, stale after 30s", map[string]any{"holderIdentity": "c1", "renewTime": at(31 * time.Second), "leaseDurationSeconds": int64(0)}, "c1", false},
		{"duration negative defaults to 15s", map[string]any{"holderIdentity": "c1", "renewTime": at(29 * time.Second), "leaseDurationSeconds": int64(-5)}, "c1", true},
		{"renewal in the future", map[string]any{"holderIdentity": "c1", "renewTime": at(-5 * time.Second), "leaseDurationSeconds": int64(15)}, "c1", true},
		{"microsecond renewTime", map[string]any{"holderIdentity": "c1", "renewTime": now.Add(-time.Second).Format("2006-01-02T15:04:05.000000Z07:00"), "leaseDurationSeconds": int64(15)}, "c1", true},
		{"non-UTC renewTime", map[string]any{"holderIdentity": "c1", "renewTime": now.Add(-time.Second).In(time.FixedZone("X", 2*3600)).Format(time.RFC3339Nano), "leaseDurationSeconds": int64(15)}, "c1", true},
		{"holder missing", map[string]any{"renewTime": at(time.Second), "leaseDurationSeconds": int64(15)}, "", false},
		{"holder empty", map[string]any{"holderIdentity": "", "renewTime": at(time.Second), "leaseDurationSeconds": int64(15)}, "", false},
		{"renewTime missing", map[string]any{"holderIdentity": "c1", "leaseDurationSeconds": int64(15)}, "c1", false},
		{"renewTime unparsable", map[string]any{"holderIdentity": "c1", "renewTime": "yesterday", "leaseDurationSeconds": int64(15)}, "c1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			holder, fresh := leaseHeld(lease(tt.spec), now)
			if holder != tt.wantHolder || fresh != tt.wantFresh {
				t.Errorf("leaseHeld(%v) = (%q, %v), want (%q, %v)", tt.spec, holder, fresh, tt.wantHolder, tt.wantFresh)
			}
		})
	}
}

func TestEqualStatus(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	base := func() onboardingv1alpha1.ServiceProviderStatus {
		return onboardingv1alpha1.ServiceProviderStatus{
			Workspace:    "root:providers:pg",
			IdentityHash: "h",
			Resources:    []string{"a.pg.msp.dev", "b.pg.msp.dev"},
			Tenants:      onboardingv1alpha1.TenantsStatus{Selected: 2, Bound: 1},
			Run:          onboardingv1alpha1.RunStatus{Coordinator: "c1", ReadyRuntimes: 1},
			Conditions: []metav1.Condition{{
				Type: onboardingv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "ok",
				LastTransitionTime: metav1.Time{Time: t0},
			}},
			ObservedGeneration: 3,
		}
	}
	tests := []struct {
		name   string
		mutate func(*onboardingv1alpha1.ServiceProviderStatus)
		want   bool
	}{
		{"identical", func(*onboardingv1alpha1.ServiceProviderStatus) {}, true},
		{"same time in another zone", func(s *onboardingv1alpha1.ServiceProviderStatus) {
			s.Conditions[0].LastTransitionTime = metav1.Time{Time: t0.In(time.FixedZone("X", 3600))}
		}, true},
		{"workspace", func(s *onboardingv1alpha1.ServiceProviderStatus) { s.Workspace = "root:providers:other" }, false},
		{"identity hash", func(s *onboardingv1alpha1.ServiceProviderStatus) { s.IdentityHash = "" }, false},
		{"resources order", func(s *onboardingv1alpha1.ServiceProviderStatus) {
			s.Resources = []string{"b.pg.msp.dev", "a.pg.msp.dev"}
		}, false},
		{"bound", func(s *onboardingv1alpha1.ServiceProviderStatus) { s.Tenants.Bound = 2 }, false},
		{"unreachable", func(s *onboardingv1alpha1.ServiceProviderStatus) { s.Tenants.Unreachable = 1 }, false},
		{"coordinator", func(s *onboardingv1alpha1.ServiceProviderStatus) { s.Run.Coordinator = "" }, false},
		{"condition status", func(s *onboardingv1alpha1.ServiceProviderStatus) { s.Conditions[0].Status = metav1.ConditionFalse }, false},
		{"condition message", func(s *onboardingv1alpha1.ServiceProviderStatus) { s.Conditions[0].Message = "not ok" }, false},
		{"condition time", func(s *onboardingv1alpha1.ServiceProviderStatus) {
			s.Conditions[0].LastTransitionTime = metav1.Time{Time: t0.Add(time.Second)}
		}, false},
		{"no conditions", func(s *onboardingv1alpha1.ServiceProviderStatus) { s.Conditions = nil }, false},
		{"observed generation", func(s *onboardingv1alpha1.ServiceProviderStatus) { s.ObservedGeneration = 4 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.mutate(&b)
			if got := equalStatus(a, b); got != tt.want {
				t.Errorf("equalStatus(a, b) = %v, want %v", got, tt.want)
			}
			if got := equalStatus(b, a); got != tt.want {
				t.Errorf("equalStatus(b, a) = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEqualStatusEmpty(t *testing.T) {
	tests := []struct {
		name string
		a, b onboardingv1alpha1.ServiceProviderStatus
		want bool
	}{
		{"zero values", onboardingv1alpha1.ServiceProviderStatus{}, onboardingv1alpha1.ServiceProviderStatus{}, true},
		{"nil and empty resources", onboardingv1alpha1.ServiceProviderStatus{}, onboardingv1alpha1.ServiceProviderStatus{Resources: []string{}}, true},
		{"nil and empty conditions", onboardingv1alpha1.ServiceProviderStatus{}, onboardingv1alpha1.ServiceProviderStatus{Conditions: []metav1.Condition{}}, true},
		{"zero and set", onboardingv1alpha1.ServiceProviderStatus{}, onboardingv1alpha1.ServiceProviderStatus{Workspace: "root:providers:x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := equalStatus(tt.a, tt.b); got != tt.want {
				t.Errorf("equalStatus() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGVROf(t *testing.T) {
	obj := func(apiVersion, kind string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": "x"},
		}}
	}
	tests := []struct {
		name string
		obj  *unstructured.Unstructured
		want schema.GroupVersionResource
	}{
		{"ClusterRole", obj("rbac.authorization.k8s.io/v1", "ClusterRole"),
			schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}},
		{"ClusterRoleBinding", obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
			schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}},
		{"APIBinding", obj("apis.kcp.io/v1alpha2", "APIBinding"),
			schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha2", Resource: "apibindings"}},
		{"ValidatingWebhookConfiguration", obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
			schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}},
		{"WorkspaceType", obj("tenancy.kcp.io/v1alpha1", "WorkspaceType"),
			schema.GroupVersionResource{Group: "tenancy.kcp.io", Version: "v1alpha1", Resource: "workspacetypes"}},
		{"Workspace", obj("tenancy.kcp.io/v1alpha1", "Workspace"),
			schema.GroupVersionResource{Group: "tenancy.kcp.io", Version: "v1alpha1", Resource: "workspaces"}},
		{"version taken from the object", obj("apis.kcp.io/v1alpha1", "APIBinding"),
			schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha1", Resource: "apibindings"}},
		{"group taken from the object", obj("example.org/v2", "ClusterRole"),
			schema.GroupVersionResource{Group: "example.org", Version: "v2", Resource: "clusterroles"}},
		// The objects msp-providers really applies address the resources it uses elsewhere.
		{"platformBinding", platformBinding(), gvrAPIBinding},
		{"ownersBinding", ownersBinding(nil),
			schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}},
		{"bootstrap.AdmissionWebhook", bootstrap.AdmissionWebhook("pg.msp.dev", "https://fd.example"+bootstrap.AdmissionPath, []byte("ca"), "coordinator"), gvrWebhook},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, gvrOf(tt.obj)); diff != "" {
				t.Errorf("gvrOf(%s %s) mismatch (-want +got):\n%s", tt.obj.GetAPIVersion(), tt.obj.GetKind(), diff)
			}
		})
	}
}

func TestGVROfProviderRBAC(t *testing.T) {
	objs := bootstrap.ProviderRBAC(ProviderWorkspace("pg"), "pg.msp.dev", []string{"redis.msp.dev"})
	if len(objs) == 0 {
		t.Fatal("bootstrap.ProviderRBAC returned no objects")
	}
	want := map[string]string{"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}
	for _, o := range objs {
		res, ok := want[o.GetKind()]
		if !ok {
			t.Errorf("unexpected kind %s in ProviderRBAC", o.GetKind())
			continue
		}
		wantGVR := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: res}
		if diff := cmp.Diff(wantGVR, gvrOf(o)); diff != "" {
			t.Errorf("gvrOf(%s %s) mismatch (-want +got):\n%s", o.GetKind(), o.GetName(), diff)
		}
	}
}

func TestGVROfUnknownKindPanics(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("gvrOf of an unknown kind did not panic")
		}
		if s, _ := r.(string); !strings.Contains(s, "ConfigMap") {
			t.Errorf("panic %v does not name the kind ConfigMap", r)
		}
	}()
	gvrOf(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}})
}
