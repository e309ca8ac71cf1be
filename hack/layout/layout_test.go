// Package layout checks the shape of the module: msp's platform code knows no provider.
package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/msp-dev/msp/"

// platform are the platform's packages: the platform API, its libraries, the SDK and
// the generic binaries (the embedded default and the bench start providers' binaries,
// they import none of them).
var platform = []string{"./apis/platform/...", "./pkg/...", "./sdk/...", "./cmd/...", "./apiexports", "./workspaces"}

// providerPackages are what only providers (and their tests) may import.
var providerPackages = []string{module + "providers/", module + "apis/postgres/", module + "apis/hosting/"}

func TestPlatformImportsNoProvider(t *testing.T) {
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, platform...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps listed only %d packages: %s", len(deps), out)
	}
	for _, dep := range deps {
		for _, p := range providerPackages {
			if strings.HasPrefix(dep, p) {
				t.Errorf("a platform package depends on the provider package %s (go list -deps %s)", dep, strings.Join(platform, " "))
			}
		}
	}
}
