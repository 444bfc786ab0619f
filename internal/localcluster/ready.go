package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The readiness checks ask the real endpoints; each call is one attempt.

var httpClient = &http.Client{Timeout: 3 * time.Second}

// debeziumPostgresConnector is the class Connect must list among its
// plugins.
const debeziumPostgresConnector = "io.debezium.connector.postgresql.PostgresConnector"

// kafkaReady: the broker answers a metadata request and names a
// controller. opts say how to reach it (TLS, SASL); none for plaintext.
func kafkaReady(ctx context.Context, brokers string, opts ...kgo.Opt) error {
	opts = append([]kgo.Opt{kgo.SeedBrokers(brokers), kgo.DialTimeout(2 * time.Second), kgo.RequestRetries(0)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("kafka metadata from %s: %w", brokers, err)
	}
	if len(m.Brokers) == 0 || m.Controller < 0 {
		return fmt.Errorf("kafka at %s has no controller yet", brokers)
	}
	return nil
}

// connectReady: Connect's REST API lists the Debezium PostgreSQL connector,
// and the worker has joined its group (GET /connectors answers only then).
// The requests authenticate as auth (the zero credential: not at all).
func connectReady(ctx context.Context, baseURL string, auth credential) error {
	var plugins []struct {
		Class string `json:"class"`
	}
	if err := getJSONAuth(ctx, baseURL+"/connector-plugins", auth, &plugins); err != nil {
		return fmt.Errorf("kafka connect: %w", err)
	}
	found := false
	for _, p := range plugins {
		found = found || p.Class == debeziumPostgresConnector
	}
	if !found {
		return fmt.Errorf("kafka connect at %s does not list %s among %d plugins", baseURL, debeziumPostgresConnector, len(plugins))
	}
	var connectors []string
	if err := getJSONAuth(ctx, baseURL+"/connectors", auth, &connectors); err != nil {
		return fmt.Errorf("kafka connect: %w", err)
	}
	return nil
}

// flinkReady: the JobManager answers and has a TaskManager, and with
// freeSlot a free slot (at start-up; a cluster in use may have none free).
func flinkReady(ctx context.Context, baseURL string, freeSlot bool) error {
	var o struct {
		TaskManagers   int `json:"taskmanagers"`
		SlotsAvailable int `json:"slots-available"`
	}
	if err := getJSON(ctx, baseURL+"/overview", &o); err != nil {
		return fmt.Errorf("flink jobmanager: %w", err)
	}
	if o.TaskManagers == 0 || (freeSlot && o.SlotsAvailable == 0) {
		return fmt.Errorf("flink at %s has %d taskmanagers, %d free slots", baseURL, o.TaskManagers, o.SlotsAvailable)
	}
	return nil
}

// jobManagerAnswers: the JobManager's REST API answers (the SQL Gateway may
// start).
func jobManagerAnswers(ctx context.Context, baseURL string) error {
	var o map[string]any
	if err := getJSON(ctx, baseURL+"/overview", &o); err != nil {
		return fmt.Errorf("flink jobmanager: %w", err)
	}
	return nil
}

// gatewayReady: the SQL Gateway answers /v1/info.
func gatewayReady(ctx context.Context, baseURL string) error {
	var info map[string]any
	if err := getJSON(ctx, baseURL+"/v1/info", &info); err != nil {
		return fmt.Errorf("flink sql gateway: %w", err)
	}
	return nil
}

func getJSON(ctx context.Context, url string, v any) error {
	return getJSONAuth(ctx, url, credential{}, v)
}

// getJSONAuth is getJSON with basic authentication as auth (none for the
// zero credential).
func getJSONAuth(ctx context.Context, url string, auth credential, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if auth.User != "" {
		req.SetBasicAuth(auth.User, auth.Password)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// errNotReady wraps the last readiness error when the start timeout ends.
var errNotReady = errors.New("not ready")
