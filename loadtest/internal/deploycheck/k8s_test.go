//go:build deploycheck

package deploycheck

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// k8sObject is the part of a Kubernetes object the checks read; one type for every kind keeps
// the build output in one list.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		// Service: a label map; Deployment, PDB: {matchLabels: ...}.
		Selector       yaml.Node `yaml:"selector"`
		MaxUnavailable any       `yaml:"maxUnavailable"`
		Template       struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				Containers                    []struct {
					Image   string `yaml:"image"`
					EnvFrom []struct {
						ConfigMapRef struct {
							Name string `yaml:"name"`
						} `yaml:"configMapRef"`
					} `yaml:"envFrom"`
					ReadinessProbe probe `yaml:"readinessProbe"`
					LivenessProbe  probe `yaml:"livenessProbe"`
					Lifecycle      struct {
						PreStop struct {
							Sleep struct {
								Seconds int `yaml:"seconds"`
							} `yaml:"sleep"`
						} `yaml:"preStop"`
					} `yaml:"lifecycle"`
					Resources struct {
						Requests map[string]string `yaml:"requests"`
						Limits   map[string]string `yaml:"limits"`
					} `yaml:"resources"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// HTTPRoute.
		Rules []struct {
			BackendRefs []struct {
				Name   string `yaml:"name"`
				Weight int    `yaml:"weight"`
			} `yaml:"backendRefs"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// selectorLabels returns a Service's selector or a Deployment's/PDB's matchLabels.
func (o k8sObject) selectorLabels(t *testing.T) map[string]string {
	t.Helper()
	var direct map[string]string
	if o.Kind == "Service" {
		if err := o.Spec.Selector.Decode(&direct); err != nil {
			t.Fatalf("%s %s selector: %v", o.Kind, o.Metadata.Name, err)
		}
		return direct
	}
	var sel struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	if err := o.Spec.Selector.Decode(&sel); err != nil {
		t.Fatalf("%s %s selector: %v", o.Kind, o.Metadata.Name, err)
	}
	return sel.MatchLabels
}

// selects reports whether every label of sel is in labels (a non-empty selector).
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// kustomizeBuild builds the kustomization in dir (relative to deploy/k8s) in-process, as
// `kubectl kustomize` does, and returns the objects.
func kustomizeBuild(t *testing.T, dir string) []k8sObject {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), deployPath(t, "k8s", dir))
	if err != nil {
		t.Fatalf("kustomize build deploy/k8s/%s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build deploy/k8s/%s: %v", dir, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var objs []k8sObject
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("kustomize build deploy/k8s/%s output: %v", dir, err)
		}
		objs = append(objs, o)
	}
	return objs
}

func find(objs []k8sObject, kind, name string) (k8sObject, bool) {
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return k8sObject{}, false
}

func TestK8sYAMLParses(t *testing.T) {
	root := deployPath(t, "k8s")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return err
		}
		n++
		docs := decodeYAMLDocs(t, path)
		if len(docs) == 0 {
			t.Errorf("%s: no YAML document", path)
		}
		for i, doc := range docs {
			switch doc := doc.(type) {
			case []any: // a JSON 6902 patch
				if len(doc) == 0 {
					t.Errorf("%s document %d: empty patch", path, i)
				}
			case map[string]any:
				if filepath.Base(path) == "prometheus-adapter-values.yaml" {
					continue // Helm values, not an object
				}
				if doc["apiVersion"] == nil || doc["kind"] == nil {
					t.Errorf("%s document %d: no apiVersion/kind", path, i)
				}
			default:
				t.Errorf("%s document %d: a %T, want an object or a patch", path, i, doc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("only %d YAML files under deploy/k8s", n)
	}
}

func TestK8sOverlays(t *testing.T) {
	tests := []struct {
		name   string
		cpu    string
		memory string
	}{
		{name: "ws-single", cpu: "1", memory: "512Mi"},
		{name: "ws-multi", cpu: "4", memory: "2Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := kustomizeBuild(t, "overlays/"+tt.name)
			dep, ok := find(objs, "Deployment", tt.name)
			if !ok {
				t.Fatalf("no Deployment %s", tt.name)
			}
			pod := dep.Spec.Template
			if len(pod.Spec.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
			}
			c := pod.Spec.Containers[0]
			if !strings.HasPrefix(c.Image, tt.name+":") {
				t.Errorf("image %q, want %s:<version>", c.Image, tt.name)
			}
			for _, res := range []map[string]string{c.Resources.Requests, c.Resources.Limits} {
				if res["cpu"] != tt.cpu || res["memory"] != tt.memory {
					t.Errorf("resources %v, want cpu %s memory %s", res, tt.cpu, tt.memory)
				}
			}
			if c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("readiness probe path %q, want /readyz", c.ReadinessProbe.HTTPGet.Path)
			}
			if c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("liveness probe path %q, want /healthz", c.LivenessProbe.HTTPGet.Path)
			}

			// The configuration the pod gets: the generated ConfigMap it refers to.
			if len(c.EnvFrom) != 1 {
				t.Fatalf("envFrom %+v, want one ConfigMap", c.EnvFrom)
			}
			cm, ok := find(objs, "ConfigMap", c.EnvFrom[0].ConfigMapRef.Name)
			if !ok {
				t.Fatalf("envFrom ConfigMap %q is not in the build", c.EnvFrom[0].ConfigMapRef.Name)
			}
			checkEnvKeys(t, "ConfigMap "+cm.Metadata.Name, cm.Data)
			if cm.Data["WS_KAFKA_CLIENT_ID"] != tt.name {
				t.Errorf("WS_KAFKA_CLIENT_ID=%q, want %q", cm.Data["WS_KAFKA_CLIENT_ID"], tt.name)
			}

			// Draining: the kubelet waits preStop, then SIGTERM gives the server
			// WS_SHUTDOWN_TIMEOUT to close every client with 1001; SIGKILL must come later.
			shutdown, err := time.ParseDuration(cm.Data["WS_SHUTDOWN_TIMEOUT"])
			if err != nil {
				t.Fatalf("WS_SHUTDOWN_TIMEOUT: %v", err)
			}
			preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			if preStop <= 0 {
				t.Error("no preStop sleep: endpoints may still route new upgrades to a draining pod")
			}
			grace := time.Duration(pod.Spec.TerminationGracePeriodSeconds) * time.Second
			if need := preStop + shutdown + 5*time.Second; grace < need {
				t.Errorf("terminationGracePeriodSeconds %v < preStop %v + WS_SHUTDOWN_TIMEOUT %v + 5s", grace, preStop, shutdown)
			}

			podLabels := pod.Metadata.Labels
			if podLabels["app.kubernetes.io/name"] != tt.name {
				t.Errorf("pod label app.kubernetes.io/name=%q, want %q", podLabels["app.kubernetes.io/name"], tt.name)
			}
			if sel := dep.selectorLabels(t); !selects(sel, podLabels) {
				t.Errorf("Deployment selector %v does not select its pods %v", sel, podLabels)
			}
			for _, kind := range []string{"Service", "PodDisruptionBudget"} {
				o, ok := find(objs, kind, tt.name)
				if !ok {
					t.Errorf("no %s %s", kind, tt.name)
					continue
				}
				if sel := o.selectorLabels(t); !selects(sel, podLabels) {
					t.Errorf("%s selector %v does not select the pods %v", kind, sel, podLabels)
				}
			}
		})
	}
}

// TestK8sTrafficSplit builds both A/B examples: the shared Service selects the pods of both
// variants, and the HTTPRoute's backends are the variants' Services.
func TestK8sTrafficSplit(t *testing.T) {
	t.Run("replica ratio", func(t *testing.T) {
		objs := kustomizeBuild(t, "ab")
		svc, ok := find(objs, "Service", "ws")
		if !ok {
			t.Fatal("no shared Service ws")
		}
		replicas := map[string]int{}
		for _, v := range []string{"ws-single", "ws-multi"} {
			dep, ok := find(objs, "Deployment", v)
			if !ok {
				t.Fatalf("no Deployment %s", v)
			}
			if sel := svc.selectorLabels(t); !selects(sel, dep.Spec.Template.Metadata.Labels) {
				t.Errorf("Service ws selector %v misses the %s pods %v", sel, v, dep.Spec.Template.Metadata.Labels)
			}
			if dep.Spec.Replicas == nil {
				t.Fatalf("%s: no replicas", v)
			}
			replicas[v] = *dep.Spec.Replicas
		}
		if want := map[string]int{"ws-single": 3, "ws-multi": 1}; !maps.Equal(replicas, want) {
			t.Errorf("replicas %v, want %v (the ratio deploy/k8s/README.md describes)", replicas, want)
		}
		// Each variant's own Service still selects only its own pods.
		single, _ := find(objs, "Service", "ws-single")
		multiDep, _ := find(objs, "Deployment", "ws-multi")
		if selects(single.selectorLabels(t), multiDep.Spec.Template.Metadata.Labels) {
			t.Error("Service ws-single also selects ws-multi pods")
		}
	})
	t.Run("gateway weights", func(t *testing.T) {
		objs := kustomizeBuild(t, "ab/gateway")
		route, ok := find(objs, "HTTPRoute", "ws")
		if !ok {
			t.Fatal("no HTTPRoute ws")
		}
		total := 0
		for _, rule := range route.Spec.Rules {
			for _, b := range rule.BackendRefs {
				if _, ok := find(objs, "Service", b.Name); !ok {
					t.Errorf("HTTPRoute backend %q is not a Service of the build", b.Name)
				}
				total += b.Weight
			}
		}
		if total != 100 {
			t.Errorf("backend weights add up to %d, want 100 (percentages)", total)
		}
	})
}

// TestK8sExamples: the HPA scales a Deployment the overlay creates, on a metric the server
// exports; the ServiceMonitor's job label exists on the Services it selects.
func TestK8sExamples(t *testing.T) {
	single := kustomizeBuild(t, "overlays/ws-single")
	var hpa struct {
		Spec struct {
			ScaleTargetRef struct {
				Kind string `yaml:"kind"`
				Name string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			Metrics []struct {
				Type string `yaml:"type"`
				Pods struct {
					Metric struct {
						Name string `yaml:"name"`
					} `yaml:"metric"`
				} `yaml:"pods"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	decodeYAML(t, deployPath(t, "k8s", "examples", "hpa-connections.yaml"), &hpa)
	if _, ok := find(single, hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name); !ok {
		t.Errorf("HPA targets %s %s, not in overlays/ws-single", hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name)
	}
	metrics := readmeMetrics(t)
	for _, m := range hpa.Spec.Metrics {
		if m.Type != "Pods" || !metrics[m.Pods.Metric.Name] {
			t.Errorf("HPA metric %s %q: want a Pods metric from the README's table (ws_connections)", m.Type, m.Pods.Metric.Name)
		}
	}

	var sm struct {
		Spec struct {
			JobLabel string `yaml:"jobLabel"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	decodeYAML(t, deployPath(t, "k8s", "examples", "servicemonitor.yaml"), &sm)
	svc, ok := find(single, "Service", "ws-single")
	if !ok {
		t.Fatal("no Service ws-single")
	}
	if !selects(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) {
		t.Errorf("ServiceMonitor selector %v misses Service labels %v", sm.Spec.Selector.MatchLabels, svc.Metadata.Labels)
	}
	if svc.Metadata.Labels[sm.Spec.JobLabel] != "ws-single" {
		t.Errorf("Service label %s=%q: the job label must be the variant", sm.Spec.JobLabel, svc.Metadata.Labels[sm.Spec.JobLabel])
	}
}
