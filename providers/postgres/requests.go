// Package postgres is the PostgreSQL provider: what the scheduler needs to know of a
// PostgresDatabase, and (as it lands) the servicelet driver that creates databases.
package postgres

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
)

// GroupKind is the PostgresDatabase kind.
var GroupKind = postgresv1alpha1.SchemeGroupVersion.WithKind("PostgresDatabase").GroupKind()

// DefaultSize is the size of a database that does not say (the API's default).
const DefaultSize = "1Gi"

// Requests returns what a PostgresDatabase uses on its server besides its slot: its
// size, as "storage".
func Requests(u *unstructured.Unstructured) corev1.ResourceList {
	size, _, _ := unstructured.NestedString(u.Object, "spec", "size")
	if size == "" {
		size = DefaultSize
	}
	q, err := resource.ParseQuantity(size)
	if err != nil {
		return nil // admission rejects such sizes; count nothing rather than guess
	}
	return corev1.ResourceList{corev1.ResourceStorage: q}
}
