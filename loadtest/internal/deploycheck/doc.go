//go:build deploycheck

// Package deploycheck holds the checks of deploy/ and the release path that `make test/deploy`
// runs: compose and Kubernetes manifests parse and reference files that exist, the kustomize
// overlays build, the Prometheus config and rules pass promtool, every Grafana panel and
// alert expression runs against a real Prometheus scraping real servers, the Dockerfiles
// build the way the Makefile does, and deploy/release.sh tags only what it should.
//
// The package is only tests. The deploycheck build tag keeps it out of `make test/loadtest`
// (the module's ./...), so `make test` runs it once, as test/deploy, which also vets it.
package deploycheck
