package localcluster

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got, -update rewrites it):\n%s", path, diff)
	}
}

func TestGeneratedConfiguration(t *testing.T) {
	l := layout{dir: "/cluster", jarDir: "/cluster"}
	p := DefaultPorts()
	golden(t, "server.properties", kafkaServerProperties(l, p))
	golden(t, "worker.properties", connectWorkerProperties(l, p))
	golden(t, "config.yaml", flinkConfigYAML(l, p))
	golden(t, "log4j2.properties", log4jProperties)
	for _, s := range jarSets {
		golden(t, filepath.Join("poms", s.name+".xml"), s.pom())
	}
}

func TestJarSetsAreResolvedFromTheirOwnDirectories(t *testing.T) {
	dirs := map[string]bool{}
	for _, s := range jarSets {
		if dirs[s.dir] {
			t.Errorf("two jar sets resolve into %s", s.dir)
		}
		dirs[s.dir] = true
		for _, a := range s.artifacts {
			if strings.Count(a, ":") != 2 {
				t.Errorf("%s: artifact %q is not group:artifact:version", s.name, a)
			}
			if strings.Contains(a, "flink-table-planner_") {
				t.Errorf("%s: %s must not sit beside flink-table-planner-loader", s.name, a)
			}
		}
	}
	if got := jarSets[3].mavenArgs("pom.xml", "out"); !strings.Contains(strings.Join(got, " "), "-DexcludeGroupIds=org.apache.kafka,org.slf4j") {
		t.Errorf("debezium plugin must leave Kafka's and SLF4J's classes to Connect: %v", got)
	}
}

func TestEnv(t *testing.T) {
	c := newCluster("/cluster", DefaultPorts(), credential{User: "cdcq", Password: "pw"}, credential{User: "cdcq-test", Password: "kpw"})
	want := `export CDCQ_KAFKA_BROKERS=127.0.0.1:9092
export CDCQ_CONNECT_URL=http://127.0.0.1:8083
export CDCQ_FLINK_SQL_GATEWAY_URL=http://127.0.0.1:8084
export CDCQ_FLINK_REST_URL=http://127.0.0.1:8081
export CDCQ_CONNECT_SECRETS_DIR=/cluster/secrets
export CDCQ_CONNECT_USERNAME=cdcq
export CDCQ_CONNECT_PASSWORD=pw
export CDCQ_TEST_KAFKA_SASL_BROKERS=127.0.0.1:9094
export CDCQ_TEST_KAFKA_SASL_USERNAME=cdcq-test
export CDCQ_TEST_KAFKA_SASL_PASSWORD=kpw
export CDCQ_TEST_KAFKA_SASL_CA_FILE=/cluster/tls/ca.pem
`
	if diff := cmp.Diff(want, c.Env()); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
	if got, want := c.ConnectAuthorization(), "Basic Y2RjcTpwdw=="; got != want {
		t.Errorf("ConnectAuthorization = %q, want %q", got, want)
	}
	if got, want := c.ConnectSecretsDir(), "/cluster/secrets"; got != want {
		t.Errorf("ConnectSecretsDir = %q, want %q", got, want)
	}
	if got, want := c.LogFile(Connect), "/cluster/logs/connect.log"; got != want {
		t.Errorf("LogFile = %q, want %q", got, want)
	}
	sasl := []string{c.KafkaSASLBrokers(), c.KafkaSASLUsername(), c.KafkaSASLPassword(), c.KafkaSASLCAFile()}
	if diff := cmp.Diff([]string{"127.0.0.1:9094", "cdcq-test", "kpw", "/cluster/tls/ca.pem"}, sasl); diff != "" {
		t.Errorf("Kafka SASL_SSL listener (-want +got):\n%s", diff)
	}
	// The env file runs cdcq on the PLAINTEXT listener: it must not set
	// cdcq's own Kafka security variables.
	for _, kv := range c.EnvVars() {
		if strings.HasPrefix(kv, "CDCQ_KAFKA_") && !strings.HasPrefix(kv, "CDCQ_KAFKA_BROKERS=") {
			t.Errorf("env sets %s", kv)
		}
	}
}

func TestFromEnvFile(t *testing.T) {
	tests := []struct {
		name        string
		text        string
		wantSecrets string
		wantAuth    credential
		wantSASL    credential
		wantErr     string
	}{
		{name: "as_up_writes_it", text: newCluster("/c", DefaultPorts(), credential{User: "u", Password: "p=w"}, credential{User: "k", Password: "k=pw"}).Env(),
			wantSecrets: "/c/secrets", wantAuth: credential{User: "u", Password: "p=w"}, wantSASL: credential{User: "k", Password: "k=pw"}},
		{name: "without_export_and_quoted", text: "# local\nCDCQ_KAFKA_BROKERS=127.0.0.1:9092\nCDCQ_CONNECT_URL=\"http://127.0.0.1:8083\"\n" +
			"CDCQ_FLINK_SQL_GATEWAY_URL='http://127.0.0.1:8084'\nCDCQ_FLINK_REST_URL=http://127.0.0.1:8081\n"},
		{name: "missing_variable", text: "CDCQ_KAFKA_BROKERS=127.0.0.1:9092\n", wantErr: "does not set CDCQ_"},
		{name: "not_a_variable", text: "hello\n", wantErr: "is not KEY=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "env")
			if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := FromEnvFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := newCluster("", DefaultPorts(), tt.wantAuth, tt.wantSASL).vars
			want.SecretsDir = tt.wantSecrets
			if tt.wantSASL.User != "" {
				want.KafkaSASLCAFile = "/c/tls/ca.pem"
			}
			if diff := cmp.Diff(want, c.vars); diff != "" {
				t.Errorf("vars (-want +got):\n%s", diff)
			}
			if c.Dir() != "" || c.LogFile(Kafka) != "" {
				t.Errorf("a cluster from an env file has no directory")
			}
			if err := c.Down(); err == nil {
				t.Errorf("Down of a cluster from an env file succeeded")
			}
		})
	}
}

func TestParseBashJavaUtils(t *testing.T) {
	out := `INFO  some log line
BASH_JAVA_UTILS_EXEC_RESULT:-Xmx469762048 -Xms469762048 -XX:MaxMetaspaceSize=268435456
BASH_JAVA_UTILS_EXEC_RESULT:-D jobmanager.memory.heap.size=469762048b -D jobmanager.memory.jvm-overhead.max=201326592b
`
	jvm, dyn, err := parseBashJavaUtils(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"-Xmx469762048", "-Xms469762048", "-XX:MaxMetaspaceSize=268435456"}, jvm); diff != "" {
		t.Errorf("jvm (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"-D", "jobmanager.memory.heap.size=469762048b", "-D", "jobmanager.memory.jvm-overhead.max=201326592b"}, dyn); diff != "" {
		t.Errorf("dynamic (-want +got):\n%s", diff)
	}
	if _, _, err := parseBashJavaUtils("Exception in thread main\n"); err == nil {
		t.Error("output without results parsed")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{Dir: "x"}},
		{name: "no_dir", cfg: Config{}, wantErr: "Dir is required"},
		{name: "port_twice", cfg: Config{Dir: "x", Ports: Ports{Kafka: 9000, SQLGateway: 9000}}, wantErr: "both use port 9000"},
		{name: "port_out_of_range", cfg: Config{Dir: "x", Ports: Ports{Connect: 70000}}, wantErr: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestChoosePorts(t *testing.T) {
	p, err := choosePorts(Ports{Connect: 0}, true)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, np := range p.named() {
		if *np.port == 0 || seen[*np.port] {
			t.Errorf("%s port %d is zero or taken twice", np.name, *np.port)
		}
		seen[*np.port] = true
	}
	if err := conflictingPorts(Ports{Kafka: p.Kafka}, p); err != nil {
		t.Errorf("the running cluster's own port conflicts: %v", err)
	}
	if err := conflictingPorts(Ports{Kafka: p.Kafka + 1}, p); err == nil {
		t.Error("another port than the running cluster's did not conflict")
	}
}
