package localcluster

import (
	"strings"
	"testing"
)

func TestConnectWorkerConfiguration(t *testing.T) {
	if _, err := NewConnectWorker(ConnectWorkerConfig{Dir: t.TempDir(), KafkaBrokers: "127.0.0.1:9092"}); err == nil {
		t.Error("a worker without a group was accepted")
	}
	w, err := NewConnectWorker(ConnectWorkerConfig{Dir: t.TempDir(), KafkaBrokers: "127.0.0.1:9092", GroupID: "test-group"})
	if err != nil {
		t.Fatal(err)
	}
	if w.wcfg.Port == 0 || w.URL() == "" {
		t.Fatalf("no port chosen: %+v", w.wcfg)
	}
	if w.Running() {
		t.Error("a worker not started runs")
	}
	if err := w.Kill(); err != nil {
		t.Errorf("killing a worker not started: %v", err)
	}
	props := workerProperties("127.0.0.1:9092", w.wcfg.Port, "test-group", "test-group", "/plugins", "/secrets")
	for _, want := range []string{
		"bootstrap.servers=127.0.0.1:9092\n", "group.id=test-group\n", "config.storage.topic=test-group-configs\n",
		"offset.storage.topic=test-group-offsets\n", "status.storage.topic=test-group-status\n",
		"listeners=http://127.0.0.1:" + w.URL()[len("http://127.0.0.1:"):] + "\n", "plugin.path=/plugins\n",
		"config.providers=file,dir\n",
		"config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider\n",
		"config.providers.dir.param.allowed.paths=/secrets\n",
	} {
		if !strings.Contains(props, want) {
			t.Errorf("worker properties lack %q:\n%s", want, props)
		}
	}
}
