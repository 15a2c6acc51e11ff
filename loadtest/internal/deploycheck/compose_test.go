//go:build deploycheck

package deploycheck

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// composeFile is the part of deploy/compose/compose.yaml the checks read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	EnvFile     []string          `yaml:"env_file"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Profiles    []string          `yaml:"profiles"`
	Command     []string          `yaml:"command"`
	DependsOn   any               `yaml:"depends_on"`
	StopGrace   string            `yaml:"stop_grace_period"`
	Deploy      struct {
		Resources struct {
			Limits struct {
				CPUs   string `yaml:"cpus"`
				Memory string `yaml:"memory"`
			} `yaml:"limits"`
		} `yaml:"resources"`
	} `yaml:"deploy"`
}

type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
}

func loadCompose(t *testing.T) (composeFile, string) {
	t.Helper()
	dir := deployPath(t, "compose")
	var c composeFile
	decodeYAML(t, filepath.Join(dir, "compose.yaml"), &c)
	return c, dir
}

func TestComposeServices(t *testing.T) {
	c, _ := loadCompose(t)
	for _, name := range []string{"kafka", "kafka-init", "ws-single", "ws-multi", "feed", "prometheus", "grafana", "loadtest"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml: no service %q", name)
		}
	}

	kafka := c.Services["kafka"]
	if !strings.HasPrefix(kafka.Image, "apache/kafka:") {
		t.Errorf("kafka image %q: want the official apache/kafka image", kafka.Image)
	}
	if roles := kafka.Environment["KAFKA_PROCESS_ROLES"]; roles != "broker,controller" {
		t.Errorf("kafka KAFKA_PROCESS_ROLES=%q: want broker,controller (single-node KRaft)", roles)
	}
	if voters := kafka.Environment["KAFKA_CONTROLLER_QUORUM_VOTERS"]; voters == "" {
		t.Error("kafka: KAFKA_CONTROLLER_QUORUM_VOTERS is empty: KRaft needs its controller quorum")
	}

	tests := []struct {
		name     string
		cpus     string
		hostPort string
		envFiles []string
	}{
		{name: "ws-single", cpus: "1", hostPort: "127.0.0.1:3002:3002", envFiles: []string{"base.env", "ws-single.env"}},
		{name: "ws-multi", cpus: "4", hostPort: "127.0.0.1:3003:3002", envFiles: []string{"base.env", "ws-multi.env"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := c.Services[tt.name]
			if got := s.Deploy.Resources.Limits.CPUs; got != tt.cpus {
				t.Errorf("cpus limit %q, want %q", got, tt.cpus)
			}
			if s.Deploy.Resources.Limits.Memory == "" {
				t.Error("no memory limit: WS_MAX_CONNECTIONS=0 derives the connection limit from it")
			}
			if !slices.Equal(s.Ports, []string{tt.hostPort}) {
				t.Errorf("ports %q, want [%s]", s.Ports, tt.hostPort)
			}
			if !slices.Equal(s.EnvFile, tt.envFiles) {
				t.Errorf("env_file %q, want %q (shared base first, the variant's own last)", s.EnvFile, tt.envFiles)
			}
			if s.Build == nil || s.Build.Dockerfile != "deploy/docker/"+tt.name+".Dockerfile" {
				t.Errorf("build %+v: want deploy/docker/%s.Dockerfile", s.Build, tt.name)
			}
			if !strings.HasPrefix(s.Image, tt.name+":") {
				t.Errorf("image %q: want %s:<version>", s.Image, tt.name)
			}
			if s.StopGrace == "" {
				t.Error("no stop_grace_period: the default 10s is shorter than WS_SHUTDOWN_TIMEOUT")
			}
		})
	}

	if lt := c.Services["loadtest"]; !slices.Contains(lt.Profiles, "loadtest") {
		t.Errorf("loadtest profiles %q: want it only in the loadtest profile", lt.Profiles)
	}
	if img := c.Services["loadtest"].Image; !strings.HasPrefix(img, "loadtest:") {
		t.Errorf("loadtest image %q: want the loadtest image", img)
	}
	feed := c.Services["feed"]
	if feed.Image != c.Services["loadtest"].Image || len(feed.Profiles) != 0 {
		t.Errorf("feed image %q profiles %q: want the loadtest image, always on", feed.Image, feed.Profiles)
	}
	if want := []string{"dev", "--external", "--brokers", "kafka:9092"}; len(feed.Command) < len(want) || !slices.Equal(feed.Command[:len(want)], want) {
		t.Errorf("feed command %q: want it to start with %q", feed.Command, want)
	}
}

// TestComposeLoadtestFlags: the commands of the compose services that run the loadtest image
// (loadtest, feed) are ones the loadtest binary accepts (every --flag of them is in
// `loadtest <sub> --help`).
func TestComposeLoadtestFlags(t *testing.T) {
	c, _ := loadCompose(t)
	bin := serverBinary(t, "LOADTEST_BIN", "loadtest")
	for _, service := range []string{"loadtest", "feed"} {
		t.Run(service, func(t *testing.T) {
			cmd := c.Services[service].Command
			if len(cmd) == 0 {
				t.Fatalf("%s service has no command", service)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			help, _ := exec.CommandContext(ctx, bin, cmd[0], "--help").CombinedOutput() // --help exits 0 or 2 by flag package habit
			if !strings.Contains(string(help), "  -") {
				t.Fatalf("loadtest %s --help does not list flags:\n%s", cmd[0], help)
			}
			for _, arg := range cmd[1:] {
				name, ok := strings.CutPrefix(arg, "--")
				if !ok {
					continue
				}
				name, _, _ = strings.Cut(name, "=")
				if !strings.Contains(string(help), "  -"+name+" ") && !strings.Contains(string(help), "  -"+name+"\n") {
					t.Errorf("compose %s command uses --%s, which `loadtest %s` does not have", service, name, cmd[0])
				}
			}
		})
	}
}

func TestComposeReferencesExist(t *testing.T) {
	c, dir := loadCompose(t)
	for name, s := range c.Services {
		for _, f := range s.EnvFile {
			mustExist(t, filepath.Join(dir, f), "service "+name+" env_file")
		}
		for _, v := range s.Volumes {
			host, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(host, ".") && !strings.HasPrefix(host, "/") {
				if _, ok := c.Volumes[host]; !ok {
					t.Errorf("service %s: named volume %q is not declared under volumes", name, host)
				}
				continue
			}
			mustExist(t, filepath.Join(dir, host), "service "+name+" volume")
		}
		if s.Build != nil {
			ctx := filepath.Join(dir, s.Build.Context)
			mustExist(t, ctx, "service "+name+" build context")
			mustExist(t, filepath.Join(ctx, s.Build.Dockerfile), "service "+name+" build dockerfile")
			for _, arg := range []string{"VERSION", "COMMIT"} {
				if s.Build.Args[arg] == "" {
					t.Errorf("service %s: build arg %s not passed", name, arg)
				}
			}
		}
	}
}

func TestComposeEnvFiles(t *testing.T) {
	dir := deployPath(t, "compose")
	base := readEnvFile(t, filepath.Join(dir, "base.env"))
	checkEnvKeys(t, "base.env", base)
	if base["WS_KAFKA_BROKERS"] != "kafka:9092" {
		t.Errorf("base.env WS_KAFKA_BROKERS=%q: want the compose Kafka, kafka:9092", base["WS_KAFKA_BROKERS"])
	}
	for _, v := range []string{"ws-single", "ws-multi"} {
		env := readEnvFile(t, filepath.Join(dir, v+".env"))
		checkEnvKeys(t, v+".env", env)
		if env["WS_KAFKA_CLIENT_ID"] != v {
			t.Errorf("%s.env WS_KAFKA_CLIENT_ID=%q, want %q", v, env["WS_KAFKA_CLIENT_ID"], v)
		}
	}
	if _, ok := readEnvFile(t, filepath.Join(dir, "ws-single.env"))["WS_SHARDS"]; ok {
		t.Error("ws-single.env sets WS_SHARDS, a ws-multi-only variable")
	}
}

// TestComposeScrapesBothVariants holds the Prometheus config, the compose services and the
// dashboard's `variant` (= job) convention together.
func TestComposeScrapesBothVariants(t *testing.T) {
	c, _ := loadCompose(t)
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	b, err := os.ReadFile(deployPath(t, "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	decodeYAMLBytes(t, "prometheus.yml", b, &cfg)
	jobs := map[string][]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			jobs[sc.JobName] = append(jobs[sc.JobName], st.Targets...)
		}
	}
	// The rule_files globs, seen through compose's mounts, find the repository's rules.
	mounts := map[string]string{} // container path -> host path
	for _, v := range c.Services["prometheus"].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[0], ".") {
			mounts[parts[1]] = filepath.Join(deployPath(t, "compose"), parts[0])
		}
	}
	if mounts["/etc/prometheus/prometheus.yml"] != deployPath(t, "prometheus", "prometheus.yml") {
		t.Errorf("compose mounts %v: prometheus.yml not at /etc/prometheus/prometheus.yml", mounts)
	}
	found := false
	for _, pattern := range cfg.RuleFiles {
		dir, file := filepath.Split(pattern)
		host, ok := mounts[filepath.Clean(dir)]
		if !ok {
			t.Errorf("rule_files %s: directory not mounted into the prometheus service", pattern)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(host, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			found = found || filepath.Base(m) == "ws_poc.yml"
		}
	}
	if !found {
		t.Errorf("rule_files %q do not load deploy/prometheus/rules/ws_poc.yml in compose", cfg.RuleFiles)
	}

	for _, v := range []string{"ws-single", "ws-multi"} {
		want := []string{v + ":3002"}
		if !slices.Equal(jobs[v], want) {
			t.Errorf("prometheus.yml job %s targets %q, want %q (the compose service on its container port)", v, jobs[v], want)
		}
		if _, ok := c.Services[v]; !ok {
			t.Errorf("prometheus.yml scrapes %s, which compose does not run", v)
		}
	}
}
