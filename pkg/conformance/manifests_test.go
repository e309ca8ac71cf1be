package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A folder's .yaml files are read in name order, every document of each, empty ones
// skipped; what is not YAML is named with its file.
func TestReadManifests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yaml", "kind: B1\n---\n# only a comment\n---\nkind: B2\n")
	write("a.yaml", "kind: A\n")
	write("notes.txt", "kind: Ignored\n")
	objs, err := ReadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
	}
	if got := strings.Join(kinds, ","); got != "A,B1,B2" {
		t.Errorf("kinds = %s, want A,B1,B2", got)
	}
	shipped, err := ReadManifests("../../providers/postgres/conformance/samples")
	if err != nil || len(shipped) != 1 || shipped[0].GetKind() != "PostgresDatabase" {
		t.Errorf("postgres samples: %v, %v", shipped, err)
	}
	write("c.yaml", "kind: [unclosed\n")
	if _, err := ReadManifests(dir); err == nil || !strings.Contains(err.Error(), "c.yaml") {
		t.Errorf("a broken file: %v, want an error naming c.yaml", err)
	}
}
