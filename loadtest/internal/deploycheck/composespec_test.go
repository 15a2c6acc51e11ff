//go:build deploycheck

package deploycheck

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeSpec loads compose.yaml the way `docker compose` does (compose-go, the compose
// specification's reference loader): schema validation, interpolation with the defaults,
// env_file loading, profile selection and consistency checks (depends_on targets, volumes).
func TestComposeSpec(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := deployPath(t, "compose")
	opts, err := cli.NewProjectOptions([]string{dir + "/compose.yaml"},
		cli.WithWorkingDirectory(dir),
		cli.WithEnv([]string{}), // only the file's ${VAR:-default}s, not this machine's environment
		cli.WithProfiles([]string{"loadtest"}),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("compose.yaml does not load as a compose project: %v", err)
	}

	tests := []struct {
		name     string
		cpus     float32
		hostPort string
	}{
		{name: "ws-single", cpus: 1, hostPort: "3002"},
		{name: "ws-multi", cpus: 4, hostPort: "3003"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := p.GetService(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			for k, v := range s.Environment {
				if v != nil {
					env[k] = *v
				}
			}
			checkEnvKeys(t, tt.name+" environment", env)
			// base.env first, then the variant's own file.
			if env["WS_KAFKA_BROKERS"] != "kafka:9092" || env["WS_KAFKA_CLIENT_ID"] != tt.name {
				t.Errorf("environment %v: want base.env's brokers and the variant's client id", env)
			}
			if s.Deploy == nil || s.Deploy.Resources.Limits == nil || float32(s.Deploy.Resources.Limits.NanoCPUs) != tt.cpus {
				t.Errorf("deploy %+v: want a %v-CPU limit", s.Deploy, tt.cpus)
			} else if s.Deploy.Resources.Limits.MemoryBytes == 0 {
				t.Error("no memory limit")
			}
			if len(s.Ports) != 1 || s.Ports[0].Published != tt.hostPort || s.Ports[0].Target != 3002 || s.Ports[0].HostIP != "127.0.0.1" {
				t.Errorf("ports %+v: want 127.0.0.1:%s -> 3002", s.Ports, tt.hostPort)
			}
			if s.Build == nil || s.Build.Args["VERSION"] == nil || *s.Build.Args["VERSION"] != "v0.0.0-dev" {
				t.Errorf("build %+v: want VERSION defaulting to v0.0.0-dev", s.Build)
			}
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= 15*time.Second {
				t.Errorf("stop_grace_period %v: want longer than WS_SHUTDOWN_TIMEOUT (15s)", s.StopGracePeriod)
			}
		})
	}

	// Kafka keeps its log on the named volume, not in the container's /tmp.
	kafka, err := p.GetService("kafka")
	if err != nil {
		t.Fatal(err)
	}
	logDirs := kafka.Environment["KAFKA_LOG_DIRS"]
	mounted := false
	for _, v := range kafka.Volumes {
		if logDirs != nil && v.Type == types.VolumeTypeVolume && v.Target == *logDirs {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("kafka KAFKA_LOG_DIRS %v is not a named volume's mount point (%+v)", logDirs, kafka.Volumes)
	}
	if id := kafka.Environment["CLUSTER_ID"]; id == nil || len(*id) != 22 {
		t.Errorf("kafka CLUSTER_ID %v: want a fixed base64 UUID (22 characters)", id)
	}

	// Every bind mount's source exists (paths resolved against deploy/compose).
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("service %s: bind source %s: %v", name, v.Source, err)
				}
			}
		}
	}
	if _, err := p.GetService("loadtest"); err != nil {
		t.Errorf("profile loadtest: %v", err)
	}
}
