package onboarding

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// contractFields are the fields of the capability contract (platformv1alpha1's
// CapabilitySpec and CapabilityStatus) that the scheduler, the runtime manager and the
// servicelets read and write on every kind a provider serves.
var contractFields = [][]string{
	{"spec", "runtimeName"},
	{"spec", "placement"},
	{"spec", "resources"},
	{"spec", "deletionPolicy"},
	{"spec", "managementPolicy"},
	{"status", "conditions"},
	{"status", "connectionSecretRef"},
}

// ContractGaps lists, for an APIResourceSchema, the fields of the capability contract
// that a served version of it lacks, as "version: field" (nil when every version embeds
// the contract).
func ContractGaps(schema *unstructured.Unstructured) []string {
	versions, _, _ := unstructured.NestedSlice(schema.Object, "spec", "versions")
	var gaps []string
	for _, v := range versions {
		vm, _ := v.(map[string]any)
		if served, ok := vm["served"].(bool); ok && !served {
			continue
		}
		name, _ := vm["name"].(string)
		// An APIResourceSchema's version holds the OpenAPI v3 schema itself.
		root, _, _ := unstructured.NestedMap(vm, "schema")
		for _, path := range contractFields {
			if !hasProperty(root, path) {
				gaps = append(gaps, name+": "+strings.Join(path, "."))
			}
		}
	}
	return gaps
}

func hasProperty(schema map[string]any, path []string) bool {
	for _, field := range path {
		props, _, _ := unstructured.NestedMap(schema, "properties")
		next, ok := props[field].(map[string]any)
		if !ok {
			return false
		}
		schema = next
	}
	return true
}

// contractMessage says what a kind lacks and what its provider does about it.
func contractMessage(kind, schemaName string, gaps []string) string {
	return fmt.Sprintf("%s (APIResourceSchema %s) lacks the capability contract's %s: embed platformv1alpha1.CapabilitySpec and CapabilityStatus inline in its spec and status, regenerate the schema and apply it under a new name",
		kind, schemaName, strings.Join(gaps, ", "))
}
