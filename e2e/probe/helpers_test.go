//go:build probe

package probe

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/bootstrap"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

const (
	pgdbs   = "/apis/postgres.msp.dev/v1alpha1"
	runtime = "platform.msp.dev/runtime"
	merge   = "application/merge-patch+json"
)

// Probe makes raw HTTP requests against kcp with a chosen bearer token and logs every
// request with kcp's answer, so the test log is the evidence.
type Probe struct {
	t      *testing.T
	env    *framework.Env
	client *http.Client
	// Base is kcp's URL without a workspace path.
	Base string
	// Admin is the platform token (msp-platform, group system:kcp:admin).
	Admin string
}

func newProbe(t *testing.T) *Probe {
	t.Helper()
	env := framework.Current(t)
	tlsCfg, err := rest.TLSConfigFor(&rest.Config{TLSClientConfig: rest.TLSClientConfig{
		CAData: env.Config.CAData, CAFile: env.Config.CAFile, Insecure: env.Config.Insecure,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &Probe{
		t: t, env: env,
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second},
		Base:   kcpconfig.BaseURL(env.Config.Host),
		Admin:  env.Config.BearerToken,
	}
}

// Resp is one answer of kcp.
type Resp struct {
	Code int
	Body string
	JSON map[string]any
}

func (r Resp) String() string { return fmt.Sprintf("%d %s", r.Code, summarize(r)) }

// OK is true for 2xx.
func (r Resp) OK() bool { return r.Code >= 200 && r.Code < 300 }

// Do sends one request as who (a label for the log) with token and logs it.
func (p *Probe) Do(who, token, method, url, body, contentType string) Resp {
	p.t.Helper()
	r := p.do(token, method, url, body, contentType)
	shown := strings.TrimPrefix(url, p.Base)
	line := fmt.Sprintf("[%s] %s %s", who, method, shown)
	if body != "" {
		line += "  body: " + trim(body, 300)
	}
	p.t.Logf("%s\n        => %s", line, r)
	return r
}

// Quiet is Do without logging (setup, polling).
func (p *Probe) Quiet(token, method, url, body, contentType string) Resp {
	return p.do(token, method, url, body, contentType)
}

func (p *Probe) do(token, method, url, body, contentType string) Resp {
	if strings.HasPrefix(url, "/") {
		url = p.Base + url
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return Resp{Code: 0, Body: err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Resp{Code: resp.StatusCode, Body: string(raw)}
	_ = json.Unmarshal(raw, &r.JSON)
	return r
}

// summarize shows a Status's reason and message, a list's items, or the trimmed body.
func summarize(r Resp) string {
	if r.JSON == nil {
		return trim(r.Body, 400)
	}
	if r.JSON["kind"] == "Status" {
		return fmt.Sprintf("Status %v: %v", r.JSON["reason"], r.JSON["message"])
	}
	if items, ok := r.JSON["items"].([]any); ok {
		var names []string
		for _, it := range items {
			m, _ := it.(map[string]any)
			names = append(names, objectName(m))
		}
		sort.Strings(names)
		return fmt.Sprintf("%v with %d items: [%s]", r.JSON["kind"], len(items), strings.Join(names, ", "))
	}
	if md, ok := r.JSON["metadata"].(map[string]any); ok && md["name"] != nil {
		extra := ""
		if spec, ok := r.JSON["spec"].(map[string]any); ok && spec["runtimeName"] != nil {
			extra = fmt.Sprintf(" spec.runtimeName=%v", spec["runtimeName"])
		}
		if l, ok := md["labels"].(map[string]any); ok && l[runtime] != nil {
			extra += fmt.Sprintf(" label=%v", l[runtime])
		}
		return fmt.Sprintf("%v %s%s", r.JSON["kind"], objectName(r.JSON), extra)
	}
	return trim(r.Body, 600)
}

func objectName(m map[string]any) string {
	md, _ := m["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	name := fmt.Sprint(md["name"])
	if ns, _ := md["namespace"].(string); ns != "" {
		name = ns + "/" + name
	}
	if c, _ := ann["kcp.io/cluster"].(string); c != "" {
		name += "@" + c
	}
	if l, ok := md["labels"].(map[string]any); ok && l[runtime] != nil {
		name += fmt.Sprintf("(rt=%v)", l[runtime])
	}
	return name
}

func trim(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Apply server-side applies YAML documents in the workspace at path as the admin.
func (p *Probe) Apply(path, docs string) {
	p.t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			p.t.Fatalf("bad YAML: %v\n%s", err, doc)
		}
		objs = append(objs, u)
	}
	if _, err := bootstrap.Apply(context.Background(), bootstrap.Options{Config: p.env.Config}, path, objs...); err != nil {
		p.t.Fatalf("apply in %s: %v", path, err)
	}
}

// MustOK fails the test when r is not 2xx.
func (p *Probe) MustOK(r Resp, what string) Resp {
	p.t.Helper()
	if !r.OK() {
		p.t.Fatalf("%s: %s", what, r)
	}
	return r
}

// ClusterOf returns the logical cluster name of the workspace at path.
func (p *Probe) ClusterOf(path string) string {
	p.t.Helper()
	i := strings.LastIndex(path, ":")
	r := p.MustOK(p.Quiet(p.Admin, "GET", "/clusters/"+path[:i]+"/apis/tenancy.kcp.io/v1alpha1/workspaces/"+path[i+1:], "", ""), "get workspace "+path)
	c, _, _ := unstructured.NestedString(r.JSON, "spec", "cluster")
	return c
}

// EndpointURL waits for the export's endpoint slice to list a URL and returns it.
func (p *Probe) EndpointURL(providerPath, export string) string {
	p.t.Helper()
	var url string
	framework.Eventually(p.t, time.Minute, "the endpoint slice of "+export, func(context.Context) (bool, string, error) {
		r := p.Quiet(p.Admin, "GET", "/clusters/"+providerPath+"/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/"+export, "", "")
		eps, _, _ := unstructured.NestedSlice(r.JSON, "status", "endpoints")
		if len(eps) > 0 {
			url, _ = eps[0].(map[string]any)["url"].(string)
		}
		return url != "", r.String(), nil
	})
	return url
}

// TokenRequest asks for a token of the ServiceAccount and returns the answer and token.
func (p *Probe) TokenRequest(path, ns, sa string, spec map[string]any) (Resp, string) {
	p.t.Helper()
	body, _ := json.Marshal(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
	r := p.Do("admin", p.Admin, "POST", fmt.Sprintf("/clusters/%s/api/v1/namespaces/%s/serviceaccounts/%s/token", path, ns, sa), string(body), "")
	tok, _, _ := unstructured.NestedString(r.JSON, "status", "token")
	if tok != "" {
		exp, _, _ := unstructured.NestedString(r.JSON, "status", "expirationTimestamp")
		p.t.Logf("        status.expirationTimestamp=%s; JWT claims: %s", exp, jwtClaims(tok))
	}
	return r, tok
}

func jwtClaims(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "(not a JWT)"
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return err.Error()
	}
	var out bytes.Buffer
	_ = json.Compact(&out, raw)
	return out.String()
}

// Kubeconfig writes a kubeconfig for token whose server is the workspace at path (or the
// full URL when path starts with https://).
func (p *Probe) Kubeconfig(name, token, path string) string {
	p.t.Helper()
	cfg, err := clientcmd.LoadFromFile(p.env.Kubeconfig())
	if err != nil {
		p.t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	cluster := cfg.Clusters[ctx.Cluster]
	if strings.HasPrefix(path, "https://") {
		cluster.Server = path
	} else {
		cluster.Server = p.Base + "/clusters/" + path
	}
	cfg.AuthInfos[ctx.AuthInfo].Token = token
	file := filepath.Join(p.t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		p.t.Fatal(err)
	}
	return file
}

// Kubectl runs kubectl with the kubeconfig and logs the command and its output.
func (p *Probe) Kubectl(who, kubeconfig string, args ...string) framework.KubectlResult {
	p.t.Helper()
	res := p.env.Kubectl(p.t, kubeconfig, "", args...)
	out := strings.TrimSpace(res.Stdout)
	if e := strings.TrimSpace(res.Stderr); e != "" {
		out += "\n        stderr: " + e
	}
	if res.Err != nil {
		out += fmt.Sprintf("\n        (exit: %v)", res.Err)
	}
	p.t.Logf("[%s] $ kubectl %s\n        %s", who, strings.Join(args, " "), strings.ReplaceAll(out, "\n", "\n        "))
	return res
}

// KubectlIn runs kubectl with stdin.
func (p *Probe) KubectlIn(who, kubeconfig, stdin string, args ...string) framework.KubectlResult {
	p.t.Helper()
	res := p.env.Kubectl(p.t, kubeconfig, stdin, args...)
	p.t.Logf("[%s] $ kubectl %s <<EOF\n%s\nEOF\n        %s %s (err %v)", who, strings.Join(args, " "), stdin, strings.TrimSpace(res.Stdout), strings.TrimSpace(res.Stderr), res.Err)
	return res
}

// WaitCode polls until the request answers want (or the timeout passes) and returns the
// last answer and how long it took.
func (p *Probe) WaitCode(token, method, url, body string, want int, timeout time.Duration) (Resp, time.Duration) {
	start := time.Now()
	for {
		r := p.Quiet(token, method, url, body, "")
		if r.Code == want || time.Since(start) > timeout {
			return r, time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsonBody(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(raw)
}

// pgdb is a PostgresDatabase manifest in default, assigned to rt unless rt is empty.
func pgdb(name, rt string) string {
	obj := map[string]any{
		"apiVersion": "postgres.msp.dev/v1alpha1", "kind": "PostgresDatabase",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec":     map[string]any{},
	}
	if rt != "" {
		obj["metadata"].(map[string]any)["labels"] = map[string]any{runtime: rt}
		obj["spec"] = map[string]any{"runtimeName": rt}
	}
	return jsonBody(obj)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func decodeB64(s string) string {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return ""
	}
	return string(raw)
}

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }
