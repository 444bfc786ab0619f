package debezium

import (
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/cdcq/cdcq/handlers"
	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/kafkabus"
)

// ConnectorClass is Debezium's PostgreSQL source connector.
const ConnectorClass = "io.debezium.connector.postgresql.PostgresConnector"

// ConnectorConfig builds the Debezium PostgreSQL connector configuration
// for spec. The result holds the database password: it goes to Kafka
// Connect and nowhere else, and with Config.SecretsDir Capture.Ensure
// replaces it by a reference to a file before sending it. A spec that
// cannot be turned into a configuration is a jobs.TerminalError.
//
// Key names and values follow Debezium's PostgreSQL connector (3.1 or
// later, for time.precision.mode=isostring) and Kafka Connect's
// per-connector converter overrides.
func ConnectorConfig(spec handlers.CaptureSpec) (map[string]string, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	conn, err := connstr.Parse(spec.ConnectionString)
	if err != nil {
		return nil, jobs.Terminalf("connection string %w", err)
	}
	cfg := map[string]string{
		"connector.class": ConnectorClass,
		// Debezium's PostgreSQL connector only ever runs one task.
		"tasks.max": "1",
		// pgoutput ships with PostgreSQL 10+; no server plugin to install.
		"plugin.name": "pgoutput",

		"database.hostname": conn.Host,
		"database.port":     strconv.Itoa(conn.Port),
		"database.user":     conn.User,
		"database.password": conn.Password,
		"database.dbname":   conn.Database,

		"topic.prefix":     spec.TopicPrefix,
		"slot.name":        spec.SlotName,
		"publication.name": spec.PublicationName,
		// The connector creates the publication FOR ALL TABLES if missing;
		// cdcq drops it (and the slot) when the connection is deleted.
		"publication.autocreate.mode": "all_tables",
		"snapshot.mode":               "initial",
		// Heartbeats let the slot advance while captured tables are idle,
		// so it does not pin WAL written by other databases' traffic; every
		// second, because they also tell the embedded engine up to when its
		// result holds every commit (the API's lag).
		"heartbeat.interval.ms": "1000",

		// Value formats chosen so that Flink's debezium-json format (with
		// 'debezium-json.timestamp-format.standard' = 'ISO-8601') and the
		// embedded engine read every column without Connect schemas.
		"decimal.handling.mode": "string",
		"time.precision.mode":   "isostring",
		"binary.handling.mode":  "base64",
		// A delete is followed by a tombstone so that compacted topics
		// forget the row.
		"tombstones.on.delete": "true",
		// Debezium skips truncate events unless told otherwise ("t" is the
		// default of skipped.operations); a truncate must reach consumers so
		// that cached results drop the table's rows.
		"skipped.operations": "none",
		// Flink's debezium-json format (and any consumer that keeps no
		// state of its own) needs the old row of every update and delete:
		// the connector sets REPLICA IDENTITY FULL on each captured table
		// when it starts (pgoutput only; the role must own the tables).
		"replica.identity.autoset.values": ".*:FULL",
		// The slot must outlive connector restarts; only Delete drops it.
		"slot.drop.on.stop": "false",

		"key.converter":                  "org.apache.kafka.connect.json.JsonConverter",
		"key.converter.schemas.enable":   "false",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "false",
	}
	maps.Copy(cfg, TopicCreationConfig(kafkabus.InfiniteRetention))
	if mode := conn.Params["sslmode"]; mode != "" {
		// libpq and Debezium share the values disable, allow, prefer,
		// require, verify-ca and verify-full.
		cfg["database.sslmode"] = mode
	}
	return cfg, nil
}

// TopicCreationConfig makes Kafka Connect create the connector's topics
// as cdcq's embedded capture does (topic.creation.*, KIP-158; Connect
// workers have topic.creation.enable=true by default): change topics of
// one partition with kafkabus.ChangeTopicConfigs(retention), because a
// rebuild replays them and a TRUNCATE record, which has no key, would be
// refused by a compacted topic; heartbeat topics compacted
// (kafkabus.HeartbeatTopicConfigs). A replication factor of -1 is the
// broker's default. Topics that exist already keep their settings.
func TopicCreationConfig(retention time.Duration) map[string]string {
	cfg := map[string]string{
		"topic.creation.groups":                       "heartbeat",
		"topic.creation.default.partitions":           "1",
		"topic.creation.default.replication.factor":   "-1",
		"topic.creation.heartbeat.include":            `__debezium-heartbeat\..*`, // Debezium's topic.heartbeat.prefix
		"topic.creation.heartbeat.partitions":         "1",
		"topic.creation.heartbeat.replication.factor": "-1",
	}
	for k, v := range kafkabus.ChangeTopicConfigs(retention) {
		cfg["topic.creation.default."+k] = *v
	}
	for k, v := range kafkabus.HeartbeatTopicConfigs() {
		cfg["topic.creation.heartbeat."+k] = *v
	}
	return cfg
}

func checkSpec(spec handlers.CaptureSpec) error {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"ConnectorName", spec.ConnectorName},
		{"SlotName", spec.SlotName},
		{"PublicationName", spec.PublicationName},
		{"TopicPrefix", spec.TopicPrefix},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return jobs.Terminalf("capture spec of environment %q lacks %s", spec.EnvironmentID, strings.Join(missing, ", "))
	}
	return nil
}
