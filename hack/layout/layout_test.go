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
var platform = []string{"./apis/platform/...", "./pkg/...", "./sdk/...", "./app/...", "./cmd/...", "./apiexports", "./workspaces"}

// providerPackages are what only providers (and their tests) may import.
var providerPackages = []string{module + "providers/", module + "apis/postgres/", module + "apis/hosting/", module + "apis/kubernetes/"}

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

// TestSDKContractStandsAlone: the SDK's contract (sdk/...) is what a provider writes
// against; it depends on nothing of msp's but the platform API and itself, so that the
// platform's machinery (pkg/, wired by the entry points in app/) can change under it.
func TestSDKContractStandsAlone(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./sdk/...")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	sdk := 0
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case !strings.HasPrefix(dep, module), strings.HasPrefix(dep, module+"apis/platform/"):
		case strings.HasPrefix(dep, module+"sdk/"):
			sdk++
		default:
			t.Errorf("the SDK's contract depends on %s", dep)
		}
	}
	if sdk < 5 {
		t.Fatalf("go list -deps ./sdk/... listed only %d SDK packages:\n%s", sdk, out)
	}
}
