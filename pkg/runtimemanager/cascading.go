package runtimemanager

import (
	"context"
	"encoding/json"
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
	"github.com/msp-dev/msp/sdk/launch"
	"github.com/msp-dev/msp/sdk/procurement"
)

// CascadingParameters are a cascading class's spec.driver.parameters: the other
// provider's capability kind each runtime is ordered as.
type CascadingParameters struct {
	// APIVersion and Kind name the capability kind to order; the provider workspace
	// binds the other provider's export. Required.
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// SecretKey overrides the key of the connection Secret that carries the runtime's
	// access (procurement.Access.SecretKey).
	SecretKey string `json:"secretKey,omitempty"`
}

// parameters reads what rt was ordered with, or the class's parameters.
func parameters(rt *platformv1alpha1.ServiceRuntime, class *platformv1alpha1.ServiceRuntimeClass) (CascadingParameters, error) {
	var raw []byte
	if a := rt.Annotations[annotationParameters]; a != "" {
		raw = []byte(a)
	} else if class != nil && class.Spec.Driver.Parameters != nil {
		raw = class.Spec.Driver.Parameters.Raw
	}
	var p CascadingParameters
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &p); err != nil {
			return p, fmt.Errorf("the cascading driver's parameters of runtime %s are not valid: %w", rt.Name, err)
		}
	}
	if p.APIVersion == "" || p.Kind == "" {
		return p, fmt.Errorf("runtime %s: the cascading driver needs spec.driver.parameters apiVersion and kind (the capability kind of another provider to order the runtime as)", rt.Name)
	}
	return p, nil
}

func (p CascadingParameters) gvk() schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(p.APIVersion, p.Kind)
}

// CascadingOptions configure the cascading procurement driver.
type CascadingOptions struct {
	// Client writes into the provider workspace, which binds the hosting provider's
	// export: there the provider is the hosting provider's tenant. Required.
	Client client.Client
	// Namespace of the ordered capabilities. Defaults to "default".
	Namespace string
	// Dir holds one folder per runtime (its access, its servicelet's log). Required.
	Dir string
	// Servicelet, Workspace and Export run the provider's servicelet of an ordered
	// runtime, with the connection details as its access to the runtime.
	Servicelet, Workspace, Export string
	// Access says which connection detail the servicelet takes, with which flag.
	// Required.
	Access procurement.Access
	// Credentials issues each servicelet its own credential. Required.
	Credentials *ServiceletAccess
	// ExtraArgs are appended to every servicelet's arguments.
	ExtraArgs []string
	// Log is the logger.
	Log logr.Logger
}

// Cascading orders a runtime as a capability of another provider through kcp (the
// class names its kind; the provider workspace binds that provider's export). When the
// other provider reports it Ready, one key of its connection Secret becomes the new
// runtime's access, and the provider's servicelet starts for it.
type Cascading struct {
	opts CascadingOptions
	mu   sync.Mutex
	live map[string]*proc
}

// NewCascading returns the cascading procurement driver.
func NewCascading(opts CascadingOptions) (*Cascading, error) {
	if opts.Client == nil || opts.Dir == "" || opts.Servicelet == "" || opts.Access.SecretKey == "" || opts.Access.FileFlag == "" {
		return nil, errors.New("runtimemanager: the cascading driver needs a client, a folder, the provider's servicelet executable and how it takes its access")
	}
	if err := opts.Credentials.complete(); err != nil {
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
func (c *Cascading) Order(ctx context.Context, rt *platformv1alpha1.ServiceRuntime, class *platformv1alpha1.ServiceRuntimeClass) error {
	params, err := parameters(rt, class)
	if err != nil {
		return err
	}
	kind := params.Kind
	srv := &unstructured.Unstructured{}
	srv.SetGroupVersionKind(params.gvk())
	err = c.opts.Client.Get(ctx, client.ObjectKey{Namespace: c.opts.Namespace, Name: rt.Name}, srv)
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
			return fmt.Errorf("failed to order %s %s: %w", kind, rt.Name, err)
		}
		c.opts.Log.Info("ordered the runtime from another provider", "runtime", rt.Name, "kind", kind, "region", loc.Region)
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read %s %s: %w", kind, rt.Name, err)
	}
	var doc struct {
		Status platformv1alpha1.CapabilityStatus `json:"status"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(srv.Object, &doc); err != nil {
		return err
	}
	ready := meta.FindStatusCondition(doc.Status.Conditions, platformv1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || doc.Status.ConnectionSecretRef == nil {
		return nil // the other provider is still at work
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
	key := c.opts.Access.SecretKey
	if params.SecretKey != "" {
		key = params.SecretKey
	}
	access := secret.Data[key]
	if len(access) == 0 {
		return fmt.Errorf("the connection Secret of %s %s has no %q", kind, rt.Name, key)
	}
	dir := filepath.Join(c.opts.Dir, rt.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	accessFile := filepath.Join(dir, "access")
	if err := os.WriteFile(accessFile, access, 0o600); err != nil {
		return err
	}
	kubeconfig, err := c.opts.Credentials.Issue(ctx, rt.Name, dir)
	if err != nil {
		return err
	}
	args := launch.Servicelet{
		Kubeconfig: kubeconfig, Workspace: c.opts.Workspace, Export: c.opts.Export, Runtime: rt.Name,
		Extra: append([]string{c.opts.Access.FileFlag, accessFile}, c.opts.ExtraArgs...),
	}.Args()
	p, err := startProc(c.opts.Servicelet, args, filepath.Join(dir, "servicelet.log"))
	if err != nil {
		return fmt.Errorf("failed to start the servicelet of %s: %w", rt.Name, err)
	}
	c.live[rt.Name] = p
	c.opts.Log.Info("runtime ordered from another provider is up; servicelet started", "runtime", rt.Name, "kind", kind)
	return nil
}

// Release stops the runtime's servicelet and deletes the capability it was ordered as;
// it is done once the other provider has removed it.
func (c *Cascading) Release(ctx context.Context, rt *platformv1alpha1.ServiceRuntime) (bool, error) {
	c.mu.Lock()
	if p := c.live[rt.Name]; p != nil {
		p.stop()
		delete(c.live, rt.Name)
	}
	c.mu.Unlock()
	if err := c.opts.Credentials.Revoke(ctx, rt.Name); err != nil {
		return false, err
	}
	params, err := parameters(rt, nil)
	if err != nil {
		return false, err
	}
	srv := &unstructured.Unstructured{}
	srv.SetGroupVersionKind(params.gvk())
	srv.SetNamespace(c.opts.Namespace)
	srv.SetName(rt.Name)
	if err := c.opts.Client.Delete(ctx, srv); err != nil {
		if apierrors.IsNotFound(err) {
			_ = os.RemoveAll(filepath.Join(c.opts.Dir, rt.Name))
			return true, nil
		}
		return false, fmt.Errorf("failed to delete %s %s: %w", params.Kind, rt.Name, err)
	}
	return false, nil // gone once the other provider's servicelet lets it go
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
