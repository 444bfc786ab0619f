package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcq/cdcq/internal/clustertest"
	"github.com/cdcq/cdcq/internal/config"
	"github.com/cdcq/cdcq/internal/localcluster"
	"github.com/cdcq/cdcq/internal/names"
)

// How long after Kafka Connect reports a new Debezium connector and its
// task RUNNING checkJobStatus says RUNNING, with the status poller's
// production period (10s), over three environments created at random
// points of a round. Kafka Connect cannot push: what shortens this is the
// poller observing pending connectors every second.
//
//	go test -run '^$' -bench ClusterStatusFreshness -benchtime 1x ./internal/service/
func BenchmarkClusterStatusFreshness(b *testing.B) {
	const interval = 10 * time.Second
	c := clustertest.Shared(b)
	base := config.Config{KafkaBrokers: strings.Split(c.KafkaBrokers(), ","), KafkaNamespace: uniqueEnv("sys"),
		StatusInterval: interval}
	useClusterConnect(b, &base, c)
	s := startSystemOn(b, base, func(inf *Infra, cfg config.Config, logger *slog.Logger) []WorkerDeps {
		deps, err := Engines(cfg, inf, logger)
		if err != nil {
			b.Fatal(err)
		}
		return []WorkerDeps{deps}
	})
	src, srcConn := sourceDatabase(b)
	if _, err := srcConn.Exec(context.Background(), freshnessTable+`;
		INSERT INTO orders SELECT i, i % 100 FROM generate_series(1, 1000) i`); err != nil {
		b.Fatal(err)
	}
	var lags []time.Duration
	for range b.N {
		for range 3 {
			time.Sleep(rand.N(interval))
			env := uniqueEnv("cfresh")
			body := map[string]string{"connectionString": src, "environmentId": env}
			if res := s.postForm("/createDatabaseConnection", body); res.status != http.StatusCreated {
				b.Fatalf("create connection: %d %s", res.status, res.body)
			}
			lags = append(lags, sampleLag(b, 3*interval+2*time.Minute, "the connector RUNNING, and checkJobStatus showing it",
				func() bool { return connectorRunning(c, names.ConnectorName(env)) },
				func() bool {
					res := s.postJSON("/checkJobStatus", body)
					var m struct {
						Status string `json:"status"`
					}
					return res.status == http.StatusOK && json.Unmarshal([]byte(res.body), &m) == nil && m.Status == "RUNNING"
				}))
			if res := s.postJSON("/deleteDatabaseConnection", body); res.status != http.StatusAccepted {
				b.Fatalf("delete connection: %d %s", res.status, res.body)
			}
		}
	}
	slices.Sort(lags)
	fmt.Printf("status poller every %s, Debezium: connector and task RUNNING to checkJobStatus RUNNING: p50 %s, max %s over %d (all: %v)\n",
		interval, lags[len(lags)/2].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond), len(lags), roundAll(lags))
	b.ReportMetric(float64(lags[len(lags)/2].Milliseconds()), "p50-ms")
}

// connectorRunning asks Kafka Connect whether a connector and all its
// tasks run.
func connectorRunning(c *localcluster.Cluster, name string) bool {
	res, err := connectGetResponse(c, "/connectors/"+name+"/status")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var st struct {
		Connector struct {
			State string `json:"state"`
		} `json:"connector"`
		Tasks []struct {
			State string `json:"state"`
		} `json:"tasks"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&st) != nil {
		return false
	}
	if st.Connector.State != "RUNNING" || len(st.Tasks) == 0 {
		return false
	}
	for _, t := range st.Tasks {
		if t.State != "RUNNING" {
			return false
		}
	}
	return true
}
