package bootstrap

import (
	"io/fs"
	"path"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/apiexports"
	"github.com/msp-dev/msp/workspaces"
)

func names(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

func TestReadManifests(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []string
		wantErr string
	}{
		{
			name: "files in name order, documents in file order, sub-folders and other files ignored",
			files: fstest.MapFS{
				"ws/b.yaml":       {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b1}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b2}\n")},
				"ws/a.yml":        {Data: []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n")},
				"ws/README.md":    {Data: []byte("# not a manifest")},
				"ws/child/c.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")},
			},
			want: []string{"Secret/a", "ConfigMap/b1", "ConfigMap/b2"},
		},
		{
			name:  "empty documents are skipped",
			files: fstest.MapFS{"ws/a.yaml": {Data: []byte("---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n")}},
			want:  []string{"ConfigMap/x"},
		},
		{
			name:    "an object without a kind is an error naming the file",
			files:   fstest.MapFS{"ws/a.yaml": {Data: []byte("apiVersion: v1\nmetadata: {name: x}\n")}},
			wantErr: "ws/a.yaml",
		},
		{
			name:    "invalid YAML is an error naming the file",
			files:   fstest.MapFS{"ws/a.yaml": {Data: []byte("kind: [\n")}},
			wantErr: "ws/a.yaml",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := readManifests(tt.files, "ws")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, names(objs)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyOrderPutsSchemasFirst(t *testing.T) {
	objs, err := decodeManifests([]byte(`
apiVersion: tenancy.kcp.io/v1alpha1
kind: WorkspaceType
metadata: {name: t}
---
apiVersion: apis.kcp.io/v1alpha2
kind: APIBinding
metadata: {name: b}
---
apiVersion: apis.kcp.io/v1alpha2
kind: APIExport
metadata: {name: e}
---
apiVersion: apis.kcp.io/v1alpha1
kind: APIResourceSchema
metadata: {name: s}
`))
	if err != nil {
		t.Fatal(err)
	}
	sortForApply(objs)
	want := []string{"APIResourceSchema/s", "APIExport/e", "APIBinding/b", "WorkspaceType/t"}
	if diff := cmp.Diff(want, names(objs)); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// The embedded tree is consistent: every folder below root is declared as a Workspace
// in its parent's folder, and every exported group has generated manifests.
func TestEmbeddedTreeIsConsistent(t *testing.T) {
	declared := map[string]bool{"root": true}
	err := fs.WalkDir(workspaces.Tree, "root", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		objs, err := readManifests(workspaces.Tree, p)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if isWorkspace(o) {
				declared[path.Join(p, o.GetName())] = true
			}
		}
		if !declared[p] {
			t.Errorf("folder %s is not declared as a Workspace in %s", p, path.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for ws, groups := range DefaultExports {
		for _, group := range groups {
			if !declared[strings.ReplaceAll(ws, ":", "/")] {
				t.Errorf("export %s goes to %s, which the tree does not declare", group, ws)
			}
			objs, err := readManifests(apiexports.FS, group)
			if err != nil {
				t.Fatalf("group %s: %v", group, err)
			}
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.GetKind()]++
			}
			if kinds["APIExport"] != 1 || kinds["APIResourceSchema"] == 0 {
				t.Errorf("group %s has %v, want one APIExport and at least one APIResourceSchema", group, kinds)
			}
		}
	}
}

func TestResultChanged(t *testing.T) {
	r := Result{Applied: []Applied{
		{Workspace: "root", Kind: "Workspace", Name: "a", Change: Created},
		{Workspace: "root", Kind: "Workspace", Name: "b", Change: Unchanged},
		{Workspace: "root:a", Kind: "APIExport", Name: "c", Change: Updated},
	}}
	got := []string{}
	for _, a := range r.Changed() {
		got = append(got, a.String())
	}
	want := []string{"root Workspace a: created", "root:a APIExport c: updated"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Changed() (-want +got):\n%s", diff)
	}
}
