package service

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/kafkasec/kafkasectest"
	"github.com/cdcq/cdcq/internal/pgtest"
	"github.com/cdcq/cdcq/internal/secret"
)

const (
	secureUser     = "cdcq-service"
	securePassword = `pa"ss\word 'x'`
)

// secureConfig is the configuration of a deployment on broker b with
// SCRAM-SHA-256 over TLS, the CA given as a file.
func secureConfig(b kafkasectest.Broker, password string) config.Config {
	return config.Config{
		KafkaBrokers: b.Brokers, KafkaTLS: true, KafkaTLSCAFile: b.CAFile,
		KafkaSASLMechanism: kafkasec.ScramSHA256, KafkaSASLUsername: secureUser,
		KafkaSASLPassword: config.Secret(password),
	}
}

// From createDatabaseConnection and createCachedQuery to the result, with
// the API, the worker, the embedded capture and the embedded engine all on
// a broker that takes only SCRAM-SHA-256 over TLS (signed by a CA made for
// the test): the result must equal PostgreSQL's.
func TestEmbeddedQueryOnSCRAMOverTLSKafka(t *testing.T) {
	b := kafkasectest.Start(t, kafkasec.ScramSHA256, secureUser, securePassword)
	// The broker really refuses what is not TLS with the right password,
	// so the system cannot have got through without them.
	refused(t, kafkasec.Cluster{Brokers: b.Brokers}, "plaintext")
	wrong, err := kafkasec.Load(kafkaSettings(secureConfig(b, "wrong")))
	if err != nil {
		t.Fatal(err)
	}
	refused(t, kafkasec.Cluster{Brokers: b.Brokers, Security: wrong}, "wrong password")

	s := startSystemOn(t, secureConfig(b, securePassword), func(*Infra, config.Config, *slog.Logger) []WorkerDeps { return nil })
	if got := s.inf.KafkaSecurity.String(); got != "SASL_SSL SCRAM-SHA-256 as "+secureUser {
		t.Fatalf("security = %q", got)
	}
	s.startEmbeddedWorker()

	src, srcConn, w := shopSource(t, 21)
	w.run(t, 20, 10) // history for the snapshot

	env := uniqueEnv("sasl")
	res := s.postForm("/createDatabaseConnection", map[string]string{"connectionString": src, "environmentId": env})
	if res.status != http.StatusCreated {
		t.Fatalf("createDatabaseConnection: %d %s", res.status, res.body)
	}
	res = s.postJSON("/createCachedQuery", map[string]string{"connectionString": src, "environmentId": env, "schema": shopSchema, "sqlQuery": differentialQueries[0]})
	if res.status != http.StatusCreated {
		t.Fatalf("createCachedQuery: %d %s", res.status, res.body)
	}
	id := res.json(t)["id"].(string)
	w.run(t, 20, 10) // changes streamed by the capture
	s.compareWithPostgres(t, srcConn, []string{id})
	if strings.Contains(s.logs.String(), securePassword) {
		t.Errorf("the logs show the Kafka password")
	}
}

// refused fails the test unless c cannot reach the broker.
func refused(t *testing.T, c kafkasec.Cluster, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err == nil {
		t.Fatalf("%s: the broker let the client in", what)
	}
}

// Prepare reaches Kafka first: a wrong password, or no TLS, stops it with
// an error that says what was tried, and never the password.
func TestPrepareRefusesWrongKafkaSecurity(t *testing.T) {
	b := kafkasectest.Start(t, kafkasec.ScramSHA256, secureUser, securePassword)
	noTLS := secureConfig(b, securePassword)
	noTLS.KafkaTLS, noTLS.KafkaTLSCAFile = false, ""
	for _, c := range []struct {
		name string
		cfg  config.Config
		want string
	}{
		{"wrong password", secureConfig(b, "hunter2"), "SASL_SSL SCRAM-SHA-256 as " + secureUser},
		{"no TLS", noTLS, "SASL_PLAINTEXT SCRAM-SHA-256 as " + secureUser},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.DatabaseURL = pgtest.NewDatabase(t)
			cfg.SecretKey = secret.NewKey()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			inf, err := Prepare(ctx, cfg, false, slog.New(slog.DiscardHandler))
			if err == nil {
				inf.Close()
				t.Fatal("Prepare succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "CDCQ_KAFKA_SASL_") {
				t.Errorf("error %q does not say %q and which settings to check", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), securePassword) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// cdcq dev's in-process broker is plaintext: Kafka security settings
// without brokers are refused, not ignored.
func TestDevRefusesSecurityWithoutBrokers(t *testing.T) {
	cfg := config.Config{KafkaTLS: true, DataDir: t.TempDir()}
	_, err := Prepare(t.Context(), cfg, true, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "CDCQ_KAFKA_BROKERS") {
		t.Fatalf("error %v, want one asking for CDCQ_KAFKA_BROKERS", err)
	}
}
