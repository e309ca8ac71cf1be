package kubernetes

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestNamespaceName(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		name                                     string
		cluster, namespace, space, specNamespace string
		wantPrefix                               string
	}{
		{name: "spec.namespace wins", cluster: "c", namespace: "default", space: "team", specNamespace: "mine", wantPrefix: "mine"},
		{name: "derived from the name", cluster: "c", namespace: "default", space: "team", wantPrefix: "team-"},
		{name: "a long name is cut", cluster: "c", namespace: "default", space: long, wantPrefix: strings.Repeat("a", 54) + "-"},
		{name: "dashes at the cut are dropped", cluster: "c", namespace: "default", space: strings.Repeat("a", 53) + "--x", wantPrefix: strings.Repeat("a", 53) + "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NamespaceName(tt.cluster, tt.namespace, tt.space, tt.specNamespace)
			if !strings.HasPrefix(got, tt.wantPrefix) || len(got) > 63 {
				t.Errorf("NamespaceName = %q (%d characters), want prefix %q and at most 63", got, len(got), tt.wantPrefix)
			}
		})
	}
	if a, b := NamespaceName("ws-a", "default", "team", ""), NamespaceName("ws-b", "default", "team", ""); a == b {
		t.Errorf("two workspaces' spaces named team share namespace %s", a)
	}
	if a, b := NamespaceName("ws-a", "default", "team", ""), NamespaceName("ws-a", "default", "team", ""); a != b {
		t.Errorf("the name is not stable: %s, %s", a, b)
	}
}

func TestRequestsAndQuota(t *testing.T) {
	space := func(resources map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{}}}
		if resources != nil {
			_ = unstructured.SetNestedMap(u.Object, resources, "spec", "resources")
		}
		return u
	}
	q := resource.MustParse
	tests := []struct {
		name         string
		resources    map[string]any
		wantRequests corev1.ResourceList
	}{
		{name: "nothing named: every default", wantRequests: corev1.ResourceList{"cpu": q("1"), "memory": q("1Gi"), "pods": q("10")}},
		{name: "named ones are the tenant's", resources: map[string]any{"cpu": "2", "storage": "5Gi"}, wantRequests: corev1.ResourceList{"memory": q("1Gi"), "pods": q("10")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Requests(space(tt.resources))
			if diff := cmp.Diff(tt.wantRequests, got, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("Requests (-want +got):\n%s", diff)
			}
		})
	}
	hard := Quota(corev1.ResourceList{"cpu": q("2"), "memory": q("1Gi"), "pods": q("5"), "storage": q("5Gi"), "capabilities": q("1")})
	want := corev1.ResourceList{"requests.cpu": q("2"), "requests.memory": q("1Gi"), "pods": q("5"), "requests.storage": q("5Gi")}
	if !sameResources(hard, want) {
		t.Errorf("Quota = %v, want %v (capabilities is not a quota's)", hard, want)
	}
	if used := Usage(corev1.ResourceList{"requests.cpu": q("300m"), "pods": q("3"), "count/configmaps": q("4")}); !sameResources(used, corev1.ResourceList{"cpu": q("300m"), "pods": q("3")}) {
		t.Errorf("Usage = %v", used)
	}
}

func TestUnreachable(t *testing.T) {
	gr := schema.GroupResource{Resource: "namespaces"}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "no error", err: nil, want: false},
		{name: "connection refused", err: &url.Error{Op: "Get", URL: "https://127.0.0.1:1", Err: errors.New("connect: connection refused")}, want: true},
		{name: "shutting down", err: apierrors.NewServiceUnavailable("apiserver is shutting down"), want: true},
		{name: "overloaded", err: apierrors.NewTooManyRequests("slow down", 1), want: true},
		{name: "an answer: not found", err: apierrors.NewNotFound(gr, "x"), want: false},
		{name: "an answer: forbidden", err: apierrors.NewForbidden(gr, "x", errors.New("no")), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unreachable(tt.err); got != tt.want {
				t.Errorf("unreachable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
