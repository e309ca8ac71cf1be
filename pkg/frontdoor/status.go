package frontdoor

import (
	"encoding/json"
	"net/http"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// reasonFor is the Status reason of an HTTP status the front door answers with.
func reasonFor(code int) metav1.StatusReason {
	switch code {
	case http.StatusUnauthorized:
		return metav1.StatusReasonUnauthorized
	case http.StatusForbidden:
		return metav1.StatusReasonForbidden
	case http.StatusNotFound:
		return metav1.StatusReasonNotFound
	case http.StatusRequestEntityTooLarge:
		return metav1.StatusReasonRequestEntityTooLarge
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	}
	return metav1.StatusReasonInternalError
}

// status is the Kubernetes Status of a failure, as client-go shows it.
func status(code int, message string, details *metav1.StatusDetails) *metav1.Status {
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  message,
		Reason:   reasonFor(code),
		Details:  details,
		Code:     int32(code),
	}
}

// statusBody is status as JSON.
func statusBody(code int, message string, details *metav1.StatusDetails) []byte {
	b, _ := json.Marshal(status(code, message, details))
	return b
}

// writeStatus answers with a Status.
func writeStatus(w http.ResponseWriter, code int, message string) {
	writeStatusDetails(w, code, message, nil)
}

func writeStatusDetails(w http.ResponseWriter, code int, message string, details *metav1.StatusDetails) {
	b := statusBody(code, message, details)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeDecision answers with a refused decision's Status.
func writeDecision(w http.ResponseWriter, d decision) {
	var details *metav1.StatusDetails
	if d.notFound != nil {
		details = &metav1.StatusDetails{Name: d.name, Group: d.notFound.Group, Kind: d.notFound.Resource}
	}
	writeStatusDetails(w, d.code, d.message, details)
}
