// Package bootstrap applies msp's workspace tree and APIExports to a kcp server,
// idempotently: every object is server-side applied with one field manager, so a second
// run changes nothing, and every step waits for what the next one needs (a workspace
// Ready, an APIExport's identity, an APIBinding bound, an API served) instead of sleeping.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/msp-dev/msp/apiexports"
	"github.com/msp-dev/msp/workspaces"
)

// FieldManager is the server-side apply field manager of the bootstrap.
const FieldManager = "msp-bootstrap"

// DefaultExports maps a workspace path to the API groups whose generated
// APIResourceSchemas and APIExports (from package apiexports) are applied there: the
// platform's own. Providers publish theirs in the workspaces their ServiceProviders get.
var DefaultExports = map[string][]string{
	"root:platform": {"platform.msp.dev", "onboarding.msp.dev"},
}

// Options configure a bootstrap run. Zero values take the documented defaults.
type Options struct {
	// Config points at the kcp server. Its host may or may not carry a /clusters/<path>
	// suffix; the bootstrap addresses each workspace itself.
	Config *rest.Config

	// Tree is the workspace tree, one folder per workspace starting at "root".
	// Defaults to workspaces.Tree.
	Tree fs.FS

	// Exports maps a workspace path to API group folders of ExportsFS whose objects
	// are applied in that workspace. Defaults to DefaultExports.
	Exports map[string][]string

	// ExportsFS holds one folder per API group. Defaults to apiexports.FS.
	ExportsFS fs.FS

	// Timeout bounds each wait (a workspace to become Ready, an API to be served).
	// Defaults to 2 minutes.
	Timeout time.Duration

	// PollInterval is how often a wait checks again. Defaults to 100ms.
	PollInterval time.Duration

	// Log receives progress. Defaults to a discarding logger.
	Log logr.Logger
}

func (o *Options) complete() error {
	if o.Config == nil {
		return errors.New("bootstrap: a rest config is required")
	}
	if o.Tree == nil {
		o.Tree = workspaces.Tree
	}
	if o.Exports == nil {
		o.Exports = DefaultExports
	}
	if o.ExportsFS == nil {
		o.ExportsFS = apiexports.FS
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.PollInterval == 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	return nil
}

// Change says what a run did to one object.
type Change string

const (
	// Created: the object did not exist.
	Created Change = "created"
	// Updated: the object existed and the apply changed it.
	Updated Change = "updated"
	// Unchanged: the object existed and the apply left it as it was.
	Unchanged Change = "unchanged"
)

// Applied is one object a run applied.
type Applied struct {
	// Workspace is the logical cluster path the object lives in.
	Workspace string
	// Kind, Namespace and Name identify the object.
	Kind, Namespace, Name string
	// Change says what the apply did.
	Change Change
}

func (a Applied) String() string {
	id := a.Name
	if a.Namespace != "" {
		id = a.Namespace + "/" + a.Name
	}
	return fmt.Sprintf("%s %s %s: %s", a.Workspace, a.Kind, id, a.Change)
}

// Result lists what a run applied, in order.
type Result struct {
	Applied []Applied
}

// Changed returns the objects that a run created or updated.
func (r Result) Changed() []Applied {
	var out []Applied
	for _, a := range r.Applied {
		if a.Change != Unchanged {
			out = append(out, a)
		}
	}
	return out
}

// Run applies the tree, starting at the root workspace, and returns what it did.
func Run(ctx context.Context, opts Options) (Result, error) {
	if err := opts.complete(); err != nil {
		return Result{}, err
	}
	b := &bootstrapper{opts: opts, clients: newClientSet(opts.Config)}
	err := b.workspace(ctx, "root", "root")
	return b.result, err
}

// ExportObjects returns the generated APIResourceSchemas and APIExport of one API group
// (a folder of apiexports.FS, or of fsys when it is not nil).
func ExportObjects(fsys fs.FS, group string) ([]*unstructured.Unstructured, error) {
	if fsys == nil {
		fsys = apiexports.FS
	}
	return readManifests(fsys, group)
}

// Apply server-side applies objs in the workspace at path, in dependency order, waiting
// for each to be ready as Run does. It does not create the workspace.
func Apply(ctx context.Context, opts Options, path string, objs ...*unstructured.Unstructured) (Result, error) {
	if err := opts.complete(); err != nil {
		return Result{}, err
	}
	b := &bootstrapper{opts: opts, clients: newClientSet(opts.Config)}
	sorted := slices.Clone(objs)
	sortForApply(sorted)
	ws := b.clients.forWorkspace(path)
	for _, o := range sorted {
		if err := b.apply(ctx, ws, path, o); err != nil {
			return b.result, err
		}
	}
	return b.result, nil
}

type bootstrapper struct {
	opts    Options
	clients *clientSet
	result  Result
}

// workspace applies the objects of one folder in its workspace, then walks the child
// workspaces it declares, depth-first in declaration order.
func (b *bootstrapper) workspace(ctx context.Context, wsPath, dir string) error {
	objs, err := readManifests(b.opts.Tree, dir)
	if err != nil {
		return err
	}
	for _, group := range b.opts.Exports[wsPath] {
		exportObjs, err := readManifests(b.opts.ExportsFS, group)
		if err != nil {
			return fmt.Errorf("failed to read APIExport %s for %s: %w", group, wsPath, err)
		}
		if len(exportObjs) == 0 {
			return fmt.Errorf("no generated manifests for API group %s (run 'make codegen')", group)
		}
		objs = append(exportObjs, objs...)
	}

	var children, others []*unstructured.Unstructured
	for _, o := range objs {
		if isWorkspace(o) {
			children = append(children, o)
		} else {
			others = append(others, o)
		}
	}
	sortForApply(others)

	ws := b.clients.forWorkspace(wsPath)
	for _, o := range others {
		if err := b.apply(ctx, ws, wsPath, o); err != nil {
			return err
		}
	}
	for _, child := range children {
		if err := b.apply(ctx, ws, wsPath, child); err != nil {
			return err
		}
		childPath := wsPath + ":" + child.GetName()
		childDir := path.Join(dir, child.GetName())
		if _, err := fs.Stat(b.opts.Tree, childDir); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := b.workspace(ctx, childPath, childDir); err != nil {
			return err
		}
	}
	return nil
}

func (b *bootstrapper) apply(ctx context.Context, ws *workspaceClient, wsPath string, obj *unstructured.Unstructured) error {
	log := b.opts.Log.WithValues("workspace", wsPath, "kind", obj.GetKind(), "name", obj.GetName())
	change, err := ws.apply(ctx, obj, b.opts.Timeout, b.opts.PollInterval)
	if err != nil {
		return fmt.Errorf("failed to apply %s %s in %s: %w", obj.GetKind(), obj.GetName(), wsPath, err)
	}
	log.V(1).Info("applied", "change", change)
	b.result.Applied = append(b.result.Applied, Applied{
		Workspace: wsPath, Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName(), Change: change,
	})
	if err := waitReady(ctx, ws, obj, b.opts.Timeout, b.opts.PollInterval); err != nil {
		return fmt.Errorf("%s %s in %s did not become ready: %w", obj.GetKind(), obj.GetName(), wsPath, err)
	}
	return nil
}

func isWorkspace(o *unstructured.Unstructured) bool {
	return o.GroupVersionKind().Group == "tenancy.kcp.io" && o.GetKind() == "Workspace"
}

// sortForApply puts schemas before the exports that name them, and exports before the
// bindings and types that reference them; it is stable, so the files' order holds otherwise.
func sortForApply(objs []*unstructured.Unstructured) {
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return applyOrder(a) - applyOrder(b)
	})
}

func applyOrder(o *unstructured.Unstructured) int {
	switch o.GetKind() {
	case "APIResourceSchema":
		return 0
	case "APIExport":
		return 1
	case "APIBinding":
		return 2
	default:
		return 3
	}
}
