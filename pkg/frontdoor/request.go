package frontdoor

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// target is the path family a request addresses.
type target int

const (
	// targetWorkspace: /clusters/<cluster>/..., a workspace itself.
	targetWorkspace target = iota + 1
	// targetVirtualWorkspace: /services/apiexport/<cluster>/<export>/clusters/<cluster>/...
	targetVirtualWorkspace
)

// apiRequest is a request as the decision sees it.
type apiRequest struct {
	method string
	target target
	// exportCluster and export name the virtual workspace (targetVirtualWorkspace only).
	exportCluster, export string
	// cluster is the workspace addressed: a path or logical cluster name, or "*" in the
	// virtual workspace.
	cluster string
	// path is the rest of the path, after the cluster, e.g. /api/v1/namespaces/x/secrets.
	path string
	// info is path parsed like kube-apiserver does.
	info        *request.RequestInfo
	query       url.Values
	contentType string // the media type, without parameters
	body        []byte
}

var requestInfoFactory = &request.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

const (
	workspacePrefix        = "/clusters/"
	virtualWorkspacePrefix = "/services/apiexport/"
)

// parseRequest reads r's path family and the kube request info of the part after the
// cluster. An error says why the path is not one the front door knows.
func parseRequest(r *http.Request, body []byte) (*apiRequest, error) {
	p := r.URL.Path
	if err := checkSegments(p); err != nil {
		return nil, err
	}
	req := &apiRequest{method: r.Method, query: r.URL.Query(), body: body}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, fmt.Errorf("the Content-Type %q does not parse: %v", ct, err)
		}
		req.contentType = mt
	}
	var rest string
	switch {
	case strings.HasPrefix(p, workspacePrefix):
		req.target = targetWorkspace
		req.cluster, rest = cutSegment(strings.TrimPrefix(p, workspacePrefix))
	case strings.HasPrefix(p, virtualWorkspacePrefix):
		req.target = targetVirtualWorkspace
		parts := strings.SplitN(strings.TrimPrefix(p, virtualWorkspacePrefix), "/", 5)
		if len(parts) < 4 || parts[2] != "clusters" {
			return nil, fmt.Errorf("the path %s is not a virtual workspace path /services/apiexport/<cluster>/<export>/clusters/<cluster>/...", p)
		}
		req.exportCluster, req.export, req.cluster = parts[0], parts[1], parts[3]
		if len(parts) == 5 {
			rest = "/" + parts[4]
		}
	default:
		return nil, fmt.Errorf("the path %s is not one of kcp's /clusters/<workspace>/... or /services/apiexport/... paths", p)
	}
	if req.cluster == "" {
		return nil, fmt.Errorf("the path %s names no cluster", p)
	}
	req.path = rest
	if req.path == "" {
		req.path = "/"
	}
	inner := &http.Request{Method: r.Method, URL: &url.URL{Path: req.path, RawQuery: r.URL.RawQuery}}
	info, err := requestInfoFactory.NewRequestInfo(inner)
	if err != nil {
		return nil, fmt.Errorf("the path %s does not parse as a Kubernetes API path: %v", p, err)
	}
	req.info = info
	return req, nil
}

// checkSegments refuses paths kcp could read differently than the front door: empty,
// "." and ".." segments.
func checkSegments(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("the path %q is not absolute", p)
	}
	for _, s := range strings.Split(p[1:], "/") {
		if s == "" || s == "." || s == ".." {
			return fmt.Errorf("the path %q has an empty, \".\" or \"..\" segment: send the clean path", p)
		}
	}
	return nil
}

// cutSegment splits "a/b/c" into "a" and "/b/c".
func cutSegment(s string) (first, rest string) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// viaWatchPrefix says whether the path uses the deprecated /watch/ verb prefix, on
// which kube-apiserver does not apply selectors consistently.
func (r *apiRequest) viaWatchPrefix() bool {
	parts := strings.Split(strings.Trim(r.path, "/"), "/")
	// api/<v>/watch/... or apis/<g>/<v>/watch/...
	i := 2
	if r.info.APIPrefix == "apis" {
		i = 3
	}
	return len(parts) > i && parts[i] == "watch"
}
