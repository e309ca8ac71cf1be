package servicelet

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestSecretName(t *testing.T) {
	short := SecretName("PostgresDatabase", "orders")
	if short != "postgresdatabase-orders" {
		t.Errorf("SecretName(orders) = %q", short)
	}
	long := strings.Repeat("a", 253)
	other := strings.Repeat("a", 252) + "b"
	got, got2 := SecretName("PostgresDatabase", long), SecretName("PostgresDatabase", other)
	for _, n := range []string{got, got2} {
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Errorf("SecretName of a 253-character name = %q (%d characters): %v", n, len(n), errs)
		}
	}
	if got == got2 {
		t.Errorf("two long names that differ at the end share the Secret name %q", got)
	}
}

func TestOwnStatusKeepsPlatformFieldsOut(t *testing.T) {
	have := map[string]any{"conditions": []any{}, "databaseName": "old"}
	if got := ownStatus(have, nil); len(got) != 1 || got["databaseName"] != "old" {
		t.Errorf("ownStatus without extra = %v, want the document's own fields", got)
	}
	got := ownStatus(have, map[string]any{"databaseName": "new", "conditions": "forged", "credentials": "x"})
	if len(got) != 1 || got["databaseName"] != "new" {
		t.Errorf("ownStatus = %v, want only databaseName=new", got)
	}
}
