package kafkasec_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcq/cdcq/internal/kafkasec"
	"github.com/cdcq/cdcq/internal/kafkasec/kafkasectest"
)

const (
	user     = "cdcq"
	password = `s3cr"et\pw`
)

func load(t *testing.T, s kafkasec.Settings) kafkasec.Security {
	t.Helper()
	sec, err := kafkasec.Load(s)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return sec
}

// TestFranzGoSCRAMOverTLS: a franz-go client produces and reads back a
// record with the right settings, and fails clearly with a wrong password,
// an unrelated CA or no TLS.
func TestFranzGoSCRAMOverTLS(t *testing.T) {
	for _, mech := range []string{kafkasec.ScramSHA256, kafkasec.ScramSHA512, kafkasec.Plain} {
		t.Run(mech, func(t *testing.T) {
			b := kafkasectest.Start(t, mech, user, password)
			good := kafkasec.Settings{CAFile: b.CAFile, Mechanism: mech, Username: user, Password: password}
			roundTrip(t, kafkasec.Cluster{Brokers: b.Brokers, Security: load(t, good)})

			wrongPass := good
			wrongPass.Password = "wrong"
			err := pingErr(t, kafkasec.Cluster{Brokers: b.Brokers, Security: load(t, wrongPass)})
			// kfake drops a connection that fails to authenticate (a real
			// broker answers SASL_AUTHENTICATION_FAILED first); Ping's error
			// says which security was tried.
			if err == nil || !strings.Contains(err.Error(), "SASL_SSL "+mech+" as cdcq") {
				t.Errorf("wrong password: err = %v, want a failure naming the security", err)
			}
			if err != nil && strings.Contains(err.Error(), "wrong") {
				t.Errorf("error shows the password: %v", err)
			}

			otherCA := good
			otherCA.CAFile = b.OtherCAFile
			err = pingErr(t, kafkasec.Cluster{Brokers: b.Brokers, Security: load(t, otherCA)})
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("unrelated CA: err = %v, want a certificate error", err)
			}

			noTLS := kafkasec.Settings{Mechanism: mech, Username: user, Password: password}
			if err := pingErr(t, kafkasec.Cluster{Brokers: b.Brokers, Security: load(t, noTLS)}); err == nil {
				t.Errorf("without TLS: ping succeeded against a TLS-only broker")
			}
		})
	}
}

func pingErr(t *testing.T, c kafkasec.Cluster) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return c.Ping(ctx)
}

func roundTrip(t *testing.T, c kafkasec.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cl, err := c.NewClient(kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			if string(recs[0].Value) != "hello" {
				t.Fatalf("read %q, want hello", recs[0].Value)
			}
			return
		}
	}
}

// TestSaramaSCRAMOverTLS: Sarama, configured by ConfigureSarama, produces
// over SCRAM and TLS, and is refused with a wrong password.
func TestSaramaSCRAMOverTLS(t *testing.T) {
	for _, mech := range []string{kafkasec.ScramSHA256, kafkasec.ScramSHA512, kafkasec.Plain} {
		t.Run(mech, func(t *testing.T) {
			b := kafkasectest.Start(t, mech, user, password)
			good := kafkasec.Settings{CAFile: b.CAFile, Mechanism: mech, Username: user, Password: password}
			if err := saramaProduce(b.Brokers, load(t, good)); err != nil {
				t.Fatalf("produce with the right settings: %v", err)
			}
			wrong := good
			wrong.Password = "wrong"
			err := saramaProduce(b.Brokers, load(t, wrong))
			if err == nil {
				t.Errorf("wrong password: produced anyway")
			}
			noTLS := kafkasec.Settings{Mechanism: mech, Username: user, Password: password}
			if err := saramaProduce(b.Brokers, load(t, noTLS)); err == nil {
				t.Errorf("without TLS: produced to a TLS-only broker")
			}
		})
	}
}

func saramaProduce(brokers []string, sec kafkasec.Security) error {
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.Producer.Return.Successes = true
	c.Net.DialTimeout = 3 * time.Second
	c.Net.ReadTimeout = 3 * time.Second
	c.Metadata.Retry.Max = 0
	sec.ConfigureSarama(c)
	p, err := sarama.NewSyncProducer(brokers, c)
	if err != nil {
		return err
	}
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "s", Value: sarama.StringEncoder("hi")})
	return err
}

// TestFlinkProperties: the connector properties for each combination, with
// the JAAS values escaped and the PEMs inline.
func TestFlinkProperties(t *testing.T) {
	dir := t.TempDir()
	caFile := kafkasectest.WriteCA(t, dir)
	certFile, keyFile := kafkasectest.WriteClientPair(t, dir)
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := os.ReadFile(certFile)

	if p := load(t, kafkasec.Settings{}).FlinkProperties(); p != nil {
		t.Errorf("plaintext: %v, want none", p)
	}
	p := load(t, kafkasec.Settings{Mechanism: kafkasec.Plain, Username: `a"b`, Password: password}).FlinkProperties()
	want := map[string]string{
		"security.protocol": "SASL_PLAINTEXT",
		"sasl.mechanism":    "PLAIN",
		"sasl.jaas.config":  `org.apache.kafka.common.security.plain.PlainLoginModule required username="a\"b" password="s3cr\"et\\pw";`,
	}
	equal(t, p, want)

	p = load(t, kafkasec.Settings{CAFile: caFile, CertFile: certFile, KeyFile: keyFile,
		Mechanism: kafkasec.ScramSHA512, Username: user, Password: "pw"}).FlinkProperties()
	if !strings.HasPrefix(p["ssl.keystore.key"], "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("ssl.keystore.key is not PKCS #8 PEM: %.40q", p["ssl.keystore.key"])
	}
	delete(p, "ssl.keystore.key")
	equal(t, p, map[string]string{
		"security.protocol":              "SASL_SSL",
		"sasl.mechanism":                 "SCRAM-SHA-512",
		"sasl.jaas.config":               `org.apache.kafka.common.security.scram.ScramLoginModule required username="cdcq" password="pw";`,
		"ssl.truststore.type":            "PEM",
		"ssl.truststore.certificates":    string(ca),
		"ssl.keystore.type":              "PEM",
		"ssl.keystore.certificate.chain": string(cert),
	})

	equal(t, load(t, kafkasec.Settings{TLS: true}).FlinkProperties(), map[string]string{"security.protocol": "SSL"})
}

func equal(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d properties %v, want %d", len(got), got, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestLoadErrors: every bad setting is named, with its path, and the
// password never shows.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	certFile, keyFile := kafkasectest.WriteClientPair(t, dir)
	for _, c := range []struct {
		name string
		s    kafkasec.Settings
		want []string
	}{
		{"missing CA", kafkasec.Settings{CAFile: missing}, []string{"CDCQ_KAFKA_TLS_CA_FILE", missing}},
		{"garbage CA", kafkasec.Settings{CAFile: garbage}, []string{"CDCQ_KAFKA_TLS_CA_FILE", garbage}},
		{"cert only", kafkasec.Settings{CertFile: certFile}, []string{"CDCQ_KAFKA_TLS_KEY_FILE"}},
		{"missing cert", kafkasec.Settings{CertFile: missing, KeyFile: keyFile}, []string{"CDCQ_KAFKA_TLS_CERT_FILE", missing}},
		{"missing key", kafkasec.Settings{CertFile: certFile, KeyFile: missing}, []string{"CDCQ_KAFKA_TLS_KEY_FILE", missing}},
		{"mismatched pair", kafkasec.Settings{CertFile: certFile, KeyFile: garbage}, []string{"CDCQ_KAFKA_TLS_KEY_FILE", garbage}},
		{"unknown mechanism", kafkasec.Settings{Mechanism: "GSSAPI", Username: "u", Password: "hunter2"}, []string{"CDCQ_KAFKA_SASL_MECHANISM", "GSSAPI"}},
		{"no user", kafkasec.Settings{Mechanism: kafkasec.Plain, Password: "hunter2"}, []string{"CDCQ_KAFKA_SASL_USERNAME"}},
		{"no password", kafkasec.Settings{Mechanism: kafkasec.Plain, Username: "u"}, []string{"CDCQ_KAFKA_SASL_PASSWORD"}},
		{"no mechanism", kafkasec.Settings{Username: "u", Password: "hunter2"}, []string{"CDCQ_KAFKA_SASL_MECHANISM"}},
		{"line break", kafkasec.Settings{Mechanism: kafkasec.Plain, Username: "u", Password: "hunter2\n"}, []string{"CDCQ_KAFKA_SASL_PASSWORD"}},
	} {
		_, err := kafkasec.Load(c.s)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", c.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %q shows the password", c.name, err)
		}
	}
}

// TestTLSWithoutSASL: TLS alone (SSL), with a client certificate loaded,
// reaches a TLS-only broker; plaintext does not.
func TestTLSWithoutSASL(t *testing.T) {
	b := kafkasectest.Start(t, "", "", "")
	certFile, keyFile := kafkasectest.WriteClientPair(t, t.TempDir())
	sec := load(t, kafkasec.Settings{CAFile: b.CAFile, CertFile: certFile, KeyFile: keyFile})
	if sec.String() != "SSL" {
		t.Errorf("String() = %q, want SSL", sec.String())
	}
	roundTrip(t, kafkasec.Cluster{Brokers: b.Brokers, Security: sec})
	if err := pingErr(t, kafkasec.Plaintext(b.Brokers...)); err == nil {
		t.Errorf("plaintext reached a TLS-only broker")
	}
}
