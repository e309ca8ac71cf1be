package bootstrap

import (
	"context"
	"fmt"
	"net"
	"path/filepath"

	"github.com/msp-dev/msp/sdk/launch"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/msp-dev/msp/pkg/admission"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

// ProviderIdentities are the credentials the bootstrap issues for one provider: its
// coordinator's and its front door's kcp identities (client certificates of msp's CA) and
// the front door's serving certificate.
type ProviderIdentities struct {
	// CoordinatorKubeconfig and FrontDoorKubeconfig address kcp's root; the components
	// add their workspace.
	CoordinatorKubeconfig, FrontDoorKubeconfig string
	// FrontDoorCert and FrontDoorKey are the front door's serving certificate and key.
	FrontDoorCert, FrontDoorKey string
	// FrontDoorURL is where servicelets dial the front door; CA is the bundle its serving
	// certificate is checked against (a file).
	FrontDoorURL, CAFile string
	opts                 ProviderOptions
}

// AdmissionPath is where the front door serves the capability admission webhook.
const AdmissionPath = "/admission/capabilities"

// FrontDoorArgs are the flags msp-frontdoor runs with for this provider.
func (p ProviderIdentities) FrontDoorArgs() []string {
	return []string{
		"--kubeconfig", p.FrontDoorKubeconfig, "--workspace", p.opts.Workspace, "--export", p.opts.Export,
		"--bind-address", p.opts.FrontDoorAddr, "--public-url", p.FrontDoorURL,
		"--tls-cert-file", p.FrontDoorCert, "--tls-key-file", p.FrontDoorKey,
		"--coordinator-user", identity.CoordinatorUser(p.opts.Workspace),
	}
}

// Coordinator is how the provider's coordinator starts with these identities, including
// what its runtime manager hands ordered runtimes' servicelets (the front door and its
// CA); the caller adds the rest.
func (p ProviderIdentities) Coordinator() launch.Coordinator {
	return launch.Coordinator{
		Kubeconfig: p.CoordinatorKubeconfig, Workspace: p.opts.Workspace, Export: p.opts.Export,
		FrontDoorURL: p.FrontDoorURL, FrontDoorCAFile: p.CAFile,
	}
}

// ProviderOptions say which provider to issue for.
type ProviderOptions struct {
	// Workspace is the provider workspace's path, e.g. root:providers:postgres; Export its
	// APIExport (whose name is also the API group of its kinds).
	Workspace, Export string
	// Server is kcp's URL; CA kcp's serving CA (from the admin kubeconfig).
	Server string
	KCPCA  []byte
	// FrontDoorAddr is the host:port the front door listens on, which servicelets dial
	// and kcp calls its admission webhook at; its serving certificate names the host.
	FrontDoorAddr string
	// OrdersFrom are API groups of other providers this provider orders runtimes from
	// (cascading procurement): its coordinator may write them in its own workspace.
	OrdersFrom []string
	// Dir receives the files.
	Dir string
}

// IssueProvider grants the provider's coordinator and front door their rights in the
// provider workspace (and nowhere else), installs the admission webhook that keeps
// servicelets and tenants to their fields, and writes the two identities' kubeconfigs and
// the front door's serving certificate into opts.Dir. Issuing again renews the
// certificates. A provider registered with a ServiceProvider needs only the
// credentials (IssueProviderCredentials): msp-providers grants the rest.
func IssueProvider(ctx context.Context, o Options, ca *identity.CA, opts ProviderOptions) (ProviderIdentities, error) {
	out, err := IssueProviderCredentials(ca, opts)
	if err != nil {
		return out, err
	}
	objs := ProviderRBAC(opts.Workspace, opts.Export, opts.OrdersFrom)
	objs = append(objs, AdmissionWebhook(opts.Export, out.FrontDoorURL+AdmissionPath, ca.CertPEM(), identity.CoordinatorUser(opts.Workspace)))
	if _, err := Apply(ctx, o, opts.Workspace, objs...); err != nil {
		return out, fmt.Errorf("failed to grant the identities of %s: %w", opts.Workspace, err)
	}
	return out, nil
}

// IssueProviderCredentials writes the provider's coordinator's and front door's
// kubeconfigs (client certificates of msp's CA) and the front door's serving certificate
// into opts.Dir; it does not talk to kcp.
func IssueProviderCredentials(ca *identity.CA, opts ProviderOptions) (ProviderIdentities, error) {
	out := ProviderIdentities{
		CoordinatorKubeconfig: filepath.Join(opts.Dir, "coordinator.kubeconfig"),
		FrontDoorKubeconfig:   filepath.Join(opts.Dir, "frontdoor.kubeconfig"),
		FrontDoorCert:         filepath.Join(opts.Dir, "frontdoor-serving.crt"),
		FrontDoorKey:          filepath.Join(opts.Dir, "frontdoor-serving.key"),
		FrontDoorURL:          "https://" + opts.FrontDoorAddr,
		CAFile:                ca.CertFile,
		opts:                  opts,
	}
	host, _, err := net.SplitHostPort(opts.FrontDoorAddr)
	if err != nil {
		return out, fmt.Errorf("the front door's address %q: %w", opts.FrontDoorAddr, err)
	}
	for _, id := range []struct{ user, group, file string }{
		{identity.CoordinatorUser(opts.Workspace), identity.CoordinatorsGroup, out.CoordinatorKubeconfig},
		{identity.FrontDoorUser(opts.Workspace), identity.FrontDoorsGroup, out.FrontDoorKubeconfig},
	} {
		if err := issueKubeconfig(ca, id.user, id.group, opts.Server, opts.KCPCA, id.file); err != nil {
			return out, err
		}
	}
	cert, key, err := ca.IssueServing([]string{host}, identity.ComponentCertLifetime)
	if err != nil {
		return out, err
	}
	if err := identity.WriteFileAtomic(out.FrontDoorCert, cert); err != nil {
		return out, err
	}
	return out, identity.WriteFileAtomic(out.FrontDoorKey, key)
}

// IssueProvidersController writes the kubeconfig of msp-providers (user msp:providers;
// its rights are in the workspace tree) into file.
func IssueProvidersController(ca *identity.CA, server string, kcpCA []byte, file string) error {
	return issueKubeconfig(ca, identity.ProvidersUser, identity.PlatformGroup, server, kcpCA, file)
}

func issueKubeconfig(ca *identity.CA, user, group, server string, kcpCA []byte, file string) error {
	cert, key, err := ca.IssueClient(user, []string{group}, identity.ComponentCertLifetime)
	if err != nil {
		return err
	}
	k := identity.Kubeconfig{Server: kcpconfig.BaseURL(server), CA: kcpCA, ClientCert: cert, ClientKey: key, Name: "kcp"}
	return k.Write(file)
}

// ProviderRBAC are the ClusterRoles and bindings of a provider's coordinator and front
// door in its workspace. Neither may write RBAC or webhooks, nor impersonate (verb
// impersonate on apiexports/content would let its holder pose as anyone through the
// virtual workspace).
func ProviderRBAC(workspace, export string, ordersFrom []string) []*unstructured.Unstructured {
	content := rule([]string{"apis.kcp.io"}, []string{"apiexports/content"}, []string{export},
		"get", "list", "watch", "create", "update", "patch", "delete")
	access := map[string]any{"nonResourceURLs": []any{"/"}, "verbs": []any{"access"}}
	coordinator := []any{access, content,
		rule([]string{"apis.kcp.io"}, []string{"apiexports", "apiexportendpointslices", "apiresourceschemas", "apibindings"}, nil, "get", "list", "watch"),
		rule([]string{"platform.msp.dev"}, []string{"*"}, nil, "*"),
		rule([]string{""}, []string{"serviceaccounts"}, nil, "get", "list", "watch", "create", "delete"),
		rule([]string{""}, []string{"serviceaccounts/token"}, nil, "create"),
		rule([]string{""}, []string{"secrets", "configmaps", "events"}, nil, "get", "list", "watch", "create", "update", "patch", "delete"),
		rule([]string{"events.k8s.io"}, []string{"events"}, nil, "create", "update", "patch"),
		rule([]string{"coordination.k8s.io"}, []string{"leases"}, nil, "get", "list", "watch", "create", "update", "patch", "delete"),
		rule([]string{"authorization.k8s.io"}, []string{"subjectaccessreviews"}, nil, "create"),
	}
	if len(ordersFrom) > 0 {
		coordinator = append(coordinator, rule(ordersFrom, []string{"*"}, nil, "*"))
	}
	frontDoor := []any{access, content,
		rule([]string{"apis.kcp.io"}, []string{"apiexports"}, []string{export}, "get"),
		// The export's slice and its partitioned ones (<export>-<region>), whose names the
		// front door checks; a slice holds only virtual-workspace URLs.
		rule([]string{"apis.kcp.io"}, []string{"apiexportendpointslices"}, nil, "get"),
		rule([]string{"apis.kcp.io"}, []string{"apiresourceschemas"}, nil, "get"),
		rule([]string{"platform.msp.dev"}, []string{"serviceruntimes"}, nil, "get", "list", "watch", "create"),
		rule([]string{"platform.msp.dev"}, []string{"serviceruntimes/status"}, nil, "get", "update", "patch"),
		rule([]string{""}, []string{"serviceaccounts"}, nil, "get", "list", "watch"),
		rule([]string{""}, []string{"serviceaccounts/token"}, nil, "create"),
		rule([]string{"authentication.k8s.io"}, []string{"tokenreviews"}, nil, "create"),
	}
	// Tenants' subjects exist only in the scheduler's SubjectAccessReviews (verb use on
	// serviceruntimes); kcp asks every subject for access to the workspace.
	tenants := clusterRole("msp:tenants", []any{access})
	tenantsBinding := binding("msp:tenants", "")
	tenantsBinding.Object["subjects"] = []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": identity.TenantsGroup}}
	return []*unstructured.Unstructured{tenants, tenantsBinding,
		clusterRole("msp:coordinator", coordinator), binding("msp:coordinator", identity.CoordinatorUser(workspace)),
		clusterRole("msp:frontdoor", frontDoor), binding("msp:frontdoor", identity.FrontDoorUser(workspace)),
	}
}

// OrderingRBAC lets a provider's coordinator write another provider's kinds (group) in its
// own workspace, where it is that provider's tenant (cascading procurement).
func OrderingRBAC(workspace, group string) []*unstructured.Unstructured {
	name := "msp:coordinator:orders:" + group
	return []*unstructured.Unstructured{
		clusterRole(name, []any{rule([]string{group}, []string{"*"}, nil, "*")}),
		binding(name, identity.CoordinatorUser(workspace)),
	}
}

// UseRuntimes lets the tenant workspace whose logical cluster is cluster name the given
// runtimes (all of the provider's when none is named) in spec.runtimeName: the verb use
// on serviceruntimes for its subject, which the scheduler asks about before it accepts a
// named runtime. Applied in the provider's workspace.
func UseRuntimes(cluster string, runtimes ...string) []*unstructured.Unstructured {
	name := "msp:use-runtimes:" + cluster
	return []*unstructured.Unstructured{
		clusterRole(name, []any{rule([]string{"platform.msp.dev"}, []string{"serviceruntimes"}, runtimes, "use")}),
		binding(name, identity.TenantSubject(cluster)),
	}
}

func rule(groups, resources, names []string, verbs ...string) map[string]any {
	r := map[string]any{"apiGroups": strs(groups), "resources": strs(resources), "verbs": strs(verbs)}
	if len(names) > 0 {
		r["resourceNames"] = strs(names)
	}
	return r
}

func strs(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func clusterRole(name string, rules []any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": name}, "rules": rules,
	}}
}

func binding(name, user string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": name},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}},
	}}
}

// AdmissionWebhookName names the provider workspace's ValidatingWebhookConfiguration.
const AdmissionWebhookName = "capabilities.platform.msp.dev"

// AdmissionWebhook is the provider workspace's ValidatingWebhookConfiguration that sends
// writes of the export's kinds (its name is their API group) to the front door.
func AdmissionWebhook(export, url string, ca []byte, coordinatorUser string) *unstructured.Unstructured {
	vwc := admission.WebhookConfiguration(AdmissionWebhookName, export, url, ca, coordinatorUser)
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(vwc)
	if err != nil {
		panic(err) // a typed object always converts
	}
	obj := &unstructured.Unstructured{Object: u}
	obj.SetAPIVersion("admissionregistration.k8s.io/v1")
	obj.SetKind("ValidatingWebhookConfiguration")
	unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
	return obj
}
