package admission

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// post sends body to the handler at srv and returns the response's status and body.
func post(t *testing.T, srv *httptest.Server, contentType string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(srv.URL, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func newServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(NewHandler(testRules, testr.NewWithOptions(t, testr.Options{Verbosity: 1})))
	t.Cleanup(srv.Close)
	return srv
}

func TestHandlerRefusal(t *testing.T) {
	srv := newServer(t)
	req := request(tenant, []string{"system:authenticated"}, admissionv1.Update, "status", unplaced(), unplaced().withCondition(scheduledTrue()))
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	code, out := post(t, srv, "application/json", body)
	if code != http.StatusOK {
		t.Fatalf("status %d (%s), want 200", code, out)
	}

	// Check the JSON itself, as the API server reads it.
	var got struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Response   struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
			Status  struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("cannot decode the response %s: %v", out, err)
	}
	if got.APIVersion != "admission.k8s.io/v1" || got.Kind != "AdmissionReview" {
		t.Errorf("response is %s %s, want admission.k8s.io/v1 AdmissionReview", got.APIVersion, got.Kind)
	}
	if got.Response.UID != string(req.UID) {
		t.Errorf("uid %q, want %q echoed", got.Response.UID, req.UID)
	}
	if got.Response.Allowed {
		t.Errorf("allowed, want refused")
	}
	if got.Response.Status.Code != http.StatusForbidden {
		t.Errorf("status code %d, want 403", got.Response.Status.Code)
	}
	if !strings.Contains(got.Response.Status.Message, "status is written by the platform") {
		t.Errorf("message %q does not say who writes status", got.Response.Status.Message)
	}
}

func TestHandlerAllowed(t *testing.T) {
	srv := newServer(t)
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  request(tenant, nil, admissionv1.Create, "", nil, unplaced()),
	}
	body, _ := json.Marshal(review)
	code, out := post(t, srv, "application/json; charset=utf-8", body)
	var got admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &got); err != nil || code != http.StatusOK {
		t.Fatalf("status %d, body %s, err %v", code, out, err)
	}
	if got.Response == nil || !got.Response.Allowed || got.Response.Result != nil || got.Response.UID != review.Request.UID {
		t.Errorf("response %+v, want allowed without a result for uid %s", got.Response, review.Request.UID)
	}
}

func TestHandlerBadRequests(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name        string
		contentType string
		body        string
		code        int
	}{
		{name: "not JSON", contentType: "application/json", body: "{", code: http.StatusBadRequest},
		{name: "no request", contentType: "application/json", body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, code: http.StatusBadRequest},
		{name: "v1beta1", contentType: "application/json", body: `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1"}}`, code: http.StatusBadRequest},
		{name: "not an AdmissionReview", contentType: "application/json", body: `{"apiVersion":"v1","kind":"ConfigMap"}`, code: http.StatusBadRequest},
		{name: "YAML", contentType: "application/yaml", body: "apiVersion: admission.k8s.io/v1", code: http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, out := post(t, srv, tt.contentType, []byte(tt.body)); code != tt.code {
				t.Errorf("status %d (%s), want %d", code, out, tt.code)
			}
		})
	}

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", resp.StatusCode)
	}
}
