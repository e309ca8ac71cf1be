package frontdoor

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// patchApply is the Content-Type of a server-side apply.
const patchApply = "application/apply-patch+yaml"

var (
	secretsResource = schema.GroupResource{Resource: "secrets"}
	eventsResource  = schema.GroupResource{Resource: "events"}
)

// runtimeSelector is the label selector a servicelet lists and watches with.
func runtimeSelector(runtime string) string {
	return "labelSelector=" + platformv1alpha1.LabelRuntime + "=" + runtime
}

func (p *policy) vwInstead(runtime string) string {
	return fmt.Sprintf("through the virtual workspace it may list and watch (with %s) the export's capabilities, their Secrets and, "+
		"in one workspace, get, update and patch its own capabilities, read, write (with server-side apply) and delete its capabilities' "+
		"connection Secrets and record Events on its capabilities", runtimeSelector(runtime))
}

func (p *policy) decideVirtualWorkspace(ctx context.Context, id identity, req *apiRequest, objs objects) decision {
	rt, info := id.runtime, req.info
	if req.exportCluster != p.cluster || req.export != p.export {
		return refuse(rt, fmt.Sprintf("use the virtual workspace of export %s in cluster %s", req.export, req.exportCluster),
			"it may only use its provider's virtual workspace "+p.virtualWorkspacePath())
	}
	if !info.IsResourceRequest {
		return refuse(rt, describe(req)+" in the virtual workspace", p.vwInstead(rt))
	}
	if req.viaWatchPrefix() {
		return refuse(rt, "use the deprecated /watch/ paths", "watch with ?watch=true and "+runtimeSelector(rt))
	}
	k, isCapability := p.kindOf(info.APIGroup, info.Resource)
	core := info.APIGroup == ""
	if req.cluster == "*" {
		if (info.Verb == "list" || info.Verb == "watch") && info.Subresource == "" && (isCapability || (core && info.Resource == "secrets")) {
			return selectorRule(req, rt)
		}
		return refuse(rt, describe(req)+" across all workspaces (/clusters/*)",
			fmt.Sprintf("across all workspaces it may only list and watch the export's capabilities and Secrets, with %s", runtimeSelector(rt)))
	}
	if strings.Contains(req.cluster, ":") {
		return refuse(rt, "address the workspace "+req.cluster+" by its path",
			"the virtual workspace takes logical cluster names (an object's kcp.io/cluster annotation)")
	}
	switch {
	case isCapability:
		return p.capabilityRequest(ctx, id, req, k, objs)
	case core && info.Resource == "secrets":
		return p.secretRequest(ctx, id, req, objs)
	case core && info.Resource == "events":
		return p.eventRequest(ctx, id, req, objs)
	}
	return refuse(rt, describe(req)+" in workspace "+req.cluster, p.vwInstead(rt))
}

// selectorRule allows a list or watch only if its label selector confines it to the
// caller's runtime, as the Node authorizer demands spec.nodeName of kubelets.
func selectorRule(req *apiRequest, runtime string) decision {
	if problem := selectsRuntime(req, runtime); problem != "" {
		return refuse(runtime, describe(req)+" "+problem,
			"it may list and watch only what is labelled with its runtime: add "+runtimeSelector(runtime))
	}
	return allow
}

// selectsRuntime returns "" when the request's label selector requires the runtime
// label to equal runtime, and else what is wrong with it. Further requirements only
// narrow the selection and are fine.
func selectsRuntime(req *apiRequest, runtime string) string {
	values := req.query["labelSelector"]
	switch {
	case len(values) == 0 || strings.TrimSpace(values[0]) == "":
		return "without a label selector"
	case len(values) > 1:
		return "with more than one labelSelector parameter"
	}
	sel, err := labels.Parse(values[0])
	if err != nil {
		return fmt.Sprintf("with the label selector %q, which does not parse (%v)", values[0], err)
	}
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		if r.Key() != platformv1alpha1.LabelRuntime {
			continue
		}
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if v := r.Values(); v.Len() == 1 && v.Has(runtime) {
				return ""
			}
		}
	}
	return fmt.Sprintf("with the label selector %q, which does not select only runtime %s", values[0], runtime)
}

// selectsName says whether a list or watch is confined to the object name by its field
// selector.
func selectsName(req *apiRequest, name string) bool {
	values := req.query["fieldSelector"]
	if len(values) != 1 {
		return false
	}
	sel, err := fields.ParseSelector(values[0])
	if err != nil {
		return false
	}
	got, ok := sel.RequiresExactMatch("metadata.name")
	return ok && got == name
}

// Capabilities -----------------------------------------------------------------------

func (p *policy) capabilityRequest(ctx context.Context, id identity, req *apiRequest, k kind, objs objects) decision {
	rt, info := id.runtime, req.info
	instead := fmt.Sprintf("it may get, update and patch (the object or its status) only capabilities assigned to runtime %s "+
		"(spec.runtimeName and the label %s both %s), and list and watch them with %s", rt, platformv1alpha1.LabelRuntime, rt, runtimeSelector(rt))
	switch info.Verb {
	case "list", "watch":
		if info.Subresource == "" {
			return selectorRule(req, rt)
		}
	case "get", "update", "patch":
		if info.Subresource != "" && info.Subresource != "status" {
			break
		}
		obj, mine, err := ownedCapability(ctx, objs, k, req.cluster, info.Namespace, info.Name, rt)
		switch {
		case err != nil:
			return unavailable(fmt.Sprintf("the %s %s/%s", k.gvk.Kind, info.Namespace, info.Name), err)
		case obj == nil:
			return notFound(k.gvr().GroupResource(), info.Name)
		case mine:
			return allow
		}
		return refuse(rt, fmt.Sprintf("%s in workspace %s: it is not assigned to runtime %s", describe(req), req.cluster, rt), instead)
	case "create":
		return refuse(rt, describe(req)+": tenants create capabilities", instead)
	case "delete", "deletecollection":
		return refuse(rt, describe(req)+": tenants delete capabilities; the servicelet removes its finalizer when it is done", instead)
	}
	return refuse(rt, describe(req), instead)
}

// Secrets ----------------------------------------------------------------------------

func (p *policy) secretInstead(runtime string) string {
	return fmt.Sprintf("it may get and delete Secrets labelled %s=%s, list and watch them with %s, and write them with server-side apply "+
		"(Content-Type %s) with the label %s=%s, the label %s=<kind> and the annotation %s=<name> of one of its capabilities in that namespace",
		platformv1alpha1.LabelRuntime, runtime, runtimeSelector(runtime), patchApply,
		platformv1alpha1.LabelRuntime, runtime, platformv1alpha1.LabelKind, platformv1alpha1.AnnotationCapability)
}

func (p *policy) secretRequest(ctx context.Context, id identity, req *apiRequest, objs objects) decision {
	rt, info := id.runtime, req.info
	instead := p.secretInstead(rt)
	if info.Subresource != "" {
		return refuse(rt, describe(req), instead)
	}
	switch info.Verb {
	case "list", "watch":
		return selectorRule(req, rt)
	case "get":
		s, err := lookup(func(fresh bool) (*unstructured.Unstructured, error) {
			return objs.secret(ctx, req.cluster, info.Namespace, info.Name, fresh)
		}, func(o *unstructured.Unstructured) bool { return labelled(o, rt) })
		if err != nil {
			return unavailable("the Secret "+info.Namespace+"/"+info.Name, err)
		}
		if s != nil && !labelled(s, rt) {
			return refuse(rt, describe(req)+" in workspace "+req.cluster+": it is not labelled with its runtime", instead)
		}
		// Missing: kcp answers 404, or, if it was created meanwhile, the answer is
		// checked for the label too.
		return decision{jsonAccept: true, ownedResponse: true}
	case "delete":
		s, err := objs.secret(ctx, req.cluster, info.Namespace, info.Name, true)
		switch {
		case err != nil:
			return unavailable("the Secret "+info.Namespace+"/"+info.Name, err)
		case s == nil:
			return notFound(secretsResource, info.Name)
		case !labelled(s, rt):
			return refuse(rt, describe(req)+" in workspace "+req.cluster+": it is not labelled with its runtime", instead)
		}
		body, err := deleteWithUID(req, string(s.GetUID()))
		if err != nil {
			return refuse(rt, "delete a Secret with this body ("+err.Error()+")", "send DeleteOptions as JSON")
		}
		return decision{body: body}
	case "create", "update", "patch":
		return p.secretWrite(ctx, id, req, objs)
	}
	return refuse(rt, describe(req), instead)
}

// secretWrite allows a connection Secret to be written when it belongs, by its labels and
// annotation, to a capability of the caller's, and no other Secret of that name exists.
func (p *policy) secretWrite(ctx context.Context, id identity, req *apiRequest, objs objects) decision {
	rt, info := id.runtime, req.info
	instead := p.secretInstead(rt)
	if info.Verb == "patch" && req.contentType != patchApply {
		return refuse(rt, fmt.Sprintf("patch Secrets with Content-Type %q", req.contentType), instead)
	}
	obj, err := decodeObject(req)
	if err != nil {
		return refuse(rt, "write a Secret from this body ("+err.Error()+")", instead)
	}
	name := info.Name
	if info.Verb == "create" {
		name = obj.GetName()
		if name == "" {
			return refuse(rt, "create a Secret without metadata.name", instead)
		}
	}
	if obj.GetName() != "" && obj.GetName() != name || obj.GetNamespace() != "" && obj.GetNamespace() != info.Namespace {
		return refuse(rt, fmt.Sprintf("write a body naming %s/%s to %s/%s", obj.GetNamespace(), obj.GetName(), info.Namespace, name), instead)
	}
	if problem := p.secretOwner(ctx, id, req, obj, objs); problem != nil {
		return *problem
	}
	existing, err := objs.secret(ctx, req.cluster, info.Namespace, name, true)
	if err != nil {
		return unavailable("the Secret "+info.Namespace+"/"+name, err)
	}
	if existing != nil && !labelled(existing, rt) {
		return refuse(rt, fmt.Sprintf("write the Secret %s/%s in workspace %s: a Secret of that name exists and is not labelled with its runtime "+
			"(a tenant's own Secret is never taken over)", info.Namespace, name, req.cluster), instead)
	}
	return allow
}

// secretOwner checks that a Secret's labels and annotation name a capability of the
// caller's in the same workspace and namespace; nil when they do.
func (p *policy) secretOwner(ctx context.Context, id identity, req *apiRequest, obj *unstructured.Unstructured, objs objects) *decision {
	rt, ns := id.runtime, req.info.Namespace
	instead := p.secretInstead(rt)
	fail := func(why string) *decision { d := refuse(rt, "write this Secret: "+why, instead); return &d }
	lbls, ann := obj.GetLabels(), obj.GetAnnotations()
	if lbls[platformv1alpha1.LabelRuntime] != rt {
		return fail(fmt.Sprintf("it is not labelled %s=%s", platformv1alpha1.LabelRuntime, rt))
	}
	kindName, capName := lbls[platformv1alpha1.LabelKind], ann[platformv1alpha1.AnnotationCapability]
	if kindName == "" || capName == "" {
		return fail(fmt.Sprintf("it lacks the label %s or the annotation %s naming its capability", platformv1alpha1.LabelKind, platformv1alpha1.AnnotationCapability))
	}
	kinds := p.kindsNamed(kindName)
	if len(kinds) == 0 {
		return fail(fmt.Sprintf("%s=%s is not a kind of the export %s", platformv1alpha1.LabelKind, kindName, p.export))
	}
	for _, k := range kinds {
		_, mine, err := ownedCapability(ctx, objs, k, req.cluster, ns, capName, rt)
		if err != nil {
			d := unavailable(fmt.Sprintf("the %s %s/%s", kindName, ns, capName), err)
			return &d
		}
		if mine {
			return nil
		}
	}
	return fail(fmt.Sprintf("it names the %s %s/%s in workspace %s, which is not assigned to runtime %s", kindName, ns, capName, req.cluster, rt))
}

// Events -----------------------------------------------------------------------------

func (p *policy) eventRequest(ctx context.Context, id identity, req *apiRequest, objs objects) decision {
	rt, info := id.runtime, req.info
	instead := "it may create Events whose involvedObject is one of its capabilities (in the Event's namespace), " +
		"and patch Events named <capability>.<suffix> of its capabilities"
	if info.Subresource != "" {
		return refuse(rt, describe(req), instead)
	}
	switch info.Verb {
	case "create":
		return p.eventCreate(ctx, id, req, objs, instead)
	case "patch":
		for i := 0; i < len(info.Name); i++ {
			if info.Name[i] != '.' || i == 0 {
				continue
			}
			for _, k := range p.kinds {
				_, mine, err := ownedCapability(ctx, objs, k, req.cluster, info.Namespace, info.Name[:i], rt)
				if err != nil {
					return unavailable("the capability of Event "+info.Namespace+"/"+info.Name, err)
				}
				if mine {
					return allow
				}
			}
		}
		return refuse(rt, describe(req)+" in workspace "+req.cluster+": it is not named after one of its capabilities", instead)
	}
	return refuse(rt, describe(req), instead)
}

func (p *policy) eventCreate(ctx context.Context, id identity, req *apiRequest, objs objects, instead string) decision {
	rt, ns := id.runtime, req.info.Namespace
	obj, err := decodeObject(req)
	if err != nil {
		return refuse(rt, "create an Event from this body ("+err.Error()+")", instead)
	}
	if obj.GetNamespace() != "" && obj.GetNamespace() != ns {
		return refuse(rt, fmt.Sprintf("create an Event of namespace %s in namespace %s", obj.GetNamespace(), ns), instead)
	}
	involved, _, _ := unstructured.NestedStringMap(obj.Object, "involvedObject")
	if involved["namespace"] != ns || involved["name"] == "" {
		return refuse(rt, fmt.Sprintf("create an Event in namespace %s about %s/%s", ns, involved["namespace"], involved["name"]), instead)
	}
	group := ""
	if gv, err := schema.ParseGroupVersion(involved["apiVersion"]); err == nil {
		group = gv.Group
	}
	for _, k := range p.kindsNamed(involved["kind"]) {
		if involved["apiVersion"] != "" && k.gvk.Group != group {
			continue
		}
		_, mine, err := ownedCapability(ctx, objs, k, req.cluster, ns, involved["name"], rt)
		if err != nil {
			return unavailable(fmt.Sprintf("the %s %s/%s", k.gvk.Kind, ns, involved["name"]), err)
		}
		if mine {
			return allow
		}
	}
	return refuse(rt, fmt.Sprintf("create an Event about the %s %s/%s in workspace %s: it is not one of its capabilities",
		involved["kind"], ns, involved["name"], req.cluster), instead)
}
