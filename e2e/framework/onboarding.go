package framework

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	onboardingv1alpha1 "github.com/msp-dev/msp/apis/onboarding/v1alpha1"
	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/child"
	"github.com/msp-dev/msp/pkg/launcher"
	"github.com/msp-dev/msp/pkg/onboarding"
	"github.com/msp-dev/msp/pkg/ports"
)

// PlatformProviderResync is how often msp-providers looks at each ServiceProvider
// again in the e2e environment (the default is 15s).
const PlatformProviderResync = "2s"

// startProviders issues msp-providers its identity and starts it.
func startProviders(server *launcher.Server, bin, dir string) (*child.Process, error) {
	kcpCA, err := server.ServingCA()
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "msp-providers.kubeconfig")
	if err := bootstrap.IssueProvidersController(server.CA(), server.URL(), kcpCA, kubeconfig); err != nil {
		return nil, err
	}
	return child.Start(filepath.Join(bin, "msp-providers"), []string{"--kubeconfig", kubeconfig, "--resync", PlatformProviderResync}, filepath.Join(dir, "msp-providers.log"))
}

// registerPlatformPostgres registers msp's PostgreSQL provider as root:providers:postgres.
func registerPlatformPostgres(ctx context.Context, cfg *rest.Config) error {
	objs, err := bootstrap.ExportObjects(nil, "postgres.msp.dev")
	if err != nil {
		return err
	}
	sp := &onboardingv1alpha1.ServiceProvider{Spec: onboardingv1alpha1.ServiceProviderSpec{Export: "postgres.msp.dev"}}
	sp.Name = "postgres"
	return onboarding.Register(ctx, cfg, sp, objs, 2*time.Minute)
}

// ExportObjects reads a provider module's generated APIResourceSchemas and APIExport
// (the folder named after the group in fsys), for Registration.Objects.
func ExportObjects(fsys fs.FS, group string) ([]*unstructured.Unstructured, error) {
	return bootstrap.ExportObjects(fsys, group)
}

// Registration is what RegisterProvider registers.
type Registration struct {
	// Name is the ServiceProvider's name (default: unique to the test).
	Name string
	// Group is the API group of its export, which is named after it.
	Group string
	// Objects are its APIResourceSchemas and APIExport (nil: msp's generated ones of Group).
	Objects []*unstructured.Unstructured
	// Spec is the rest of the ServiceProvider's spec; export and frontDoor are filled in.
	Spec onboardingv1alpha1.ServiceProviderSpec
	// Labels go on the ServiceProvider.
	Labels map[string]string
}

// RegisterProvider joins a provider the way a provider team does: its front door's
// credentials are issued and the front door started, its ServiceProvider is applied with
// kubectl in root:platform, and once msp-providers has made the workspace, its
// APIResourceSchemas and APIExport are applied there with kubectl. It waits until the
// ServiceProvider reports APIReady and removes the ServiceProvider (policy Delete) when
// the test ends.
func (e *Env) RegisterProvider(t testing.TB, r Registration) *Provider {
	t.Helper()
	if r.Name == "" {
		r.Name = UniqueName(t)
	}
	ws := onboarding.ProviderWorkspace(r.Name)
	p := &Provider{Workspace: e.In(ws), Export: r.Group, env: e, Coordinator: coordinatorFor(r.Group)}
	port, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	kcpCA, err := e.Server.ServingCA()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := bootstrap.IssueProviderCredentials(e.Server.CA(), bootstrap.ProviderOptions{
		Workspace: ws, Export: r.Group, Server: e.Server.URL(), KCPCA: kcpCA,
		FrontDoorAddr: fmt.Sprintf("127.0.0.1:%d", port), Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Identities = ids
	sp := &onboardingv1alpha1.ServiceProvider{Spec: r.Spec}
	sp.Name, sp.Labels = r.Name, r.Labels
	sp.Spec.Export = r.Group
	if sp.Spec.DeletionPolicy == "" {
		sp.Spec.DeletionPolicy = onboardingv1alpha1.DeletionDelete
	}
	sp.Spec.Run.FrontDoor = &onboardingv1alpha1.FrontDoor{URL: ids.FrontDoorURL, CABundle: e.Server.CA().CertPEM()}
	manifest, err := yaml.Marshal(onboarding.Unstructured(sp).Object)
	if err != nil {
		t.Fatal(err)
	}
	operator := e.In(onboarding.PlatformWorkspace).Kubeconfig(t)
	t.Cleanup(func() {
		e.Kubectl(t, operator, "", "delete", "serviceprovider", r.Name, "--ignore-not-found", "--wait=false")
	})
	e.MustKubectl(t, operator, string(manifest), "apply", "-f", "-")
	if err := onboarding.WaitWorkspace(context.Background(), e.Config, r.Name, 2*time.Minute); err != nil {
		t.Fatalf("%v (msp-providers log: %s)", err, e.ProvidersLog)
	}
	dir := t.TempDir()
	objs := r.Objects
	if objs == nil {
		if objs, err = bootstrap.ExportObjects(nil, r.Group); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range objs {
		raw, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		// Schemas before the export that names them: kubectl applies files in name order.
		order := "1"
		if o.GetKind() == "APIResourceSchema" {
			order = "0"
		}
		name := order + "-" + strings.ToLower(o.GetKind()) + "-" + o.GetName() + ".yaml"
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.MustKubectl(t, p.Workspace.Kubeconfig(t), "", "apply", "-f", dir)
	if err := onboarding.WaitCondition(context.Background(), e.Config, r.Name, onboardingv1alpha1.ConditionAPIReady, 2*time.Minute); err != nil {
		t.Fatalf("%v (msp-providers log: %s)", err, e.ProvidersLog)
	}
	waitServed(t, p.Workspace, "platform.msp.dev/v1alpha1")
	fd := startProcess(t, filepath.Join(e.Bin, "msp-frontdoor"), filepath.Join(logDir(t), fmt.Sprintf("frontdoor-%d.log", port)), ids.FrontDoorArgs()...)
	t.Cleanup(func() {
		fd.Stop()
		fd.logTail(t, "the front door")
	})
	p.frontDoor = fd
	p.waitFrontDoor(t)
	return p
}

// ServiceProvider reads a ServiceProvider.
func (e *Env) ServiceProvider(t testing.TB, name string) *onboardingv1alpha1.ServiceProvider {
	t.Helper()
	sp, err := onboarding.Get(context.Background(), e.Config, name)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// WaitServiceProvider waits until the ServiceProvider's condition has the status want
// (and, when reason is not empty, that reason), and returns it.
func (e *Env) WaitServiceProvider(t testing.TB, name, condType string, want bool, reason string, timeout time.Duration) *onboardingv1alpha1.ServiceProvider {
	t.Helper()
	var sp *onboardingv1alpha1.ServiceProvider
	Eventually(t, timeout, fmt.Sprintf("ServiceProvider %s %s=%v %s", name, condType, want, reason), func(ctx context.Context) (bool, string, error) {
		got, err := onboarding.Get(ctx, e.Config, name)
		if err != nil {
			return false, err.Error(), nil
		}
		sp = got
		ok, why := onboarding.ConditionOf(got, condType)
		if ok != want {
			return false, why, nil
		}
		if reason != "" && !strings.Contains(why, "("+reason+")") {
			return false, why, nil
		}
		return true, why, nil
	})
	return sp
}
