//go:build deploycheck

package deploycheck

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// promtool runs Debian's promtool (package prometheus, installed by .ci/run) in dir.
func promtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (apt-get install prometheus; .ci/run does): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool %v: %v\n%s", args, err, out)
	}
}

func TestPromtool(t *testing.T) {
	dir := deployPath(t, "prometheus")
	tests := []struct {
		name string
		args []string
	}{
		{name: "check config", args: []string{"check", "config", "prometheus.yml"}},
		{name: "check rules", args: []string{"check", "rules", "rules/ws_poc.yml"}},
		// Each alert fires on the series it is for and stays quiet on a healthy one.
		{name: "test rules", args: []string{"test", "rules", "rules_test.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			promtool(t, dir, tt.args...)
		})
	}
}

// alertRules reads the alert rules of deploy/prometheus/rules/ws_poc.yml.
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	decodeYAML(t, deployPath(t, "prometheus", "rules", "ws_poc.yml"), &f)
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("no alert rules")
	}
	return rules
}

type alertRule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

func TestAlertRulesCoverAndUseContractMetrics(t *testing.T) {
	rules := alertRules(t)
	var names []string
	metrics := readmeMetrics(t)
	for _, r := range rules {
		names = append(names, r.Alert)
		checkMetricNames(t, "alert "+r.Alert, r.Expr, metrics)
	}
	// The issues' lists: latency, lag growing, slow consumers, CPU near admission, memory near
	// the limit, Kafka detached; failed accepts and skipped records (hardening).
	for _, want := range []string{"WSDeliveryLatencyHigh", "WSKafkaConsumerLagGrowing", "WSSlowConsumerDisconnects",
		"WSCPUNearAdmissionThreshold", "WSMemoryNearLimit", "WSKafkaDetached", "WSAcceptErrors", "WSKafkaRecordsSkipped"} {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s", want)
		}
	}
	// Prometheus loads rules by the glob in prometheus.yml; the unit test file must not match.
	if _, err := os.Stat(deployPath(t, "prometheus", "rules", "rules_test.yml")); err == nil {
		t.Error("rules_test.yml inside rules/ would be loaded as rules by Prometheus")
	}
}
