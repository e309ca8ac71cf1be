// Package apiexport holds the fileshare provider's generated APIResourceSchema and
// APIExport (`make examples-codegen` in msp's checkout writes them from apis/).
package apiexport

import "embed"

// FS holds the folder fileshare.example.dev with apiexport-*.yaml and
// apiresourceschema-*.yaml.
//
//go:embed fileshare.example.dev
var FS embed.FS
