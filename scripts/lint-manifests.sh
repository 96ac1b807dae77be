#!/usr/bin/env bash
# Checks k8s/ offline, as npm test does: parses every YAML file, builds k8s/ and each
# overlay with `kubectl kustomize`, validates every object against the Kubernetes and KEDA
# schemas, rejects unknown fields, and checks the manifests against the daemon and the
# Dockerfile (test/unit/k8s-manifests.test.ts). With --sql it also runs the overlays' SQL
# on a real server (test/integration/k8s-sql.test.ts; DATABASE_URL or 127.0.0.1:3306).
#   scripts/lint-manifests.sh [--sql]
set -euo pipefail
cd "$(dirname "$0")/.."
tests=(test/unit/k8s-manifests.test.ts)
case "${1:-}" in
  --sql) tests+=(test/integration/k8s-sql.test.ts) ;;
  '') ;;
  *) echo "usage: scripts/lint-manifests.sh [--sql]" >&2; exit 2 ;;
esac
command -v kubectl >/dev/null 2>&1 || echo 'lint-manifests: kubectl not found: the kustomize builds and most checks will be skipped' >&2
exec node --import tsx --test "${tests[@]}"
