package deploymanifests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kubectlResult is what one kubectl call printed and how it ended.
type kubectlResult struct {
	stdout, stderr string
	err            error
}

// kubectl runs the project's kubectl against the package's kube-apiserver, stdin (when
// not empty) on its standard input. It does not fail the test by itself.
func kubectl(t testing.TB, stdin string, args ...string) kubectlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(env.bin, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.admin)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return kubectlResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// mustKubectl is kubectl that fails the test when kubectl fails.
func mustKubectl(t testing.TB, stdin string, args ...string) kubectlResult {
	t.Helper()
	res := kubectl(t, stdin, args...)
	if res.err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.err, res.stdout, res.stderr)
	}
	return res
}

// folder is one folder under deploy/, rendered.
type folder struct {
	name string
	// kustomize says whether it is a kustomize folder (rendered by kubectl kustomize);
	// the others are plain manifests, their *.yaml files in name order.
	kustomize bool
	rendered  string
	objects   []*unstructured.Unstructured
}

var (
	renderMu sync.Mutex
	renders  = map[string]*folder{}
)

// deployFolders lists the folders under deploy/.
func deployFolders(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir(env.deploy)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// render renders deploy/<name> once per test binary.
func render(t testing.TB, name string) *folder {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if f, ok := renders[name]; ok {
		return f
	}
	dir := filepath.Join(env.deploy, name)
	f := &folder{name: name}
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err == nil {
		f.kustomize = true
		f.rendered = mustKubectl(t, "", "kustomize", dir).stdout
	} else {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(files)
		var docs []string
		for _, file := range files {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, string(raw))
		}
		f.rendered = strings.Join(docs, "\n---\n")
	}
	objs, err := parseObjects(f.rendered)
	if err != nil {
		t.Fatalf("deploy/%s: %v", name, err)
	}
	if len(objs) == 0 {
		t.Fatalf("deploy/%s renders no objects", name)
	}
	f.objects = objs
	renders[name] = f
	return f
}

// parseObjects reads a stream of YAML documents (numbers as int64, as the API
// machinery's JSON decoder reads them).
func parseObjects(stream string) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		raw, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(raw)); s == "null" || s == "{}" {
			continue // an empty document, or comments only
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%w in:\n%s", err, doc)
		}
		out = append(out, obj)
	}
}

// kinds are the distinct kinds of the folder's objects, sorted.
func (f *folder) kinds() []string {
	var out []string
	for _, o := range f.objects {
		if !slices.Contains(out, o.GetKind()) {
			out = append(out, o.GetKind())
		}
	}
	sort.Strings(out)
	return out
}

// ofKind returns the folder's objects of kind.
func (f *folder) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range f.objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// yamlOf renders objects as one YAML stream.
func yamlOf(t testing.TB, objs ...*unstructured.Unstructured) string {
	t.Helper()
	var docs []string
	for _, o := range objs {
		raw, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(raw))
	}
	return strings.Join(docs, "\n---\n")
}

// workload is an object that runs pods, with its pod template.
type workload struct {
	folder string
	obj    *unstructured.Unstructured
	pod    corev1.PodTemplateSpec
}

func (w workload) String() string {
	return "deploy/" + w.folder + ": " + w.obj.GetKind() + " " + w.obj.GetName()
}

// podTemplatePath is where each kind that runs pods keeps its pod template.
var podTemplatePath = map[string][]string{
	"Deployment":  {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
}

// workloads returns the folder's objects that run pods. A bare Pod fails the test:
// deploy/ runs nothing unmanaged.
func (f *folder) workloads(t testing.TB) []workload {
	t.Helper()
	var out []workload
	for _, o := range f.objects {
		if o.GetKind() == "Pod" {
			t.Errorf("deploy/%s: a bare Pod %s: run it from a Deployment or a Job", f.name, o.GetName())
			continue
		}
		path, ok := podTemplatePath[o.GetKind()]
		if !ok {
			continue
		}
		tmpl, found, err := unstructured.NestedMap(o.Object, path...)
		if err != nil || !found {
			t.Fatalf("deploy/%s: %s %s has no pod template: %v", f.name, o.GetKind(), o.GetName(), err)
		}
		w := workload{folder: f.name, obj: o}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &w.pod); err != nil {
			t.Fatalf("deploy/%s: %s %s: %v", f.name, o.GetKind(), o.GetName(), err)
		}
		out = append(out, w)
	}
	return out
}

// container is one container of a workload, init containers included.
type container struct {
	corev1.Container
	init bool
}

func (w workload) containers() []container {
	var out []container
	for _, c := range w.pod.Spec.InitContainers {
		out = append(out, container{c, true})
	}
	for _, c := range w.pod.Spec.Containers {
		out = append(out, container{c, false})
	}
	return out
}

func (c container) String() string {
	if c.init {
		return "init container " + c.Name
	}
	return "container " + c.Name
}

// secretRefs are the Secrets a workload's pods read: volumes (projected ones too), env
// and envFrom.
func (w workload) secretRefs() []string {
	var out []string
	add := func(name string) {
		if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for _, v := range w.pod.Spec.Volumes {
		if v.Secret != nil {
			add(v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					add(s.Secret.Name)
				}
			}
		}
	}
	for _, c := range w.containers() {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				add(e.SecretRef.Name)
			}
		}
	}
	for _, s := range w.pod.Spec.ImagePullSecrets {
		add(s.Name)
	}
	return out
}
