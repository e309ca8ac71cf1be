//go:build probe

package probe

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/e2e/framework"
)

// review is what the probe webhook saw of one AdmissionReview.
type review struct {
	Hook, Op, Resource, Sub, Namespace, Name, User, Cluster string
	Groups                                                  []string
	Extra                                                   map[string][]string
	Allowed                                                 bool
	Message                                                 string
}

func (r review) String() string {
	extra := []string{}
	for k, v := range r.Extra {
		if k == "authorization.kcp.io/warrant" {
			extra = append(extra, fmt.Sprintf("%s: %d warrant(s), first %s", k, len(v), trim(v[0], 160)))
			continue
		}
		extra = append(extra, fmt.Sprintf("%s: %v", k, v))
	}
	verdict := "allowed"
	if !r.Allowed {
		verdict = "DENIED: " + r.Message
	}
	sub := ""
	if r.Sub != "" {
		sub = "/" + r.Sub
	}
	return fmt.Sprintf("hook %s: %s %s%s %s/%s object@%s by user %q groups %v extra {%s} -> %s",
		r.Hook, r.Op, r.Resource, sub, r.Namespace, r.Name, r.Cluster, r.User, r.Groups, strings.Join(extra, "; "), verdict)
}

// webhook is a tiny HTTPS admission webhook: it records every review and, on /pgdb,
// denies a change of spec.runtimeName or of the runtime label.
type webhook struct {
	URL      string
	CABundle string
	mu       sync.Mutex
	seen     []review
}

func startWebhook(t *testing.T) *webhook {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "probe-webhook-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &webhook{
		URL:      "https://" + l.Addr().String(),
		CABundle: base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
	}
	srv := &http.Server{Handler: w, TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return w
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	var ar admissionv1.AdmissionReview
	if err := json.NewDecoder(req.Body).Decode(&ar); err != nil || ar.Request == nil {
		http.Error(rw, "bad review", http.StatusBadRequest)
		return
	}
	in := ar.Request
	rv := review{Hook: strings.TrimPrefix(req.URL.Path, "/"), Op: string(in.Operation), Resource: in.Resource.Group + "/" + in.Resource.Resource,
		Sub: in.SubResource, Namespace: in.Namespace, Name: in.Name, User: in.UserInfo.Username, Groups: in.UserInfo.Groups, Allowed: true}
	rv.Extra = map[string][]string{}
	for k, v := range in.UserInfo.Extra {
		rv.Extra[k] = v
	}
	var obj, old unstructured.Unstructured
	_ = json.Unmarshal(in.Object.Raw, &obj.Object)
	_ = json.Unmarshal(in.OldObject.Raw, &old.Object)
	rv.Cluster = obj.GetAnnotations()["kcp.io/cluster"]
	if rv.Cluster == "" {
		rv.Cluster = old.GetAnnotations()["kcp.io/cluster"]
	}
	if rv.Hook == "pgdb" && in.Operation == admissionv1.Update {
		newRT, _, _ := unstructured.NestedString(obj.Object, "spec", "runtimeName")
		oldRT, _, _ := unstructured.NestedString(old.Object, "spec", "runtimeName")
		if newRT != oldRT || obj.GetLabels()[runtime] != old.GetLabels()[runtime] {
			rv.Allowed = false
			rv.Message = fmt.Sprintf("probe webhook: %s may not change the assignment (spec.runtimeName %q -> %q, label %q -> %q)",
				in.UserInfo.Username, oldRT, newRT, old.GetLabels()[runtime], obj.GetLabels()[runtime])
		}
	}
	w.mu.Lock()
	w.seen = append(w.seen, rv)
	w.mu.Unlock()
	resp := &admissionv1.AdmissionResponse{UID: in.UID, Allowed: rv.Allowed}
	if !rv.Allowed {
		resp.Result = &metav1.Status{Status: "Failure", Message: rv.Message, Reason: metav1.StatusReasonForbidden, Code: 403}
	}
	ar.Response = resp
	ar.Request = nil
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(ar)
}

// since returns the reviews seen after mark.
func (w *webhook) since(mark int) ([]review, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]review(nil), w.seen[mark:]...), len(w.seen)
}

func (w *webhook) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

func vwc(name string, hooks ...string) string {
	return fmt.Sprintf(`
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: %s}
webhooks:
%s`, name, strings.Join(hooks, ""))
}

func hook(w *webhook, name, path, group, resources, failure string) string {
	return fmt.Sprintf(`- name: %s
  rules:
  - apiGroups: ["%s"]
    apiVersions: ["*"]
    resources: [%s]
    operations: [CREATE, UPDATE, DELETE]
  clientConfig: {url: "%s/%s", caBundle: "%s"}
  sideEffects: None
  admissionReviewVersions: [v1]
  failurePolicy: %s
  timeoutSeconds: 5
`, name, group, resources, w.URL, path, w.CABundle, failure)
}

// Q3: admission through the virtual workspace: which ValidatingWebhookConfigurations are
// called for writes via the VW and for tenants' own writes, and what user they see.
func TestQ3WebhookThroughVW(t *testing.T) {
	env := framework.Current(t)
	p := newProbe(t)
	prov := env.NewProvider(t)
	t1 := prov.NewTenant(t)
	c1 := p.ClusterOf(t1.Path)
	tok := saWithVW(t, p, prov, "sl-a", "get", "list", "watch", "update", "patch", "create", "delete")
	vw := p.EndpointURL(prov.Path, prov.Export)
	w := startWebhook(t)
	t.Logf("webhook at %s; provider %s; tenant %s (%s)", w.URL, prov.Path, t1.Path, c1)

	p.Apply(prov.Path, vwc("probe-provider",
		hook(w, "pgdb.probe.msp.dev", "pgdb", "postgres.msp.dev", "postgresdatabases, postgresdatabases/status", "Fail"),
		hook(w, "secrets.probe.msp.dev", "provider-secrets", "", "secrets", "Ignore"),
		hook(w, "rt.probe.msp.dev", "provider-serviceruntimes", "platform.msp.dev", "serviceruntimes, serviceruntimes/status", "Ignore")))
	p.Apply(t1.Path, vwc("probe-tenant",
		hook(w, "tenant-pgdb.probe.msp.dev", "tenant-pgdb", "postgres.msp.dev", "postgresdatabases, postgresdatabases/status", "Ignore"),
		hook(w, "tenant-secrets.probe.msp.dev", "tenant-secrets", "", "secrets", "Ignore")))
	p.Apply("root:platform", vwc("probe-platform",
		hook(w, "platform-rt.probe.msp.dev", "platform-serviceruntimes", "platform.msp.dev", "serviceruntimes, serviceruntimes/status", "Ignore")))
	t.Cleanup(func() {
		p.Quiet(p.Admin, "DELETE", "/clusters/root:platform/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/probe-platform", "", "")
	})

	tenantPG := "/clusters/" + t1.Path + pgdbs + "/namespaces/default/postgresdatabases"
	vwPG := vw + "/clusters/" + c1 + pgdbs + "/namespaces/default/postgresdatabases"
	// Wait until the provider's configuration is in effect.
	start := time.Now()
	for i := 0; ; i++ {
		m := w.mark()
		p.Quiet(p.Admin, "POST", tenantPG, pgdb(fmt.Sprintf("warmup-%d", i), ""), "")
		time.Sleep(200 * time.Millisecond)
		if got, _ := w.since(m); len(got) > 0 {
			t.Logf("the provider's webhook configuration took effect %s after it was applied", time.Since(start).Round(100*time.Millisecond))
			break
		}
		if time.Since(start) > time.Minute {
			t.Log("the provider's webhook was never called within a minute")
			break
		}
	}
	time.Sleep(2 * time.Second) // the tenant's and root:platform's configurations too

	step := func(what string, do func()) {
		t.Helper()
		t.Log("=== " + what)
		m := w.mark()
		do()
		time.Sleep(300 * time.Millisecond)
		got, _ := w.since(m)
		if len(got) == 0 {
			t.Log("        webhook: NOT called")
		}
		for _, r := range got {
			t.Logf("        webhook: %s", r)
		}
	}

	step("(ii) the tenant creates w1 (unassigned) in its workspace", func() {
		p.Do("tenant", p.Admin, "POST", tenantPG, pgdb("w1", ""), "")
	})
	step("(ii) the tenant annotates w1", func() {
		p.Do("tenant", p.Admin, "PATCH", tenantPG+"/w1", `{"metadata":{"annotations":{"note":"by tenant"}}}`, merge)
	})
	step("(ii) the tenant sets w1's spec.runtimeName (CEL allows: it was empty)", func() {
		p.Do("tenant", p.Admin, "PATCH", tenantPG+"/w1", `{"spec":{"runtimeName":"rt-x"}}`, merge)
	})
	step("(i) the SA annotates w1 through the VW", func() {
		p.Do("sl-a", tok, "PATCH", vwPG+"/w1", `{"metadata":{"annotations":{"note":"by sl-a"}}}`, merge)
	})
	step("(i) the SA assigns w1 to rt-a through the VW (spec.runtimeName + label)", func() {
		p.Do("sl-a", tok, "PATCH", vwPG+"/w1", `{"metadata":{"labels":{"platform.msp.dev/runtime":"rt-a"}},"spec":{"runtimeName":"rt-a"}}`, merge)
	})
	step("(i) the SA changes only the runtime label of w1 through the VW", func() {
		p.Do("sl-a", tok, "PATCH", vwPG+"/w1", `{"metadata":{"labels":{"platform.msp.dev/runtime":"rt-b"}}}`, merge)
	})
	step("(iii) the SA patches w1's status through the VW", func() {
		p.Do("sl-a", tok, "PATCH", vwPG+"/w1/status", `{"status":{"observedGeneration":1}}`, merge)
	})
	step("(iii) the tenant patches w1's status in its workspace", func() {
		p.Do("tenant", p.Admin, "PATCH", tenantPG+"/w1/status", `{"status":{"observedGeneration":2}}`, merge)
	})
	step("the SA creates a capability through the VW", func() {
		p.Do("sl-a", tok, "POST", vwPG, pgdb("by-sa", "rt-a"), "")
	})
	step("the SA writes a (claimed) Secret in the tenant through the VW", func() {
		p.Do("sl-a", tok, "POST", vw+"/clusters/"+c1+"/api/v1/namespaces/default/secrets", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"postgresdatabase-w1"}}`, "")
	})
	step("the tenant writes a Secret in its workspace", func() {
		p.Do("tenant", p.Admin, "POST", "/clusters/"+t1.Path+"/api/v1/namespaces/default/secrets", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"own"}}`, "")
	})
	step("the admin writes a Secret in the provider workspace", func() {
		p.Do("admin", p.Admin, "POST", "/clusters/"+prov.Path+"/api/v1/namespaces/default/secrets", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"provider-own"}}`, "")
	})
	rts := "/clusters/" + prov.Path + "/apis/platform.msp.dev/v1alpha1/serviceruntimes"
	step("the admin creates a ServiceRuntime in the provider workspace (bound from root:platform)", func() {
		p.Do("admin", p.Admin, "POST", rts,
			`{"apiVersion":"platform.msp.dev/v1alpha1","kind":"ServiceRuntime","metadata":{"name":"rt-a"},"spec":{"location":{"region":"eu-de"},"capabilities":[{"group":"postgres.msp.dev","kind":"PostgresDatabase"}]}}`, "")
	})
	step("the admin patches the ServiceRuntime's status", func() {
		p.Do("admin", p.Admin, "PATCH", rts+"/rt-a/status", `{"status":{"lastHeartbeatTime":"2026-01-01T00:00:00Z"}}`, merge)
	})
	step("the tenant deletes w1", func() {
		p.Do("tenant", p.Admin, "DELETE", tenantPG+"/w1", "", "")
	})
	step("the SA deletes by-sa through the VW", func() {
		p.Do("sl-a", tok, "DELETE", vwPG+"/by-sa", "", "")
	})
	step("the tenant lists webhook configurations in its workspace (the provider's is not among them)", func() {
		p.Do("tenant", p.Admin, "GET", "/clusters/"+t1.Path+"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", "", "")
	})
}
