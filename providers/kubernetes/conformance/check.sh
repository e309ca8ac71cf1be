#!/bin/sh
# ASSESS 3 of msp-conformance for a Space: with the kubeconfig of the connection Secret
# (CONNECTION_KUBECONFIG), kubectl writes a ConfigMap in the space's namespace and reads
# it back, and may not list the cluster's namespaces. KUBECTL names kubectl (default:
# kubectl on PATH).
set -eu
kc=$(mktemp)
trap 'rm -f "$kc"' EXIT
printf '%s' "$CONNECTION_KUBECONFIG" > "$kc"
k() { "${KUBECTL:-kubectl}" --kubeconfig "$kc" "$@"; }
k create configmap msp-conformance --from-literal=check=ok --dry-run=client -o yaml | k apply -f - >/dev/null
k get configmap msp-conformance -o jsonpath='{.data.check}' | grep -qx ok
if k get namespaces >/dev/null 2>&1; then
  echo "the space's kubeconfig may list the cluster's namespaces" >&2
  exit 1
fi
