package runtimemanager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// PostgresServerGVK is the hosting provider's kind that the cascading driver orders.
var PostgresServerGVK = schema.GroupVersionKind{Group: "hosting.msp.dev", Version: "v1alpha1", Kind: "PostgresServer"}

// CascadingOptions configure the cascading procurement driver.
type CascadingOptions struct {
	// Client writes into the provider workspace, which binds the hosting provider's
	// export: there the provider is the hosting provider's tenant. Required.
	Client client.Client
	// Namespace of the ordered capabilities. Defaults to "default".
	Namespace string
	// Dir holds one folder per runtime (its access, its servicelet's log). Required.
	Dir string
	// Servicelet, Workspace and Export run the servicelet of an ordered runtime, with
	// the connection details as its access to the runtime.
	Servicelet, Workspace, Export string
	// Access issues each servicelet its own credential. Required.
	Access *ServiceletAccess
	// ExtraArgs are appended to every servicelet's arguments.
	ExtraArgs []string
	// Log is the logger.
	Log logr.Logger
}

// Cascading orders a runtime as a capability of another provider through kcp: a
// PostgresServer in the provider's own workspace. When the other provider reports it
// Ready, its connection Secret becomes the new runtime's access, and a servicelet starts
// for it.
type Cascading struct {
	opts CascadingOptions
	mu   sync.Mutex
	live map[string]*proc
}

// NewCascading returns the cascading procurement driver.
func NewCascading(opts CascadingOptions) (*Cascading, error) {
	if opts.Client == nil || opts.Dir == "" || opts.Servicelet == "" {
		return nil, errors.New("runtimemanager: the cascading driver needs a client, a folder and the msp-servicelet executable")
	}
	if err := opts.Access.complete(); err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		opts.Namespace = metav1.NamespaceDefault
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	return &Cascading{opts: opts, live: map[string]*proc{}}, nil
}

// Order orders the capability if needed, and starts the runtime's servicelet once the
// capability is Ready.
func (c *Cascading) Order(ctx context.Context, rt *platformv1alpha1.ServiceRuntime, _ *platformv1alpha1.ServiceRuntimeClass) error {
	srv := &unstructured.Unstructured{}
	srv.SetGroupVersionKind(PostgresServerGVK)
	err := c.opts.Client.Get(ctx, client.ObjectKey{Namespace: c.opts.Namespace, Name: rt.Name}, srv)
	if apierrors.IsNotFound(err) {
		loc := rt.Spec.Location
		placement := map[string]any{"regions": []any{loc.Region}}
		if loc.Country != "" {
			placement["countries"] = []any{loc.Country}
		}
		srv.SetNamespace(c.opts.Namespace)
		srv.SetName(rt.Name)
		srv.SetLabels(map[string]string{"platform.msp.dev/ordered-for": rt.Name})
		srv.Object["spec"] = map[string]any{"placement": placement}
		if err := c.opts.Client.Create(ctx, srv); err != nil {
			return fmt.Errorf("failed to order PostgresServer %s: %w", rt.Name, err)
		}
		c.opts.Log.Info("ordered a PostgresServer from the hosting provider", "runtime", rt.Name, "region", loc.Region)
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read PostgresServer %s: %w", rt.Name, err)
	}
	var doc struct {
		Status platformv1alpha1.CapabilityStatus `json:"status"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(srv.Object, &doc); err != nil {
		return err
	}
	ready := meta.FindStatusCondition(doc.Status.Conditions, platformv1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || doc.Status.ConnectionSecretRef == nil {
		return nil // the hosting provider is still at work
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.live[rt.Name]; p != nil && p.running() {
		return nil
	}
	secret := &corev1.Secret{}
	if err := c.opts.Client.Get(ctx, client.ObjectKey{Namespace: c.opts.Namespace, Name: doc.Status.ConnectionSecretRef.Name}, secret); err != nil {
		return fmt.Errorf("failed to read the access of runtime %s: %w", rt.Name, err)
	}
	uri := secret.Data["uri"]
	if len(uri) == 0 {
		return fmt.Errorf("the connection Secret of PostgresServer %s has no uri", rt.Name)
	}
	dir := filepath.Join(c.opts.Dir, rt.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	urlFile := filepath.Join(dir, "admin-url")
	if err := os.WriteFile(urlFile, uri, 0o600); err != nil {
		return err
	}
	kubeconfig, err := c.opts.Access.Issue(ctx, rt.Name, dir)
	if err != nil {
		return err
	}
	args := append([]string{
		"--kubeconfig", kubeconfig, "--workspace", c.opts.Workspace, "--export", c.opts.Export,
		"--runtime", rt.Name, "--driver", "postgres", "--postgres-url-file", urlFile,
	}, c.opts.ExtraArgs...)
	p, err := startProc(c.opts.Servicelet, args, filepath.Join(dir, "servicelet.log"))
	if err != nil {
		return fmt.Errorf("failed to start the servicelet of %s: %w", rt.Name, err)
	}
	c.live[rt.Name] = p
	c.opts.Log.Info("runtime ordered through the hosting provider is up; servicelet started", "runtime", rt.Name)
	return nil
}

// Release stops the runtime's servicelet and deletes its PostgresServer; it is done once
// the hosting provider has removed it.
func (c *Cascading) Release(ctx context.Context, rt *platformv1alpha1.ServiceRuntime) (bool, error) {
	c.mu.Lock()
	if p := c.live[rt.Name]; p != nil {
		p.stop()
		delete(c.live, rt.Name)
	}
	c.mu.Unlock()
	if err := c.opts.Access.Revoke(ctx, rt.Name); err != nil {
		return false, err
	}
	srv := &unstructured.Unstructured{}
	srv.SetGroupVersionKind(PostgresServerGVK)
	srv.SetNamespace(c.opts.Namespace)
	srv.SetName(rt.Name)
	if err := c.opts.Client.Delete(ctx, srv); err != nil {
		if apierrors.IsNotFound(err) {
			_ = os.RemoveAll(filepath.Join(c.opts.Dir, rt.Name))
			return true, nil
		}
		return false, fmt.Errorf("failed to delete PostgresServer %s: %w", rt.Name, err)
	}
	return false, nil // gone once the hosting provider's servicelet lets it go
}

// Stop ends the servicelets this driver runs.
func (c *Cascading) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, p := range c.live {
		p.stop()
		delete(c.live, name)
	}
}
