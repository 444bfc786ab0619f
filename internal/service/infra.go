// Package service is cdcq's composition root: it builds the API, the worker
// and the projector from configuration, and in dev mode starts the broker
// and the Postgres server they need. cmd/cdcq only parses arguments and
// calls into here.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/kafkabus"
	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/pgcluster"
	"github.com/cdcq/cdcq/internal/pgsession"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/migrations"
)

// Infra is what every part needs: where Kafka and the job-state database
// are, and the key that seals connection strings.
type Infra struct {
	// Brokers are Kafka's bootstrap addresses and KafkaSecurity how cdcq
	// connects to them; Kafka() puts them together, for every client.
	Brokers       []string
	KafkaSecurity kafkasec.Security
	// Names are the control plane's topics and consumer groups.
	Names       names.ControlPlane
	DatabaseURL string
	Pool        *pgxpool.Pool
	// LeaseTimeout is config.Config.LeaseTimeout: the timeout of the
	// job-state sessions that hold leases, elections and command locks.
	LeaseTimeout time.Duration
	Sealer       *secret.Sealer
	// Embedded says which servers this process started itself.
	EmbeddedKafka    bool
	EmbeddedPostgres bool
	closers          []func()
}

// leaseTimeout is LeaseTimeout, or pgsession's default when unset.
func (i *Infra) leaseTimeout() time.Duration {
	if i.LeaseTimeout == 0 {
		return pgsession.DefaultTimeout
	}
	return i.LeaseTimeout
}

// Kafka is the cluster as cdcq's clients reach it.
func (i *Infra) Kafka() kafkasec.Cluster {
	return kafkasec.Cluster{Brokers: i.Brokers, Security: i.KafkaSecurity}
}

// Close stops what Prepare started, in reverse order.
func (i *Infra) Close() {
	for k := len(i.closers) - 1; k >= 0; k-- {
		i.closers[k]()
	}
	i.closers = nil
}

// Prepare resolves the infrastructure. In dev mode, missing brokers, database
// and key are provided (in-process broker, private Postgres server, key file
// in the data directory); otherwise they are required. It creates the
// topics and applies the migrations.
func Prepare(ctx context.Context, cfg config.Config, dev bool, logger *slog.Logger) (_ *Infra, err error) {
	if cfg.KafkaNamespace != "" {
		if err := names.ValidateNamespace(cfg.KafkaNamespace); err != nil {
			return nil, fmt.Errorf("CDCQ_KAFKA_NAMESPACE %w", err)
		}
	}
	inf := &Infra{Brokers: cfg.KafkaBrokers, DatabaseURL: cfg.DatabaseURL, Names: names.ControlPlaneNames(cfg.KafkaNamespace),
		LeaseTimeout: cfg.LeaseTimeout}
	defer func() {
		if err != nil {
			inf.Close()
		}
	}()
	if inf.KafkaSecurity, err = kafkaSecurity(cfg, dev); err != nil {
		return nil, err
	}
	if inf.Sealer, err = LoadSealer(cfg, dev); err != nil {
		return nil, err
	}
	if len(inf.Brokers) == 0 {
		if !dev {
			return nil, errors.New("CDCQ_KAFKA_BROKERS is required outside `cdcq dev`")
		}
		b, err := kafkabus.StartEmbedded(filepath.Join(cfg.DataDir, "kafka"), cfg.DevKafkaPort)
		if err != nil {
			return nil, fmt.Errorf("%w (is port %d taken? set CDCQ_DEV_KAFKA_PORT)", err, cfg.DevKafkaPort)
		}
		inf.closers = append(inf.closers, b.Close)
		inf.Brokers = b.Brokers()
		inf.EmbeddedKafka = true
	}
	if inf.DatabaseURL == "" {
		if !dev {
			return nil, errors.New("CDCQ_DATABASE_URL is required outside `cdcq dev`")
		}
		c, err := pgcluster.Start(ctx, pgcluster.Config{
			DataDir: filepath.Join(cfg.DataDir, "postgres"),
			Port:    cfg.DevPostgresPort,
			Durable: true,
		})
		if err != nil {
			return nil, fmt.Errorf("%w (is port %d taken? set CDCQ_DEV_POSTGRES_PORT)", err, cfg.DevPostgresPort)
		}
		inf.closers = append(inf.closers, func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.Stop(stopCtx); err != nil {
				logger.Warn("stop dev postgres", "error", err)
			}
		})
		inf.DatabaseURL = c.URL()
		inf.EmbeddedPostgres = true
	}
	// Wrong TLS or SASL settings fail here, clearly, rather than as
	// retries in every client later.
	if err := inf.Kafka().Ping(ctx); err != nil {
		return nil, fmt.Errorf("%w (check CDCQ_KAFKA_BROKERS, CDCQ_KAFKA_TLS* and CDCQ_KAFKA_SASL_*)", err)
	}
	if err := kafkabus.EnsureTopics(ctx, inf.Kafka(), Topics(inf.Names, cfg.Partitions)...); err != nil {
		return nil, err
	}
	if err := migrations.Up(ctx, inf.DatabaseURL); err != nil {
		return nil, err
	}
	poolCfg, err := pgxpool.ParseConfig(inf.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("job-state database: %w", err)
	}
	// A worker paused in the middle of a transaction would hold its row
	// locks (a query's progress row, a lease's epoch) until TCP noticed;
	// the server ends such a transaction instead, a while after the
	// worker's leases moved (no transaction of cdcq's waits on its client
	// that long).
	poolCfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt((6 * inf.leaseTimeout()).Milliseconds(), 10)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("connect to job-state database: %w", err)
	}
	inf.closers = append(inf.closers, pool.Close)
	inf.Pool = pool
	return inf, nil
}

// Topics are the control-plane topics cdcq creates.
func Topics(n names.ControlPlane, partitions int32) []kafkabus.Topic {
	return []kafkabus.Topic{
		{Name: n.Commands, Partitions: partitions},
		{Name: n.CommandsDead, Partitions: 1},
		{Name: n.Events, Partitions: partitions},
		{Name: n.EventsDead, Partitions: 1},
	}
}

// LoadSealer builds the Sealer from CDCQ_SECRET_KEY and
// CDCQ_SECRET_KEYS_PREVIOUS. Without CDCQ_SECRET_KEY, dev mode uses the key
// file in the data directory (creating it), and any other mode fails.
func LoadSealer(cfg config.Config, dev bool) (*secret.Sealer, error) {
	var key []byte
	var err error
	switch {
	case cfg.SecretKey != "":
		if key, err = secret.ParseKey(cfg.SecretKey); err != nil {
			return nil, fmt.Errorf("CDCQ_SECRET_KEY: %w", err)
		}
	case dev:
		if key, err = secret.LoadOrCreateKeyFile(filepath.Join(cfg.DataDir, "secret.key")); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("CDCQ_SECRET_KEY is required: a base64 32-byte key shared by the api and the workers (generate one with `cdcq keygen`)")
	}
	previous, err := secret.ParseKeys(cfg.SecretKeysPrevious)
	if err != nil {
		return nil, fmt.Errorf("CDCQ_SECRET_KEYS_PREVIOUS: %w", err)
	}
	return secret.NewSealer(key, previous...)
}

// kafkaSecurity loads the Kafka TLS and SASL settings. cdcq dev's
// in-process broker speaks plaintext only, so settings without
// CDCQ_KAFKA_BROKERS are refused rather than ignored.
func kafkaSecurity(cfg config.Config, dev bool) (kafkasec.Security, error) {
	sec, err := kafkasec.Load(kafkaSettings(cfg))
	if err != nil {
		return kafkasec.Security{}, err
	}
	if sec.Secured() && len(cfg.KafkaBrokers) == 0 && dev {
		return kafkasec.Security{}, errors.New("CDCQ_KAFKA_TLS and CDCQ_KAFKA_SASL_* need CDCQ_KAFKA_BROKERS: the in-process broker of cdcq dev speaks plaintext only")
	}
	return sec, nil
}

// kafkaSettings are the Kafka security settings of cfg.
func kafkaSettings(cfg config.Config) kafkasec.Settings {
	return kafkasec.Settings{
		TLS:       cfg.KafkaTLS,
		CAFile:    cfg.KafkaTLSCAFile,
		CertFile:  cfg.KafkaTLSCertFile,
		KeyFile:   cfg.KafkaTLSKeyFile,
		Mechanism: cfg.KafkaSASLMechanism,
		Username:  cfg.KafkaSASLUsername,
		Password:  cfg.KafkaSASLPassword.Reveal(),
	}
}
