//go:build probe

package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/child"
	"github.com/msp-dev/msp/pkg/launcher"
)

// Q5 (runs last: restarts kcp with --client-ca-file): identities without a cached,
// extra-carrying user info (a client certificate, a static token) through the same VW
// path as in Q1b: no warrant leaks into their direct requests.
func TestQ5CertAndStaticTokenComponents(t *testing.T) {
	env := framework.Current(t)
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "msp-components-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	caFile := filepath.Join(dir, "components-ca.crt")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject:   pkix.Name{CommonName: "msp:servicelet:rt-a", Organization: []string{"msp:servicelets"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)

	staticTok := randomToken(t)
	f, err := os.OpenFile(filepath.Join(env.Server.DataDir(), "msp-tokens.csv"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(staticTok + ",msp:servicelet:rt-b,msp:servicelet:rt-b,\"msp:servicelets\"\n")
	f.Close()
	if err := env.Server.Stop(); err != nil {
		t.Fatal(err)
	}
	server, err := launcher.Start(context.Background(), launcher.Options{Binary: filepath.Join(env.Bin, "kcp"), DataDir: env.Server.DataDir(),
		ExtraArgs: []string{"--client-ca-file=" + caFile}})
	if err != nil {
		t.Fatal(err)
	}
	env.Server = server
	t.Logf("kcp restarted with --client-ca-file=%s and a static token for msp:servicelet:rt-b", caFile)

	p := newProbe(t)
	certP := *p
	tlsCfg := p.client.Transport.(*http.Transport).TLSClientConfig.Clone()
	tlsCfg.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}
	certP.client = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}

	prov := env.NewProvider(t)
	t1 := prov.NewTenant(t)
	c1 := p.ClusterOf(t1.Path)
	p.MustOK(p.Quiet(p.Admin, "POST", "/clusters/"+t1.Path+pgdbs+"/namespaces/default/postgresdatabases", pgdb("a1", "rt-a"), ""), "create a1")
	p.Apply(prov.Path, fmt.Sprintf(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: servicelet}
rules:
- nonResourceURLs: ["/"]
  verbs: [access]
- apiGroups: [apis.kcp.io]
  resources: [apiexports/content]
  resourceNames: [%[1]s]
  verbs: [get, list, watch, update, patch, create]
- apiGroups: [apis.kcp.io]
  resources: [apiexportendpointslices]
  resourceNames: [%[1]s]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: servicelets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: servicelet}
subjects:
- {kind: Group, name: "msp:servicelets"}
`, prov.Export))
	time.Sleep(2 * time.Second)
	vw := p.EndpointURL(prov.Path, prov.Export)
	ssr := `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`
	ssrURL := "/clusters/" + prov.Path + "/apis/authentication.k8s.io/v1/selfsubjectreviews"

	for _, c := range []struct {
		who   string
		p     *Probe
		token string
	}{{"cert msp:servicelet:rt-a", &certP, ""}, {"static msp:servicelet:rt-b", p, staticTok}} {
		t.Logf("=== %s", c.who)
		r := c.p.Do(c.who, c.token, "POST", ssrURL, ssr, "")
		if r.OK() {
			t.Logf("        status: %s", jsonBody(r.JSON["status"]))
		}
		c.p.Do(c.who, c.token, "GET", vw+"/clusters/*"+pgdbs+"/postgresdatabases", "", "")
		c.p.Do(c.who, c.token, "GET", vw+"/clusters/"+c1+pgdbs+"/namespaces/default/postgresdatabases/a1", "", "")
		c.p.Do(c.who, c.token, "PATCH", vw+"/clusters/"+c1+pgdbs+"/namespaces/default/postgresdatabases/a1/status", `{"status":{"observedGeneration":1}}`, merge)
		r = c.p.Do(c.who, c.token, "POST", ssrURL, ssr, "")
		t.Logf("        warrants in its extra after per-workspace VW requests: %d", warrants(r))
		c.p.Do(c.who, c.token, "GET", "/clusters/"+t1.Path+"/api/v1/namespaces/default/configmaps", "", "")
		c.p.Do(c.who, c.token, "GET", "/clusters/"+t1.Path+pgdbs+"/namespaces/default/postgresdatabases", "", "")
		c.p.Do(c.who, c.token, "GET", "/clusters/"+prov.Path+"/api/v1/namespaces/default/configmaps", "", "")
	}

	t.Log("=== a real msp-servicelet (test driver) as the static user msp:servicelet:rt-b, with only:")
	p.Apply(prov.Path, `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: servicelet-rt-b}
rules:
- apiGroups: [apis.kcp.io]
  resources: [apiexports]
  resourceNames: [`+prov.Export+`]
  verbs: [get]
- apiGroups: [apis.kcp.io]
  resources: [apiresourceschemas]
  verbs: [get]
- apiGroups: [platform.msp.dev]
  resources: [serviceruntimes]
  verbs: [get, list, watch, create]
- apiGroups: [platform.msp.dev]
  resources: [serviceruntimes/status]
  resourceNames: [rt-b]
  verbs: [get, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: servicelet-rt-b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: servicelet-rt-b}
subjects:
- {kind: User, name: "msp:servicelet:rt-b"}
`)
	t.Log("        (the ClusterRole servicelet above, to group msp:servicelets: access, apiexports/content get/list/watch/update/patch/create, the endpoint slice;")
	t.Log("         servicelet-rt-b: apiexports get on the export, apiresourceschemas get, serviceruntimes get/list/watch/create, serviceruntimes/status get/update/patch on rt-b)")
	prov.StartCoordinator(t)
	kc := p.Kubeconfig("servicelet-rt-b", staticTok, "root")
	logFile := filepath.Join(t.TempDir(), "servicelet.log")
	sl, err := child.Start(filepath.Join(env.Bin, "msp-servicelet"), []string{
		"--kubeconfig", kc, "--workspace", prov.Path, "--export", prov.Export, "--runtime", "rt-b", "--register",
		"--region", "eu-fr", "--country", "FR", "--state-dir", filepath.Join(t.TempDir(), "state"), "--heartbeat-interval", "2s",
	}, logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Stop(10 * time.Second)
	p.Do("tenant", p.Admin, "POST", "/clusters/"+t1.Path+pgdbs+"/namespaces/default/postgresdatabases",
		`{"apiVersion":"postgres.msp.dev/v1alpha1","kind":"PostgresDatabase","metadata":{"name":"fr1","namespace":"default"},"spec":{"placement":{"countries":["FR"]}}}`, "")
	var last Resp
	ready := false
	for i := 0; i < 60 && !ready; i++ {
		time.Sleep(time.Second)
		last = p.Quiet(p.Admin, "GET", "/clusters/"+t1.Path+pgdbs+"/namespaces/default/postgresdatabases/fr1", "", "")
		conds, _, _ := unstructured.NestedSlice(last.JSON, "status", "conditions")
		for _, c := range conds {
			m := c.(map[string]any)
			if m["type"] == "Ready" && m["status"] == "True" {
				ready = true
			}
		}
	}
	st, _, _ := unstructured.NestedMap(last.JSON, "status")
	t.Logf("fr1 Ready=%v; status: %s", ready, trim(jsonBody(st), 900))
	p.Do("admin", p.Admin, "GET", "/clusters/"+t1.Path+"/api/v1/namespaces/default/secrets/postgresdatabase-fr1", "", "")
	p.Do("admin", p.Admin, "GET", "/clusters/"+prov.Path+"/apis/platform.msp.dev/v1alpha1/serviceruntimes/rt-b", "", "")
	raw, _ := os.ReadFile(logFile)
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") || strings.Contains(line, "403") {
			if n < 10 {
				t.Logf("        servicelet log: %s", trim(line, 500))
			}
			n++
		}
	}
	t.Logf("        %d servicelet log lines mention forbidden/403", n)
}
