package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

// The authorization matrix's machinery: identities that make raw HTTPS requests with
// their own credential, the expected outcome of each attempt, and the table of rows.

// authzCaller is one identity with its own credential.
type authzCaller struct {
	// name is the identity as the table shows it.
	name string
	// base is the URL paths are relative to: kcp's base URL or a front door.
	base   string
	client *http.Client
}

// authzConfig reads a kubeconfig into a rest.Config.
func authzConfig(t *testing.T, kubeconfig string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("failed to read the kubeconfig %s: %v", kubeconfig, err)
	}
	return cfg
}

// newAuthzCaller makes a caller from a rest.Config: its credential and CA, and its
// server's base URL (without a /clusters/... path).
func newAuthzCaller(t *testing.T, name string, cfg *rest.Config) *authzCaller {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatalf("failed to make an HTTP client for %s: %v", name, err)
	}
	hc.Timeout = 45 * time.Second
	return &authzCaller{name: name, base: kcpconfig.BaseURL(cfg.Host), client: hc}
}

// authzReq is one attempted request.
type authzReq struct {
	method, url, body, contentType string
	header                         map[string]string
}

func authzGet(url string) authzReq { return authzReq{method: http.MethodGet, url: url} }
func authzDelete(url string) authzReq {
	return authzReq{method: http.MethodDelete, url: url}
}
func authzPost(url string, body any) authzReq {
	return authzReq{method: http.MethodPost, url: url, body: authzJSON(body), contentType: "application/json"}
}
func authzMerge(url string, body any) authzReq {
	return authzReq{method: http.MethodPatch, url: url, body: authzJSON(body), contentType: "application/merge-patch+json"}
}
func authzApply(url string, body any) authzReq {
	return authzReq{method: http.MethodPatch, url: url, body: authzJSON(body), contentType: "application/apply-patch+yaml"}
}

// with adds a request header.
func (r authzReq) with(key, value string) authzReq {
	h := map[string]string{}
	for k, v := range r.header {
		h[k] = v
	}
	h[key] = value
	r.header = h
	return r
}

func authzJSON(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(raw)
}

// authzResp is an answer.
type authzResp struct {
	code int
	body string
	obj  map[string]any
	err  error
}

func (r authzResp) ok() bool { return r.err == nil && r.code >= 200 && r.code < 300 }

// message is the Status message of a refusal, or the start of the body.
func (r authzResp) message() string {
	if r.err != nil {
		return r.err.Error()
	}
	if m, _ := r.obj["message"].(string); m != "" && r.obj["kind"] == "Status" {
		return m
	}
	return authzTrim(r.body, 300)
}

func (c *authzCaller) do(r authzReq) authzResp {
	url := r.url
	if strings.HasPrefix(url, "/") {
		url = c.base + url
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, url, body)
	if err != nil {
		return authzResp{err: err}
	}
	req.Header.Set("Accept", "application/json")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return authzResp{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	out := authzResp{code: resp.StatusCode, body: string(raw), err: err}
	_ = json.Unmarshal(raw, &out.obj)
	return out
}

// authzWant is what an attempt should come to.
type authzWant struct {
	allow bool
	// codes are the refusals accepted (deny only).
	codes []int
	// fragment must occur in the refusal's message (case-insensitive), when set.
	fragment string
}

var authzAllow = authzWant{allow: true}

func authzDeny(fragment string, codes ...int) authzWant {
	return authzWant{codes: codes, fragment: fragment}
}

func (w authzWant) String() string {
	if w.allow {
		return "allow"
	}
	var cs []string
	for _, c := range w.codes {
		cs = append(cs, fmt.Sprint(c))
	}
	if len(cs) == 0 {
		return "deny"
	}
	return "deny " + strings.Join(cs, "/")
}

// authzRow is one line of the matrix.
type authzRow struct {
	who, action, expected, got string
	pass                       bool
}

// authzMatrix collects the rows; a row whose outcome differs from its expectation
// fails the test, and the run goes on.
type authzMatrix struct {
	t    *testing.T
	env  *framework.Env
	mu   sync.Mutex
	rows []authzRow
	// order sorts the table's rows by identity (stable), when set.
	order []string
	// names, when set, replaces generated workspace and cluster names in the table by
	// stable ones (root:tenants:acme, <acme-cluster>).
	names *strings.Replacer
}

func (m *authzMatrix) record(who, action string, want authzWant, got string, pass bool, detail string) {
	m.t.Helper()
	m.recordTrimmed(who, action, want, got, pass, detail, 150)
}

// recordTrimmed is record with the got cell cut at limit characters.
func (m *authzMatrix) recordTrimmed(who, action string, want authzWant, got string, pass bool, detail string, limit int) {
	m.t.Helper()
	m.mu.Lock()
	cellAction, cellGot := action, got
	if m.names != nil {
		cellAction, cellGot = m.names.Replace(cellAction), m.names.Replace(cellGot)
	}
	cellGot = authzTrim(cellGot, limit)
	m.rows = append(m.rows, authzRow{who: who, action: cellAction, expected: want.String(), got: cellGot, pass: pass})
	m.mu.Unlock()
	if !pass {
		m.t.Errorf("[%s] %s: expected %s, got %s\n%s", who, action, want, got, detail)
	}
}

// http attempts r as c and checks the outcome; verify, when given, inspects an allowed
// answer further and returns what is wrong with it ("" when nothing is).
func (m *authzMatrix) http(c *authzCaller, action string, want authzWant, r authzReq, verify ...func(authzResp) string) authzResp {
	m.t.Helper()
	resp := c.do(r)
	detail := fmt.Sprintf("request: %s %s\nbody: %s\nresponse: %d %s", r.method, r.url, authzTrim(r.body, 600), resp.code, authzTrim(resp.body, 2000))
	if resp.err != nil {
		m.record(c.name, action, want, "error: "+authzCell(resp.err.Error()), false, detail)
		return resp
	}
	got := fmt.Sprint(resp.code)
	if !resp.ok() {
		got += " " + authzCell(resp.message())
	}
	pass := false
	switch {
	case want.allow:
		pass = resp.ok()
		if pass {
			for _, v := range verify {
				if problem := v(resp); problem != "" {
					pass, got = false, got+" but "+problem
				}
			}
		}
	default:
		pass = !resp.ok() && authzCodeIn(resp.code, want.codes) &&
			(want.fragment == "" || strings.Contains(strings.ToLower(resp.body), strings.ToLower(want.fragment)))
		for _, v := range verify {
			if problem := v(resp); problem != "" {
				pass, got = false, got+" but "+problem
			}
		}
	}
	m.record(c.name, action, want, got, pass, detail)
	return resp
}

func authzCodeIn(code int, codes []int) bool {
	if len(codes) == 0 {
		return code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusUnprocessableEntity
	}
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}

// kubectl runs kubectl as the identity of kubeconfig: allowed is exit 0, a refusal is
// a failure whose output holds want.fragment.
func (m *authzMatrix) kubectl(who, kubeconfig, action string, want authzWant, args ...string) framework.KubectlResult {
	m.t.Helper()
	res := m.env.Kubectl(m.t, kubeconfig, "", args...)
	out := strings.TrimSpace(res.Stdout + "\n" + res.Stderr)
	detail := fmt.Sprintf("kubectl %s\nexit: %v\noutput: %s", strings.Join(args, " "), res.Err, authzTrim(out, 2000))
	var got string
	var pass bool
	if res.Err == nil {
		got, pass = "ok", want.allow
	} else {
		got = "refused: " + authzCell(authzErrorLine(res.Stderr))
		pass = !want.allow && (want.fragment == "" || strings.Contains(strings.ToLower(out), strings.ToLower(want.fragment)))
	}
	m.record(who, action, want, got, pass, detail)
	return res
}

// canI runs `kubectl auth can-i` as the identity of kubeconfig: want.allow expects
// "yes", else "no" (or a refusal, which means no).
func (m *authzMatrix) canI(who, kubeconfig, action string, want authzWant, args ...string) {
	m.t.Helper()
	res := m.env.Kubectl(m.t, kubeconfig, "", append([]string{"auth", "can-i"}, args...)...)
	answer := strings.TrimSpace(res.Stdout)
	detail := fmt.Sprintf("kubectl auth can-i %s\nexit: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Err, res.Stdout, authzTrim(res.Stderr, 1000))
	yes := res.Err == nil && answer == "yes"
	got := answer
	if got == "" {
		got = "no (" + authzCell(authzErrorLine(res.Stderr)) + ")"
	}
	m.record(who, action, want, got, yes == want.allow, detail)
}

// check records a row whose outcome the test observed in another way (a condition).
func (m *authzMatrix) check(who, action string, want authzWant, allowed bool, got, detail string) {
	m.t.Helper()
	m.recordTrimmed(who, action, want, got, allowed == want.allow, detail, 400)
}

// table is the matrix as markdown.
func (m *authzMatrix) table() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := slices.Clone(m.rows)
	rank := func(who string) int {
		if i := slices.Index(m.order, who); i >= 0 {
			return i
		}
		return len(m.order)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rank(rows[i].who) < rank(rows[j].who) })
	var b strings.Builder
	b.WriteString("| identity | action | expected | got |\n| --- | --- | --- | --- |\n")
	for _, r := range rows {
		got := r.got
		if !r.pass {
			got = "**FAIL** " + got
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", authzCell(r.who), authzCell(r.action), r.expected, got)
	}
	return b.String()
}

// counts are the rows per identity, in the order identities first appear.
func (m *authzMatrix) counts() ([]string, map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var order []string
	n := map[string]int{}
	for _, r := range m.rows {
		if n[r.who] == 0 {
			order = append(order, r.who)
		}
		n[r.who]++
	}
	return order, n
}

// authzCell makes s fit in a markdown table cell.
func authzCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func authzTrim(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// authzWriteTable writes the table to the file MSP_AUTHZ_TABLE names, if it is set.
func authzWriteTable(t *testing.T, table string) {
	t.Helper()
	file := os.Getenv("MSP_AUTHZ_TABLE")
	if file == "" {
		return
	}
	if err := os.WriteFile(file, []byte(table), 0o644); err != nil {
		t.Errorf("failed to write the table to %s: %v", file, err)
	}
}

// authzEndpointURL waits for the export's endpoint slice in the provider workspace to
// report a URL (read as the operator) and returns it.
func authzEndpointURL(t *testing.T, p *framework.Provider) string {
	t.Helper()
	gvr := schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha1", Resource: "apiexportendpointslices"}
	var url string
	framework.Eventually(t, time.Minute, "the endpoint slice of "+p.Path+" to report a URL", func(ctx context.Context) (bool, string, error) {
		slice, err := p.Dynamic.Resource(gvr).Get(ctx, p.Export, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		eps, _, _ := unstructured.NestedSlice(slice.Object, "status", "endpoints")
		if len(eps) > 0 {
			url, _ = eps[0].(map[string]any)["url"].(string)
		}
		return url != "", fmt.Sprint(eps), nil
	})
	return url
}

// authzURLPath is the path of a URL (the part after scheme and host).
func authzURLPath(url string) string {
	rest := url[strings.Index(url, "://")+3:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[i:]
	}
	return ""
}

// authzAudiences returns the aud claim of a JWT.
func authzAudiences(token string) []string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims struct {
		Aud any `json:"aud"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return nil
	}
	switch a := claims.Aud.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, v := range a {
			out = append(out, fmt.Sprint(v))
		}
		return out
	}
	return nil
}

// authzItems returns the items of a list answer.
func authzItems(r authzResp) []map[string]any {
	items, _ := r.obj["items"].([]any)
	var out []map[string]any
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// authzOnlyLabelled checks that every listed item carries the runtime label rt, and that
// none is named in forbidden.
func authzOnlyLabelled(rt string, forbidden ...string) func(authzResp) string {
	return func(r authzResp) string {
		for _, it := range authzItems(r) {
			u := unstructured.Unstructured{Object: it}
			for _, f := range forbidden {
				if u.GetName() == f {
					return "it lists " + f
				}
			}
			if got := u.GetLabels()["platform.msp.dev/runtime"]; got != rt {
				return fmt.Sprintf("it lists %s/%s labelled %q", u.GetNamespace(), u.GetName(), got)
			}
		}
		return ""
	}
}

// authzHasItems checks that a list answer holds at least n items.
func authzHasItems(n int) func(authzResp) string {
	return func(r authzResp) string {
		if got := len(authzItems(r)); got < n {
			return fmt.Sprintf("it lists %d items, want at least %d", got, n)
		}
		return ""
	}
}

// authzLacks checks that the body does not contain s (data that must never be returned).
func authzLacks(s, what string) func(authzResp) string {
	return func(r authzResp) string {
		if strings.Contains(r.body, s) {
			return "the answer contains " + what
		}
		return ""
	}
}

// authzErrorLine is the line of kubectl's stderr that says why it failed: the server's
// error when there is one, else the last line.
func authzErrorLine(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "Error from server") || strings.HasPrefix(l, "error:") {
			return l
		}
	}
	return lines[len(lines)-1]
}
