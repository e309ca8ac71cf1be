package kubernetes

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	kubernetesv1alpha1 "github.com/msp-dev/msp/apis/kubernetes/v1alpha1"
	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/sdk/driver"
)

// Marks on the objects of a space.
const (
	// AnnotationSpace names the Space a namespace belongs to: cluster/namespace/name.
	AnnotationSpace = "kubernetes.msp.dev/space"
	// LabelTenant is the tenant workspace (logical cluster) of a namespace. The driver
	// sets it on the namespaces it creates; on an existing namespace, the cluster's
	// operator sets it to let that workspace adopt it with ObserveOnly.
	LabelTenant = "kubernetes.msp.dev/tenant"
	// LabelManaged marks the namespaces this provider manages.
	LabelManaged = "kubernetes.msp.dev/managed"

	// Names of the objects in a space's namespace.
	QuotaName         = "space-quota"
	LimitRangeName    = "space-limits"
	NetworkPolicyName = "space-isolation"
	AdminName         = "space-admin"
)

// Connection Secret keys.
const (
	KeyKubeconfig = "kubeconfig"
	KeyServer     = "server"
	KeyCA         = "ca.crt"
	KeyNamespace  = "namespace"
	KeyToken      = "token"
)

// msgUnreachable is what a tenant reads while the runtime's cluster cannot be reached.
const msgUnreachable = "the Kubernetes cluster of this runtime is unreachable; the space is kept as it is and the platform retries by itself"

// unreachable reports whether err says the cluster did not answer (no connection, or
// an API server that is shutting down or overloaded) rather than answering no.
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true
	}
	return apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err)
}

// DefaultTokenTTL is how long a space's token is valid; it is renewed when less than a
// third of that is left.
const DefaultTokenTTL = time.Hour

// Options configure the driver.
type Options struct {
	// Client talks to the cluster with the servicelet's rights. Required.
	Client kubernetes.Interface
	// Server is the API server's URL as tenants reach it, and CA its CA bundle.
	// Required.
	Server string
	CA     []byte
	// TokenTTL is the validity of the tokens handed to tenants. Defaults to
	// DefaultTokenTTL.
	TokenTTL time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Driver makes Spaces on one cluster.
type Driver struct{ opts Options }

// New returns a driver.
func New(opts Options) (*Driver, error) {
	if opts.Client == nil || opts.Server == "" {
		return nil, errors.New("kubernetes: the driver needs a client and the cluster's URL")
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Driver{opts: opts}, nil
}

// space is what the driver reads of a Space document.
type space struct {
	ref       string // cluster/namespace/name
	cluster   string
	namespace string // on the runtime cluster
	quota     corev1.ResourceList
	observe   bool // managementPolicy ObserveOnly
}

func (d *Driver) spaceOf(c *driver.Capability) (*space, error) {
	var s kubernetesv1alpha1.Space
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(c.Object.Object, &s); err != nil {
		return nil, fmt.Errorf("failed to read the Space: %w", err)
	}
	requests := Requests(c.Object)
	for name, q := range c.Spec.Resources {
		requests[name] = q.DeepCopy()
	}
	return &space{
		ref:       c.Cluster + "/" + s.Namespace + "/" + s.Name,
		cluster:   c.Cluster,
		namespace: NamespaceName(c.Cluster, s.Namespace, s.Name, s.Spec.Namespace),
		quota:     Quota(requests),
		observe:   c.Spec.ManagementPolicy == platformv1alpha1.ManagementPolicyObserveOnly,
	}, nil
}

// Observe reports whether the space's namespace exists and is as it should be.
func (d *Driver) Observe(ctx context.Context, c *driver.Capability) (driver.Observation, error) {
	s, err := d.spaceOf(c)
	if err != nil {
		return driver.Observation{}, err
	}
	ns, err := d.opts.Client.CoreV1().Namespaces().Get(ctx, s.namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if s.observe {
			return driver.Observation{}, driver.NewTenantError(fmt.Sprintf("namespace %s does not exist on the cluster; ObserveOnly adopts only an existing namespace", s.namespace))
		}
		return driver.Observation{}, nil
	}
	if unreachable(err) {
		return driver.Observation{}, driver.NewTenantError(msgUnreachable)
	}
	if err != nil {
		return driver.Observation{}, fmt.Errorf("failed to read namespace %s: %w", s.namespace, err)
	}
	if err := d.owns(s, ns); err != nil {
		// Not this space's: as far as the space goes, it does not exist. Create then
		// says the name is taken, ObserveOnly reports why it adopts nothing, and
		// deleting the space leaves the namespace alone.
		return driver.Observation{Message: err.Error()}, nil
	}
	obs := driver.Observation{Exists: true, UpToDate: true,
		Status: map[string]any{"namespace": s.namespace, "server": d.opts.Server}}
	if ns.DeletionTimestamp != nil {
		obs.UpToDate, obs.Message = false, "namespace "+s.namespace+" is being deleted"
		return obs, nil
	}
	if s.observe {
		// Adopted: reported on, never changed, and no credentials of the platform's.
		obs.Ready, obs.UpToDate = true, true
		obs.ConnectionDetails = d.details(s.namespace, "")
		if q, err := d.opts.Client.CoreV1().ResourceQuotas(s.namespace).List(ctx, metav1.ListOptions{}); err == nil {
			obs.Usage = corev1.ResourceList{}
			for _, item := range q.Items {
				addTo(obs.Usage, Usage(item.Status.Used))
			}
		}
		return obs, nil
	}
	drift, usage, err := d.drift(ctx, s)
	if err != nil {
		return driver.Observation{}, err
	}
	obs.Usage = usage
	if drift != "" {
		obs.UpToDate, obs.Message = false, drift
		return obs, nil
	}
	obs.Ready = true
	token := string(c.ConnectionDetails[KeyToken])
	if !d.fresh(token) {
		if token, err = d.issueToken(ctx, s.namespace); err != nil {
			return driver.Observation{}, err
		}
	}
	obs.ConnectionDetails = d.details(s.namespace, token)
	return obs, nil
}

// owns refuses a namespace that is not this space's: one of another space, or one the
// cluster's operator did not hand to this workspace (ObserveOnly).
func (d *Driver) owns(s *space, ns *corev1.Namespace) error {
	if s.observe {
		if ns.Labels[LabelTenant] != s.cluster {
			return driver.NewTenantError(fmt.Sprintf("namespace %s is not given to this workspace: the cluster's operator must label it %s=%s before it can be adopted", s.namespace, LabelTenant, s.cluster))
		}
		return nil
	}
	if ns.Annotations[AnnotationSpace] != s.ref {
		return driver.NewTenantError(fmt.Sprintf("namespace %s exists on the cluster and is not this space's: leave spec.namespace empty, or choose another name", s.namespace))
	}
	return nil
}

// drift says in a tenant's words what of the space differs from what it should be, and
// returns what its quota counts as used.
func (d *Driver) drift(ctx context.Context, s *space) (string, corev1.ResourceList, error) {
	cs := d.opts.Client
	var missing []string
	var usage corev1.ResourceList
	q, err := cs.CoreV1().ResourceQuotas(s.namespace).Get(ctx, QuotaName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		missing = append(missing, "its ResourceQuota is missing")
	case err != nil:
		return "", nil, err
	default:
		usage = Usage(q.Status.Used)
		if !sameResources(q.Spec.Hard, s.quota) {
			missing = append(missing, "its ResourceQuota was changed")
		}
	}
	lr, err := cs.CoreV1().LimitRanges(s.namespace).Get(ctx, LimitRangeName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		missing = append(missing, "its LimitRange is missing")
	case err != nil:
		return "", nil, err
	case !apiequality.Semantic.DeepEqual(lr.Spec, limitRange(s).Spec):
		missing = append(missing, "its LimitRange was changed")
	}
	np, err := cs.NetworkingV1().NetworkPolicies(s.namespace).Get(ctx, NetworkPolicyName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		missing = append(missing, "its NetworkPolicy is missing")
	case err != nil:
		return "", nil, err
	case !apiequality.Semantic.DeepEqual(np.Spec, networkPolicy(s).Spec):
		missing = append(missing, "its NetworkPolicy was changed")
	}
	if _, err := cs.CoreV1().ServiceAccounts(s.namespace).Get(ctx, AdminName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		missing = append(missing, "its ServiceAccount is missing")
	} else if err != nil {
		return "", nil, err
	}
	rb, err := cs.RbacV1().RoleBindings(s.namespace).Get(ctx, AdminName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		missing = append(missing, "its RoleBinding is missing")
	case err != nil:
		return "", nil, err
	case rb.RoleRef != roleBinding(s).RoleRef || !apiequality.Semantic.DeepEqual(rb.Subjects, roleBinding(s).Subjects):
		missing = append(missing, "its RoleBinding was changed")
	}
	if len(missing) == 0 {
		return "", usage, nil
	}
	return "namespace " + s.namespace + ": " + strings.Join(missing, ", "), usage, nil
}

// Create makes the namespace and what fences it, and issues the first token.
func (d *Driver) Create(ctx context.Context, c *driver.Capability) (driver.ConnectionDetails, error) {
	s, err := d.spaceOf(c)
	if err != nil {
		return nil, err
	}
	if s.observe {
		return nil, nil // Observe adopts; nothing is made
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:        s.namespace,
		Labels:      map[string]string{LabelManaged: "true", LabelTenant: s.cluster},
		Annotations: map[string]string{AnnotationSpace: s.ref},
	}}
	if _, err := d.opts.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("failed to create namespace %s: %w", s.namespace, err)
	}
	got, err := d.opts.Client.CoreV1().Namespaces().Get(ctx, s.namespace, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if err := d.owns(s, got); err != nil {
		return nil, err
	}
	if err := d.ensure(ctx, s); err != nil {
		return nil, err
	}
	token, err := d.issueToken(ctx, s.namespace)
	if err != nil {
		return nil, err
	}
	return d.details(s.namespace, token), nil
}

// Update puts back what was deleted or changed by hand. A namespace deleted by hand is
// made again by Create once the cluster has finished deleting it.
func (d *Driver) Update(ctx context.Context, c *driver.Capability) error {
	s, err := d.spaceOf(c)
	if err != nil || s.observe {
		return err
	}
	ns, err := d.opts.Client.CoreV1().Namespaces().Get(ctx, s.namespace, metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp != nil {
		return driver.NewTenantError(fmt.Sprintf("namespace %s is being deleted on the cluster, though the space was not; it is made again once it is gone", s.namespace))
	}
	return d.ensure(ctx, s)
}

// Delete removes the namespace (the cluster then removes everything in it). Observe
// reports it until it is gone.
func (d *Driver) Delete(ctx context.Context, c *driver.Capability) error {
	s, err := d.spaceOf(c)
	if err != nil || s.observe {
		return err
	}
	ns, err := d.opts.Client.CoreV1().Namespaces().Get(ctx, s.namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.Annotations[AnnotationSpace] != s.ref {
		return nil // not this space's: never delete it
	}
	err = d.opts.Client.CoreV1().Namespaces().Delete(ctx, s.namespace, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &ns.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// ensure creates or corrects the objects in the space's namespace.
func (d *Driver) ensure(ctx context.Context, s *space) error {
	cs := d.opts.Client
	ns := s.namespace
	if err := apply(ctx, "ResourceQuota", func() error {
		want := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: QuotaName}, Spec: corev1.ResourceQuotaSpec{Hard: s.quota}}
		got, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, QuotaName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cs.CoreV1().ResourceQuotas(ns).Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil || sameResources(got.Spec.Hard, s.quota) {
			return err
		}
		got.Spec.Hard = s.quota
		_, err = cs.CoreV1().ResourceQuotas(ns).Update(ctx, got, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := apply(ctx, "LimitRange", func() error {
		want := limitRange(s)
		got, err := cs.CoreV1().LimitRanges(ns).Get(ctx, LimitRangeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cs.CoreV1().LimitRanges(ns).Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil || apiequality.Semantic.DeepEqual(got.Spec, want.Spec) {
			return err
		}
		got.Spec = want.Spec
		_, err = cs.CoreV1().LimitRanges(ns).Update(ctx, got, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := apply(ctx, "NetworkPolicy", func() error {
		want := networkPolicy(s)
		got, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, NetworkPolicyName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil || apiequality.Semantic.DeepEqual(got.Spec, want.Spec) {
			return err
		}
		got.Spec = want.Spec
		_, err = cs.NetworkingV1().NetworkPolicies(ns).Update(ctx, got, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := apply(ctx, "ServiceAccount", func() error {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: AdminName}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	return apply(ctx, "RoleBinding", func() error {
		want := roleBinding(s)
		got, err := cs.RbacV1().RoleBindings(ns).Get(ctx, AdminName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil || got.RoleRef == want.RoleRef && apiequality.Semantic.DeepEqual(got.Subjects, want.Subjects) {
			return err
		}
		// The role a binding refers to cannot change: bind it anew.
		if err := cs.RbacV1().RoleBindings(ns).Delete(ctx, AdminName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, want, metav1.CreateOptions{})
		return err
	})
}

func apply(_ context.Context, what string, f func() error) error {
	if err := f(); err != nil {
		return fmt.Errorf("failed to put the space's %s in place: %w", what, err)
	}
	return nil
}

func limitRange(s *space) *corev1.LimitRange {
	return &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: LimitRangeName}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type: corev1.LimitTypeContainer,
		DefaultRequest: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
		},
		Default: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi"),
		},
	}}}}
}

// networkPolicy lets pods of the namespace reach each other and nothing from elsewhere
// reach them.
func networkPolicy(s *space) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: NetworkPolicyName}, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
	}}
}

func roleBinding(s *space) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: AdminName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: AdminName, Namespace: s.namespace}},
	}
}

// issueToken asks the cluster for a token of the space's ServiceAccount.
func (d *Driver) issueToken(ctx context.Context, namespace string) (string, error) {
	secs := int64(d.opts.TokenTTL.Seconds())
	tr, err := d.opts.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, AdminName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to issue a token for namespace %s: %w", namespace, err)
	}
	return tr.Status.Token, nil
}

// fresh reports whether a token has more than a third of its validity left. Its
// signature is the cluster's to check; only its expiry is read here.
func (d *Driver) fresh(token string) bool {
	exp, ok := expiry(token)
	return ok && exp.Sub(d.opts.Now()) > d.opts.TokenTTL/3
}

// expiry reads the exp claim of a JWT.
func expiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(claims.Exp, 0), true
}

// details are the connection Secret: a kubeconfig for the namespace and its parts.
func (d *Driver) details(namespace, token string) driver.ConnectionDetails {
	out := driver.ConnectionDetails{
		KeyServer: []byte(d.opts.Server), KeyNamespace: []byte(namespace), KeyCA: d.opts.CA,
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["space"] = &clientcmdapi.Cluster{Server: d.opts.Server, CertificateAuthorityData: d.opts.CA}
	ctxt := &clientcmdapi.Context{Cluster: "space", Namespace: namespace}
	if token != "" {
		out[KeyToken] = []byte(token)
		cfg.AuthInfos["space"] = &clientcmdapi.AuthInfo{Token: token}
		ctxt.AuthInfo = "space"
	}
	cfg.Contexts["space"] = ctxt
	cfg.CurrentContext = "space"
	if raw, err := clientcmd.Write(*cfg); err == nil {
		out[KeyKubeconfig] = raw
	}
	return out
}

func sameResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, q := range a {
		if other, ok := b[name]; !ok || q.Cmp(other) != 0 {
			return false
		}
	}
	return true
}

func addTo(sum, add corev1.ResourceList) {
	for name, q := range add {
		v := sum[name]
		v.Add(q)
		sum[name] = v
	}
}
