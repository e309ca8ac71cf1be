package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

// The identities of the matrix, in the order the table shows them.
const (
	idAcme        = "tenant acme"
	idGlobex      = "tenant globex"
	idServiceletA = "servicelet rt-a"
	idServiceletB = "servicelet rt-b"
	idCoordP      = "coordinator of p"
	idCoordH      = "coordinator of h"
)

var authzIdentities = []string{idAcme, idGlobex, idServiceletA, idServiceletB, idCoordP, idCoordH}

const (
	authzPG      = "/apis/postgres.msp.dev/v1alpha1"
	authzHosting = "/apis/hosting.msp.dev/v1alpha1"
	authzRTs     = "/apis/platform.msp.dev/v1alpha1/serviceruntimes"
	authzTenants = "/apis/tenancy.kcp.io/v1alpha1/workspaces"
	// authzPassword is the tenant's own Secret's password, and authzPasswordB64 how it
	// appears in an answer.
	authzPassword = "hunter2-acme-only"
)

var authzPasswordB64 = base64.StdEncoding.EncodeToString([]byte(authzPassword))

// authzCap is a capability the matrix addresses.
type authzCap struct {
	ws                    *framework.Workspace
	cluster, name, secret string
}

// TestAuthorizationMatrix attempts, as each of six identities (two tenants, two
// servicelets, the coordinators of two providers), what it may and may not do, against
// the real kcp and the front door, and asserts every outcome. The table it logs (and
// writes to $MSP_AUTHZ_TABLE) is the evidence of least privilege.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	started := time.Now()
	ctx := context.Background()

	// The platform: a postgres provider with two runtimes, a hosting provider with a
	// tenant of its own, and two tenants of the postgres provider with their users.
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	slA := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "rt-a", Region: "eu-de", Country: "DE"})
	slB := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "rt-b", Region: "eu-fr", Country: "FR"})
	h := env.NewProviderFor(t, "hosting.msp.dev")
	acme, globex := p.NewTenant(t), p.NewTenant(t)
	hTenant := h.NewTenant(t)
	acmeKC := env.TenantAdmin(t, "tenant-acme", acme)
	globexKC := env.TenantAdmin(t, "tenant-globex", globex)

	// Capabilities on both runtimes in both tenants, Ready (so that finalizers, labels and
	// connection Secrets exist); a tenant-own Secret in acme; a PostgresServer of h's.
	acmeC, globexC := acme.Client(t), globex.Client(t)
	create(t, acmeC, database("a-de", platformv1alpha1.Placement{Countries: []string{"DE"}}), database("a-fr", platformv1alpha1.Placement{Countries: []string{"FR"}}))
	create(t, globexC, database("g-de", platformv1alpha1.Placement{Countries: []string{"DE"}}), database("g-fr", platformv1alpha1.Placement{Countries: []string{"FR"}}))
	create(t, acmeC, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-password", Namespace: "default"}, StringData: map[string]string{"password": authzPassword}})
	srv := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "hosting.msp.dev/v1alpha1", "kind": "PostgresServer",
		"metadata": map[string]any{"name": "srv-1", "namespace": "default"}, "spec": map[string]any{},
	}}
	if _, err := hTenant.Dynamic.Resource(schema.GroupVersionResource{Group: "hosting.msp.dev", Version: "v1alpha1", Resource: "postgresservers"}).
		Namespace("default").Create(ctx, srv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("failed to create the PostgresServer srv-1: %v", err)
	}
	caps := map[string]authzCap{}
	for _, c := range []struct {
		ws   *framework.Workspace
		c    client.Client
		name string
	}{{acme, acmeC, "a-de"}, {acme, acmeC, "a-fr"}, {globex, globexC, "g-de"}, {globex, globexC, "g-fr"}} {
		db := waitCondition(t, c.c, c.name, platformv1alpha1.ConditionReady, metav1.ConditionTrue, 2*time.Minute)
		if db.Status.ConnectionSecretRef == nil {
			t.Fatalf("%s is Ready without a connection Secret", c.name)
		}
		caps[c.name] = authzCap{ws: c.ws, cluster: c.ws.ClusterName(t), name: c.name, secret: db.Status.ConnectionSecretRef.Name}
	}
	for name, rt := range map[string]string{"a-de": "rt-a", "g-de": "rt-a", "a-fr": "rt-b", "g-fr": "rt-b"} {
		db := &postgresv1alpha1.PostgresDatabase{}
		if err := caps[name].ws.Client(t).Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, db); err != nil {
			t.Fatal(err)
		}
		if db.Spec.RuntimeName != rt || db.Labels[platformv1alpha1.LabelRuntime] != rt || !slices.Contains(db.Finalizers, platformv1alpha1.FinalizerServicelet) {
			t.Fatalf("%s: runtimeName %q, label %q, finalizers %v; want %s with the servicelet's finalizer", name, db.Spec.RuntimeName, db.Labels[platformv1alpha1.LabelRuntime], db.Finalizers, rt)
		}
	}

	kcp := kcpconfig.BaseURL(env.Config.Host)
	kcpCA := env.Config.CAData
	if len(kcpCA) == 0 && env.Config.CAFile != "" {
		raw, err := os.ReadFile(env.Config.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		kcpCA = raw
	}
	mspCA := env.Server.CA().CertPEM()
	pVW, hVW := authzEndpointURL(t, p), authzEndpointURL(t, h)
	fdVW := p.Identities.FrontDoorURL + authzURLPath(pVW)
	hfdVW := h.Identities.FrontDoorURL + authzURLPath(hVW)
	t.Logf("setup took %s; p=%s (VW %s, front door %s), h=%s (VW %s)", time.Since(started).Round(time.Second), p.Path, pVW, p.Identities.FrontDoorURL, h.Path, hVW)

	m := &authzMatrix{t: t, env: env}
	// Stable names in the table: the workspaces' generated names and clusters vary by run.
	hTenantCluster := hTenant.ClusterName(t)
	m.names = strings.NewReplacer(
		acme.Path, "root:tenants:acme", globex.Path, "root:tenants:globex", hTenant.Path, "root:tenants:h-tenant",
		p.Path, "root:providers:p", h.Path, "root:providers:h",
		caps["a-de"].cluster, "<acme-cluster>", caps["g-de"].cluster, "<globex-cluster>", hTenantCluster, "<h-tenant-cluster>",
		p.ClusterName(t), "<p-cluster>", h.ClusterName(t), "<h-cluster>",
		authzBase(acme.Path), "acme", authzBase(globex.Path), "globex", authzBase(hTenant.Path), "h-tenant",
		p.Identities.FrontDoorURL, "<p front door>", h.Identities.FrontDoorURL, "<h front door>",
	)

	// The identities' callers: each with its own credential.
	acmeCfg, globexCfg := authzConfig(t, acmeKC), authzConfig(t, globexKC)
	acmeCall, globexCall := newAuthzCaller(t, idAcme, acmeCfg), newAuthzCaller(t, idGlobex, globexCfg)
	acmeFD := newAuthzCaller(t, idAcme, authzRetarget(acmeCfg, p.Identities.FrontDoorURL, mspCA))
	globexFD := newAuthzCaller(t, idGlobex, authzRetarget(globexCfg, p.Identities.FrontDoorURL, mspCA))
	slACfg, slBCfg := authzConfig(t, slA.Kubeconfig), authzConfig(t, slB.Kubeconfig)
	coPCfg, coHCfg := authzConfig(t, p.Identities.CoordinatorKubeconfig), authzConfig(t, h.Identities.CoordinatorKubeconfig)

	// Admission webhooks take a few seconds to become effective after a provider is
	// created: wait for the first refusal (a dry run, so that nothing is created).
	authzWaitWebhook(t, acmeCall, "/clusters/"+acme.Path+authzPG+"/namespaces/default/postgresdatabases?dryRun=All",
		authzDatabase("webhook-probe", map[string]string{platformv1alpha1.LabelRuntime: "rt-a"}, "", "DE"))

	// The prefilled runtime acme may not use yet: refused by the scheduler, permitted,
	// then scheduled. Started first, as the scheduler retries with backoff.
	pickURL := "/clusters/" + acme.Path + authzPG + "/namespaces/default/postgresdatabases"
	m.http(acmeCall, "create a PostgresDatabase a-pick with spec.runtimeName=rt-a (not permitted yet)", authzAllow, authzPost(pickURL, authzDatabase("a-pick", nil, "rt-a")))
	acmeCluster := acme.ClusterName(t)
	cond, db := authzWaitScheduled(acmeC, "a-pick", 90*time.Second, func(c *metav1.Condition) bool {
		return c.Status == metav1.ConditionTrue || c.Reason == platformv1alpha1.ReasonRuntimeNotPermitted
	})
	wantMsg := "grant the verb use on serviceruntimes rt-a to " + identity.TenantSubject(acmeCluster)
	notPermitted := cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == platformv1alpha1.ReasonRuntimeNotPermitted && strings.Contains(cond.Message, wantMsg)
	m.check(idAcme, "get a-pick scheduled on rt-a without a permit (expect Scheduled=False RuntimeNotPermitted naming what to ask for)",
		authzDeny(""), !notPermitted, authzConditionCell(cond, db), fmt.Sprintf("condition %+v; want reason %s with %q", cond, platformv1alpha1.ReasonRuntimeNotPermitted, wantMsg))
	p.Permit(t, acme, "rt-a")
	permitted := time.Now()

	// Servicelets, through the front door (and once directly at kcp).
	authzServiceletRows(t, m, authzServicelet{
		call: newAuthzCaller(t, idServiceletA, slACfg), direct: newAuthzCaller(t, idServiceletA, authzRetarget(slACfg, kcp, kcpCA)),
		rt: "rt-a", other: "rt-b", own: caps["a-de"], ownGlobex: caps["g-de"], foreign: caps["a-fr"],
	}, authzPlatform{p: p, h: h, acme: acme, kcp: kcp, kcpCA: kcpCA, fdVW: fdVW, hfdVW: hfdVW, pVW: pVW, hVW: hVW})
	authzServiceletRows(t, m, authzServicelet{
		call: newAuthzCaller(t, idServiceletB, slBCfg), direct: newAuthzCaller(t, idServiceletB, authzRetarget(slBCfg, kcp, kcpCA)),
		rt: "rt-b", other: "rt-a", own: caps["a-fr"], ownGlobex: caps["g-fr"], foreign: caps["a-de"],
	}, authzPlatform{p: p, h: h, acme: acme, kcp: kcp, kcpCA: kcpCA, fdVW: fdVW, hfdVW: hfdVW, pVW: pVW, hVW: hVW})

	// Tenants, with their own users' credentials.
	pf := authzPlatform{p: p, h: h, acme: acme, kcp: kcp, kcpCA: kcpCA, fdVW: fdVW, hfdVW: hfdVW, pVW: pVW, hVW: hVW}
	m.http(acmeCall, "get its own Secret app-password (no msp label)", authzAllow, authzGet("/clusters/"+acme.Path+"/api/v1/namespaces/default/secrets/app-password"))
	authzTenantRows(t, m, authzTenant{who: idAcme, kubeconfig: acmeKC, call: acmeCall, fd: acmeFD, ws: acme, other: globex,
		own: caps["a-de"], ownRT: "rt-a", otherRT: "rt-b", others: caps["g-fr"]}, pf)
	authzTenantRows(t, m, authzTenant{who: idGlobex, kubeconfig: globexKC, call: globexCall, fd: globexFD, ws: globex, other: acme,
		own: caps["g-fr"], ownRT: "rt-b", otherRT: "rt-a", others: caps["a-de"]}, pf)

	// Coordinators, with their client certificates, at kcp.
	pSide := authzProviderSide{p: p, vw: pVW, fd: p.Identities.FrontDoorURL, api: authzPG, resource: "postgresdatabases",
		tenant: caps["a-de"].ws, tenantCluster: caps["a-de"].cluster, capName: "a-de", runtime: "rt-a"}
	hSide := authzProviderSide{p: h, vw: hVW, fd: h.Identities.FrontDoorURL, api: authzHosting, resource: "postgresservers",
		tenant: hTenant, tenantCluster: hTenantCluster, capName: "srv-1"}
	authzCoordinatorRows(t, m, idCoordP, p.Identities.CoordinatorKubeconfig, coPCfg, mspCA, pSide, hSide, []*framework.Workspace{acme, globex, hTenant}, kcp)
	authzCoordinatorRows(t, m, idCoordH, h.Identities.CoordinatorKubeconfig, coHCfg, mspCA, hSide, pSide, []*framework.Workspace{acme, globex, hTenant}, kcp)

	// The permitted runtime: a-pick gets scheduled.
	cond, db = authzWaitScheduled(acmeC, "a-pick", 120*time.Second, func(c *metav1.Condition) bool { return c.Status == metav1.ConditionTrue })
	scheduled := cond != nil && cond.Status == metav1.ConditionTrue && db.Spec.RuntimeName == "rt-a" && db.Labels[platformv1alpha1.LabelRuntime] == "rt-a"
	t.Logf("a-pick: %s, %s after the permit", authzConditionCell(cond, db), time.Since(permitted).Round(time.Second))
	m.check(idAcme, "get a-pick scheduled on rt-a after p.Permit(acme, rt-a)", authzAllow, scheduled, authzConditionCell(cond, db),
		fmt.Sprintf("condition %+v, runtimeName %q, labels %v", cond, db.Spec.RuntimeName, db.Labels))

	// The table, grouped by identity.
	m.order = authzIdentities
	table := m.table()
	_, counts := m.counts()
	var summary []string
	for _, who := range authzIdentities {
		summary = append(summary, fmt.Sprintf("%s: %d", who, counts[who]))
		if counts[who] < 30 {
			t.Errorf("%s has only %d rows, want at least 30", who, counts[who])
		}
	}
	t.Logf("authorization matrix (%d rows; %s), %s in all:\n%s", len(m.rows), strings.Join(summary, ", "), time.Since(started).Round(time.Second), table)
	authzWriteTable(t, table)
}

// authzPlatform is what the rows address besides the identity's own objects.
type authzPlatform struct {
	p, h                  *framework.Provider
	acme                  *framework.Workspace
	kcp                   string
	kcpCA                 []byte
	fdVW, hfdVW, pVW, hVW string
}

// authzServicelet is a servicelet and the capabilities it owns and does not own.
type authzServicelet struct {
	// call dials the front door, direct kcp itself, both with the servicelet's token.
	call, direct *authzCaller
	rt, other    string
	// own and ownGlobex are on rt (in acme and globex), foreign on the other runtime (acme).
	own, ownGlobex, foreign authzCap
}

func authzServiceletRows(t *testing.T, m *authzMatrix, s authzServicelet, pf authzPlatform) {
	t.Helper()
	c, rt, other := s.call, s.rt, s.other
	fdBase := pf.p.Identities.FrontDoorURL
	fdDeny := authzDeny("msp front door:", 403)
	sel := func(v string) string { return "labelSelector=" + url.QueryEscape(v) }
	own := sel(platformv1alpha1.LabelRuntime + "=" + rt)
	theirs := sel(platformv1alpha1.LabelRuntime + "=" + other)
	unlabelled := sel("!" + platformv1alpha1.LabelRuntime)
	both := sel(platformv1alpha1.LabelRuntime + " in (rt-a,rt-b)")
	capURL := func(cp authzCap) string {
		return pf.fdVW + "/clusters/" + cp.cluster + authzPG + "/namespaces/default/postgresdatabases/" + cp.name
	}
	secrets := pf.fdVW + "/clusters/" + s.own.cluster + "/api/v1/namespaces/default/secrets"

	// Lists and watches: only with its own runtime's selector.
	all := pf.fdVW + "/clusters/*" + authzPG + "/postgresdatabases"
	m.http(c, "list capabilities in /clusters/* with its own selector", authzAllow, authzGet(all+"?"+own), authzOnlyLabelled(rt), authzHasItems(2))
	m.http(c, "watch capabilities in /clusters/* with its own selector", authzAllow, authzGet(all+"?watch=true&timeoutSeconds=1&"+own))
	m.http(c, "list capabilities in /clusters/* without a selector", fdDeny, authzGet(all))
	m.http(c, "watch capabilities in /clusters/* without a selector", fdDeny, authzGet(all+"?watch=true&timeoutSeconds=1"))
	m.http(c, "list capabilities in /clusters/* with "+other+"'s selector", fdDeny, authzGet(all+"?"+theirs))
	m.http(c, "watch capabilities in /clusters/* with "+other+"'s selector", fdDeny, authzGet(all+"?watch=true&timeoutSeconds=1&"+theirs))
	m.http(c, "list capabilities in /clusters/* with !platform.msp.dev/runtime", fdDeny, authzGet(all+"?"+unlabelled))
	m.http(c, "list capabilities in /clusters/* with platform.msp.dev/runtime in (rt-a,rt-b)", fdDeny, authzGet(all+"?"+both))
	m.http(c, "list capabilities in /clusters/* with two labelSelector parameters (its own and "+other+"'s)", fdDeny, authzGet(all+"?"+own+"&"+theirs))
	m.http(c, "watch capabilities through the deprecated /watch/ path with its own selector", fdDeny, authzGet(pf.fdVW+"/clusters/*"+authzPG+"/watch/postgresdatabases?"+own))
	m.http(c, "list with Impersonate-User msp-platform (system:kcp:admin) and no selector", fdDeny,
		authzGet(all).with("Impersonate-User", "msp-platform").with("Impersonate-Group", "system:kcp:admin"))
	inAcme := pf.fdVW + "/clusters/" + s.own.cluster + authzPG + "/namespaces/default/postgresdatabases"
	m.http(c, "list acme's capabilities (per workspace) with its own selector", authzAllow, authzGet(inAcme+"?"+own), authzOnlyLabelled(rt), authzHasItems(1))
	m.http(c, "list acme's capabilities (per workspace) without a selector", fdDeny, authzGet(inAcme))
	m.http(c, "list acme's capabilities (per workspace) with "+other+"'s selector", fdDeny, authzGet(inAcme+"?"+theirs))
	m.http(c, "list acme's capabilities (per workspace) with !platform.msp.dev/runtime", fdDeny, authzGet(inAcme+"?"+unlabelled))
	m.http(c, "watch acme's capabilities (per workspace) without a selector", fdDeny, authzGet(inAcme+"?watch=true&timeoutSeconds=1"))
	m.http(c, "list acme's capabilities by workspace path instead of cluster name", fdDeny,
		authzGet(pf.fdVW+"/clusters/"+pf.acme.Path+authzPG+"/namespaces/default/postgresdatabases?"+own))

	// Its own capabilities: read, status, its finalizer; nothing else.
	m.http(c, "get its capability acme/"+s.own.name, authzAllow, authzGet(capURL(s.own)))
	m.http(c, "get its capability globex/"+s.ownGlobex.name, authzAllow, authzGet(capURL(s.ownGlobex)))
	m.http(c, "get "+other+"'s capability acme/"+s.foreign.name, fdDeny, authzGet(capURL(s.foreign)))
	m.http(c, "get the status of "+other+"'s capability acme/"+s.foreign.name, fdDeny, authzGet(capURL(s.foreign)+"/status"))
	gen := authzObservedGeneration(t, s.own)
	m.http(c, "patch status of its capability (observedGeneration)", authzAllow, authzMerge(capURL(s.own)+"/status", map[string]any{"status": map[string]any{"observedGeneration": gen}}))
	m.http(c, "patch status of "+other+"'s capability", fdDeny, authzMerge(capURL(s.foreign)+"/status", map[string]any{"status": map[string]any{"observedGeneration": gen}}))
	m.http(c, "patch status of its capability: rewrite the Scheduled condition", authzDeny("the Scheduled condition", 403),
		authzMerge(capURL(s.own)+"/status", authzForgedScheduled("forged by the servicelet")))
	m.http(c, "patch status of its capability: change status.location", authzDeny("status.location", 403),
		authzMerge(capURL(s.own)+"/status", map[string]any{"status": map[string]any{"location": map[string]any{"region": "mars-1", "country": "XX"}}}))
	fins := authzFinalizers(t, s.own)
	without := slices.DeleteFunc(slices.Clone(fins), func(f string) bool { return f == platformv1alpha1.FinalizerServicelet })
	m.http(c, "remove its finalizer from its capability", authzAllow, authzMerge(capURL(s.own), map[string]any{"metadata": map[string]any{"finalizers": without}}))
	m.http(c, "add its finalizer back to its capability", authzAllow, authzMerge(capURL(s.own), map[string]any{"metadata": map[string]any{"finalizers": fins}}))
	m.http(c, "remove the finalizer of "+other+"'s capability", fdDeny, authzMerge(capURL(s.foreign), map[string]any{"metadata": map[string]any{"finalizers": []string{}}}))
	m.http(c, "change spec.runtimeName of its capability to "+other, authzDeny("", 403, 422), authzMerge(capURL(s.own), map[string]any{"spec": map[string]any{"runtimeName": other}}))
	m.http(c, "change the runtime label of its capability to "+other, authzDeny("servicelets must not change metadata.labels", 403),
		authzMerge(capURL(s.own), map[string]any{"metadata": map[string]any{"labels": map[string]any{platformv1alpha1.LabelRuntime: other}}}))
	m.http(c, "remove the runtime label of its capability", authzDeny("servicelets must not change metadata.labels", 403),
		authzMerge(capURL(s.own), map[string]any{"metadata": map[string]any{"labels": map[string]any{platformv1alpha1.LabelRuntime: nil}}}))
	m.http(c, "change spec.size of its capability", authzDeny("servicelets must not change spec", 403), authzMerge(capURL(s.own), map[string]any{"spec": map[string]any{"size": "2Gi"}}))
	m.http(c, "add an annotation to its capability", authzDeny("servicelets must not change metadata.annotations", 403),
		authzMerge(capURL(s.own), map[string]any{"metadata": map[string]any{"annotations": map[string]any{"example.com/note": "servicelet"}}}))
	m.http(c, "add another finalizer to its capability", authzDeny("must not add or remove the finalizer", 403),
		authzMerge(capURL(s.own), map[string]any{"metadata": map[string]any{"finalizers": append(slices.Clone(fins), "example.com/keep")}}))
	m.http(c, "create a capability in acme", authzDeny("tenants create capabilities", 403),
		authzPost(pf.fdVW+"/clusters/"+s.own.cluster+authzPG+"/namespaces/default/postgresdatabases", authzDatabase("made-by-"+rt, nil, rt)))
	m.http(c, "delete its capability", authzDeny("tenants delete capabilities", 403), authzDelete(capURL(s.own)))
	m.http(c, "delete "+other+"'s capability", fdDeny, authzDelete(capURL(s.foreign)))

	// Secrets: its connection Secrets only.
	secretBody := func(name, runtime, capability string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{
			"name": name, "namespace": "default",
			"labels":      map[string]any{platformv1alpha1.LabelRuntime: runtime, platformv1alpha1.LabelKind: "PostgresDatabase"},
			"annotations": map[string]any{platformv1alpha1.AnnotationCapability: capability},
		}}
	}
	noPassword := authzLacks(authzPasswordB64, "the tenant's password")
	m.http(c, "get its connection Secret acme/"+s.own.secret, authzAllow, authzGet(secrets+"/"+s.own.secret))
	m.http(c, "get "+other+"'s connection Secret acme/"+s.foreign.secret, fdDeny, authzGet(secrets+"/"+s.foreign.secret))
	m.http(c, "get acme's own Secret app-password", fdDeny, authzGet(secrets+"/app-password"), noPassword)
	m.http(c, "list Secrets in /clusters/* without a selector", fdDeny, authzGet(pf.fdVW+"/clusters/*/api/v1/secrets"), noPassword)
	m.http(c, "list Secrets in /clusters/* with its own selector", authzAllow, authzGet(pf.fdVW+"/clusters/*/api/v1/secrets?"+own),
		authzOnlyLabelled(rt, "app-password"), authzHasItems(2), noPassword)
	m.http(c, "watch Secrets in /clusters/* with "+other+"'s selector", fdDeny, authzGet(pf.fdVW+"/clusters/*/api/v1/secrets?watch=true&timeoutSeconds=1&"+theirs))
	m.http(c, "list acme's Secrets (per workspace) without a selector", fdDeny, authzGet(secrets), noPassword)
	m.http(c, "apply its connection Secret (labels and annotation)", authzAllow,
		authzApply(secrets+"/"+s.own.secret+"?fieldManager=authz-matrix", secretBody(s.own.secret, rt, s.own.name)))
	m.http(c, "apply a new Secret naming "+other+"'s capability "+s.foreign.name, authzDeny("not assigned to runtime "+rt, 403),
		authzApply(secrets+"/steal-"+rt+"?fieldManager=authz-matrix", secretBody("steal-"+rt, rt, s.foreign.name)))
	m.http(c, "apply "+other+"'s connection Secret with "+other+"'s labels", fdDeny,
		authzApply(secrets+"/"+s.foreign.secret+"?fieldManager=authz-matrix", secretBody(s.foreign.secret, other, s.foreign.name)))
	m.http(c, "take over acme's Secret app-password by applying it with its labels", authzDeny("never taken over", 403),
		authzApply(secrets+"/app-password?fieldManager=authz-matrix", secretBody("app-password", rt, s.own.name)))
	m.http(c, "plant a new unrelated Secret in acme", fdDeny,
		authzPost(secrets, map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "planted-by-" + rt}, "stringData": map[string]any{"x": "y"}}))
	m.http(c, "merge-patch acme's Secret app-password", fdDeny, authzMerge(secrets+"/app-password", map[string]any{"stringData": map[string]any{"password": "owned"}}))
	m.http(c, "delete acme's Secret app-password", fdDeny, authzDelete(secrets+"/app-password"))
	m.http(c, "delete "+other+"'s connection Secret", fdDeny, authzDelete(secrets+"/"+s.foreign.secret))

	// Events about its capabilities only.
	event := func(about string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Event",
			"metadata":       map[string]any{"name": about + ".authz-" + rt, "namespace": "default"},
			"involvedObject": map[string]any{"apiVersion": "postgres.msp.dev/v1alpha1", "kind": "PostgresDatabase", "name": about, "namespace": "default"},
			"reason":         "AuthzMatrix", "message": "recorded by the authorization matrix", "type": "Normal",
			"source": map[string]any{"component": "authz-matrix"},
		}
	}
	events := pf.fdVW + "/clusters/" + s.own.cluster + "/api/v1/namespaces/default/events"
	m.http(c, "record an Event on its capability", authzAllow, authzPost(events, event(s.own.name)))
	m.http(c, "record an Event on "+other+"'s capability", fdDeny, authzPost(events, event(s.foreign.name)))

	// Its ServiceRuntime: read, status; nothing else.
	rts := fdBase + "/clusters/" + pf.p.Path + authzRTs
	now := time.Now().UTC().Format(time.RFC3339)
	m.http(c, "get its ServiceRuntime "+rt, authzAllow, authzGet(rts+"/"+rt))
	m.http(c, "watch its ServiceRuntime (fieldSelector metadata.name)", authzAllow, authzGet(rts+"?watch=true&timeoutSeconds=1&fieldSelector="+url.QueryEscape("metadata.name="+rt)))
	m.http(c, "list ServiceRuntimes without a field selector", fdDeny, authzGet(rts))
	m.http(c, "patch its ServiceRuntime's status (heartbeat)", authzAllow, authzMerge(rts+"/"+rt+"/status", map[string]any{"status": map[string]any{"lastHeartbeatTime": now}}))
	m.http(c, "patch its ServiceRuntime's spec", authzDeny("spec is the provider's", 403), authzMerge(rts+"/"+rt, map[string]any{"spec": map[string]any{"unschedulable": true}}))
	m.http(c, "get "+other+"'s ServiceRuntime", fdDeny, authzGet(rts+"/"+other))
	m.http(c, "patch "+other+"'s ServiceRuntime's status", fdDeny, authzMerge(rts+"/"+other+"/status", map[string]any{"status": map[string]any{"lastHeartbeatTime": now}}))
	m.http(c, "patch "+other+"'s ServiceRuntime's spec", fdDeny, authzMerge(rts+"/"+other, map[string]any{"spec": map[string]any{"unschedulable": true}}))
	m.http(c, "create "+other+"'s twin (a ServiceRuntime named "+other+")", authzDeny("create the ServiceRuntime", 403), authzPost(rts, authzRuntime(other)))
	m.http(c, "create a new ServiceRuntime rogue-"+rt, authzDeny("create the ServiceRuntime", 403), authzPost(rts, authzRuntime("rogue-"+rt)))
	m.http(c, "delete its ServiceRuntime", fdDeny, authzDelete(rts+"/"+rt))

	// Token renewal: its own ServiceAccount only, audience and lifetime forced.
	sas := fdBase + "/clusters/" + pf.p.Path + "/api/v1/namespaces/default/serviceaccounts/"
	tokenReq := map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"spec": map[string]any{"audiences": []string{"https://kcp.default.svc"}, "expirationSeconds": 86400}}
	var renewed string
	m.http(c, "renew its own token asking for kcp's audience and 24h", authzAllow, authzPost(sas+identity.ServiceAccountName(rt)+"/token", tokenReq), func(r authzResp) string {
		renewed, _, _ = unstructured.NestedString(r.obj, "status", "token")
		exp, _, _ := unstructured.NestedString(r.obj, "status", "expirationTimestamp")
		if aud := authzAudiences(renewed); !slices.Equal(aud, []string{identity.DefaultAudience}) {
			return fmt.Sprintf("the token's audiences are %v", aud)
		}
		if at, err := time.Parse(time.RFC3339, exp); err != nil || at.After(time.Now().Add(time.Hour+2*time.Minute)) {
			return "it expires at " + exp + ", later than in 1h"
		}
		return ""
	})
	if renewed != "" {
		renewedCfg := &rest.Config{Host: pf.kcp, BearerToken: renewed, TLSClientConfig: rest.TLSClientConfig{CAData: pf.kcpCA}}
		m.http(newAuthzCaller(t, c.name, renewedCfg), "use the renewed token against kcp directly", authzDeny("", 401),
			authzGet("/clusters/"+pf.p.Path+authzRTs+"/"+rt))
	}
	m.http(c, "request a token for "+other+"'s ServiceAccount", authzDeny("may only request tokens for its own ServiceAccount", 403), authzPost(sas+identity.ServiceAccountName(other)+"/token", tokenReq))
	m.http(c, "request a token for the ServiceAccount default", fdDeny, authzPost(sas+"default/token", tokenReq))

	// No workspace directly: kcp refuses its token; the front door refuses workspace paths.
	d := s.direct
	m.http(d, "its token against kcp: acme's capabilities", authzDeny("", 401), authzGet("/clusters/"+pf.acme.Path+authzPG+"/namespaces/default/postgresdatabases"))
	m.http(d, "its token against kcp: its ServiceRuntime in the provider workspace", authzDeny("", 401), authzGet("/clusters/"+pf.p.Path+authzRTs+"/"+rt))
	m.http(d, "its token against kcp: root's workspaces", authzDeny("", 401), authzGet("/clusters/root"+authzTenants))
	m.http(d, "its token against kcp: the VW with its own selector", authzDeny("", 401), authzGet(pf.pVW+"/clusters/*"+authzPG+"/postgresdatabases?"+own))
	m.http(c, "list root's workspaces through the front door", fdDeny, authzGet(fdBase+"/clusters/root"+authzTenants))
	m.http(c, "list the provider workspace's workspaces through the front door", fdDeny, authzGet(fdBase+"/clusters/"+pf.p.Path+authzTenants))
	m.http(c, "acme's capabilities at /clusters/<acme path> through the front door", fdDeny, authzGet(fdBase+"/clusters/"+pf.acme.Path+authzPG+"/namespaces/default/postgresdatabases"))
	m.http(c, "acme's Secrets at /clusters/<acme path> through the front door", fdDeny, authzGet(fdBase+"/clusters/"+pf.acme.Path+"/api/v1/namespaces/default/secrets"))
	m.http(c, "the provider workspace's Secrets through the front door", fdDeny, authzGet(fdBase+"/clusters/"+pf.p.Path+"/api/v1/namespaces/default/secrets"))
	m.http(c, "h's VW path through p's front door", fdDeny, authzGet(fdBase+authzURLPath(pf.hVW)+"/clusters/*"+authzHosting+"/postgresservers?"+own))
	m.http(c, "its token at h's front door", authzDeny("msp front door:", 401), authzGet(pf.hfdVW+"/clusters/*"+authzHosting+"/postgresservers?"+own))
	m.http(c, "get the endpoint slice through the front door (URL rewritten to the front door)", authzAllow,
		authzGet(fdBase+"/clusters/"+pf.p.Path+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+pf.p.Export), func(r authzResp) string {
			eps, _, _ := unstructured.NestedSlice(r.obj, "status", "endpoints")
			for _, e := range eps {
				if u, _ := e.(map[string]any)["url"].(string); !strings.HasPrefix(u, fdBase+"/services/apiexport/") {
					return "it lists the endpoint " + u
				}
			}
			if len(eps) == 0 {
				return "it lists no endpoint"
			}
			return ""
		})
}

// authzTenant is a tenant user with its workspace and capabilities.
type authzTenant struct {
	who, kubeconfig string
	// call dials kcp, fd the provider's front door, both with the user's static token.
	call, fd  *authzCaller
	ws, other *framework.Workspace
	// own is a placed capability of ws on ownRT; others one of the other tenant's.
	own, others    authzCap
	ownRT, otherRT string
}

func authzTenantRows(t *testing.T, m *authzMatrix, tn authzTenant, pf authzPlatform) {
	t.Helper()
	c := tn.call
	other := strings.TrimPrefix(tn.who, "tenant ")
	if other == "acme" {
		other = "globex"
	} else {
		other = "acme"
	}
	kcpDeny := authzDeny("forbidden", 403)
	pgs := "/clusters/" + tn.ws.Path + authzPG + "/namespaces/default/postgresdatabases"
	ownCap := pgs + "/" + tn.own.name
	secrets := "/clusters/" + tn.ws.Path + "/api/v1/namespaces/default/secrets"
	root := pf.kcp + "/clusters/root"
	fresh := "t-" + strings.TrimPrefix(tn.who, "tenant ")

	// Its own workspace.
	m.kubectl(tn.who, tn.kubeconfig, "kubectl get postgresdatabases", authzAllow, "get", "postgresdatabases")
	m.http(c, "create a PostgresDatabase "+fresh, authzAllow, authzPost(pgs, authzDatabase(fresh, nil, "", "DE")))
	m.http(c, "get it", authzAllow, authzGet(pgs+"/"+fresh))
	m.http(c, "change its spec.size", authzAllow, authzMerge(pgs+"/"+fresh, map[string]any{"spec": map[string]any{"size": "2Gi"}}))
	m.http(c, "annotate it", authzAllow, authzMerge(pgs+"/"+fresh, map[string]any{"metadata": map[string]any{"annotations": map[string]any{"example.com/owner": "team-a"}}}))
	m.http(c, "delete it", authzAllow, authzDelete(pgs+"/"+fresh))
	m.http(c, "get its connection Secret "+tn.own.secret, authzAllow, authzGet(secrets+"/"+tn.own.secret), func(r authzResp) string {
		if data, _ := r.obj["data"].(map[string]any); len(data) == 0 {
			return "it has no data"
		}
		return ""
	})
	m.http(c, "list its Secrets", authzAllow, authzGet(secrets), authzHasItems(1))
	m.http(c, "create a Secret of its own", authzAllow, authzPost(secrets, map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "own-" + fresh}, "stringData": map[string]any{"k": "v"}}))
	m.canI(tn.who, tn.kubeconfig, "kubectl auth can-i '*' '*' in its workspace", authzAllow, "*", "*")

	// The other tenant's workspace.
	otherPGs := "/clusters/" + tn.other.Path + authzPG + "/namespaces/default/postgresdatabases"
	m.http(c, "list "+other+"'s PostgresDatabases", kcpDeny, authzGet(otherPGs))
	m.http(c, "get "+other+"'s connection Secret "+tn.others.secret, kcpDeny, authzGet("/clusters/"+tn.other.Path+"/api/v1/namespaces/default/secrets/"+tn.others.secret))
	m.http(c, "create a PostgresDatabase in "+other, kcpDeny, authzPost(otherPGs, authzDatabase("intruder", nil, "", "DE")))
	m.http(c, "delete "+other+"'s PostgresDatabase "+tn.others.name, kcpDeny, authzDelete(otherPGs+"/"+tn.others.name))
	m.http(c, "create a ClusterRoleBinding in "+other+" (dry run)", kcpDeny,
		authzPost("/clusters/"+tn.other.Path+"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?dryRun=All", authzAdminBinding("intruder", "User", "tenant-"+strings.TrimPrefix(tn.who, "tenant "))))
	m.kubectl(tn.who, tn.kubeconfig, "kubectl get postgresdatabases in "+other, authzDeny("forbidden"), "--server", pf.kcp+"/clusters/"+tn.other.Path, "get", "postgresdatabases")
	m.canI(tn.who, tn.kubeconfig, "kubectl auth can-i '*' '*' in "+other, authzDeny(""), "*", "*", "--server", pf.kcp+"/clusters/"+tn.other.Path)

	// The provider's workspace and virtual workspaces.
	m.http(c, "list the provider's ServiceRuntimes", kcpDeny, authzGet("/clusters/"+pf.p.Path+authzRTs))
	m.http(c, "get the provider's endpoint slice", kcpDeny, authzGet("/clusters/"+pf.p.Path+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+pf.p.Export))
	m.http(c, "list the provider workspace's Secrets", kcpDeny, authzGet("/clusters/"+pf.p.Path+"/api/v1/namespaces/default/secrets"))
	m.http(c, "list capabilities through p's VW (/clusters/*)", authzDeny("", 403), authzGet(pf.pVW+"/clusters/*"+authzPG+"/postgresdatabases"))
	m.http(c, "get its own capability through p's VW", authzDeny("", 403), authzGet(pf.pVW+"/clusters/"+tn.own.cluster+authzPG+"/namespaces/default/postgresdatabases/"+tn.own.name))
	m.http(c, "list PostgresServers through h's VW", authzDeny("", 403), authzGet(pf.hVW+"/clusters/*"+authzHosting+"/postgresservers"))
	m.http(tn.fd, "its token at p's front door", authzDeny("msp front door:", 401),
		authzGet(pf.fdVW+"/clusters/"+tn.own.cluster+authzPG+"/namespaces/default/postgresdatabases?labelSelector="+url.QueryEscape(platformv1alpha1.LabelRuntime+"="+tn.ownRT)))

	// Admission: the runtime label, status and the servicelet's finalizer are not the tenant's.
	m.http(c, "create a PostgresDatabase with the runtime label", authzDeny("is written by the scheduler", 403),
		authzPost(pgs, authzDatabase("labelled-"+fresh, map[string]string{platformv1alpha1.LabelRuntime: tn.ownRT}, "", "DE")))
	m.http(c, "change the runtime label of "+tn.own.name+" to "+tn.otherRT, authzDeny("must not change", 403),
		authzMerge(ownCap, map[string]any{"metadata": map[string]any{"labels": map[string]any{platformv1alpha1.LabelRuntime: tn.otherRT}}}))
	m.http(c, "remove the runtime label of "+tn.own.name, authzDeny("must not be removed", 403),
		authzMerge(ownCap, map[string]any{"metadata": map[string]any{"labels": map[string]any{platformv1alpha1.LabelRuntime: nil}}}))
	m.kubectl(tn.who, tn.kubeconfig, "kubectl label "+tn.own.name+" with runtime "+tn.otherRT+" --overwrite", authzDeny("must not change"),
		"label", "postgresdatabase", tn.own.name, platformv1alpha1.LabelRuntime+"="+tn.otherRT, "--overwrite")
	m.http(c, "write status of "+tn.own.name+": forged Scheduled=True", authzDeny("status is written by the platform", 403),
		authzMerge(ownCap+"/status", authzForgedScheduled("forged by the tenant")))
	m.http(c, "remove the servicelet's finalizer from "+tn.own.name, authzDeny("is removed by the runtime's servicelet", 403),
		authzMerge(ownCap, map[string]any{"metadata": map[string]any{"finalizers": []string{}}}))
	m.http(c, "change spec.runtimeName of "+tn.own.name+" to "+tn.otherRT, authzDeny("", 403, 422),
		authzMerge(ownCap, map[string]any{"spec": map[string]any{"runtimeName": tn.otherRT}}))

	// Root and the workspace tree.
	m.canI(tn.who, tn.kubeconfig, "kubectl auth can-i '*' '*' in root", authzDeny(""), "*", "*", "--server", root)
	m.canI(tn.who, tn.kubeconfig, "kubectl auth can-i delete workspaces in root", authzDeny(""), "delete", "workspaces", "--server", root)
	m.kubectl(tn.who, tn.kubeconfig, "kubectl delete workspace tenants in root (server dry run)", authzDeny("forbidden"), "--server", root, "delete", "workspace", "tenants", "--dry-run=server")
	m.http(c, "delete root's workspace providers (dry run)", kcpDeny, authzDelete("/clusters/root"+authzTenants+"/providers?dryRun=All"))
	m.http(c, "list the workspaces in root:tenants", kcpDeny, authzGet("/clusters/root:tenants"+authzTenants))
	m.http(c, "create a workspace in root:tenants (dry run)", kcpDeny, authzPost("/clusters/root:tenants"+authzTenants+"?dryRun=All",
		map[string]any{"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": map[string]any{"name": "squat-" + fresh}}))
	m.http(c, "delete the workspace of "+other+" (dry run)", kcpDeny, authzDelete("/clusters/root:tenants"+authzTenants+"/"+authzBase(tn.other.Path)+"?dryRun=All"))
}

// authzProviderSide is a provider as a coordinator sees it: its VW, its workspace, one
// capability of a tenant of its, and an existing ServiceRuntime ("" when it has none).
type authzProviderSide struct {
	p                *framework.Provider
	vw, fd, api      string
	resource         string
	tenant           *framework.Workspace
	tenantCluster    string
	capName, runtime string
}

func (s authzProviderSide) all() string { return s.vw + "/clusters/*" + s.api + "/" + s.resource }
func (s authzProviderSide) capURL() string {
	return s.vw + "/clusters/" + s.tenantCluster + s.api + "/namespaces/default/" + s.resource + "/" + s.capName
}
func (s authzProviderSide) ws(rest string) string { return "/clusters/" + s.p.Path + rest }

func authzCoordinatorRows(t *testing.T, m *authzMatrix, who, kubeconfig string, cfg *rest.Config, mspCA []byte, self, other authzProviderSide, tenants []*framework.Workspace, kcp string) {
	t.Helper()
	c := newAuthzCaller(t, who, cfg)
	kcpDeny := authzDeny("forbidden", 403)
	name := strings.TrimPrefix(who, "coordinator of ")
	otherName := "h"
	if name == "h" {
		otherName = "p"
	}
	now := time.Now().UTC().Format(time.RFC3339)
	twin := "authz-twin-" + name
	sa := "authz-sa-" + name
	tokenReq := map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": map[string]any{"expirationSeconds": 600}}
	sar := map[string]any{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": map[string]any{
		"user":               identity.TenantSubject("authz-probe"),
		"resourceAttributes": map[string]any{"group": "platform.msp.dev", "resource": "serviceruntimes", "verb": "use", "name": "rt-a"},
	}}

	// Its own provider: the VW, ServiceRuntimes, SubjectAccessReviews, ServiceAccounts.
	m.http(c, "list "+self.resource+" through its VW (/clusters/*)", authzAllow, authzGet(self.all()), authzHasItems(1))
	m.http(c, "watch "+self.resource+" through its VW", authzAllow, authzGet(self.all()+"?watch=true&timeoutSeconds=1"))
	m.http(c, "get "+self.capName+" through its VW", authzAllow, authzGet(self.capURL()))
	m.http(c, "annotate "+self.capName+" through its VW", authzAllow,
		authzMerge(self.capURL(), map[string]any{"metadata": map[string]any{"annotations": map[string]any{"authz.msp.dev/coordinator": "touched"}}}))
	gen := authzObservedGeneration(t, authzCap{ws: self.tenant, name: self.capName, cluster: self.tenantCluster})
	m.http(c, "patch status of "+self.capName+" through its VW", authzAllow, authzMerge(self.capURL()+"/status", map[string]any{"status": map[string]any{"observedGeneration": gen}}))
	m.http(c, "list ServiceRuntimes in its workspace", authzAllow, authzGet(self.ws(authzRTs)))
	m.http(c, "create a ServiceRuntime "+twin, authzAllow, authzPost(self.ws(authzRTs), authzRuntime(twin)))
	m.http(c, "get ServiceRuntime "+twin, authzAllow, authzGet(self.ws(authzRTs+"/"+twin)))
	m.http(c, "patch the status of ServiceRuntime "+twin, authzAllow, authzMerge(self.ws(authzRTs+"/"+twin+"/status"), map[string]any{"status": map[string]any{"lastHeartbeatTime": now}}))
	m.http(c, "delete ServiceRuntime "+twin, authzAllow, authzDelete(self.ws(authzRTs+"/"+twin)))
	if self.runtime != "" {
		m.http(c, "patch the status of ServiceRuntime "+self.runtime, authzAllow, authzMerge(self.ws(authzRTs+"/"+self.runtime+"/status"), map[string]any{"status": map[string]any{"lastHeartbeatTime": now}}))
	}
	m.http(c, "create a SubjectAccessReview in its workspace", authzAllow, authzPost(self.ws("/apis/authorization.k8s.io/v1/subjectaccessreviews"), sar))
	m.http(c, "create a ServiceAccount "+sa, authzAllow, authzPost(self.ws("/api/v1/namespaces/default/serviceaccounts"),
		map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": sa}}))
	m.http(c, "request a token for it", authzAllow, authzPost(self.ws("/api/v1/namespaces/default/serviceaccounts/"+sa+"/token"), tokenReq))
	m.http(c, "delete ServiceAccount "+sa, authzAllow, authzDelete(self.ws("/api/v1/namespaces/default/serviceaccounts/"+sa)))
	m.http(c, "list Secrets in its workspace", authzAllow, authzGet(self.ws("/api/v1/namespaces/default/secrets")))
	m.http(c, "list APIBindings in its workspace", authzAllow, authzGet(self.ws("/apis/apis.kcp.io/v1alpha1/apibindings")))

	// No escalation in its own workspace.
	m.http(c, "create a ClusterRoleBinding to cluster-admin for itself (dry run)", kcpDeny,
		authzPost(self.ws("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?dryRun=All"), authzAdminBinding("authz-escalate", "User", identity.CoordinatorUser(self.p.Path))))
	m.http(c, "create a ClusterRole (dry run)", kcpDeny, authzPost(self.ws("/apis/rbac.authorization.k8s.io/v1/clusterroles?dryRun=All"),
		map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": "authz-everything"},
			"rules": []any{map[string]any{"apiGroups": []string{"*"}, "resources": []string{"*"}, "verbs": []string{"*"}}}}))
	m.http(c, "widen its own ClusterRole msp:coordinator (dry run)", kcpDeny, authzMerge(self.ws("/apis/rbac.authorization.k8s.io/v1/clusterroles/msp:coordinator?dryRun=All"),
		map[string]any{"rules": []any{map[string]any{"apiGroups": []string{"*"}, "resources": []string{"*"}, "verbs": []string{"*"}}}}))
	m.http(c, "create a ValidatingWebhookConfiguration (dry run)", kcpDeny, authzPost(self.ws("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations?dryRun=All"),
		map[string]any{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": map[string]any{"name": "authz-rogue"}}))
	m.http(c, "delete the capability webhook (dry run)", kcpDeny, authzDelete(self.ws("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/capabilities.platform.msp.dev?dryRun=All")))
	m.http(c, "create an APIBinding (dry run)", kcpDeny, authzPost(self.ws("/apis/apis.kcp.io/v1alpha2/apibindings?dryRun=All"),
		map[string]any{"apiVersion": "apis.kcp.io/v1alpha2", "kind": "APIBinding", "metadata": map[string]any{"name": "authz-bind"},
			"spec": map[string]any{"reference": map[string]any{"export": map[string]any{"path": other.p.Path, "name": other.p.Export}}}}))
	m.http(c, "change its APIExport (dry run)", kcpDeny, authzMerge(self.ws("/apis/apis.kcp.io/v1alpha1/apiexports/"+self.p.Export+"?dryRun=All"),
		map[string]any{"metadata": map[string]any{"annotations": map[string]any{"example.com/x": "y"}}}))
	m.http(c, "delete namespace default (dry run)", kcpDeny, authzDelete(self.ws("/api/v1/namespaces/default?dryRun=All")))
	m.http(c, "impersonate msp-platform (system:kcp:admin) through its VW", authzDeny("", 403),
		authzGet(self.all()).with("Impersonate-User", "msp-platform").with("Impersonate-Group", "system:kcp:admin"))
	m.http(c, "impersonate servicelet rt-a through its VW (per workspace)", authzDeny("", 403),
		authzGet(self.capURL()).with("Impersonate-User", identity.ServiceAccountUser("rt-a")))
	m.http(c, "impersonate msp-platform in its workspace", kcpDeny,
		authzGet(self.ws("/api/v1/namespaces/default/secrets")).with("Impersonate-User", "msp-platform").with("Impersonate-Group", "system:kcp:admin"))
	m.canI(who, kubeconfig, "kubectl auth can-i '*' '*' in its workspace", authzDeny(""), "*", "*", "--server", kcp+"/clusters/"+self.p.Path)
	m.canI(who, kubeconfig, "kubectl auth can-i create clusterrolebindings in its workspace", authzDeny(""), "create", "clusterrolebindings", "--server", kcp+"/clusters/"+self.p.Path)
	fd := newAuthzCaller(t, who, authzRetarget(cfg, self.fd, mspCA))
	m.http(fd, "its certificate at its own front door", authzDeny("msp front door:", 401),
		authzGet(self.fd+"/clusters/"+self.p.Path+authzRTs))

	// The other provider.
	m.http(c, "list "+other.resource+" through "+otherName+"'s VW", authzDeny("", 403), authzGet(other.all()))
	m.http(c, "watch "+other.resource+" through "+otherName+"'s VW", authzDeny("", 403), authzGet(other.all()+"?watch=true&timeoutSeconds=1"))
	m.http(c, "get "+other.capName+" through "+otherName+"'s VW", authzDeny("", 403), authzGet(other.capURL()))
	m.http(c, "patch status of "+other.capName+" through "+otherName+"'s VW", authzDeny("", 403), authzMerge(other.capURL()+"/status", map[string]any{"status": map[string]any{"observedGeneration": 1}}))
	m.http(c, "list "+otherName+"'s ServiceRuntimes", kcpDeny, authzGet(other.ws(authzRTs)))
	if other.runtime != "" {
		m.http(c, "get "+otherName+"'s ServiceRuntime "+other.runtime, kcpDeny, authzGet(other.ws(authzRTs+"/"+other.runtime)))
		m.http(c, "patch the status of "+otherName+"'s ServiceRuntime "+other.runtime, kcpDeny,
			authzMerge(other.ws(authzRTs+"/"+other.runtime+"/status"), map[string]any{"status": map[string]any{"lastHeartbeatTime": now}}))
		m.http(c, "request a token for "+otherName+"'s servicelet "+other.runtime, kcpDeny,
			authzPost(other.ws("/api/v1/namespaces/default/serviceaccounts/"+identity.ServiceAccountName(other.runtime)+"/token"), tokenReq))
	}
	m.http(c, "create a ServiceRuntime in "+otherName+" (dry run)", kcpDeny, authzPost(other.ws(authzRTs+"?dryRun=All"), authzRuntime(twin)))
	m.http(c, "list "+otherName+"'s Secrets", kcpDeny, authzGet(other.ws("/api/v1/namespaces/default/secrets")))
	m.http(c, "create a ServiceAccount in "+otherName+" (dry run)", kcpDeny, authzPost(other.ws("/api/v1/namespaces/default/serviceaccounts?dryRun=All"),
		map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": sa}}))
	m.http(c, "request a token for "+otherName+"'s ServiceAccount default", kcpDeny, authzPost(other.ws("/api/v1/namespaces/default/serviceaccounts/default/token"), tokenReq))
	m.http(c, "create a SubjectAccessReview in "+otherName, kcpDeny, authzPost(other.ws("/apis/authorization.k8s.io/v1/subjectaccessreviews"), sar))
	m.http(c, "get "+otherName+"'s endpoint slice", kcpDeny, authzGet(other.ws("/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+other.p.Export)))
	m.http(c, "get "+otherName+"'s APIExport", kcpDeny, authzGet(other.ws("/apis/apis.kcp.io/v1alpha1/apiexports/"+other.p.Export)))
	ofd := newAuthzCaller(t, who, authzRetarget(cfg, other.fd, mspCA))
	m.http(ofd, "its certificate at "+otherName+"'s front door", authzDeny("msp front door:", 401), authzGet(other.fd+"/clusters/"+other.p.Path+authzRTs))

	// Tenants' workspaces, directly.
	for _, ws := range tenants {
		tn := authzBase(ws.Path)
		m.http(c, "list ConfigMaps in tenant "+tn+" directly", kcpDeny, authzGet("/clusters/"+ws.Path+"/api/v1/namespaces/default/configmaps"))
		m.http(c, "list Secrets in tenant "+tn+" directly", kcpDeny, authzGet("/clusters/"+ws.Path+"/api/v1/namespaces/default/secrets"))
	}
	m.http(c, "list "+self.resource+" in its tenant directly", kcpDeny, authzGet("/clusters/"+self.tenant.Path+self.api+"/namespaces/default/"+self.resource))

	// Root.
	m.http(c, "delete root's workspace tenants (dry run)", kcpDeny, authzDelete("/clusters/root"+authzTenants+"/tenants?dryRun=All"))
	m.http(c, "create a workspace in root:providers (dry run)", kcpDeny, authzPost("/clusters/root:providers"+authzTenants+"?dryRun=All",
		map[string]any{"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": map[string]any{"name": "squat-" + name}}))
	m.http(c, "list the workspaces in root:tenants", kcpDeny, authzGet("/clusters/root:tenants"+authzTenants))
	m.http(c, "list APIExports in root:platform", kcpDeny, authzGet("/clusters/root:platform/apis/apis.kcp.io/v1alpha1/apiexports"))
	m.canI(who, kubeconfig, "kubectl auth can-i '*' '*' in root", authzDeny(""), "*", "*", "--server", kcp+"/clusters/root")
	m.canI(who, kubeconfig, "kubectl auth can-i delete workspaces in root", authzDeny(""), "delete", "workspaces", "--server", kcp+"/clusters/root")
}

// authzRetarget is cfg's credential addressed at host, trusting ca.
func authzRetarget(cfg *rest.Config, host string, ca []byte) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Host = host
	c.TLSClientConfig.CAData = ca
	c.TLSClientConfig.CAFile = ""
	c.TLSClientConfig.Insecure = false
	c.TLSClientConfig.ServerName = ""
	return c
}

// authzDatabase is a PostgresDatabase manifest in default with the given labels,
// spec.runtimeName and placement countries.
func authzDatabase(name string, labels map[string]string, runtimeName string, countries ...string) map[string]any {
	md := map[string]any{"name": name, "namespace": "default"}
	if len(labels) > 0 {
		md["labels"] = labels
	}
	spec := map[string]any{}
	if runtimeName != "" {
		spec["runtimeName"] = runtimeName
	}
	if len(countries) > 0 {
		spec["placement"] = map[string]any{"countries": countries}
	}
	return map[string]any{"apiVersion": "postgres.msp.dev/v1alpha1", "kind": "PostgresDatabase", "metadata": md, "spec": spec}
}

// authzRuntime is a ServiceRuntime manifest that hosts nothing real and is unschedulable.
func authzRuntime(name string) map[string]any {
	return map[string]any{"apiVersion": "platform.msp.dev/v1alpha1", "kind": "ServiceRuntime", "metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"location":      map[string]any{"region": "nowhere-1", "country": "XX"},
			"capabilities":  []any{map[string]any{"group": "example.msp.dev", "kind": "Nothing"}},
			"unschedulable": true,
		}}
}

// authzAdminBinding binds cluster-admin to a subject.
func authzAdminBinding(name, kind, subject string) map[string]any {
	return map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": map[string]any{"name": name},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}}}
}

// authzForgedScheduled is a status whose only condition is a forged Scheduled=True.
func authzForgedScheduled(message string) map[string]any {
	return map[string]any{"status": map[string]any{"conditions": []any{map[string]any{
		"type": platformv1alpha1.ConditionScheduled, "status": "True", "reason": platformv1alpha1.ReasonAssigned,
		"message": message, "lastTransitionTime": "2026-01-01T00:00:00Z",
	}}}}
}

// authzObservedGeneration reads a capability's status.observedGeneration as the operator.
func authzObservedGeneration(t *testing.T, cp authzCap) int64 {
	t.Helper()
	obj := authzRead(t, cp)
	n, _, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	return n
}

// authzFinalizers reads a capability's finalizers as the operator.
func authzFinalizers(t *testing.T, cp authzCap) []string {
	t.Helper()
	return authzRead(t, cp).GetFinalizers()
}

func authzRead(t *testing.T, cp authzCap) *unstructured.Unstructured {
	t.Helper()
	list, err := cp.ws.Dynamic.Resource(schema.GroupVersionResource{Group: "postgres.msp.dev", Version: "v1alpha1", Resource: "postgresdatabases"}).
		Namespace("default").Get(context.Background(), cp.name, metav1.GetOptions{})
	if err == nil {
		return list
	}
	obj, err2 := cp.ws.Dynamic.Resource(schema.GroupVersionResource{Group: "hosting.msp.dev", Version: "v1alpha1", Resource: "postgresservers"}).
		Namespace("default").Get(context.Background(), cp.name, metav1.GetOptions{})
	if err2 != nil {
		t.Fatalf("failed to read %s in %s: %v; %v", cp.name, cp.ws.Path, err, err2)
	}
	return obj
}

// authzWaitWebhook waits until the provider's admission webhook refuses the create.
func authzWaitWebhook(t *testing.T, c *authzCaller, url string, body any) {
	t.Helper()
	framework.Eventually(t, time.Minute, "the admission webhook to refuse a labelled create", func(context.Context) (bool, string, error) {
		r := c.do(authzPost(url, body))
		return r.code == 403 && strings.Contains(r.body, "denied the request"), fmt.Sprintf("%d %s", r.code, authzTrim(r.body, 300)), nil
	})
}

// authzWaitScheduled polls a PostgresDatabase until its Scheduled condition satisfies
// done or the timeout passes, and returns the last condition (nil when none) and object.
func authzWaitScheduled(c client.Client, name string, timeout time.Duration, done func(*metav1.Condition) bool) (*metav1.Condition, *postgresv1alpha1.PostgresDatabase) {
	deadline := time.Now().Add(timeout)
	interval := 200 * time.Millisecond
	db := &postgresv1alpha1.PostgresDatabase{}
	var cond *metav1.Condition
	for {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, db); err == nil {
			cond = meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionScheduled)
			if cond != nil && done(cond) {
				return cond, db
			}
		}
		if time.Now().After(deadline) {
			return cond, db
		}
		time.Sleep(interval)
		interval = min(interval*3/2, 2*time.Second)
	}
}

// authzConditionCell shows a Scheduled condition in the table.
func authzConditionCell(cond *metav1.Condition, db *postgresv1alpha1.PostgresDatabase) string {
	if cond == nil {
		return "no Scheduled condition"
	}
	s := fmt.Sprintf("Scheduled=%s %s: %s", cond.Status, cond.Reason, cond.Message)
	if db != nil && db.Labels[platformv1alpha1.LabelRuntime] != "" {
		s += " (label " + db.Labels[platformv1alpha1.LabelRuntime] + ")"
	}
	return authzCell(s)
}

// authzBase is the last segment of a workspace path.
func authzBase(path string) string { return path[strings.LastIndex(path, ":")+1:] }
