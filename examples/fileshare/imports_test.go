package fileshare

import (
	"os/exec"
	"strings"
	"testing"
)

// TestUsesOnlyThePublicSDK: the example provider's code imports of msp only the SDK
// (sdk/... and app/...) and the platform API (apis/platform/...), and nothing it depends on is a
// provider of msp's.
func TestUsesOnlyThePublicSDK(t *testing.T) {
	const msp, self = "github.com/msp-dev/msp/", "github.com/msp-dev/msp/examples/fileshare"
	pkgs := []string{"./", "./apis/...", "./apiexport", "./cmd/..."}
	out, err := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 4 {
		t.Fatalf("go list found only %d packages:\n%s", len(lines), out)
	}
	sdkUsed := false
	for _, line := range lines {
		pkg, imports, _ := strings.Cut(line, ": ")
		for _, imp := range strings.Fields(imports) {
			switch {
			case strings.HasPrefix(imp, self), !strings.HasPrefix(imp, msp):
			case strings.HasPrefix(imp, msp+"sdk/"), strings.HasPrefix(imp, msp+"app/"):
				sdkUsed = true
			case strings.HasPrefix(imp, msp+"apis/platform/"):
			default:
				t.Errorf("%s imports %s: an example provider uses only msp's sdk/, app/ and apis/platform/", pkg, imp)
			}
		}
	}
	if !sdkUsed {
		t.Error("no package imports the SDK; the check looks at the wrong packages")
	}
	deps, err := exec.Command("go", append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	for _, dep := range strings.Fields(string(deps)) {
		for _, banned := range []string{msp + "providers/", msp + "apis/postgres/", msp + "apis/hosting/"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("the example depends on %s, a provider of msp's", dep)
			}
		}
	}
}
