package identity

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// CoordinatorsGroup and FrontDoorsGroup hold every provider's coordinators and
	// front doors; the rights are granted per user, in that provider's workspace only.
	CoordinatorsGroup = "msp:coordinators"
	FrontDoorsGroup   = "msp:frontdoors"
	// ProvidersUser is msp-providers, the platform's provider controller, in the group
	// PlatformGroup of the platform's own components.
	ProvidersUser = "msp:providers"
	PlatformGroup = "msp:platform"
	// ServiceletNamespace holds the servicelets' ServiceAccounts in a provider workspace.
	ServiceletNamespace = "default"
	// DefaultAudience is the audience of servicelet tokens: the front door's, not kcp's.
	DefaultAudience = "msp-frontdoor"
	// LabelRuntime marks a servicelet's ServiceAccount with its runtime.
	LabelRuntime = "platform.msp.dev/runtime"
	// ComponentCertLifetime is how long a component certificate of the embedded default
	// is valid; the bootstrap issues a new one at every start.
	ComponentCertLifetime = 30 * 24 * time.Hour
)

// CoordinatorUser is the kcp user of a provider's coordinator.
func CoordinatorUser(workspace string) string { return "msp:coordinator:" + workspace }

// FrontDoorUser is the kcp user of a provider's front door.
func FrontDoorUser(workspace string) string { return "msp:frontdoor:" + workspace }

// ServiceAccountName is the ServiceAccount of a runtime's servicelet in the provider
// workspace; its tokens are the servicelet's only credential.
func ServiceAccountName(runtime string) string { return "servicelet-" + runtime }

// ServiceAccountUser is the user a servicelet's token authenticates as.
func ServiceAccountUser(runtime string) string {
	return "system:serviceaccount:" + ServiceletNamespace + ":" + ServiceAccountName(runtime)
}

// TenantSubject is the user a provider grants the verb use on serviceruntimes to, in its
// workspace, to let the tenant workspace cluster name a runtime in spec.runtimeName (like
// Gardener's shoots/binding). The subject never authenticates: the scheduler asks kcp
// about it with a SubjectAccessReview. Its group TenantsGroup has access to the provider
// workspace, which kcp requires of every subject.
func TenantSubject(cluster string) string { return "msp:tenant:" + cluster }

// TenantsGroup is TenantSubject's group.
const TenantsGroup = "msp:tenants"

// Kubeconfig is what a component's kubeconfig holds: a server and its CA, and one of a
// client certificate, a token or a token file.
type Kubeconfig struct {
	Server, Name         string
	CA                   []byte
	ClientCert           []byte
	ClientKey            []byte
	Token, TokenFile     string
	InsecureSkipTLSCheck bool
}

// Write writes the kubeconfig to file (mode 0600).
func (k Kubeconfig) Write(file string) error {
	name := k.Name
	if name == "" {
		name = "msp"
	}
	out := clientcmdapi.NewConfig()
	out.Clusters[name] = &clientcmdapi.Cluster{Server: k.Server, CertificateAuthorityData: k.CA, InsecureSkipTLSVerify: k.InsecureSkipTLSCheck}
	out.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: k.ClientCert, ClientKeyData: k.ClientKey, Token: k.Token, TokenFile: k.TokenFile}
	out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	out.CurrentContext = name
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*out, file)
}

// IssueServiceletToken makes sure the runtime's servicelet has its ServiceAccount in the
// provider workspace cfg addresses and returns a token for it with only the given
// audience, valid for ttl (kcp's minimum is 10 minutes).
func IssueServiceletToken(ctx context.Context, cfg *rest.Config, runtime, audience string, ttl time.Duration) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	name := ServiceAccountName(runtime)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ServiceletNamespace, Labels: map[string]string{LabelRuntime: runtime}}}
	if _, err := cs.CoreV1().ServiceAccounts(ServiceletNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("failed to create the ServiceAccount of runtime %s's servicelet: %w", runtime, err)
	}
	secs := int64(ttl.Seconds())
	tr, err := cs.CoreV1().ServiceAccounts(ServiceletNamespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to issue a token for runtime %s's servicelet: %w", runtime, err)
	}
	return tr.Status.Token, nil
}

// RevokeServicelet deletes the runtime's servicelet's ServiceAccount: its tokens stop
// working (kcp's review cache forgets them within seconds) and the front door cuts its
// open watches.
func RevokeServicelet(ctx context.Context, cfg *rest.Config, runtime string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	err = cs.CoreV1().ServiceAccounts(ServiceletNamespace).Delete(ctx, ServiceAccountName(runtime), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to revoke runtime %s's servicelet: %w", runtime, err)
	}
	return nil
}

// ServiceletCredentials writes what a servicelet needs to dial its front door: the token
// in tokenFile and a kubeconfig (server: the front door, trusting ca) that reads it from
// there, so that a renewed token takes effect without a restart.
func ServiceletCredentials(kubeconfig, tokenFile, frontDoorURL string, ca []byte, token string) error {
	if err := WriteFileAtomic(tokenFile, []byte(token)); err != nil {
		return err
	}
	return Kubeconfig{Server: frontDoorURL, CA: ca, TokenFile: tokenFile, Name: "frontdoor"}.Write(kubeconfig)
}

// WriteFileAtomic replaces file with data (mode 0600) so that a reader never sees half.
func WriteFileAtomic(file string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-"+filepath.Base(file))
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// IssueServiceletAccess issues runtime's servicelet a token (IssueServiceletToken, in the
// provider workspace cfg addresses) and writes its credentials into dir
// (ServiceletCredentials), returning the kubeconfig's path.
func IssueServiceletAccess(ctx context.Context, cfg *rest.Config, runtime, dir, frontDoorURL string, ca []byte, audience string, ttl time.Duration) (string, error) {
	token, err := IssueServiceletToken(ctx, cfg, runtime, audience, ttl)
	if err != nil {
		return "", err
	}
	kubeconfig := filepath.Join(dir, "servicelet.kubeconfig")
	if err := ServiceletCredentials(kubeconfig, filepath.Join(dir, "servicelet.token"), frontDoorURL, ca, token); err != nil {
		return "", fmt.Errorf("failed to write the credentials of runtime %s's servicelet: %w", runtime, err)
	}
	return kubeconfig, nil
}
