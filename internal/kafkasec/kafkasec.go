// Package kafkasec turns cdcq's Kafka security settings (TLS and SASL) into
// what each Kafka client needs: franz-go options, a Sarama configuration,
// and the Kafka connector properties of a Flink job.
//
// The zero Security is plaintext without authentication, which is what
// `cdcq dev`'s in-process broker speaks.
//
// This package must not import other cdcq packages.
package kafkasec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms cdcq supports.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Settings are the security settings as configured. The comments name the
// environment variables they come from.
type Settings struct {
	// TLS turns TLS on (CDCQ_KAFKA_TLS). Setting any file turns it on too.
	TLS bool
	// CAFile is a PEM file of the certificates that may sign the brokers'
	// certificates (CDCQ_KAFKA_TLS_CA_FILE). Empty: the system's roots.
	CAFile string
	// CertFile and KeyFile are the client's PEM certificate and key
	// (CDCQ_KAFKA_TLS_CERT_FILE, CDCQ_KAFKA_TLS_KEY_FILE): both or neither.
	CertFile string
	KeyFile  string
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or empty for no
	// SASL (CDCQ_KAFKA_SASL_MECHANISM).
	Mechanism string
	// Username and Password authenticate with Mechanism
	// (CDCQ_KAFKA_SASL_USERNAME, CDCQ_KAFKA_SASL_PASSWORD).
	Username string
	Password string
}

// Security is loaded Settings: files read and parsed. The zero value is
// plaintext without SASL. It is safe to copy and to share.
type Security struct {
	tls *tls.Config // nil: no TLS
	// caPEM, certPEM and keyPEM (PKCS #8) are for Flink, whose hosts
	// get them inline instead of as files.
	caPEM, certPEM, keyPEM string
	mechanism              string
	username, password     string
}

// Load reads the files Settings name and checks that they hold what they
// should. Errors name the variable and the path, never the password.
func Load(s Settings) (Security, error) {
	var sec Security
	if err := checkSASL(s); err != nil {
		return Security{}, err
	}
	sec.mechanism, sec.username, sec.password = s.Mechanism, s.Username, s.Password
	if !s.TLS && s.CAFile == "" && s.CertFile == "" && s.KeyFile == "" {
		return sec, nil
	}
	sec.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		b, err := os.ReadFile(s.CAFile)
		if err != nil {
			return Security{}, fmt.Errorf("CDCQ_KAFKA_TLS_CA_FILE: read %s: %w", s.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return Security{}, fmt.Errorf("CDCQ_KAFKA_TLS_CA_FILE: %s holds no PEM certificate", s.CAFile)
		}
		sec.tls.RootCAs = pool
		sec.caPEM = string(b)
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return Security{}, errors.New("set both CDCQ_KAFKA_TLS_CERT_FILE and CDCQ_KAFKA_TLS_KEY_FILE, or neither")
	}
	if s.CertFile != "" {
		cert, certPEM, keyPEM, err := loadKeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return Security{}, err
		}
		sec.tls.Certificates = []tls.Certificate{cert}
		sec.certPEM, sec.keyPEM = certPEM, keyPEM
	}
	return sec, nil
}

// checkSASL reports an incomplete or unknown SASL setting.
func checkSASL(s Settings) error {
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			return errors.New("CDCQ_KAFKA_SASL_USERNAME and CDCQ_KAFKA_SASL_PASSWORD need CDCQ_KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil
	case Plain, ScramSHA256, ScramSHA512:
	default:
		return fmt.Errorf("CDCQ_KAFKA_SASL_MECHANISM is %q; want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
	}
	if s.Username == "" {
		return fmt.Errorf("CDCQ_KAFKA_SASL_MECHANISM %s needs CDCQ_KAFKA_SASL_USERNAME", s.Mechanism)
	}
	if s.Password == "" {
		return fmt.Errorf("CDCQ_KAFKA_SASL_MECHANISM %s needs CDCQ_KAFKA_SASL_PASSWORD", s.Mechanism)
	}
	// A JAAS quoted string ends at a line break, so Flink could not be
	// given such a value.
	if strings.ContainsAny(s.Username, "\r\n") {
		return errors.New("CDCQ_KAFKA_SASL_USERNAME must not contain a line break")
	}
	if strings.ContainsAny(s.Password, "\r\n") {
		return errors.New("CDCQ_KAFKA_SASL_PASSWORD must not contain a line break")
	}
	return nil
}

// loadKeyPair reads the client certificate and key. It returns the key
// re-encoded as PKCS #8 PEM, the only private key form Kafka's PEM key
// store accepts.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, string, string, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, "", "", fmt.Errorf("CDCQ_KAFKA_TLS_CERT_FILE: read %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, "", "", fmt.Errorf("CDCQ_KAFKA_TLS_KEY_FILE: read %s: %w", keyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, "", "", fmt.Errorf("CDCQ_KAFKA_TLS_CERT_FILE %s and CDCQ_KAFKA_TLS_KEY_FILE %s: %w", certFile, keyFile, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return tls.Certificate{}, "", "", fmt.Errorf("CDCQ_KAFKA_TLS_KEY_FILE %s: %w", keyFile, err)
	}
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return cert, string(certPEM), string(pkcs8), nil
}

// TLS reports whether connections use TLS.
func (s Security) TLS() bool { return s.tls != nil }

// SASL reports whether connections authenticate with SASL.
func (s Security) SASL() bool { return s.mechanism != "" }

// Secured reports whether s is anything but plaintext without SASL.
func (s Security) Secured() bool { return s.TLS() || s.SASL() }

// Protocol is Kafka's name for the combination: PLAINTEXT, SSL,
// SASL_PLAINTEXT or SASL_SSL.
func (s Security) Protocol() string {
	switch {
	case s.TLS() && s.SASL():
		return "SASL_SSL"
	case s.TLS():
		return "SSL"
	case s.SASL():
		return "SASL_PLAINTEXT"
	}
	return "PLAINTEXT"
}

// String describes the security for logs and messages; it never contains
// the password.
func (s Security) String() string {
	if s.SASL() {
		return fmt.Sprintf("%s %s as %s", s.Protocol(), s.mechanism, s.username)
	}
	return s.Protocol()
}

// KgoOpts are the franz-go client options: none for plaintext.
func (s Security) KgoOpts() []kgo.Opt {
	var opts []kgo.Opt
	if s.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(s.tls.Clone()))
	}
	if m := s.kgoMechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

func (s Security) kgoMechanism() sasl.Mechanism {
	switch s.mechanism {
	case Plain:
		return plain.Auth{User: s.username, Pass: s.password}.AsMechanism()
	case ScramSHA256:
		return scram.Auth{User: s.username, Pass: s.password}.AsSha256Mechanism()
	case ScramSHA512:
		return scram.Auth{User: s.username, Pass: s.password}.AsSha512Mechanism()
	}
	return nil
}

// ConfigureSarama sets c's Net.TLS and Net.SASL; plaintext leaves them as
// they are.
func (s Security) ConfigureSarama(c *sarama.Config) {
	if s.tls != nil {
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = s.tls.Clone()
	}
	if !s.SASL() {
		return
	}
	c.Net.SASL.Enable = true
	c.Net.SASL.Handshake = true
	c.Net.SASL.User = s.username
	c.Net.SASL.Password = s.password
	c.Net.SASL.Mechanism = sarama.SASLMechanism(s.mechanism)
	switch s.mechanism {
	case ScramSHA256:
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newSCRAMClient(sha256Hash) }
	case ScramSHA512:
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newSCRAMClient(sha512Hash) }
	}
}

// Flink connector property keys, without the connector's "properties."
// prefix.
const (
	propSecurityProtocol  = "security.protocol"
	propSASLMechanism     = "sasl.mechanism"
	propSASLJAASConfig    = "sasl.jaas.config"
	propTruststoreType    = "ssl.truststore.type"
	propTruststoreCerts   = "ssl.truststore.certificates"
	propKeystoreType      = "ssl.keystore.type"
	propKeystoreCertChain = "ssl.keystore.certificate.chain"
	propKeystoreKey       = "ssl.keystore.key"
)

const (
	jaasPlainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule"
	jaasScramLoginModule = "org.apache.kafka.common.security.scram.ScramLoginModule"
	pemStoreType         = "PEM"
)

// FlinkProperties are the Kafka client properties of a Flink job's Kafka
// sources and sinks (keys without the connector's "properties." prefix);
// nil for plaintext. Certificates and the key go inline as PEM, so Flink's
// hosts need no files. The values are raw: the SQL writer quotes them.
//
// The JAAS configuration holds the SASL password: the job's SQL text, as
// Flink shows it, contains it.
func (s Security) FlinkProperties() map[string]string {
	if !s.TLS() && !s.SASL() {
		return nil
	}
	p := map[string]string{propSecurityProtocol: s.Protocol()}
	if s.SASL() {
		p[propSASLMechanism] = s.mechanism
		p[propSASLJAASConfig] = s.jaasConfig()
	}
	if s.caPEM != "" {
		p[propTruststoreType] = pemStoreType
		p[propTruststoreCerts] = s.caPEM
	}
	if s.certPEM != "" {
		p[propKeystoreType] = pemStoreType
		p[propKeystoreCertChain] = s.certPEM
		p[propKeystoreKey] = s.keyPEM
	}
	return p
}

// jaasConfig is the sasl.jaas.config value for the mechanism.
func (s Security) jaasConfig() string {
	module := jaasScramLoginModule
	if s.mechanism == Plain {
		module = jaasPlainLoginModule
	}
	return fmt.Sprintf("%s required username=%s password=%s;", module, jaasQuote(s.username), jaasQuote(s.password))
}

// jaasQuote makes v a JAAS quoted string. Kafka parses JAAS with Java's
// StreamTokenizer, which reads a backslash in a quoted string as an escape.
func jaasQuote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(v) + `"`
}

// Cluster is a Kafka cluster as cdcq reaches it: where, and how securely.
type Cluster struct {
	Brokers  []string
	Security Security
}

// Plaintext is a cluster reached without TLS or SASL (the in-process broker
// of `cdcq dev`, tests).
func Plaintext(brokers ...string) Cluster { return Cluster{Brokers: brokers} }

// Opts are the franz-go options that reach the cluster, followed by extra.
func (c Cluster) Opts(extra ...kgo.Opt) []kgo.Opt {
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, c.Security.KgoOpts()...)
	return append(opts, extra...)
}

// NewClient is a franz-go client of the cluster.
func (c Cluster) NewClient(extra ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(c.Opts(extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %v (%s): %w", c.Brokers, c.Security, err)
	}
	return cl, nil
}

// Ping connects to a broker, authenticating if the cluster asks for it, so
// that wrong settings show at start rather than as retries later.
func (c Cluster) Ping(ctx context.Context) error {
	cl, err := c.NewClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("reach kafka at %v (%s): %w", c.Brokers, c.Security, err)
	}
	return nil
}
