package admission

import (
	"strconv"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultWebhookName is the name of the ValidatingWebhookConfiguration, and of its one
// webhook, that guards a provider's capabilities.
const DefaultWebhookName = "capabilities.platform.msp.dev"

// timeoutSeconds is how long kcp waits for the webhook.
const timeoutSeconds = 5

// WebhookConfiguration returns the ValidatingWebhookConfiguration, named name, that
// sends every CREATE and UPDATE of the resources of group (main resource and status
// subresource, of every version) to url, trusting caBundle. It fails closed: a write
// the webhook cannot judge is refused.
//
// Its match conditions skip the writes of coordinatorUser (no condition when empty)
// and of the operator groups, which Decide allows anyway, so that the scheduler's
// writes cost no webhook call.
//
// name is also the name of the webhook, which must be a domain name of at least
// three segments, such as DefaultWebhookName.
func WebhookConfiguration(name, group, url string, caBundle []byte, coordinatorUser string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	failurePolicy := admissionregistrationv1.Fail
	sideEffects := admissionregistrationv1.SideEffectClassNone
	matchPolicy := admissionregistrationv1.Equivalent
	scope := admissionregistrationv1.AllScopes
	timeout := int32(timeoutSeconds)
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{
			APIVersion: admissionregistrationv1.SchemeGroupVersion.String(),
			Kind:       "ValidatingWebhookConfiguration",
		},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: name,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL:      &url,
				CABundle: caBundle,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups:   []string{group},
					APIVersions: []string{"*"},
					Resources:   []string{"*", "*/status"},
					Scope:       &scope,
				},
			}},
			FailurePolicy:           &failurePolicy,
			MatchPolicy:             &matchPolicy,
			SideEffects:             &sideEffects,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			MatchConditions:         matchConditions(coordinatorUser),
		}},
	}
}

// matchConditions returns the CEL conditions that skip the writes Decide always
// allows: the coordinator's and the operators'. Every field access is guarded by
// has(), since an absent field is an evaluation error and the webhook fails closed.
func matchConditions(coordinatorUser string) []admissionregistrationv1.MatchCondition {
	var out []admissionregistrationv1.MatchCondition
	if coordinatorUser != "" {
		out = append(out, admissionregistrationv1.MatchCondition{
			Name:       "skip-coordinator",
			Expression: "!has(request.userInfo.username) || request.userInfo.username != " + celString(coordinatorUser),
		})
	}
	for _, g := range OperatorGroups {
		out = append(out, admissionregistrationv1.MatchCondition{
			Name:       "skip-group-" + conditionNameOf(g),
			Expression: "!has(request.userInfo.groups) || !(" + celString(g) + " in request.userInfo.groups)",
		})
	}
	return out
}

// conditionNameOf turns a group name into the tail of a match condition's name,
// which may hold only letters, digits, '-', '_' and '.'.
func conditionNameOf(group string) string {
	out := []byte(group)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			out[i] = '-'
		}
	}
	return string(out)
}

// celString returns s as a CEL string literal. Go's double-quoted escapes (\\, \",
// \n, \xHH, \uHHHH, \UHHHHHHHH, ...) are escapes of CEL string literals as well.
func celString(s string) string {
	return strconv.Quote(s)
}
