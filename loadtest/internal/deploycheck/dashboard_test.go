//go:build deploycheck

package deploycheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dashboard is the part of a Grafana dashboard JSON the checks read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string     `json:"name"`
			Type       string     `json:"type"`
			Datasource datasource `json:"datasource"`
			Definition string     `json:"definition"`
			AllValue   string     `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // rows may hold collapsed panels
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dashboards reads every dashboard JSON that Grafana provisions from deploy/grafana/dashboards.
func dashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(deployPath(t, "grafana", "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no dashboard JSON in deploy/grafana/dashboards")
	}
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// queryPanels flattens rows into the panels that run queries.
func queryPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		if p.Type == "row" {
			out = append(out, queryPanels(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

func TestDashboardStatic(t *testing.T) {
	var prov struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	decodeYAML(t, deployPath(t, "grafana", "provisioning", "datasources", "prometheus.yaml"), &prov)
	if len(prov.Datasources) != 1 || prov.Datasources[0].Type != "prometheus" {
		t.Fatalf("provisioned datasources %+v, want one prometheus", prov.Datasources)
	}
	dsUID := prov.Datasources[0].UID

	metrics := readmeMetrics(t)
	used := map[string]bool{}
	for file, d := range dashboards(t) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", file)
		}
		hasVariant := false
		for _, v := range d.Templating.List {
			if v.Name == "variant" {
				hasVariant = true
				if v.Datasource.UID != dsUID || !strings.Contains(v.Definition, "ws_build_info") {
					t.Errorf("%s: variable variant %+v: want label_values over ws_build_info on datasource %s", file, v, dsUID)
				}
			}
		}
		if !hasVariant {
			t.Errorf("%s: no `variant` template variable", file)
		}
		ids := map[int]bool{}
		for _, p := range queryPanels(d.Panels) {
			where := file + ": panel " + p.Title
			if ids[p.ID] {
				t.Errorf("%s: duplicate panel id %d", where, p.ID)
			}
			ids[p.ID] = true
			if p.Datasource.UID != dsUID {
				t.Errorf("%s: datasource uid %q, want the provisioned %q", where, p.Datasource.UID, dsUID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			for _, tg := range p.Targets {
				if !strings.Contains(tg.Expr, `job=~"$variant"`) {
					t.Errorf("%s %s: query ignores the variant variable: %s", where, tg.RefID, tg.Expr)
				}
				checkMetricNames(t, where, tg.Expr, metrics)
				for _, m := range metricRef.FindAllString(tg.Expr, -1) {
					used[m] = true
				}
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, m := range []string{"ws_connections", "ws_connections_accepted_total", "ws_connections_rejected_total",
		"ws_messages_delivered_total", "ws_kafka_consumer_lag", "ws_kafka_records_consumed_total",
		"ws_delivery_latency_seconds_bucket", "ws_disconnects_total", "ws_send_queue_overflow_total",
		"ws_cgroup_cpu_usage_ratio", "ws_cgroup_cpu_limit_cores", "ws_cgroup_memory_usage_bytes",
		"ws_cgroup_memory_limit_bytes", "ws_kafka_attached", "ws_build_info"} {
		if !used[m] {
			t.Errorf("no dashboard panel shows %s", m)
		}
	}
}

// TestGrafanaProvisioningPaths: the dashboard provider reads the directory compose mounts.
func TestGrafanaProvisioningPaths(t *testing.T) {
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeYAML(t, deployPath(t, "grafana", "provisioning", "dashboards", "ws_poc.yaml"), &prov)
	c, _ := loadCompose(t)
	mounts := map[string]string{}
	for _, v := range c.Services["grafana"].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mounts[parts[1]] = parts[0]
		}
	}
	for _, p := range prov.Providers {
		if mounts[p.Options.Path] != "../grafana/dashboards" {
			t.Errorf("dashboard provider path %s is not where compose mounts deploy/grafana/dashboards (mounts %v)", p.Options.Path, mounts)
		}
	}
	if mounts["/etc/grafana/provisioning"] != "../grafana/provisioning" {
		t.Errorf("compose does not mount deploy/grafana/provisioning at /etc/grafana/provisioning (mounts %v)", mounts)
	}
}
