package admission

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxReviewBytes bounds the body of a request. An AdmissionReview of an UPDATE
// carries the object twice, and an object may be up to about 1.5 MiB in etcd.
const maxReviewBytes = 7 << 20

// reviewKind is the kind of the documents the handler takes and returns.
const reviewKind = "AdmissionReview"

// NewHandler serves admission.k8s.io/v1 AdmissionReview requests (POST, JSON) with
// Decide. A refusal comes back with status code 403 and Decide's message, and is
// logged at V(1) with the caller. A body that is not an AdmissionReview gets HTTP 400.
func NewHandler(r Rules, log logr.Logger) http.Handler {
	return &handler{rules: r, log: log}
}

// handler is the http.Handler NewHandler returns.
type handler struct {
	rules Rules
	log   logr.Logger
}

// ServeHTTP answers one AdmissionReview.
func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "the admission webhook takes only POST requests", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(w, "the admission webhook takes only JSON: send Content-Type: application/json", http.StatusUnsupportedMediaType)
		return
	}
	review, err := readReview(w, req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out := h.answer(review)
	body, err := json.Marshal(out)
	if err != nil {
		h.log.Error(err, "cannot encode the AdmissionReview response", "uid", review.Request.UID)
		http.Error(w, "cannot encode the response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(body); err != nil {
		h.log.V(1).Info("cannot write the AdmissionReview response", "uid", review.Request.UID, "err", err.Error())
	}
}

// readReview reads and checks the AdmissionReview in the body of req.
func readReview(w http.ResponseWriter, req *http.Request) (*admissionv1.AdmissionReview, error) {
	review := &admissionv1.AdmissionReview{}
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxReviewBytes)).Decode(review); err != nil {
		return nil, fmt.Errorf("cannot decode the body as an AdmissionReview: %v", err)
	}
	if gv := admissionv1.SchemeGroupVersion.String(); review.APIVersion != gv || review.Kind != reviewKind {
		return nil, fmt.Errorf("expected an AdmissionReview of %s, got kind %q of apiVersion %q; set admissionReviewVersions to [v1] in the webhook configuration",
			gv, review.Kind, review.APIVersion)
	}
	if review.Request == nil {
		return nil, fmt.Errorf("the AdmissionReview carries no request")
	}
	return review, nil
}

// answer decides the review's request and returns the review to send back, logging
// a refusal.
func (h *handler) answer(review *admissionv1.AdmissionReview) *admissionv1.AdmissionReview {
	req := review.Request
	allowed, msg := Decide(h.rules, req)
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: allowed}
	if !allowed {
		resp.Result = &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusForbidden,
			Reason:  metav1.StatusReasonForbidden,
			Message: msg,
		}
		h.log.V(1).Info("refused a write to a capability",
			"user", req.UserInfo.Username, "groups", req.UserInfo.Groups,
			"operation", req.Operation, "resource", req.Resource.Resource+"."+req.Resource.Group, "subresource", req.SubResource,
			"namespace", req.Namespace, "name", req.Name, "uid", req.UID, "reason", msg)
	}
	return &admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
}
