//go:build deploycheck

package deploycheck

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// k8sTypes are the built-in kinds our manifests use, by apiVersion/kind. Custom resources
// (HTTPRoute, ServiceMonitor) have no Go types here and are checked structurally elsewhere.
var k8sTypes = map[string]func() any{
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"gateway.networking.k8s.io/v1/HTTPRoute":  nil,
	"monitoring.coreos.com/v1/ServiceMonitor": nil,
}

// checkK8sStrict decodes one object into its Kubernetes API type, refusing unknown fields and
// malformed values (quantities, int-or-string ports), as the API server would.
func checkK8sStrict(t *testing.T, where string, doc []byte) {
	t.Helper()
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	key := head.APIVersion + "/" + head.Kind
	newObj, known := k8sTypes[key]
	if !known {
		t.Errorf("%s: %s is not a kind this check knows; add it to k8sTypes", where, key)
		return
	}
	if newObj == nil {
		return
	}
	if err := yaml.UnmarshalStrict(doc, newObj()); err != nil {
		t.Errorf("%s: %s: %v", where, key, err)
	}
}

// TestK8sStrictSchema: every object the kustomizations build, and every example object,
// decodes strictly into its Kubernetes API type.
func TestK8sStrictSchema(t *testing.T) {
	for _, dir := range []string{"overlays/ws-single", "overlays/ws-multi", "ab", "ab/gateway"} {
		t.Run(dir, func(t *testing.T) {
			m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), deployPath(t, "k8s", dir))
			if err != nil {
				t.Fatalf("kustomize build: %v", err)
			}
			for _, r := range m.Resources() {
				doc, err := r.AsYAML()
				if err != nil {
					t.Fatal(err)
				}
				checkK8sStrict(t, dir+" "+r.GetKind()+" "+r.GetName(), doc)
			}
		})
	}
	examples, err := filepath.Glob(deployPath(t, "k8s", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range examples {
		if filepath.Base(f) == "prometheus-adapter-values.yaml" {
			continue // Helm values, not an object
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			if strings.TrimSpace(string(doc)) != "" {
				checkK8sStrict(t, filepath.Base(f)+" #"+string(rune('0'+i)), doc)
			}
		}
	}
}
