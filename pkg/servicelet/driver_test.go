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

func TestCanonicalIgnoresCachedStrings(t *testing.T) {
	a := corev1.ResourceList{"storage": resource.MustParse("1Mi"), "capabilities": resource.MustParse("2")}
	b := a.DeepCopy()
	for k, q := range b {
		_ = q.String() // fills the quantity's cached string, in b only
		b[k] = q
	}
	sum := corev1.ResourceList{}
	addTo(sum, a)
	if canonical(a) != canonical(b) || canonical(sum) != "capabilities=2,storage=1Mi," {
		t.Errorf("canonical(a) = %q, canonical(b) = %q, canonical(sum) = %q", canonical(a), canonical(b), canonical(sum))
	}
}
