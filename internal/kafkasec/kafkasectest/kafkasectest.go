// Package kafkasectest starts in-process Kafka brokers that require TLS and
// SASL, with a certificate authority made up for the test, so that tests
// can prove cdcq's clients speak to a managed-Kafka-like cluster.
package kafkasectest

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcq/cdcq/internal/selfsigned"
)

// Broker is a running secure broker.
type Broker struct {
	// Brokers are the bootstrap addresses.
	Brokers []string
	// CAFile is the PEM file of the certificate authority that signed the
	// broker's certificate.
	CAFile string
	// OtherCAFile is a PEM file of an authority that signed nothing here.
	OtherCAFile string
}

// validity is how long the test certificates are valid.
const validity = 24 * time.Hour

// Start starts a one-broker cluster that speaks TLS only and, when
// mechanism is not empty, lets only user with password in through that
// SASL mechanism. It stops when the test ends.
func Start(t testing.TB, mechanism, user, password string, opts ...kfake.Opt) Broker {
	t.Helper()
	dir := t.TempDir()
	ca := newCA(t, "cdcq test CA")
	server, err := ca.Server(validity, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	b := Broker{CAFile: filepath.Join(dir, "ca.pem"), OtherCAFile: filepath.Join(dir, "other-ca.pem")}
	writeFile(t, b.CAFile, ca.PEM())
	writeFile(t, b.OtherCAFile, newCA(t, "cdcq unrelated CA").PEM())

	all := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(1), kfake.AllowAutoTopicCreation(),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{server.TLS()}, MinVersion: tls.VersionTLS12})}
	if mechanism != "" {
		all = append(all, kfake.EnableSASL(), kfake.Superuser(mechanism, user, password))
	}
	c, err := kfake.NewCluster(append(all, opts...)...)
	if err != nil {
		t.Fatalf("start secure kfake broker: %v", err)
	}
	t.Cleanup(c.Close)
	b.Brokers = c.ListenAddrs()
	return b
}

// WriteClientPair writes a client certificate and its key (SEC 1 PEM, which
// Flink's key store cannot take as it is) signed by a fresh authority to dir
// and returns their paths. The broker does not check client certificates;
// the pair exercises loading and Flink's key store.
func WriteClientPair(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	pair, err := newCA(t, "cdcq client CA").Client("cdcq client", validity)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pair.ECKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	writeFile(t, certFile, pair.CertPEM())
	writeFile(t, keyFile, keyPEM)
	return certFile, keyFile
}

// WriteCA writes the PEM certificate of a fresh authority to dir and
// returns its path.
func WriteCA(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "written-ca.pem")
	writeFile(t, path, newCA(t, "cdcq written CA").PEM())
	return path
}

func newCA(t testing.TB, name string) *selfsigned.CA {
	t.Helper()
	ca, err := selfsigned.NewCA(name, validity)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
