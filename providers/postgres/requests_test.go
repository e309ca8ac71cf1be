package postgres

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestRequests(t *testing.T) {
	tests := []struct {
		name string
		spec map[string]any
		want string
	}{
		{name: "explicit size", spec: map[string]any{"size": "10Gi"}, want: "10Gi"},
		{name: "no size takes the default", spec: map[string]any{}, want: "1Gi"},
		{name: "an invalid size counts nothing", spec: map[string]any{"size": "big"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{"spec": tt.spec}}
			got := Requests(u)
			q, ok := got[corev1.ResourceStorage]
			switch {
			case tt.want == "" && ok:
				t.Errorf("storage = %s, want none", q.String())
			case tt.want != "" && q.String() != tt.want:
				t.Errorf("storage = %s, want %s", q.String(), tt.want)
			}
		})
	}
}
