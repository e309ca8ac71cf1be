package frontdoor

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// kind is a capability kind the export serves.
type kind struct {
	gvk schema.GroupVersionKind
	// resource is the plural resource name.
	resource string
}

func (k kind) gvr() schema.GroupVersionResource { return k.gvk.GroupVersion().WithResource(k.resource) }

// objects finds the objects decisions depend on: from the front door's cache, or from
// kcp when fresh is set. A missing object is nil without error.
type objects interface {
	capability(ctx context.Context, k kind, cluster, namespace, name string, fresh bool) (*unstructured.Unstructured, error)
	secret(ctx context.Context, cluster, namespace, name string, fresh bool) (*unstructured.Unstructured, error)
}

// policy is what the decision knows of the provider.
type policy struct {
	// workspace is the provider workspace's path; cluster its logical cluster name.
	workspace, cluster string
	export             string
	audience           string
	maxTokenTTL        time.Duration
	kinds              []kind
}

// virtualWorkspacePath is the path of the export's virtual workspace at kcp.
func (p *policy) virtualWorkspacePath() string {
	return virtualWorkspacePrefix + p.cluster + "/" + p.export
}

func (p *policy) kindNames() []string {
	var out []string
	for _, k := range p.kinds {
		out = append(out, k.gvk.String())
	}
	return out
}

// kindOf returns the capability kind of a group and resource.
func (p *policy) kindOf(group, resource string) (kind, bool) {
	for _, k := range p.kinds {
		if k.gvk.Group == group && k.resource == resource {
			return k, true
		}
	}
	return kind{}, false
}

// kindsNamed returns the capability kinds called name (one, unless two groups of the
// export share a kind name).
func (p *policy) kindsNamed(name string) []kind {
	var out []kind
	for _, k := range p.kinds {
		if k.gvk.Kind == name {
			out = append(out, k)
		}
	}
	return out
}

// decision is the answer to one request.
type decision struct {
	// code is 0 when the request may go to kcp, else the HTTP status to answer with
	// message (403 for a refusal).
	code    int
	message string
	// notFound, with code 404, names what does not exist (for the Status details).
	notFound *schema.GroupResource
	name     string

	// What to change on the way to kcp and back, when allowed.
	// body replaces the request body (JSON).
	body []byte
	// jsonAccept asks kcp for JSON, uncompressed, so that the answer can be read.
	jsonAccept bool
	// rewriteSlice points the endpoint slice's URLs at the front door.
	rewriteSlice bool
	// ownedResponse passes an answered object only if it carries the caller's
	// runtime label.
	ownedResponse bool
}

func (d decision) allowed() bool { return d.code == 0 }

var allow = decision{}

// refuse is a 403 whose message says what the servicelet may not do, and what it may do
// instead.
func refuse(runtime, mayNot, instead string) decision {
	return decision{code: http.StatusForbidden, message: fmt.Sprintf("msp front door: the servicelet of runtime %s may not %s; %s", runtime, mayNot, instead)}
}

// unavailable is a 503: the front door could not check what the decision depends on.
func unavailable(what string, err error) decision {
	return decision{code: http.StatusServiceUnavailable, message: fmt.Sprintf("msp front door: cannot check %s (%v); retry later", what, err)}
}

// notFound is the 404 kcp would give for an object that does not exist.
func notFound(gr schema.GroupResource, name string) decision {
	return decision{code: http.StatusNotFound, notFound: &gr, name: name, message: fmt.Sprintf("%s %q not found", gr.String(), name)}
}

// decide is the front door's whole authorization: what the servicelet id may do with
// req. It reads objects only through objs.
func (p *policy) decide(ctx context.Context, id identity, req *apiRequest, objs objects) decision {
	switch req.target {
	case targetWorkspace:
		return p.decideWorkspace(id, req)
	case targetVirtualWorkspace:
		return p.decideVirtualWorkspace(ctx, id, req, objs)
	}
	return refuse(id.runtime, "send "+req.method+" "+req.path, "it may only address the provider workspace and the export's virtual workspace")
}

// describe says what a request does, for messages: "patch secrets default/x".
func describe(req *apiRequest) string {
	info := req.info
	if !info.IsResourceRequest {
		return req.method + " " + req.path
	}
	what := info.Resource
	if info.APIGroup != "" {
		what += "." + info.APIGroup
	}
	if info.Subresource != "" {
		what += "/" + info.Subresource
	}
	s := info.Verb + " " + what
	switch {
	case info.Name != "":
		s += " " + strings.TrimPrefix(info.Namespace+"/"+info.Name, "/")
	case info.Namespace != "":
		s += " in namespace " + info.Namespace
	}
	return s
}

// isDiscovery says whether path is one of kube's discovery paths.
func isDiscovery(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/version":
		return true
	case parts[0] == "api":
		return len(parts) <= 2
	case parts[0] == "apis":
		return len(parts) <= 3
	}
	return false
}

// Provider workspace --------------------------------------------------------------------

const (
	groupKCPAPIs  = "apis.kcp.io"
	groupPlatform = platformv1alpha1.GroupName
)

func (p *policy) workspaceInstead(runtime string) string {
	return fmt.Sprintf("in the provider workspace it may read discovery, the APIExport %s, its endpoint slices (%[1]s and %[1]s-<region>) and APIResourceSchemas, "+
		"read and create its own ServiceRuntime %s and write its status, and request tokens for its ServiceAccount %s/%s",
		p.export, runtime, ServiceletNamespace, ServiceAccountName(runtime))
}

func (p *policy) decideWorkspace(id identity, req *apiRequest) decision {
	rt := id.runtime
	if req.cluster != p.workspace && req.cluster != p.cluster {
		return refuse(rt, "address the workspace "+req.cluster,
			fmt.Sprintf("it may only address the provider workspace %s (cluster %s) and the export's virtual workspace %s", p.workspace, p.cluster, p.virtualWorkspacePath()))
	}
	info := req.info
	if !info.IsResourceRequest {
		if (req.method == http.MethodGet || req.method == http.MethodHead) && isDiscovery(req.path) {
			return allow
		}
		return refuse(rt, describe(req), p.workspaceInstead(rt))
	}
	get := info.Verb == "get" && info.Subresource == "" && info.Name != ""
	switch {
	case info.APIGroup == groupKCPAPIs && info.Resource == "apiexports" && get && info.Name == p.export:
		return allow
	case info.APIGroup == groupKCPAPIs && info.Resource == "apiresourceschemas" && get:
		return allow
	case info.APIGroup == groupKCPAPIs && info.Resource == "apiexportendpointslices" && get && (info.Name == p.export || strings.HasPrefix(info.Name, p.export+"-")):
		// The export's slice, or one of its partitioned slices (<export>-<region>: the
		// endpoints of one region's shards, for a servicelet that stays in its region).
		return decision{jsonAccept: true, rewriteSlice: true}
	case info.APIGroup == groupPlatform && info.Resource == "serviceruntimes":
		return p.serviceRuntime(id, req)
	case info.APIGroup == "" && info.Resource == "serviceaccounts" && info.Subresource == "token":
		return p.tokenRequest(id, req)
	}
	return refuse(rt, describe(req), p.workspaceInstead(rt))
}

// serviceRuntime lets a servicelet read and register its own twin and write its status.
func (p *policy) serviceRuntime(id identity, req *apiRequest) decision {
	rt, info := id.runtime, req.info
	instead := fmt.Sprintf("it may get, list and watch (with fieldSelector=metadata.name=%s) and create its own ServiceRuntime %s, and update or patch its status", rt, rt)
	switch info.Verb {
	case "get":
		if info.Name == rt && (info.Subresource == "" || info.Subresource == "status") {
			return allow
		}
	case "list", "watch":
		if info.Subresource == "" && !req.viaWatchPrefix() && selectsName(req, rt) {
			return allow
		}
		return refuse(rt, describe(req)+" without fieldSelector=metadata.name="+rt, instead)
	case "create":
		if info.Subresource != "" || info.Name != "" {
			break
		}
		obj, err := decodeObject(req)
		if err != nil {
			return refuse(rt, "create a ServiceRuntime from this body ("+err.Error()+")", instead)
		}
		if obj.GetName() == rt {
			return allow
		}
		return refuse(rt, fmt.Sprintf("create the ServiceRuntime %q", obj.GetName()), instead)
	case "update", "patch":
		if info.Name == rt && info.Subresource == "status" {
			return allow
		}
		if info.Name == rt && info.Subresource == "" {
			return refuse(rt, describe(req)+": a runtime's spec is the provider's", instead)
		}
	}
	return refuse(rt, describe(req), instead)
}

// tokenRequest lets a servicelet renew its own token, only for the front door's
// audience and at most for the longest lifetime allowed.
func (p *policy) tokenRequest(id identity, req *apiRequest) decision {
	rt, info := id.runtime, req.info
	sa := ServiceAccountName(rt)
	instead := fmt.Sprintf("it may only request tokens for its own ServiceAccount %s/%s", ServiceletNamespace, sa)
	if info.Verb != "create" || info.Namespace != ServiceletNamespace || info.Name != sa {
		return refuse(rt, describe(req), instead)
	}
	body, err := tokenRequestBody(req, p.audience, p.maxTokenTTL)
	if err != nil {
		return refuse(rt, "request a token with this body ("+err.Error()+")", instead+", sending a TokenRequest as JSON or protobuf")
	}
	return decision{body: body}
}

// owned says whether a capability is assigned to runtime: both spec.runtimeName and
// the runtime label name it.
func owned(obj *unstructured.Unstructured, runtime string) bool {
	if obj == nil || runtime == "" {
		return false
	}
	name, _, _ := unstructured.NestedString(obj.Object, "spec", "runtimeName")
	return name == runtime && obj.GetLabels()[platformv1alpha1.LabelRuntime] == runtime
}

// labelled says whether an object carries runtime's label.
func labelled(obj *unstructured.Unstructured, runtime string) bool {
	return obj != nil && runtime != "" && obj.GetLabels()[platformv1alpha1.LabelRuntime] == runtime
}

// lookup reads an object from the cache, and from kcp when the cache does not have it
// or it does not satisfy ok there (the cache may lag behind what the servicelet saw).
func lookup(get func(fresh bool) (*unstructured.Unstructured, error), ok func(*unstructured.Unstructured) bool) (*unstructured.Unstructured, error) {
	if obj, err := get(false); err == nil && obj != nil && ok(obj) {
		return obj, nil
	}
	return get(true)
}

// ownedCapability looks a capability up and says whether it is runtime's.
func ownedCapability(ctx context.Context, objs objects, k kind, cluster, namespace, name, runtime string) (*unstructured.Unstructured, bool, error) {
	obj, err := lookup(func(fresh bool) (*unstructured.Unstructured, error) {
		return objs.capability(ctx, k, cluster, namespace, name, fresh)
	}, func(o *unstructured.Unstructured) bool { return owned(o, runtime) })
	if err != nil {
		return nil, false, err
	}
	return obj, owned(obj, runtime), nil
}
