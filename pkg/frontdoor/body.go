package frontdoor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// Content types of request bodies.
const (
	contentJSON     = "application/json"
	contentProtobuf = "application/vnd.kubernetes.protobuf"
)

// decodeObject reads a request body (a create, update or apply) as an object: JSON or
// YAML, or protobuf for Kubernetes' own kinds (client-go's typed clients send it).
// Duplicate JSON or YAML fields are refused: kcp and the front door must read the same.
func decodeObject(req *apiRequest) (*unstructured.Unstructured, error) {
	if len(bytes.TrimSpace(req.body)) == 0 {
		return nil, errors.New("the body is empty")
	}
	switch req.contentType {
	case contentProtobuf:
		return decodeProtobuf(req.body)
	case "", contentJSON, "application/yaml", patchApply,
		"application/merge-patch+json", "application/strategic-merge-patch+json":
	default:
		return nil, fmt.Errorf("the Content-Type %s cannot be read: send JSON or protobuf", req.contentType)
	}
	raw, err := yaml.YAMLToJSONStrict(req.body)
	if err != nil {
		return nil, fmt.Errorf("the body does not parse: %s", strings.Join(strings.Fields(err.Error()), " "))
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("the body is not an object")
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// decodeProtobuf reads a protobuf body of one of Kubernetes' own kinds.
func decodeProtobuf(body []byte) (*unstructured.Unstructured, error) {
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("the protobuf body does not decode: %v", err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("the protobuf body does not convert: %v", err)
	}
	u := &unstructured.Unstructured{Object: m}
	if gvk != nil {
		u.SetGroupVersionKind(*gvk)
	}
	return u, nil
}

// tokenRequestBody rewrites a TokenRequest so that the token is only for audience and
// lives at most max (as long as max when the request names no lifetime), bound to
// nothing but the ServiceAccount.
func tokenRequestBody(req *apiRequest, audience string, max time.Duration) ([]byte, error) {
	obj, err := decodeObject(req)
	if err != nil {
		return nil, err
	}
	limit := int64(max / time.Second)
	secs := limit
	if v, found, err := unstructured.NestedFieldNoCopy(obj.Object, "spec", "expirationSeconds"); err == nil && found && v != nil {
		n, ok := asInt64(v)
		if !ok {
			return nil, errors.New("spec.expirationSeconds is not a whole number")
		}
		secs = min(n, limit)
	}
	apiVersion, kindName := obj.GetAPIVersion(), obj.GetKind()
	if apiVersion == "" {
		apiVersion = "authentication.k8s.io/v1"
	}
	if kindName == "" {
		kindName = "TokenRequest"
	}
	return json.Marshal(map[string]any{
		"apiVersion": apiVersion,
		"kind":       kindName,
		"spec":       map[string]any{"audiences": []string{audience}, "expirationSeconds": secs},
	})
}

// asInt64 reads a whole number as JSON (float64) or a converted object (int64) holds it.
func asInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), n == float64(int64(n))
	}
	return 0, false
}

// deleteWithUID adds a precondition on uid to a request's DeleteOptions, so that only
// the object the decision looked at can be deleted.
func deleteWithUID(req *apiRequest, uid string) ([]byte, error) {
	opts := map[string]any{}
	if len(bytes.TrimSpace(req.body)) > 0 {
		obj, err := decodeObject(req)
		if err != nil {
			return nil, err
		}
		if k := obj.GetKind(); k != "" && k != "DeleteOptions" {
			return nil, fmt.Errorf("the body is a %s, not DeleteOptions", k)
		}
		opts = obj.Object
	}
	if _, ok := opts["kind"]; !ok {
		opts["kind"], opts["apiVersion"] = "DeleteOptions", "v1"
	}
	pre, _ := opts["preconditions"].(map[string]any)
	if pre == nil {
		pre = map[string]any{}
	}
	pre["uid"] = uid
	opts["preconditions"] = pre
	return json.Marshal(opts)
}

// rewriteEndpointSlice points every endpoint URL of an APIExportEndpointSlice (JSON) at
// public, keeping the path: the servicelets' virtual workspace traffic then comes to the
// front door too. tokens names each endpoint's host: a host with a token (a shard of a
// sharded kcp) gets the prefix /shards/<token> (see shardPrefix). Endpoints that become
// equal are listed once.
func rewriteEndpointSlice(body []byte, public *url.URL, tokens func(endpoints []*url.URL) (map[string]string, error)) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, errors.New("the endpoint slice is not a JSON object")
	}
	obj := &unstructured.Unstructured{Object: m}
	endpoints, found, err := unstructured.NestedSlice(obj.Object, "status", "endpoints")
	if err != nil {
		return nil, fmt.Errorf("status.endpoints: %v", err)
	}
	if !found {
		return body, nil
	}
	type endpoint struct {
		fields map[string]any
		url    *url.URL
	}
	var vws []endpoint
	var urls []*url.URL
	for _, e := range endpoints {
		ep, ok := e.(map[string]any)
		if !ok {
			continue
		}
		raw, _ := ep["url"].(string)
		u, err := url.Parse(raw)
		if err != nil || !strings.HasPrefix(u.Path, virtualWorkspacePrefix) {
			continue // not a virtual workspace the front door serves: leave it out
		}
		vws = append(vws, endpoint{fields: ep, url: u})
		urls = append(urls, u)
	}
	byHost, err := tokens(urls)
	if err != nil {
		return nil, err
	}
	out := []any{}
	seen := map[string]bool{}
	for _, e := range vws {
		u := *e.url
		if t := byHost[u.Host]; t != "" {
			u.Path = shardPrefix + t + u.Path
		}
		u.Scheme, u.Host, u.User = public.Scheme, public.Host, nil
		if seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		e.fields["url"] = u.String()
		out = append(out, e.fields)
	}
	if err := unstructured.SetNestedSlice(obj.Object, out, "status", "endpoints"); err != nil {
		return nil, err
	}
	return json.Marshal(obj.Object)
}

// ownedObject says whether an answered object (JSON) carries runtime's label.
func ownedObject(body []byte, runtime string) bool {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return false
	}
	return labelled(&unstructured.Unstructured{Object: m}, runtime)
}
