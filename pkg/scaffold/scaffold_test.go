package scaffold

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlural(t *testing.T) {
	for kind, want := range map[string]string{
		"Widget": "widgets", "Policy": "policies", "Gateway": "gateways", "Box": "boxes",
		"Address": "addresses", "Switch": "switches", "Mesh": "meshes", "Quiz": "quizes",
	} {
		if got := Plural(kind); got != want {
			t.Errorf("Plural(%s) = %s, want %s", kind, got, want)
		}
	}
}

// Bad options are refused with every problem named, before anything is written.
func TestValidate(t *testing.T) {
	o := Options{Name: "Bad_Name", Group: "nodot", Kind: "lower", Dir: ""}
	err := o.Validate()
	if err == nil {
		t.Fatal("bad options were accepted")
	}
	for _, want := range []string{`provider name "Bad_Name"`, `--group "nodot"`, `--kind "lower"`, "output folder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	o = Options{Name: "pg", Group: "pg.msp.dev", Kind: "Pg", Dir: "x"}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "msp.dev belongs to the platform") {
		t.Errorf("a group under msp.dev: %v", err)
	}
}

// Write renders every template (the Go files formatted), names files after the
// provider and the kind, and never writes into a folder that holds something.
func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	files, err := Write(Options{Name: "red-box", Group: "redbox.example.dev", Kind: "RedBox", Dir: dir, MSP: "../.."})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"go.mod": true, "Makefile": true, ".gitignore": true, "apis/v1alpha1/redbox_types.go": true,
		"cmd/red-box-servicelet/main.go": true, "cmd/red-box-coordinator/main.go": true,
		"apiexport/redbox.example.dev/apiexport-redbox.example.dev.yaml": true, "samples/redbox.yaml": true,
	}
	for _, f := range files {
		delete(want, f)
		if strings.Contains(f, "__") || strings.HasSuffix(f, ".tmpl") {
			t.Errorf("file %s still has a placeholder in its name", f)
		}
		raw, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "[[") {
			t.Errorf("%s has an unrendered template action", f)
		}
	}
	for f := range want {
		t.Errorf("Write did not write %s", f)
	}
	mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	abs, _ := filepath.Abs("../..")
	if !strings.Contains(string(mod), "module example.com/red-box") || !strings.Contains(string(mod), "replace github.com/msp-dev/msp => "+abs) {
		t.Errorf("go.mod:\n%s", mod)
	}
	types, _ := os.ReadFile(filepath.Join(dir, "apis/v1alpha1/redbox_types.go"))
	for _, s := range []string{"platformv1alpha1.CapabilitySpec `json:\",inline\"`", "platformv1alpha1.CapabilityStatus `json:\",inline\"`", "path=redboxes", "Items           []RedBox"} {
		if !strings.Contains(string(types), s) {
			t.Errorf("the type file lacks %q", s)
		}
	}
	main, _ := os.ReadFile(filepath.Join(dir, "cmd/red-box-servicelet/main.go"))
	if !strings.Contains(string(main), `redbox "example.com/red-box"`) {
		t.Errorf("the servicelet main does not import the provider package as redbox:\n%s", main)
	}
	if _, err := Write(Options{Name: "red-box", Group: "redbox.example.dev", Kind: "RedBox", Dir: dir}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second Write into the same folder: %v, want refused", err)
	}
}
