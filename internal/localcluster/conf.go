package localcluster

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cdcq/cdcq/internal/atomicfile"
)

// log4jProperties is the one log4j2 configuration of every JVM: everything
// to stdout, which the launcher sends to the component's log file.
const log4jProperties = `status = warn
appender.console.type = Console
appender.console.name = out
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} %-5p [%t] %c{1}: %m%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
`

// flinkJava17Opts are the module options Flink 1.20 needs on Java 17 (its
// env.java.opts.all default). No Flink script starts our JVMs, so they go on
// each Flink command line as well as into config.yaml.
var flinkJava17Opts = []string{
	"--add-exports=java.base/sun.net.util=ALL-UNNAMED",
	"--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED",
	"--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
	"--add-opens=java.base/java.lang=ALL-UNNAMED",
	"--add-opens=java.base/java.net=ALL-UNNAMED",
	"--add-opens=java.base/java.io=ALL-UNNAMED",
	"--add-opens=java.base/java.nio=ALL-UNNAMED",
	"--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
	"--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
	"--add-opens=java.base/java.text=ALL-UNNAMED",
	"--add-opens=java.base/java.time=ALL-UNNAMED",
	"--add-opens=java.base/java.util=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
}

// kafkaServerProperties configures one JVM as KRaft controller and broker,
// with a PLAINTEXT listener (everything but the security tests), and a
// SASL_SSL one that takes SCRAM-SHA-256 over TLS only: its key and
// certificate chain come from a PEM file (tls/server.pem), its users from
// the cluster's metadata (addSCRAMUser).
func kafkaServerProperties(l layout, p Ports) string {
	return fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d,%[4]s://127.0.0.1:%[5]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,%[4]s://127.0.0.1:%[5]d
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,%[4]s:SASL_SSL
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256
listener.name.%[6]s.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.%[6]s.ssl.keystore.type=PEM
listener.name.%[6]s.ssl.keystore.location=%[7]s
log.dirs=%[3]s
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
`, p.Kafka, p.KafkaController, l.kafkaData(), saslListener, p.KafkaSASL, strings.ToLower(saslListener), l.tlsServer())
}

// connectWorkerProperties configures a distributed Connect worker with
// schemaless JSON (what cdcq's consumers and Flink's debezium-json read) and
// the file and directory config providers, so that connector configs name
// secrets in files instead of carrying passwords.
//
// Its REST API asks for basic authentication (restAuthExtension; users in
// conf/connect/rest-credentials.properties, see writeRESTAuth).
func connectWorkerProperties(l layout, p Ports) string {
	return workerProperties(fmt.Sprintf("127.0.0.1:%d", p.Kafka), p.Connect, "cdcq-connect", connectTopics, l.plugins(), l.secrets()) +
		"rest.extension.classes=" + restAuthExtension + "\n"
}

// connectTopics prefixes the names of the cluster's Connect worker's
// topics.
const connectTopics = "connect"

// ConnectConfigTopic is the topic where the cluster's Connect worker keeps
// the connector configurations (config.storage.topic).
const ConnectConfigTopic = connectTopics + "-configs"

// workerProperties configures a distributed Connect worker of group on
// brokers, with its REST API on restPort and its config, offset and status
// topics named <topics>-configs, <topics>-offsets and <topics>-status.
//
// Its "dir" config provider (Kafka's DirectoryConfigProvider) resolves
// ${dir:<directory>:<file>} to the content of <directory>/<file> when a
// connector or task starts; allowed.paths limits it to secretsDir, where
// cdcq writes the source databases' passwords (CDCQ_CONNECT_SECRETS_DIR).
func workerProperties(brokers string, restPort int, group, topics, plugins, secretsDir string) string {
	return fmt.Sprintf(`bootstrap.servers=%[1]s
group.id=%[2]s
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
offset.storage.topic=%[3]s-offsets
offset.storage.replication.factor=1
offset.storage.partitions=1
config.storage.topic=%[3]s-configs
config.storage.replication.factor=1
status.storage.topic=%[3]s-status
status.storage.replication.factor=1
status.storage.partitions=1
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:%[4]d
rest.advertised.host.name=127.0.0.1
plugin.path=%[5]s
plugin.discovery=%[6]s
config.providers=file,dir
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider
config.providers.dir.param.allowed.paths=%[7]s
`, brokers, group, topics, restPort, plugins, connectPluginDiscovery, secretsDir)
}

// connectPluginDiscovery: service_load finds plugins through their
// ServiceLoader manifests instead of scanning every class (Debezium ships
// the manifests).
const connectPluginDiscovery = "service_load"

// flinkConfigYAML is Flink 1.20's config.yaml for the JobManager,
// TaskManager and SQL Gateway. Memory is sized for a developer's machine;
// the many slots let every cached query of a test run at parallelism 1.
// Checkpoints (cdcq's jobs take one every 10 s) go to data/checkpoints.
// The TaskManager starts with the JobManager and finds it not yet
// listening: cluster.registration.error-delay has it retry after 0.5 s
// instead of the default 10.
func flinkConfigYAML(l layout, p Ports) string {
	return fmt.Sprintf(`jobmanager:
  rpc:
    address: 127.0.0.1
    port: %d
  bind-host: 127.0.0.1
  memory:
    process:
      size: 1024m
taskmanager:
  host: 127.0.0.1
  bind-host: 127.0.0.1
  numberOfTaskSlots: 64
  memory:
    process:
      size: 2560m
    managed:
      fraction: 0.05
  cpu:
    cores: 2
rest:
  address: 127.0.0.1
  bind-address: 127.0.0.1
  port: %d
blob:
  server:
    port: %d
  storage:
    directory: %s
web:
  tmpdir: %s
cluster:
  registration:
    error-delay: 500ms
parallelism:
  default: 1
io:
  tmp:
    dirs: %s
execution:
  target: remote
  checkpointing:
    dir: %s
sql-gateway:
  endpoint:
    rest:
      address: 127.0.0.1
      bind-address: 127.0.0.1
      port: %d
env:
  java:
    opts:
      all: %s
`, p.FlinkRPC, p.FlinkREST, p.FlinkBlob, yamlString(l.tmp()), yamlString(l.tmp()), yamlString(l.tmp()),
		yamlString("file://"+filepath.Join(l.dir, "data", "checkpoints")), p.SQLGateway, strings.Join(flinkJava17Opts, " "))
}

// yamlString quotes a path for YAML (a JSON string is a YAML one).
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// writeConfig writes every component's configuration under conf/, and
// Connect's REST credentials.
func writeConfig(l layout, p Ports, auth credential) error {
	if err := writeRESTAuth(l, auth); err != nil {
		return err
	}
	for path, text := range map[string]string{
		l.conf("log4j2.properties"):            log4jProperties,
		l.conf("kafka", "server.properties"):   kafkaServerProperties(l, p),
		l.conf("connect", "worker.properties"): connectWorkerProperties(l, p),
		l.conf("flink", "config.yaml"):         flinkConfigYAML(l, p),
	} {
		if err := atomicfile.Write(path, []byte(text), 0o644); err != nil {
			return fmt.Errorf("localcluster: write %s: %w", path, err)
		}
	}
	return nil
}
