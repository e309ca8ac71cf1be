package frontdoor

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

const (
	testWorkspace = "root:providers:postgres"
	testCluster   = "provcl"
	testExport    = "postgres.msp.dev"
	tenant        = "tenantcl"
	vw            = "/services/apiexport/" + testCluster + "/" + testExport
	pgdbs         = "/apis/postgres.msp.dev/v1alpha1"
)

var pgKind = kind{gvk: schema.GroupVersionKind{Group: "postgres.msp.dev", Version: "v1alpha1", Kind: "PostgresDatabase"}, resource: "postgresdatabases"}

func testPolicy() *policy {
	return &policy{workspace: testWorkspace, cluster: testCluster, export: testExport, audience: DefaultAudience, maxTokenTTL: time.Hour, kinds: []kind{pgKind}}
}

var rtA = identity{runtime: "rt-a", uid: "uid-a"}

// fakeObjects is a cache and a kcp, each a map from cluster/namespace/name.
type fakeObjects struct {
	cached, live map[string]*unstructured.Unstructured
	fail         bool
}

func (f *fakeObjects) get(prefix, cluster, namespace, name string, fresh bool) (*unstructured.Unstructured, error) {
	if fresh && f.fail {
		return nil, errors.New("kcp is down")
	}
	m := f.cached
	if fresh {
		m = f.live
	}
	return m[prefix+"|"+cluster+"/"+namespace+"/"+name], nil
}

func (f *fakeObjects) capability(_ context.Context, k kind, cluster, namespace, name string, fresh bool) (*unstructured.Unstructured, error) {
	return f.get(k.gvk.Kind, cluster, namespace, name, fresh)
}

func (f *fakeObjects) secret(_ context.Context, cluster, namespace, name string, fresh bool) (*unstructured.Unstructured, error) {
	return f.get("Secret", cluster, namespace, name, fresh)
}

func capability(name, runtimeName, label string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "postgres.msp.dev/v1alpha1", "kind": "PostgresDatabase",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec":     map[string]any{"runtimeName": runtimeName},
	}}
	if label != "" {
		u.SetLabels(map[string]string{"platform.msp.dev/runtime": label})
	}
	return u
}

func secret(name, label string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": name, "namespace": "default", "uid": "uid-of-" + name},
		"data":     map[string]any{"password": "aHVudGVyMg=="},
	}}
	if label != "" {
		u.SetLabels(map[string]string{"platform.msp.dev/runtime": label})
	}
	return u
}

// world is the objects of the tests: in the tenant's default namespace, db-a on rt-a,
// db-b on rt-b, db-x labelled rt-a but assigned to rt-b, db-lag whose cache copy is
// not assigned yet, and a.b (a name with a dot) on rt-a; the Secrets of db-a and db-b,
// and the tenant's own Secret app-password.
func world() *fakeObjects {
	both := map[string]*unstructured.Unstructured{
		"PostgresDatabase|" + tenant + "/default/db-a":        capability("db-a", "rt-a", "rt-a"),
		"PostgresDatabase|" + tenant + "/default/db-b":        capability("db-b", "rt-b", "rt-b"),
		"PostgresDatabase|" + tenant + "/default/db-x":        capability("db-x", "rt-b", "rt-a"),
		"PostgresDatabase|" + tenant + "/default/a.b":         capability("a.b", "rt-a", "rt-a"),
		"Secret|" + tenant + "/default/postgresdatabase-db-a": secret("postgresdatabase-db-a", "rt-a"),
		"Secret|" + tenant + "/default/postgresdatabase-db-b": secret("postgresdatabase-db-b", "rt-b"),
	}
	cached := map[string]*unstructured.Unstructured{"PostgresDatabase|" + tenant + "/default/db-lag": capability("db-lag", "", "")}
	live := map[string]*unstructured.Unstructured{
		"PostgresDatabase|" + tenant + "/default/db-lag": capability("db-lag", "rt-a", "rt-a"),
		// Only labelled Secrets are cached; the tenant's own is only in kcp.
		"Secret|" + tenant + "/default/app-password": secret("app-password", ""),
	}
	for k, v := range both {
		cached[k], live[k] = v, v
	}
	return &fakeObjects{cached: cached, live: live}
}

func newTestRequest(t *testing.T, method, path, contentType, body string) *apiRequest {
	t.Helper()
	r := httptest.NewRequest(method, "https://frontdoor"+path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	req, err := parseRequest(r, b)
	if err != nil {
		t.Fatalf("parseRequest(%s %s): %v", method, path, err)
	}
	return req
}

func sel(s string) string { return "labelSelector=" + url.QueryEscape(s) }

// protobuf encodes obj as client-go's typed clients do.
func protobuf(obj runtime.Object) string {
	info, _ := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	b, err := runtime.Encode(scheme.Codecs.EncoderForVersion(info.Serializer, gvOf(obj)), obj)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func gvOf(obj runtime.Object) schema.GroupVersion {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil {
		panic(err)
	}
	return gvks[0].GroupVersion()
}

const (
	protoCT = "application/vnd.kubernetes.protobuf"
	jsonCT  = "application/json"
	applyCT = "application/apply-patch+yaml"
	mergeCT = "application/merge-patch+json"
)

func secretBody(name, runtime, kindName, capName string) string {
	m := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{
		"name": name, "namespace": "default",
		"labels":      map[string]any{"platform.msp.dev/runtime": runtime, "platform.msp.dev/kind": kindName},
		"annotations": map[string]any{"platform.msp.dev/capability": capName},
	}, "data": map[string]any{"password": "c2VjcmV0"}}
	b, _ := json.Marshal(m)
	return string(b)
}

func eventBody(namespace, kindName, name string) string {
	b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Event",
		"metadata":       map[string]any{"generateName": name + ".", "namespace": "default"},
		"involvedObject": map[string]any{"apiVersion": "postgres.msp.dev/v1alpha1", "kind": kindName, "namespace": namespace, "name": name},
		"reason":         "Created", "message": "created"})
	return string(b)
}

func TestDecide(t *testing.T) {
	ws := "/clusters/" + testWorkspace
	inTenant := vw + "/clusters/" + tenant
	all := vw + "/clusters/*"
	tests := []struct {
		name             string
		method, path, ct string
		body             string
		kcpDown          bool
		wantCode         int    // 0: allowed
		wantMsg          string // in the message
		check            func(t *testing.T, d decision)
	}{
		// The provider workspace.
		{name: "discovery /api", method: "GET", path: ws + "/api"},
		{name: "discovery /apis/<group>/<version> by cluster name", method: "GET", path: "/clusters/" + testCluster + "/apis/platform.msp.dev/v1alpha1"},
		{name: "discovery /version", method: "GET", path: ws + "/version"},
		{name: "discovery of another workspace", method: "GET", path: "/clusters/root:tenants:acme/api", wantCode: 403, wantMsg: "address the workspace root:tenants:acme"},
		{name: "openapi is not discovery", method: "GET", path: ws + "/openapi/v2", wantCode: 403},
		{name: "the APIExport", method: "GET", path: ws + "/apis/apis.kcp.io/v1alpha2/apiexports/" + testExport},
		{name: "another APIExport", method: "GET", path: ws + "/apis/apis.kcp.io/v1alpha2/apiexports/mysql.msp.dev", wantCode: 403},
		{name: "list APIExports", method: "GET", path: ws + "/apis/apis.kcp.io/v1alpha2/apiexports", wantCode: 403},
		{name: "an APIResourceSchema", method: "GET", path: ws + "/apis/apis.kcp.io/v1alpha1/apiresourceschemas/v1.postgresdatabases.postgres.msp.dev"},
		{name: "list APIResourceSchemas", method: "GET", path: ws + "/apis/apis.kcp.io/v1alpha1/apiresourceschemas", wantCode: 403},
		{name: "the endpoint slice is rewritten", method: "GET", path: ws + "/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/" + testExport,
			check: func(t *testing.T, d decision) {
				if !d.rewriteSlice || !d.jsonAccept {
					t.Errorf("want the slice rewritten from JSON, got %+v", d)
				}
			}},
		{name: "update the endpoint slice", method: "PUT", path: ws + "/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/" + testExport, ct: jsonCT, body: "{}", wantCode: 403},
		{name: "configmaps in the provider workspace", method: "GET", path: ws + "/api/v1/namespaces/default/configmaps", wantCode: 403, wantMsg: "its own ServiceRuntime rt-a"},

		// ServiceRuntimes.
		{name: "get its twin", method: "GET", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes/rt-a"},
		{name: "get another runtime's twin", method: "GET", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes/rt-b", wantCode: 403},
		{name: "watch its twin by name", method: "GET", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes?watch=true&fieldSelector=metadata.name%3Drt-a"},
		{name: "list all twins", method: "GET", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes", wantCode: 403, wantMsg: "without fieldSelector=metadata.name=rt-a"},
		{name: "watch another twin", method: "GET", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes?watch=1&fieldSelector=metadata.name%3Drt-b", wantCode: 403},
		{name: "register its twin", method: "POST", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes", ct: jsonCT,
			body: `{"apiVersion":"platform.msp.dev/v1alpha1","kind":"ServiceRuntime","metadata":{"name":"rt-a"},"spec":{}}`},
		{name: "create another runtime's twin", method: "POST", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes", ct: jsonCT,
			body: `{"apiVersion":"platform.msp.dev/v1alpha1","kind":"ServiceRuntime","metadata":{"name":"rt-b"},"spec":{}}`, wantCode: 403, wantMsg: `create the ServiceRuntime "rt-b"`},
		{name: "create a twin with a generated name", method: "POST", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes", ct: jsonCT,
			body: `{"metadata":{"generateName":"rt-"}}`, wantCode: 403},
		{name: "patch its twin's status", method: "PATCH", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes/rt-a/status", ct: mergeCT, body: `{"status":{}}`},
		{name: "update its twin's status", method: "PUT", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes/rt-a/status", ct: jsonCT, body: `{"metadata":{"name":"rt-a"}}`},
		{name: "patch its twin's spec", method: "PATCH", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes/rt-a", ct: mergeCT, body: `{"spec":{"capacity":{}}}`, wantCode: 403, wantMsg: "spec is the provider's"},
		{name: "patch another twin's status", method: "PATCH", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes/rt-b/status", ct: mergeCT, body: `{}`, wantCode: 403},
		{name: "delete its twin", method: "DELETE", path: ws + "/apis/platform.msp.dev/v1alpha1/serviceruntimes/rt-a", wantCode: 403},

		// Tokens.
		{name: "renew its token: audience, lifetime and binding are rewritten", method: "POST", path: ws + "/api/v1/namespaces/default/serviceaccounts/servicelet-rt-a/token", ct: jsonCT,
			body: `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"audiences":["https://kcp.default.svc"],"expirationSeconds":94608000,"boundObjectRef":{"kind":"Secret","name":"x"}}}`,
			check: func(t *testing.T, d decision) {
				want := `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"audiences":["msp-frontdoor"],"expirationSeconds":3600}}`
				if string(d.body) != want {
					t.Errorf("body = %s, want %s", d.body, want)
				}
			}},
		{name: "renew its token for less than the maximum", method: "POST", path: ws + "/api/v1/namespaces/default/serviceaccounts/servicelet-rt-a/token", ct: jsonCT,
			body: `{"spec":{"expirationSeconds":900}}`,
			check: func(t *testing.T, d decision) {
				if !strings.Contains(string(d.body), `"expirationSeconds":900`) || !strings.Contains(string(d.body), `"audiences":["msp-frontdoor"]`) {
					t.Errorf("body = %s", d.body)
				}
			}},
		{name: "renew its token without a lifetime", method: "POST", path: ws + "/api/v1/namespaces/default/serviceaccounts/servicelet-rt-a/token", ct: jsonCT,
			body: `{"spec":{}}`,
			check: func(t *testing.T, d decision) {
				if !strings.Contains(string(d.body), `"expirationSeconds":3600`) {
					t.Errorf("body = %s", d.body)
				}
			}},
		{name: "a token of another servicelet", method: "POST", path: ws + "/api/v1/namespaces/default/serviceaccounts/servicelet-rt-b/token", ct: jsonCT, body: `{"spec":{}}`,
			wantCode: 403, wantMsg: "its own ServiceAccount default/servicelet-rt-a"},
		{name: "a token of another namespace's account", method: "POST", path: ws + "/api/v1/namespaces/kube-system/serviceaccounts/servicelet-rt-a/token", ct: jsonCT, body: `{"spec":{}}`, wantCode: 403},
		{name: "a protobuf token request (client-go's typed clients)", method: "POST", path: ws + "/api/v1/namespaces/default/serviceaccounts/servicelet-rt-a/token", ct: protoCT,
			body: protobuf(&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"https://kcp.default.svc"}, ExpirationSeconds: ptr.To[int64](7200)}}),
			check: func(t *testing.T, d decision) {
				want := `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"audiences":["msp-frontdoor"],"expirationSeconds":3600}}`
				if string(d.body) != want {
					t.Errorf("body = %s, want %s", d.body, want)
				}
			}},
		{name: "a protobuf body that does not decode", method: "POST", path: ws + "/api/v1/namespaces/default/serviceaccounts/servicelet-rt-a/token", ct: protoCT, body: "k8s\x00garbage", wantCode: 403, wantMsg: "does not decode"},
		{name: "a CBOR token request", method: "POST", path: ws + "/api/v1/namespaces/default/serviceaccounts/servicelet-rt-a/token", ct: "application/cbor", body: "\xd9\xd9\xf7", wantCode: 403, wantMsg: "send JSON or protobuf"},
		{name: "read its ServiceAccount", method: "GET", path: ws + "/api/v1/namespaces/default/serviceaccounts/servicelet-rt-a", wantCode: 403},

		// The virtual workspace, across workspaces.
		{name: "another provider's virtual workspace", method: "GET", path: "/services/apiexport/othercl/mysql.msp.dev/clusters/*" + pgdbs + "/postgresdatabases?" + sel("platform.msp.dev/runtime=rt-a"), wantCode: 403, wantMsg: "its provider's virtual workspace"},
		{name: "list capabilities with its selector", method: "GET", path: all + pgdbs + "/postgresdatabases?" + sel("platform.msp.dev/runtime=rt-a")},
		{name: "watch capabilities with its selector (==)", method: "GET", path: all + pgdbs + "/postgresdatabases?watch=true&" + sel("platform.msp.dev/runtime==rt-a")},
		{name: "list capabilities with in (its runtime)", method: "GET", path: all + pgdbs + "/postgresdatabases?" + sel("platform.msp.dev/runtime in (rt-a)")},
		{name: "extra requirements only narrow", method: "GET", path: all + pgdbs + "/postgresdatabases?" + sel("tier=gold,platform.msp.dev/runtime=rt-a,!paused")},
		{name: "list capabilities without a selector", method: "GET", path: all + pgdbs + "/postgresdatabases", wantCode: 403, wantMsg: "without a label selector; it may list and watch only what is labelled with its runtime: add labelSelector=platform.msp.dev/runtime=rt-a"},
		{name: "list capabilities with another runtime's selector", method: "GET", path: all + pgdbs + "/postgresdatabases?" + sel("platform.msp.dev/runtime=rt-b"), wantCode: 403, wantMsg: "does not select only runtime rt-a"},
		{name: "list the unassigned capabilities (!label)", method: "GET", path: all + pgdbs + "/postgresdatabases?" + sel("!platform.msp.dev/runtime"), wantCode: 403},
		{name: "list with the label's existence", method: "GET", path: all + pgdbs + "/postgresdatabases?" + sel("platform.msp.dev/runtime"), wantCode: 403},
		{name: "list with in (two runtimes)", method: "GET", path: all + pgdbs + "/postgresdatabases?" + sel("platform.msp.dev/runtime in (rt-a,rt-b)"), wantCode: 403},
		{name: "list with != another runtime", method: "GET", path: all + pgdbs + "/postgresdatabases?" + sel("platform.msp.dev/runtime!=rt-b"), wantCode: 403},
		{name: "list with a selector that does not parse", method: "GET", path: all + pgdbs + "/postgresdatabases?" + sel("platform.msp.dev/runtime=(("), wantCode: 403, wantMsg: "does not parse"},
		{name: "list with two selectors", method: "GET", path: all + pgdbs + "/postgresdatabases?" + sel("platform.msp.dev/runtime=rt-a") + "&" + sel("a=b"), wantCode: 403},
		{name: "watch its Secrets across workspaces", method: "GET", path: all + "/api/v1/secrets?watch=true&" + sel("platform.msp.dev/runtime=rt-a")},
		{name: "list every Secret across workspaces", method: "GET", path: all + "/api/v1/secrets", wantCode: 403, wantMsg: "without a label selector"},
		{name: "list configmaps across workspaces", method: "GET", path: all + "/api/v1/configmaps?" + sel("platform.msp.dev/runtime=rt-a"), wantCode: 403, wantMsg: "across all workspaces"},
		{name: "get a configmap across workspaces", method: "GET", path: all + "/api/v1/namespaces/default/configmaps/x", wantCode: 403},
		{name: "get a capability across workspaces", method: "GET", path: all + pgdbs + "/namespaces/default/postgresdatabases/db-a", wantCode: 403},
		{name: "the deprecated watch path", method: "GET", path: all + "/api/v1/watch/secrets?" + sel("platform.msp.dev/runtime=rt-a"), wantCode: 403, wantMsg: "/watch/"},
		{name: "discovery in the virtual workspace", method: "GET", path: inTenant + "/api", wantCode: 403},

		// Capabilities in one workspace.
		{name: "get its capability", method: "GET", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-a"},
		{name: "patch its capability's status (apply)", method: "PATCH", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-a/status", ct: applyCT, body: `{"status":{}}`},
		{name: "patch its capability's finalizers", method: "PATCH", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-a", ct: mergeCT, body: `{"metadata":{"finalizers":[]}}`},
		{name: "update its capability", method: "PUT", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-a", ct: jsonCT, body: `{}`},
		{name: "get another runtime's capability", method: "GET", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-b", wantCode: 403, wantMsg: "not assigned to runtime rt-a"},
		{name: "patch another runtime's capability's status", method: "PATCH", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-b/status", ct: applyCT, body: `{}`, wantCode: 403},
		{name: "labelled with its runtime but assigned to another", method: "PATCH", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-x", ct: mergeCT, body: `{}`, wantCode: 403},
		{name: "the cache lags behind the assignment", method: "GET", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-lag"},
		{name: "a capability that does not exist", method: "PATCH", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/gone", ct: mergeCT, body: `{}`, wantCode: 404},
		{name: "kcp cannot be asked", method: "GET", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-lag", kcpDown: true, wantCode: 503},
		{name: "delete its capability", method: "DELETE", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-a", wantCode: 403, wantMsg: "tenants delete capabilities"},
		{name: "create a capability", method: "POST", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases", ct: jsonCT, body: `{"metadata":{"name":"new"}}`, wantCode: 403},
		{name: "delete every capability", method: "DELETE", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases", wantCode: 403},
		{name: "another subresource", method: "GET", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases/db-a/scale", wantCode: 403},
		{name: "list capabilities of a workspace with its selector", method: "GET", path: inTenant + pgdbs + "/namespaces/default/postgresdatabases?" + sel("platform.msp.dev/runtime=rt-a")},
		{name: "list capabilities of a workspace without one", method: "GET", path: inTenant + pgdbs + "/postgresdatabases", wantCode: 403},
		{name: "a workspace by path", method: "GET", path: vw + "/clusters/root:tenants:acme" + pgdbs + "/namespaces/default/postgresdatabases/db-a", wantCode: 403, wantMsg: "logical cluster names"},

		// Secrets in one workspace.
		{name: "get its Secret", method: "GET", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-a",
			check: func(t *testing.T, d decision) {
				if !d.ownedResponse || !d.jsonAccept {
					t.Errorf("the answer must be checked: %+v", d)
				}
			}},
		{name: "get a tenant's unlabelled Secret", method: "GET", path: inTenant + "/api/v1/namespaces/default/secrets/app-password", wantCode: 403, wantMsg: "not labelled with its runtime"},
		{name: "get another runtime's Secret", method: "GET", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-b", wantCode: 403},
		{name: "get a missing Secret (kcp says 404, the answer is checked)", method: "GET", path: inTenant + "/api/v1/namespaces/default/secrets/none",
			check: func(t *testing.T, d decision) {
				if !d.ownedResponse {
					t.Errorf("the answer must be checked: %+v", d)
				}
			}},
		{name: "apply its Secret", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-a?fieldManager=msp-servicelet&force=true", ct: applyCT,
			body: secretBody("postgresdatabase-db-a", "rt-a", "PostgresDatabase", "db-a")},
		{name: "apply a new Secret of its capability", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-a.b", ct: applyCT,
			body: secretBody("postgresdatabase-a.b", "rt-a", "PostgresDatabase", "a.b")},
		{name: "create its Secret", method: "POST", path: inTenant + "/api/v1/namespaces/default/secrets", ct: jsonCT,
			body: secretBody("postgresdatabase-a.b", "rt-a", "PostgresDatabase", "a.b")},
		{name: "create its Secret in protobuf", method: "POST", path: inTenant + "/api/v1/namespaces/default/secrets", ct: protoCT,
			body: protobuf(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "postgresdatabase-a.b", Namespace: "default",
				Labels:      map[string]string{"platform.msp.dev/runtime": "rt-a", "platform.msp.dev/kind": "PostgresDatabase"},
				Annotations: map[string]string{"platform.msp.dev/capability": "a.b"}}})},
		{name: "create a Secret in protobuf naming another runtime's capability", method: "POST", path: inTenant + "/api/v1/namespaces/default/secrets", ct: protoCT,
			body: protobuf(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "postgresdatabase-db-b2", Namespace: "default",
				Labels:      map[string]string{"platform.msp.dev/runtime": "rt-a", "platform.msp.dev/kind": "PostgresDatabase"},
				Annotations: map[string]string{"platform.msp.dev/capability": "db-b"}}}), wantCode: 403},
		{name: "update its Secret", method: "PUT", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-a", ct: jsonCT,
			body: secretBody("postgresdatabase-db-a", "rt-a", "PostgresDatabase", "db-a")},
		{name: "apply a Secret naming another runtime's capability", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-b", ct: applyCT,
			body: secretBody("postgresdatabase-db-b", "rt-a", "PostgresDatabase", "db-b"), wantCode: 403, wantMsg: "which is not assigned to runtime rt-a"},
		{name: "apply a Secret naming a capability labelled but not assigned", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-x", ct: applyCT,
			body: secretBody("postgresdatabase-db-x", "rt-a", "PostgresDatabase", "db-x"), wantCode: 403},
		{name: "apply a Secret labelled with another runtime", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-a", ct: applyCT,
			body: secretBody("postgresdatabase-db-a", "rt-b", "PostgresDatabase", "db-a"), wantCode: 403, wantMsg: "not labelled platform.msp.dev/runtime=rt-a"},
		{name: "apply a Secret of a kind the export does not serve", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/secrets/x", ct: applyCT,
			body: secretBody("x", "rt-a", "ConfigMap", "db-a"), wantCode: 403, wantMsg: "not a kind of the export"},
		{name: "take over a tenant's Secret", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/secrets/app-password", ct: applyCT,
			body: secretBody("app-password", "rt-a", "PostgresDatabase", "db-a"), wantCode: 403, wantMsg: "never taken over"},
		{name: "a body naming another Secret", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-a", ct: applyCT,
			body: secretBody("app-password", "rt-a", "PostgresDatabase", "db-a"), wantCode: 403},
		{name: "merge-patch a Secret", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-a", ct: mergeCT,
			body: `{"data":{}}`, wantCode: 403, wantMsg: "server-side apply"},
		{name: "a body with a duplicate field", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-a", ct: applyCT,
			body: `{"metadata":{"name":"postgresdatabase-db-a","labels":{"platform.msp.dev/runtime":"rt-a"}},"metadata":{"name":"app-password"}}`, wantCode: 403},
		{name: "delete its Secret (only that very one)", method: "DELETE", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-a",
			check: func(t *testing.T, d decision) {
				if !strings.Contains(string(d.body), `"preconditions":{"uid":"uid-of-postgresdatabase-db-a"}`) {
					t.Errorf("body = %s, want a UID precondition", d.body)
				}
			}},
		{name: "delete its Secret with protobuf DeleteOptions", method: "DELETE", path: inTenant + "/api/v1/namespaces/default/secrets/postgresdatabase-db-a", ct: protoCT,
			body: protobuf(&metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}),
			check: func(t *testing.T, d decision) {
				b := string(d.body)
				if !strings.Contains(b, `"preconditions":{"uid":"uid-of-postgresdatabase-db-a"}`) || !strings.Contains(b, `"propagationPolicy":"Background"`) {
					t.Errorf("body = %s, want the options with a UID precondition", b)
				}
			}},
		{name: "delete a tenant's Secret", method: "DELETE", path: inTenant + "/api/v1/namespaces/default/secrets/app-password", wantCode: 403},
		{name: "delete a missing Secret", method: "DELETE", path: inTenant + "/api/v1/namespaces/default/secrets/none", wantCode: 404},
		{name: "delete every Secret", method: "DELETE", path: inTenant + "/api/v1/namespaces/default/secrets", wantCode: 403},
		{name: "list a workspace's Secrets without a selector", method: "GET", path: inTenant + "/api/v1/namespaces/default/secrets", wantCode: 403},
		{name: "watch a workspace's Secrets with its selector", method: "GET", path: inTenant + "/api/v1/namespaces/default/secrets?watch=true&" + sel("platform.msp.dev/runtime=rt-a")},

		// Events.
		{name: "an Event on its capability", method: "POST", path: inTenant + "/api/v1/namespaces/default/events", ct: jsonCT, body: eventBody("default", "PostgresDatabase", "db-a")},
		{name: "a protobuf Event on its capability", method: "POST", path: inTenant + "/api/v1/namespaces/default/events", ct: protoCT,
			body: protobuf(&corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "db-a.", Namespace: "default"},
				InvolvedObject: corev1.ObjectReference{APIVersion: "postgres.msp.dev/v1alpha1", Kind: "PostgresDatabase", Namespace: "default", Name: "db-a"}})},
		{name: "a protobuf Event on another runtime's capability", method: "POST", path: inTenant + "/api/v1/namespaces/default/events", ct: protoCT,
			body: protobuf(&corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "db-b.", Namespace: "default"},
				InvolvedObject: corev1.ObjectReference{APIVersion: "postgres.msp.dev/v1alpha1", Kind: "PostgresDatabase", Namespace: "default", Name: "db-b"}}), wantCode: 403},
		{name: "an Event on another runtime's capability", method: "POST", path: inTenant + "/api/v1/namespaces/default/events", ct: jsonCT, body: eventBody("default", "PostgresDatabase", "db-b"), wantCode: 403},
		{name: "an Event about another namespace", method: "POST", path: inTenant + "/api/v1/namespaces/default/events", ct: jsonCT, body: eventBody("kube-system", "PostgresDatabase", "db-a"), wantCode: 403},
		{name: "an Event about a Secret", method: "POST", path: inTenant + "/api/v1/namespaces/default/events", ct: jsonCT, body: eventBody("default", "Secret", "db-a"), wantCode: 403},
		{name: "patch an Event of its capability", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/events/db-a.17f3a9c2", ct: "application/strategic-merge-patch+json", body: `{"count":2}`},
		{name: "patch an Event of its capability with a dotted name", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/events/a.b.17f3a9c2", ct: "application/strategic-merge-patch+json", body: `{"count":2}`},
		{name: "patch an Event of another runtime's capability", method: "PATCH", path: inTenant + "/api/v1/namespaces/default/events/db-b.17f3a9c2", ct: "application/strategic-merge-patch+json", body: `{}`, wantCode: 403},
		{name: "list Events", method: "GET", path: inTenant + "/api/v1/namespaces/default/events", wantCode: 403},
		{name: "delete an Event", method: "DELETE", path: inTenant + "/api/v1/namespaces/default/events/db-a.1", wantCode: 403},

		// Anything else.
		{name: "configmaps in a workspace", method: "GET", path: inTenant + "/api/v1/namespaces/default/configmaps/x", wantCode: 403},
		{name: "pods in a workspace", method: "GET", path: inTenant + "/api/v1/namespaces/default/pods?" + sel("platform.msp.dev/runtime=rt-a"), wantCode: 403},
	}
	p := testPolicy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := world()
			objs.fail = tt.kcpDown
			req := newTestRequest(t, tt.method, tt.path, tt.ct, tt.body)
			d := p.decide(context.Background(), rtA, req, objs)
			if d.code != tt.wantCode {
				t.Fatalf("code = %d (%s), want %d", d.code, d.message, tt.wantCode)
			}
			if d.code == 403 && !strings.HasPrefix(d.message, "msp front door: the servicelet of runtime rt-a may not ") {
				t.Errorf("message %q does not say who may not do what", d.message)
			}
			if d.code == 403 && !strings.Contains(d.message, "; ") {
				t.Errorf("message %q does not say what it may do instead", d.message)
			}
			if !strings.Contains(d.message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", d.message, tt.wantMsg)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	for _, tt := range []struct {
		path    string
		wantErr bool
		target  target
		cluster string
		rest    string
	}{
		{path: "/clusters/root:providers:postgres/api/v1", target: targetWorkspace, cluster: "root:providers:postgres", rest: "/api/v1"},
		{path: "/clusters/root", target: targetWorkspace, cluster: "root", rest: "/"},
		{path: vw + "/clusters/*/api/v1/secrets", target: targetVirtualWorkspace, cluster: "*", rest: "/api/v1/secrets"},
		{path: "/clusters/root:providers:postgres/api/v1/namespaces/default/../../../../clusters/root/api", wantErr: true},
		{path: "/clusters/root:providers:postgres//api", wantErr: true},
		{path: "/clusters//api", wantErr: true},
		{path: "/services/apiexport/x/y/api/v1", wantErr: true},
		{path: "/api/v1/secrets", wantErr: true},
		{path: "/healthz/x", wantErr: true},
	} {
		r := httptest.NewRequest(http.MethodGet, "https://frontdoor/", nil)
		r.URL.Path = tt.path
		req, err := parseRequest(r, nil)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.path, err, tt.wantErr)
			continue
		}
		if err == nil && (req.target != tt.target || req.cluster != tt.cluster || req.path != tt.rest) {
			t.Errorf("%s: got target %d cluster %q rest %q", tt.path, req.target, req.cluster, req.path)
		}
	}
}

func TestRewriteEndpointSlice(t *testing.T) {
	in := `{"apiVersion":"apis.kcp.io/v1alpha1","kind":"APIExportEndpointSlice","metadata":{"name":"postgres.msp.dev"},
	"status":{"endpoints":[{"url":"https://127.0.0.1:6443/services/apiexport/provcl/postgres.msp.dev"},
	{"url":"https://shard-2.kcp:6443/services/apiexport/provcl/postgres.msp.dev"},{"url":"https://evil/elsewhere"}]}}`
	public, _ := url.Parse("https://127.0.0.1:7443")
	// Endpoints on two hosts (two shards): each gets /shards/<token>.
	token := func(endpoints []*url.URL) (map[string]string, error) {
		out := map[string]string{}
		for _, u := range endpoints {
			out[u.Host] = shardToken(u.Scheme + "://" + u.Host)
		}
		return out, nil
	}
	out, err := rewriteEndpointSlice([]byte(in), public, token)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status struct {
			Endpoints []struct{ URL string } `json:"endpoints"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	shard1 := "https://127.0.0.1:7443/shards/" + shardToken("https://127.0.0.1:6443") + "/services/apiexport/provcl/postgres.msp.dev"
	shard2 := "https://127.0.0.1:7443/shards/" + shardToken("https://shard-2.kcp:6443") + "/services/apiexport/provcl/postgres.msp.dev"
	if len(got.Status.Endpoints) != 2 || got.Status.Endpoints[0].URL != shard1 || got.Status.Endpoints[1].URL != shard2 {
		t.Errorf("endpoints = %+v", got.Status.Endpoints)
	}
	tok, rest, ok := cutShard(strings.TrimPrefix(shard2, "https://127.0.0.1:7443") + "/clusters/*/api/v1/secrets")
	if !ok || tok != shardToken("https://shard-2.kcp:6443") || rest != "/services/apiexport/provcl/postgres.msp.dev/clusters/*/api/v1/secrets" {
		t.Errorf("cutShard = %q, %q, %v", tok, rest, ok)
	}
	for _, p := range []string{"/shards/", "/shards/abc", "/services/apiexport/x"} {
		if _, _, ok := cutShard(p); ok {
			t.Errorf("cutShard(%q) accepted it", p)
		}
	}
}
