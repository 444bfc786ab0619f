package embedded

import (
	"testing"
	"time"
)

func TestHeartbeatTime(t *testing.T) {
	at := time.UnixMilli(1_796_655_600_123).UTC()
	for _, c := range []struct {
		value string
		ok    bool
	}{
		{`{"ts_ms":1796655600123}`, true}, // cdcq's capture; Debezium without schemas
		{`{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.Heartbeat"},"payload":{"ts_ms":1796655600123}}`, true},
		{`{"ts_ms":0}`, false},
		{`{}`, false},
		{`not json`, false},
		{``, false},
	} {
		got, ok := heartbeatTime([]byte(c.value))
		if ok != c.ok || (ok && !got.Equal(at)) {
			t.Errorf("heartbeatTime(%s) = %v, %v; want %v, %v", c.value, got, ok, at, c.ok)
		}
	}
}
