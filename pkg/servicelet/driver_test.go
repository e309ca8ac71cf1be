package servicelet

import (
	"errors"
	"fmt"
	"testing"
)

func TestTenantMessage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "a tenant error is shown as it is",
			err:  NewTenantError("quota for databases exceeded"),
			want: "quota for databases exceeded",
		},
		{
			name: "a wrapped tenant error is found",
			err:  fmt.Errorf("failed to create: %w", NewTenantError("name taken")),
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
