package scheduler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/sdk/capability"
)

// sizeAsStorage is a kind whose spec.size counts as storage, as a PostgresDatabase's.
var sizeAsStorage = capability.Kind{Requests: func(u *unstructured.Unstructured) corev1.ResourceList {
	size, _, _ := unstructured.NestedString(u.Object, "spec", "size")
	q, err := resource.ParseQuantity(size)
	if err != nil {
		return nil
	}
	return corev1.ResourceList{corev1.ResourceStorage: q}
}}

func TestRequestsOfDocument(t *testing.T) {
	tests := []struct {
		name      string
		spec      map[string]any
		kind      capability.Kind
		want      map[string]string
		wantNamed []corev1.ResourceName
	}{
		{name: "empty spec", spec: map[string]any{}, want: map[string]string{"capabilities": "1"}},
		{
			name: "the kind's own request is a floor",
			spec: map[string]any{"size": "1Ti", "resources": map[string]any{"storage": "1Mi"}},
			kind: sizeAsStorage,
			want: map[string]string{"capabilities": "1", "storage": "1Ti"}, wantNamed: []corev1.ResourceName{"storage"},
		},
		{
			name: "spec.resources may ask for more",
			spec: map[string]any{"size": "1Gi", "resources": map[string]any{"storage": "10Gi"}},
			kind: sizeAsStorage,
			want: map[string]string{"capabilities": "1", "storage": "10Gi"}, wantNamed: []corev1.ResourceName{"storage"},
		},
		{
			name: "non-positive entries of an old object are ignored",
			spec: map[string]any{"size": "10Gi", "resources": map[string]any{"storage": "-1Ti", "cpu": int64(0), "memory": "-1"}},
			kind: sizeAsStorage,
			want: map[string]string{"capabilities": "1", "storage": "10Gi"},
		},
		{
			name: "capabilities stays one",
			spec: map[string]any{"resources": map[string]any{"capabilities": int64(100), "gpu": int64(2)}},
			want: map[string]string{"capabilities": "1", "gpu": "2"}, wantNamed: []corev1.ResourceName{"gpu"},
		},
		{
			name: "entries that are not quantities are skipped",
			spec: map[string]any{"resources": map[string]any{"gpu": "lots", "memory": "1Gi"}},
			want: map[string]string{"capabilities": "1", "memory": "1Gi"}, wantNamed: []corev1.ResourceName{"memory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{"spec": tt.spec}}
			got := map[string]string{}
			for name, q := range RequestsOf(u, tt.kind) {
				got[string(name)] = q.String()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RequestsOf() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantNamed, NamedOf(u)); diff != "" {
				t.Errorf("NamedOf() (-want +got):\n%s", diff)
			}
		})
	}
}
