// Package apiexports holds the generated APIResourceSchemas and APIExports, one folder
// per API group (`make codegen` writes them from the Go types in apis/: controller-gen
// makes CRDs under crds/, kcp's apigen turns them into schemas and exports). A schema's
// name changes whenever its content does, so a published schema is never edited in place.
package apiexports

import (
	"embed"
	"io/fs"
)

// FS holds one folder per API group with its apiexport-*.yaml and apiresourceschema-*.yaml.
//
//go:embed platform.msp.dev onboarding.msp.dev postgres.msp.dev hosting.msp.dev kubernetes.msp.dev
var FS embed.FS

// Group returns the folder of one API group, for example "postgres.msp.dev".
func Group(group string) (fs.FS, error) {
	return fs.Sub(FS, group)
}
