// Package scaffold shows that a provider written by msp-scaffold builds against this
// checkout and passes msp's conformance kit with its skeleton driver as written: the
// generated module's own `make test` runs the driver suite, then the kit on a kcp of
// its own (started by msp's e2e framework from the same binaries).
package scaffold

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/msp-dev/msp/e2e/framework"
)

func TestScaffoldedProviderPassesConformance(t *testing.T) {
	bin, err := framework.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	checkout, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "gadgets")
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "MSP_BIN="+bin)
		if name != filepath.Join(bin, "msp-scaffold") {
			cmd.Dir = dir
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	out := run(filepath.Join(bin, "msp-scaffold"), "provider", "gadgets", "--group", "gadgets.example.org", "--kind", "Gadget",
		"--module", "example.org/gadgets", "--out", dir, "--msp", checkout)
	if !strings.Contains(out, "generated and built") {
		t.Fatalf("msp-scaffold did not say it generated and built:\n%s", out)
	}
	for _, f := range []string{
		"apis/v1alpha1/gadget_types.go", "apis/v1alpha1/zz_generated.deepcopy.go",
		"apiexport/gadgets.example.org/apiexport-gadgets.example.org.yaml", "driver.go", "driver_test.go",
		"cmd/gadgets-servicelet/main.go", "cmd/gadgets-coordinator/main.go",
		"samples/gadget.yaml", "serviceprovider.yaml", "Makefile", "e2e/conformance_test.go", "go.sum",
	} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the scaffold has no %s: %v", f, err)
		}
	}
	// The generated tree is committed and clean: codegen's output is part of it.
	if st := run("git", "status", "--porcelain"); st != "" {
		t.Errorf("the scaffolded repository is not clean after generation:\n%s", st)
	}
	// A second run of codegen changes nothing (the generated files are what apis/ says).
	run("make", "--no-print-directory", "codegen", "MSP_BIN="+bin)
	if st := run("git", "status", "--porcelain", "--", "apis", "apiexport/crds"); st != "" {
		t.Errorf("make codegen changed the generated files:\n%s", st)
	}

	out = run("make", "--no-print-directory", "test", "MSP="+checkout, "MSP_BIN="+bin)
	t.Logf("make test in the scaffolded provider:\n%s", tail(out, 60))
	if !regexp.MustCompile(`(?m)^ok\s+example\.org/gadgets\s`).MatchString(out) {
		t.Errorf("the driver suite did not pass:\n%s", tail(out, 40))
	}
	if !strings.Contains(out, "PASS: provider gadgets") || !regexp.MustCompile(`(?m)^ok\s+example\.org/gadgets/e2e\s`).MatchString(out) {
		t.Errorf("the conformance kit did not pass against the scaffolded provider")
	}
	for _, step := range []string{"ASSESS 3", "deletionPolicy Orphan leaves its thing in place", "ObserveOnly adopts the orphaned thing", "ASSESS 4"} {
		if !strings.Contains(out, step) {
			t.Errorf("the conformance table has no step %q", step)
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
