// Package packagetest holds no code, only the tests of the deployment
// artefacts in deploy/ and the Dockerfile: the Dockerfile's instructions
// and build context, the plain Kubernetes manifests, and the Helm chart
// (helm lint and helm template through make, with helm from the Go module
// proxy), checked against the settings files they ship.
package packagetest
