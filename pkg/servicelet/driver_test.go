package servicelet

import (
	"errors"
	"fmt"
	"testing"

	"github.com/msp-dev/msp/sdk/driver"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestTenantMessage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "a tenant error is shown as it is",
			err:  driver.NewTenantError("quota for databases exceeded"),
			want: "quota for databases exceeded",
		},
		{
			name: "a wrapped tenant error is found",
			err:  fmt.Errorf("failed to create: %w", driver.NewTenantError("name taken")),
			want: "name taken",
		},
		{
			name: "anything else stays in the log",
			err:  errors.New(`dial tcp 10.0.0.7:5432: connection refused`),
			want: "failed to create the capability on the runtime; the provider has been notified through the servicelet's log",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tenantMessage("create the capability", tt.err); got != tt.want {
				t.Errorf("tenantMessage() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAddToSums(t *testing.T) {
	sum := corev1.ResourceList{"storage": resource.MustParse("1Mi")}
	addTo(sum, corev1.ResourceList{"storage": resource.MustParse("1Mi"), "capabilities": resource.MustParse("2")})
	if got := sum["storage"]; got.Cmp(resource.MustParse("2Mi")) != 0 {
		t.Errorf("storage = %s, want 2Mi", got.String())
	}
	if got := sum["capabilities"]; got.Cmp(resource.MustParse("2")) != 0 {
		t.Errorf("capabilities = %s, want 2", got.String())
	}
}
