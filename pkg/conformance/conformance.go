// Package conformance runs seed 004's validation flow against any provider on any kcp
// that runs msp: SETUP checks the platform, ASSESS 1 registers the provider's
// ServiceProvider and waits until it is Ready, ASSESS 2 orders each of the provider's
// sample capabilities in a fresh tenant and checks the capability contract on it,
// ASSESS 3 runs the provider's own check against the connection Secret, ASSESS 4
// deletes the ServiceProvider and waits for its deletion policy to be carried out, and
// TEARDOWN removes what the run made. msp-conformance is its command.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/kcpconfig"
	"github.com/msp-dev/msp/pkg/onboarding"
)

// Options say what to validate.
type Options struct {
	// Config is the operator's identity on kcp (any workspace suffix is ignored).
	Config *rest.Config
	// Kubectl is the kubectl binary (with the kcp plugins next to it). Default "kubectl".
	Kubectl string
	// ServiceProvider is applied in ASSESS 1.
	ServiceProvider *onboardingv1alpha1.ServiceProvider
	// Export are the provider's APIResourceSchemas and APIExport, published in ASSESS 1
	// (nil: the provider has published them itself).
	Export []*unstructured.Unstructured
	// Samples are capability manifests the provider ships, one per kind at least.
	Samples []*unstructured.Unstructured
	// Check is the provider's own check that an ordered thing works (ASSESS 3), given
	// the connection Secret's data. Nil: ASSESS 3 is not run and the report says so.
	Check func(ctx context.Context, secret map[string][]byte) error
	// Timeout bounds each wait. Default 3 minutes.
	Timeout time.Duration
	// KeepProvider leaves the ServiceProvider in place (ASSESS 4 is not run).
	KeepProvider bool
	// WorkDir receives kubeconfigs; default a temporary folder.
	WorkDir string
}

// Step is one check of the flow.
type Step struct {
	Phase, Name string
	// Err is why it failed; nil when it passed.
	Err  error
	Took time.Duration
	// Skipped says why a step did not run (a failed step before it, or nothing to run).
	Skipped string
}

// Report is what a run found.
type Report struct {
	Provider string
	Steps    []Step
}

// Passed tells whether every step that ran passed and no step was skipped because an
// earlier one failed.
func (r Report) Passed() bool {
	for _, s := range r.Steps {
		if s.Err != nil {
			return false
		}
	}
	return len(r.Steps) > 0
}

type runner struct {
	o       Options
	report  *Report
	failed  bool
	tenant  string
	tenantK string
	// applied: the run applied the ServiceProvider (TEARDOWN deletes it if ASSESS 4 did not).
	applied bool
	// granted are RBAC objects the run made in the provider workspace.
	granted []*unstructured.Unstructured
}

func (r *runner) step(phase, name string, fn func(ctx context.Context) error) bool {
	if r.failed {
		r.report.Steps = append(r.report.Steps, Step{Phase: phase, Name: name, Skipped: "an earlier step failed"})
		return false
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), r.o.Timeout+30*time.Second)
	defer cancel()
	err := fn(ctx)
	r.report.Steps = append(r.report.Steps, Step{Phase: phase, Name: name, Err: err, Took: time.Since(start)})
	if err != nil {
		r.failed = true
	}
	return err == nil
}

// Run runs the flow and reports on every step.
func Run(o Options) Report {
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.Kubectl == "" {
		o.Kubectl = "kubectl"
	}
	o.Config = kcpconfig.Base(o.Config)
	rep := &Report{Provider: o.ServiceProvider.Name}
	r := &runner{o: o, report: rep}
	if r.o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "msp-conformance-")
		if err == nil {
			defer os.RemoveAll(dir)
		}
		r.o.WorkDir = dir
	}
	sp := o.ServiceProvider
	r.step("SETUP", "the platform serves ServiceProviders in "+onboarding.PlatformWorkspace, func(ctx context.Context) error {
		_, err := r.dyn(onboarding.PlatformWorkspace).Resource(onboardingv1alpha1.SchemeGroupVersion.WithResource("serviceproviders")).List(ctx, metav1.ListOptions{Limit: 1})
		return err
	})
	r.step("SETUP", "msp-providers leads (Lease default/msp-providers in "+onboarding.PlatformWorkspace+")", func(ctx context.Context) error {
		return r.poll(ctx, func(ctx context.Context) (bool, string, error) {
			lease, err := r.dyn(onboarding.PlatformWorkspace).Resource(schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}).Namespace("default").Get(ctx, "msp-providers", metav1.GetOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			renew, _, _ := unstructured.NestedString(lease.Object, "spec", "renewTime")
			t, err := time.Parse(time.RFC3339Nano, renew)
			if err != nil || time.Since(t) > time.Minute {
				return false, "the lease was last renewed at " + renew, nil
			}
			return true, "", nil
		})
	})
	r.step("SETUP", "no other ServiceProvider binds "+sp.Spec.Export+" into new tenants by default", func(ctx context.Context) error {
		return r.noOtherDefault(ctx)
	})
	r.step("ASSESS 1", "the ServiceProvider is applied and its export published", func(ctx context.Context) error {
		o := bootstrap.Options{Config: r.o.Config, Timeout: r.o.Timeout}
		if _, err := bootstrap.Apply(ctx, o, onboarding.PlatformWorkspace, onboarding.Unstructured(sp)); err != nil {
			return err
		}
		r.applied = true
		if err := onboarding.WaitWorkspace(ctx, r.o.Config, sp.Name, r.o.Timeout); err != nil {
			return err
		}
		if len(r.o.Export) == 0 {
			return nil
		}
		if _, err := bootstrap.Apply(ctx, o, onboarding.ProviderWorkspace(sp.Name), r.o.Export...); err != nil {
			return fmt.Errorf("failed to publish the export: %w", err)
		}
		return nil
	})
	r.step("ASSESS 1", "every kind of the export embeds the capability contract", func(ctx context.Context) error {
		return r.contract(ctx)
	})
	r.step("ASSESS 1", "the ServiceProvider reports APIReady", func(ctx context.Context) error {
		return onboarding.WaitCondition(ctx, r.o.Config, sp.Name, onboardingv1alpha1.ConditionAPIReady, r.o.Timeout)
	})
	// The tenant before Ready: a provider that only now publishes its export has its
	// first binding here, and its runtimes Ready with or without it.
	r.step("ASSESS 1", "a new tenant gets the provider's API", func(ctx context.Context) error { return r.newTenant(ctx) })
	r.step("ASSESS 1", "the ServiceProvider is Ready (API and Run)", func(ctx context.Context) error {
		return onboarding.WaitCondition(ctx, r.o.Config, sp.Name, onboardingv1alpha1.ConditionReady, r.o.Timeout)
	})
	for _, sample := range o.Samples {
		r.assessSample(sample)
	}
	deleted := false
	if !o.KeepProvider {
		deleted = r.step("ASSESS 4", fmt.Sprintf("deleting the ServiceProvider carries out its deletion policy (%s)", policyOf(sp)), func(ctx context.Context) error {
			return r.deleteProvider(ctx)
		})
	}
	r.failed = false
	if r.applied && !deleted && !o.KeepProvider {
		r.step("TEARDOWN", "the ServiceProvider is deleted", func(ctx context.Context) error {
			err := r.dyn(onboarding.PlatformWorkspace).Resource(onboardingv1alpha1.SchemeGroupVersion.WithResource("serviceproviders")).Delete(ctx, sp.Name, metav1.DeleteOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
	}
	if len(r.granted) > 0 && (!deleted || policyOf(sp) == onboardingv1alpha1.DeletionOrphan) {
		r.step("TEARDOWN", "the test tenant's leave to use runtimes is taken back", func(ctx context.Context) error {
			var errs []error
			for _, g := range r.granted {
				gvr := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: strings.ToLower(g.GetKind()) + "s"}
				if err := r.dyn(onboarding.ProviderWorkspace(sp.Name)).Resource(gvr).Delete(ctx, g.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		})
	}
	r.step("TEARDOWN", "the test tenant is removed", func(ctx context.Context) error {
		if r.tenant == "" {
			return nil
		}
		err := r.dyn(onboarding.TenantsWorkspace).Resource(gvrWorkspace).Delete(ctx, r.tenant, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	return *rep
}

var gvrWorkspace = schema.GroupVersionResource{Group: "tenancy.kcp.io", Version: "v1alpha1", Resource: "workspaces"}

func policyOf(sp *onboardingv1alpha1.ServiceProvider) onboardingv1alpha1.DeletionPolicy {
	if sp.Spec.DeletionPolicy == "" {
		return onboardingv1alpha1.DeletionOrphan
	}
	return sp.Spec.DeletionPolicy
}

func (r *runner) dyn(path string) dynamic.Interface {
	return dynamic.NewForConfigOrDie(kcpconfig.ForWorkspace(r.o.Config, path))
}

func (r *runner) poll(ctx context.Context, cond func(ctx context.Context) (bool, string, error)) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, r.o.Timeout, true, func(ctx context.Context) (bool, error) {
		ok, why, err := cond(ctx)
		// A request cut by the deadline (or refused by the client's rate limiter because
		// it would be) says nothing about the state: keep the last real answer.
		if dl, ok := ctx.Deadline(); ctx.Err() == nil && (!ok || time.Until(dl) > time.Second) {
			last = why
		}
		return ok, err
	})
	if err != nil && last != "" {
		return fmt.Errorf("%s (after %s)", last, r.o.Timeout)
	}
	return err
}

// kubeconfig writes a kubeconfig for the workspace at path.
func (r *runner) kubeconfig(path string) (string, error) {
	c := r.o.Config
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = kcpconfig.ForWorkspace(c, path).Host
	cluster.CertificateAuthorityData, cluster.CertificateAuthority = c.CAData, c.CAFile
	cluster.InsecureSkipTLSVerify = c.Insecure
	auth := clientcmdapi.NewAuthInfo()
	auth.Token, auth.TokenFile = c.BearerToken, c.BearerTokenFile
	auth.ClientCertificateData, auth.ClientKeyData = c.CertData, c.KeyData
	auth.ClientCertificate, auth.ClientKey = c.CertFile, c.KeyFile
	cfg.Clusters["kcp"], cfg.AuthInfos["kcp"] = cluster, auth
	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo = "kcp", "kcp"
	cfg.Contexts["kcp"], cfg.CurrentContext = ctx, "kcp"
	file := filepath.Join(r.o.WorkDir, strings.ReplaceAll(path, ":", "_")+".kubeconfig")
	return file, clientcmd.WriteToFile(*cfg, file)
}

func (r *runner) kubectl(ctx context.Context, kubeconfig, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.o.Kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// newTenant creates a tenant workspace of the tenant type, lets msp-providers bind there,
// opts it in when the provider is OptIn, and waits until the export is bound.
func (r *runner) newTenant(ctx context.Context) error {
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	r.tenant = "conformance-" + r.o.ServiceProvider.Name + "-" + hex.EncodeToString(suffix)
	if len(r.tenant) > 63 {
		r.tenant = "conformance-" + hex.EncodeToString(suffix)
	}
	labels := map[string]any{}
	if r.o.ServiceProvider.Spec.Tenants.Binding == onboardingv1alpha1.BindingOptIn {
		labels[onboarding.LabelPrefix+r.o.ServiceProvider.Name] = onboarding.OptIn
	}
	ws := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace",
		"metadata": map[string]any{"name": r.tenant, "labels": labels},
		"spec":     map[string]any{"type": map[string]any{"name": onboarding.TenantType, "path": onboarding.PlatformWorkspace}},
	}}
	if _, err := bootstrap.Apply(ctx, bootstrap.Options{Config: r.o.Config, Timeout: r.o.Timeout}, onboarding.TenantsWorkspace, ws); err != nil {
		return err
	}
	path := onboarding.TenantsWorkspace + ":" + r.tenant
	if _, err := bootstrap.Apply(ctx, bootstrap.Options{Config: r.o.Config, Timeout: r.o.Timeout}, path, onboarding.BindingsGrant()...); err != nil {
		return err
	}
	k, err := r.kubeconfig(path)
	if err != nil {
		return err
	}
	r.tenantK = k
	provider := onboarding.ProviderWorkspace(r.o.ServiceProvider.Name)
	return r.poll(ctx, func(ctx context.Context) (bool, string, error) {
		list, err := r.dyn(path).Resource(schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha2", Resource: "apibindings"}).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		for _, b := range list.Items {
			p, _, _ := unstructured.NestedString(b.Object, "spec", "reference", "export", "path")
			phase, _, _ := unstructured.NestedString(b.Object, "status", "phase")
			if p == provider {
				return phase == "Bound", "the binding of " + provider + " is " + phase, nil
			}
		}
		return false, "no binding of " + provider + " in " + path, nil
	})
}

// noOtherDefault refuses to go on when another ServiceProvider binds the same export name
// (an API group) into new tenants by default: the test tenant would bind that one, and
// could not bind the provider under test (a workspace binds one export per API group).
func (r *runner) noOtherDefault(ctx context.Context) error {
	sp := r.o.ServiceProvider
	list, err := r.dyn(onboarding.PlatformWorkspace).Resource(onboardingv1alpha1.SchemeGroupVersion.WithResource("serviceproviders")).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, item := range list.Items {
		export, _, _ := unstructured.NestedString(item.Object, "spec", "export")
		binding, _, _ := unstructured.NestedString(item.Object, "spec", "tenants", "binding")
		if item.GetName() == sp.Name || export != sp.Spec.Export || binding == string(onboardingv1alpha1.BindingOptIn) || item.GetDeletionTimestamp() != nil {
			continue
		}
		return fmt.Errorf("the ServiceProvider %s binds %s into every new tenant by default, so the test tenant could not bind %s's (a workspace binds one export per API group): run the kit where %s is OptIn or not registered", item.GetName(), export, sp.Name, item.GetName())
	}
	return nil
}

// contract checks that every kind the provider's APIExport serves embeds the capability
// contract, reading its APIResourceSchemas in the provider workspace.
func (r *runner) contract(ctx context.Context) error {
	ws := onboarding.ProviderWorkspace(r.o.ServiceProvider.Name)
	var ex *unstructured.Unstructured
	if err := r.poll(ctx, func(ctx context.Context) (bool, string, error) {
		var err error
		ex, err = r.dyn(ws).Resource(schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha2", Resource: "apiexports"}).Get(ctx, r.o.ServiceProvider.Spec.Export, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Sprintf("the APIExport %s in %s: %v", r.o.ServiceProvider.Spec.Export, ws, err), nil
		}
		return true, "", nil
	}); err != nil {
		return err
	}
	resources, _, _ := unstructured.NestedSlice(ex.Object, "spec", "resources")
	if len(resources) == 0 {
		return fmt.Errorf("the APIExport %s in %s serves no resources", r.o.ServiceProvider.Spec.Export, ws)
	}
	var problems []string
	for _, res := range resources {
		m, _ := res.(map[string]any)
		name, _ := m["schema"].(string)
		sch, err := r.dyn(ws).Resource(schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha1", Resource: "apiresourceschemas"}).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("the APIResourceSchema %s in %s: %w", name, ws, err)
		}
		if gaps := onboarding.ContractGaps(sch); len(gaps) > 0 {
			kind, _, _ := unstructured.NestedString(sch.Object, "spec", "names", "kind")
			problems = append(problems, fmt.Sprintf("%s lacks %s", kind, strings.Join(gaps, ", ")))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: embed platformv1alpha1.CapabilitySpec and CapabilityStatus inline", strings.Join(problems, "; "))
	}
	return nil
}

// deleteProvider deletes the ServiceProvider and waits until it is gone and its
// workspace is gone (Delete) or still there (Orphan).
func (r *runner) deleteProvider(ctx context.Context) error {
	sp := r.o.ServiceProvider
	res := r.dyn(onboarding.PlatformWorkspace).Resource(onboardingv1alpha1.SchemeGroupVersion.WithResource("serviceproviders"))
	if err := res.Delete(ctx, sp.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := r.poll(ctx, func(ctx context.Context) (bool, string, error) {
		got, err := onboarding.Get(ctx, r.o.Config, sp.Name)
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		if err != nil {
			return false, err.Error(), nil
		}
		_, why := onboarding.ConditionOf(got, onboardingv1alpha1.ConditionReady)
		return false, "the ServiceProvider is still there: " + why, nil
	}); err != nil {
		return err
	}
	_, err := r.dyn(onboarding.ProvidersWorkspace).Resource(gvrWorkspace).Get(ctx, sp.Name, metav1.GetOptions{})
	switch policyOf(sp) {
	case onboardingv1alpha1.DeletionDelete:
		if err == nil {
			return r.poll(ctx, func(ctx context.Context) (bool, string, error) {
				_, err := r.dyn(onboarding.ProvidersWorkspace).Resource(gvrWorkspace).Get(ctx, sp.Name, metav1.GetOptions{})
				return apierrors.IsNotFound(err), "the provider workspace is still there", nil
			})
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
	default:
		if err != nil {
			return fmt.Errorf("deletion policy Orphan removed the provider workspace: %v", err)
		}
	}
	return nil
}
